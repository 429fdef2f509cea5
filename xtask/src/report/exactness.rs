//! The report's section on exact mode: which mode this run trained in, what `--exact`
//! reproduces of the homework's own code, and how far this run's Q3 figures land from the
//! numbers that code prints on this machine kind.

use std::fmt::Write;

use summaries::Run;

use super::reference::Reference;

/// Appends the section to `md`.
pub fn write(md: &mut String, run: &Run, reference: &Reference) {
    let q2_exact = run.q2.as_ref().map(|q| q.config.exact);
    let q3_exact = run.q3.as_ref().map(|q| q.config.exact);
    if q2_exact.is_none() && q3_exact.is_none() {
        return;
    }
    md.push_str("## Exact mode\n\n");
    let mode = |e: Option<bool>| match e {
        Some(true) => "**exact**",
        Some(false) => "fast (the default)",
        None => "not run",
    };
    let _ = writeln!(
        md,
        "This run trained Q2 in {} mode and Q3 in {} mode. `cargo xtask reproduce --exact` follows the homework's PyTorch code op for op and draw for draw (its DataLoader's draws, the decoder one step at a time, the LSTM under autograd, dense attention, batch-of-one decoding, NCHW and plain SGD for Q2, float32 loss means), one thread per training: with the same seed and data it prints the homework's own lines digit for digit, as checked against runs of that code on this machine kind:\n",
        mode(q2_exact),
        mode(q3_exact)
    );
    md.push_str(
        "| question | what `--exact` reproduces digit for digit | checked by |\n|---|---|---|\n",
    );
    md.push_str("| Q3 (a), (b) | every `Epoch: [e/20], Loss` and `Validation error rate` line of the 20 epochs, the best epoch, the test CER and WER | full runs; the first 50 training losses and the initial weights in `tests/exact.rs` |\n");
    md.push_str("| Q3 (c) | nucleus sampling's test CER/WER and WER@3, and which words get differing samples | the seed report's weights: 0.2291 / 0.7730 / 0.6600 |\n");
    md.push_str("| Q2 2.2, 2.1 | initial weights and every training loss; the `Training loss`, `Valid loss`, `Valid acc` lines | 3 epochs on the Fashion-MNIST substitute; `tests/exact.rs` |\n\n");
    md.push_str("The fast mode draws the same batches (the homework's DataLoader draws) and cuts nucleus sampling as the homework does; the rest is built for speed — dropout masks from its own seeded stream, for Q3 a fused Adam, fused attention scores, the encoder's hand-written backward pass, attention on real positions only, the decoder LSTM packed over the scored positions, batched decoding (so nucleus sampling draws its tokens in another order); for Q2 channels-last memory and 2.1's fused SGD update — so it follows its own trajectory, of the same quality.\n\n");
    let Some(q3) = run.q3.as_ref().filter(|q| !q.config.synthetic) else {
        return;
    };
    let exact = &reference.exact.q3;
    let title = if q3_exact == Some(true) {
        "This run (exact) beside the homework's code on this machine kind; they should be equal:"
    } else {
        "How far this run's (fast) Q3 figures land from the homework's code on this machine kind, which exact mode reproduces:"
    };
    let _ = writeln!(md, "{title}\n\n| run | metric | this run | homework's code (= `--exact`) | difference |\n|---|---|---|---|---|");
    let (a, b, c) = (&q3.no_attention, &q3.attention, &q3.nucleus.test);
    let (ea, eb, ec) = (&exact.no_attention, &exact.attention, &exact.nucleus);
    for (label, name, ours, theirs) in [
        (
            "(a) no attention",
            "best validation CER",
            a.best_val_cer,
            ea.best_val_cer,
        ),
        ("(a) no attention", "test CER", a.test.cer, ea.cer),
        ("(a) no attention", "test WER", a.test.wer, ea.wer),
        (
            "(b) attention",
            "best validation CER",
            b.best_val_cer,
            eb.best_val_cer,
        ),
        ("(b) attention", "test CER", b.test.cer, eb.cer),
        ("(b) attention", "test WER", b.test.wer, eb.wer),
        ("(c) nucleus p = 0.8", "test CER", c.cer, ec.cer),
        ("(c) nucleus p = 0.8", "test WER", c.wer, ec.wer),
        ("(c) nucleus p = 0.8", "WER@3", c.wer_at_3, ec.wer_at_3),
    ] {
        let _ = writeln!(
            md,
            "| {label} | {name} | {ours:.4} | {theirs:.4} | {:+.4} |",
            ours - theirs
        );
    }
    md.push('\n');
}
