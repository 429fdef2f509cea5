//! Loss, accuracy and confusion of a split in eval mode.

use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

use crate::dataset::{Split, CLASSES};
use crate::model::Cnn;

/// Loss, accuracy and predictions of a split in eval mode, as the model's backend evaluates
/// it: the reference backend as the skeleton does ([`evaluate_whole`]), the fast one in
/// chunks of `chunk` examples (memory bounded, the loss summed in float64).
pub fn evaluate(net: &Cnn, split: &Split, chunk: usize) -> (f64, f64, Vec<i64>) {
    if net.backend().evaluates_whole_splits() {
        evaluate_whole(net, split)
    } else {
        evaluate_chunked(net, split, chunk)
    }
}

/// Loss and accuracy of a split in eval mode, `chunk` examples at a time.
fn evaluate_chunked(net: &Cnn, split: &Split, chunk: usize) -> (f64, f64, Vec<i64>) {
    tch::no_grad(|| {
        let n = split.len() as i64;
        let (mut loss_sum, mut preds) = (0.0, Vec::with_capacity(n as usize));
        // A split left on the CPU while the model is on a GPU travels chunk by chunk.
        let device = net.device();
        let mut start = 0;
        while start < n {
            let len = (chunk as i64).min(n - start);
            let x = split.images_in(start, len).to_device(device);
            let out = net.forward_t(&x, false);
            let y = split.labels.narrow(0, start, len).to_device(device);
            loss_sum += out
                .g_nll_loss::<Tensor>(&y, None, tch::Reduction::Sum, -100)
                .double_value(&[]);
            preds.extend(Vec::<i64>::try_from(out.argmax(-1, false)).expect("int64"));
            start += len;
        }
        let labels = Vec::<i64>::try_from(&split.labels).expect("int64");
        (
            loss_sum / n as f64,
            metrics::accuracy(&preds, &labels),
            preds,
        )
    })
}

/// The skeleton's `evaluate`: the whole split in one forward pass in eval mode, the mean
/// NLL as one float32 reduction, the accuracy, and the predictions.
fn evaluate_whole(net: &Cnn, split: &Split) -> (f64, f64, Vec<i64>) {
    tch::no_grad(|| {
        let device = net.device();
        let scores = net.forward_t(&split.images().to_device(device), false);
        let labels = split.labels.to_device(device);
        let loss = scores
            .g_nll_loss::<Tensor>(&labels, None, tch::Reduction::Mean, -100)
            .double_value(&[]);
        let preds = scores.argmax(-1, false);
        let correct = preds.eq_tensor(&labels).sum(Kind::Int64).int64_value(&[]);
        let preds = Vec::<i64>::try_from(preds.to_device(Device::Cpu)).expect("int64");
        (loss, correct as f64 / split.len() as f64, preds)
    })
}

/// Confusion matrix of predictions on a split.
pub fn confusion(preds: &[i64], split: &Split) -> metrics::ConfusionMatrix {
    let labels = Vec::<i64>::try_from(&split.labels).expect("int64");
    metrics::ConfusionMatrix::new(CLASSES as usize, preds, &labels)
}
