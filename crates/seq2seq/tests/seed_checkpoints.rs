//! The strongest correctness check: the seed report's own PyTorch weights, decoded greedily
//! by our model, give exactly the figures the PyTorch code printed for them. This pins down
//! the vocabulary order, packing, the state bridge, attention, the tied generator, decoding
//! and the metrics together.

mod common;

use seq2seq::decode::Strategy;
use seq2seq::evaluate::{predict, score};

fn printed(attention: bool) -> String {
    let d = common::data();
    assert_eq!((d.vocabs.src.len(), d.vocabs.tgt.len()), (107, 93));
    let model = common::seed_model(&d, attention);
    let preds = predict(
        &model.net,
        &d.test,
        &d.vocabs.tgt,
        Strategy::Greedy,
        50,
        1000,
        tch::Device::Cpu,
    );
    let gold = &d.test_gold;
    let s = score(&preds, gold);
    format!("Test CER: {:.4}, Test WER: {:.4}", s.cer, s.wer)
}

#[test]
fn no_attention_checkpoint_reproduces_the_seed_report() {
    assert_eq!(printed(false), "Test CER: 0.3006, Test WER: 0.7980");
}

#[test]
fn attention_checkpoint_reproduces_the_seed_report() {
    assert_eq!(printed(true), "Test CER: 0.2041, Test WER: 0.7190");
}
