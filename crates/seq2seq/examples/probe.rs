use seq2seq::{batch::*, data::Splits, decode::Strategy, evaluate, model::*};
fn main() -> anyhow::Result<()> {
    let splits = Splits::read("../shared/data/p2g")?;
    let vocabs = Vocabs::from_train(&splits.train);
    println!("vocab sizes {} {}", vocabs.src.len(), vocabs.tgt.len());
    let test = encode(&splits.test, &vocabs);
    let golds: Vec<String> = splits.test.iter().map(|e| e.tgt.clone()).collect();
    for (attn, ck) in [(false, "seed-no-attn"), (true, "seed-attn")] {
        let cfg = ModelConfig { src_vocab: vocabs.src.len() as i64, tgt_vocab: vocabs.tgt.len() as i64, hidden: 128, dropout: 0.3, attention: attn };
        let mut m = Model::new(&cfg, tch::Device::Cpu);
        m.load(format!("../shared/checkpoints/{ck}.safetensors"))?;
        for bs in [1000usize, 1] {
            let t = std::time::Instant::now();
            let preds = evaluate::predict(&m.net, &test, &vocabs.tgt, Strategy::Greedy, 50, bs, tch::Device::Cpu);
            let s = evaluate::score(&preds, &golds);
            println!("{ck} bs={bs}: CER {:.4} WER {:.4} ({:.2}s)", s.cer, s.wer, t.elapsed().as_secs_f64());
        }
    }
    Ok(())
}
