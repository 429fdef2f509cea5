//! The Hopfield attention head against Q1's update rule: on random inputs, the head's
//! alignment and output equal those computed pattern by pattern with `hopfield::Memory`
//! (the CCCP update, in f64 ndarray), and it learns on the homework data.

mod common;

use hopfield::verify::array2;
use hopfield::Memory;
use ndarray::{concatenate, s, Array1, Axis};
use seq2seq::model::{HopfieldAttention, HopfieldConfig, Model, ModelConfig};
use tch::{nn, Device, Kind, Tensor};
use torchkit::rng::exclusive;

#[test]
fn the_head_is_q1s_update_rule_through_learned_projections() {
    let _generator = exclusive();
    tch::manual_seed(3);
    let (b, t, src, h) = (2i64, 3i64, 5i64, 6i64);
    let lengths = [5i64, 3];
    for steps in [1usize, 3] {
        let mut vs = nn::VarStore::new(Device::Cpu);
        let mut head = HopfieldAttention::new(
            &vs.root(),
            h,
            &HopfieldConfig {
                steps,
                learn_beta: true,
            },
        );
        vs.double();
        // A β away from 1/√H, so that a β left out would show.
        tch::no_grad(|| {
            let _ = head.beta.fill_(0.9);
        });
        let query = Tensor::randn([b, t, h], (Kind::Double, Device::Cpu));
        let enc = Tensor::randn([b, src, h], (Kind::Double, Device::Cpu));
        let (out, alignment) = head.forward(&query, &enc, &Tensor::from_slice(&lengths));
        let w = |l: &nn::Linear| array2(&l.ws);
        let (w_q, w_k, w_v, w_out) = (w(&head.w_q), w(&head.w_k), w(&head.w_v), w(&head.w_out));
        for e in 0..b {
            let real = lengths[e as usize] as usize;
            let y = array2(&enc.get(e)).slice(s![..real, ..]).to_owned();
            let memory = Memory::new(y.dot(&w_k.t()), 0.9);
            let values = y.dot(&w_v.t());
            let q = array2(&query.get(e));
            for r in 0..t as usize {
                let mut xi: Array1<f64> = w_q.dot(&q.row(r));
                for _ in 1..steps {
                    xi = memory.update(xi.view());
                }
                let p = memory.probabilities(xi.view());
                let context = values.t().dot(&p);
                let both = concatenate![Axis(0), context, q.row(r)];
                let want = w_out.dot(&both).mapv(f64::tanh);
                let got_p = array2(&alignment.get(e)).row(r).to_owned();
                let got = array2(&out.get(e)).row(r).to_owned();
                for (g, w) in got_p
                    .iter()
                    .zip(p.iter().chain(&vec![0.0; src as usize - real]))
                {
                    assert!(
                        (g - w).abs() < 1e-12,
                        "steps {steps}: alignment {g} against {w}"
                    );
                }
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() < 1e-12,
                        "steps {steps}: output {g} against {w}"
                    );
                }
            }
        }
    }
}

/// Three epochs on 1,280 real training lines, as the Bahdanau test in `behaviour.rs`.
#[test]
fn a_hopfield_model_learns_on_real_lines() {
    let _generator = exclusive();
    let d = common::data();
    torchkit::rng::seed(42);
    let config = ModelConfig {
        hopfield: Some(HopfieldConfig::default()),
        ..common::config(&d, true)
    };
    let mut model = Model::new(&config, Device::Cpu);
    let (out, dir) = common::train_briefly(&d, &mut model, "p2g-hopfield");
    let losses: Vec<f64> = out.epochs.iter().map(|r| r.train_loss).collect();
    assert!(losses[2] < losses[0] * 0.8, "loss did not fall: {losses:?}");
    let val_cers: Vec<f64> = out.epochs.iter().map(|r| r.val_cer).collect();
    assert!(
        out.best_val_cer < 0.9,
        "validation CER per epoch: {val_cers:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
