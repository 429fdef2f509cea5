//! The strongest correctness check: the seed report's own PyTorch weights (the `.pt` files
//! the homework's code saved), decoded greedily by our model, give exactly the figures the
//! PyTorch code printed for them. This pins down the `.pt` reader, the vocabulary order,
//! packing, the state bridge, attention, the tied generator, decoding and the metrics.

mod common;

use seq2seq::corpus::Corpus;
use seq2seq::decode::Strategy;
use seq2seq::evaluate::{predict, score};
use seq2seq::model::Model;

fn printed(d: &Corpus, model: &Model) -> String {
    let preds = predict(
        &model.net,
        &d.test,
        &d.vocabs.tgt,
        Strategy::Greedy,
        50,
        1000,
        tch::Device::Cpu,
    );
    let s = score(&preds, &d.test_gold);
    format!("Test CER: {:.4}, Test WER: {:.4}", s.cer, s.wer)
}

fn check(attention: bool, expected: &str) {
    let d = common::data();
    assert_eq!((d.vocabs.src.len(), d.vocabs.tgt.len()), (107, 93));
    let model = common::seed_model(&d, attention);
    assert_eq!(printed(&d, &model), expected);
    // Saved as our safetensors and loaded again: the same weights, the same lines.
    let path = std::env::temp_dir().join(format!(
        "seed-{attention}-{}.safetensors",
        std::process::id()
    ));
    model.save(&path).unwrap();
    let mut again = Model::new(&common::config(&d, attention), tch::Device::Cpu);
    again.load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    for (name, t) in model.vs.variables() {
        assert!(t.equal(&again.vs.variables()[&name]), "{name} changed");
    }
    assert_eq!(printed(&d, &again), expected);
}

#[test]
fn no_attention_checkpoint_reproduces_the_seed_report() {
    check(false, "Test CER: 0.3006, Test WER: 0.7980");
}

#[test]
fn attention_checkpoint_reproduces_the_seed_report() {
    check(true, "Test CER: 0.2041, Test WER: 0.7190");
}

/// What a user of the PyTorch code types: `p2g test --checkpoint attn.pt`.
#[test]
fn p2g_test_reads_the_homeworks_pt_file() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_p2g"))
        .args(["test", "--use-attn", "--data"])
        .arg(common::data_dir())
        .arg("--checkpoint")
        .arg(common::seed_checkpoint("seed-attn"))
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Test CER: 0.2041, Test WER: 0.7190"),
        "{stdout}"
    );
}
