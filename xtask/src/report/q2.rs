//! The report's Q2 section: every run of the sweep and model 2.2 beside the published test
//! accuracies, the parameter counts of the run, and the loss and accuracy figures.

use std::fmt::Write as _;
use std::path::Path;

use summaries::q2::Q2Summary;
use summaries::seeds::Q2Seeds;

use super::reference::Reference;
use super::{beside, figure, plus_minus, thousands};

/// Appends the section to `md`.
pub fn write(
    md: &mut String,
    out: &Path,
    q2: &Q2Summary,
    seeds: Option<&Q2Seeds>,
    reference: &Reference,
) {
    md.push_str("## Q2 — CNN image classification\n\n");
    let ds = &q2.dataset;
    if ds.intel {
        let _ = writeln!(
            md,
            "Data: Intel landscapes (`{}`, SHA-256 `{}`).\n",
            ds.file, ds.sha256
        );
    } else {
        let _ = writeln!(md, "Data: **{}, not the Intel file** (`{}`, SHA-256 `{}`): published figures below are for Intel and are not comparable.\n", ds.label.trim_end_matches(", not the Intel file"), ds.file, ds.sha256);
    }
    md.push_str("| model | learning rate | parameters | epochs | test accuracy | published (seed, range) | difference | s/epoch |");
    md.push_str(if seeds.is_some() {
        " over seeds: mean ± std |\n|---|---|---|---|---|---|---|---|---|\n"
    } else {
        "\n|---|---|---|---|---|---|---|---|\n"
    });
    for r in &q2.runs {
        let key = format!("{}@{}", r.model, r.learning_rate);
        let published = reference.q2.runs.get(&key).map(|p| &p.test_accuracy);
        let (published, diff) = beside(ds.intel.then_some(r.test_accuracy), published);
        let diff = if ds.intel {
            diff
        } else {
            "n/a (substitute)".into()
        };
        let _ = write!(
            md,
            "| {} | {} | {} | {} | {:.4} | {published} | {diff} | {:.1} |",
            r.model,
            r.learning_rate,
            thousands(r.params),
            r.epochs,
            r.test_accuracy,
            r.seconds_per_epoch
        );
        if let Some(s) = seeds {
            let stat = s.runs.get(&key).map(|r| &r.test_accuracy);
            let _ = write!(md, " {} |", plus_minus(stat));
        }
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "\nBest learning rate for model 2.1 (final validation accuracy): **{}**.\n",
        q2.best_learning_rate
    );
    let params = |model: &str| q2.runs.iter().find(|r| r.model == model).map(|r| r.params);
    if let (Some(p21), Some(p22)) = (params("2.1"), params("2.2")) {
        let _ = writeln!(md, "Model 2.1 flattens its last 128 feature maps (6×6 each) into a 1,024-unit layer; model 2.2 averages each channel globally (128 features) and adds batch norm: hence {} vs {} trainable parameters in this run.\n", thousands(p21), thousands(p22));
    }
    for (file, caption) in [
        ("q2/model2_1_train_loss.png", "2.1 training loss"),
        ("q2/model2_1_val_accuracy.png", "2.1 validation accuracy"),
        ("q2/model2_2_train_loss.png", "2.2 training loss"),
        ("q2/model2_2_val_accuracy.png", "2.2 validation accuracy"),
    ] {
        figure(md, out, file, caption);
    }
}
