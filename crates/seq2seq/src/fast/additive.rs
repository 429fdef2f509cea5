//! Bahdanau attention's additive scores, `e_p = vᵀ tanh(q[qi_p] + k[ki_p])` over a list of
//! (query, source) pairs, as one autograd node with a fused CPU kernel (`additive.cpp`).
//!
//! As libtorch ops — two gathers, an add, tanh, a matrix-vector product and, backwards,
//! the gathers' scatters — these scores cost about a third of a Q3 (b) training step, most
//! of it making and walking (pairs, H) intermediates; the fused node walks the pairs once
//! each way. Its sums run in another order than MKL's, so its scores differ from the ops' in
//! the last bits: exact mode (`crate::exact`) keeps the ops.

use tch::{Kind, Tensor};
use torch_sys::C_tensor;

extern "C" {
    fn seq2seq_additive_scores(
        q: *const C_tensor,
        k: *const C_tensor,
        v: *const C_tensor,
        qi: *const C_tensor,
        ki: *const C_tensor,
        out: *mut *mut C_tensor,
        err: *mut std::ffi::c_char,
        cap: usize,
    ) -> std::ffi::c_int;
    fn seq2seq_attention_context(
        q: *const C_tensor,
        keys: *const C_tensor,
        values: *const C_tensor,
        v: *const C_tensor,
        batch: *const C_tensor,
        len: *const C_tensor,
        out: *mut *mut C_tensor,
        err: *mut std::ffi::c_char,
        cap: usize,
    ) -> std::ffi::c_int;
}

/// `e_p = Σ_h v_h tanh(q[qi_p, h] + k[ki_p, h])` for the pairs `(qi_p, ki_p)`: `q` (n, H),
/// `k` (m, H), `v` H elements in any shape, `qi`, `ki` int64 (P). Differentiable in `q`, `k`
/// and `v`. Float32 CPU tensors take the fused kernel, anything else libtorch's ops.
pub fn additive_scores(q: &Tensor, k: &Tensor, v: &Tensor, qi: &Tensor, ki: &Tensor) -> Tensor {
    if !torchkit::shim::cpu_float(&[q, k, v]) {
        return additive_scores_slow(q, k, v, qi, ki);
    }
    // SAFETY: tch's tensors are `at::Tensor*`; the shim only reads them, and on success
    // hands over a new tensor that `from_ptr` owns (and frees on drop).
    torchkit::shim::call("additive attention scores", |out, err, cap| unsafe {
        seq2seq_additive_scores(
            q.as_ptr(),
            k.as_ptr(),
            v.as_ptr(),
            qi.as_ptr(),
            ki.as_ptr(),
            out,
            err,
            cap,
        )
    })
}

/// Bahdanau attention's context of query rows: for row `r` of batch row `b = batch[r]`,
/// `e_s = vᵀ tanh(q_r + keys[b, s])` over the real sources `s < len[b]`, their softmax `α`,
/// and `Σ_s α_s values[b, s]`. `q` (R, H), `keys` and `values` (B, S, H), `v` H elements,
/// `batch` (R) and `len` (B) int64 (lengths 1..=S). Differentiable in `q`, `keys`, `values`
/// and `v`. Float32 CPU tensors take one fused node (`additive.cpp`), anything else the ops.
pub fn attention_context(
    q: &Tensor,
    keys: &Tensor,
    values: &Tensor,
    v: &Tensor,
    batch: &Tensor,
    len: &Tensor,
) -> Tensor {
    if !torchkit::shim::cpu_float(&[q, keys, values, v]) {
        return attention_context_slow(q, keys, values, v, batch, len);
    }
    // SAFETY: as in `additive_scores`.
    torchkit::shim::call("attention context", |out, err, cap| unsafe {
        seq2seq_attention_context(
            q.as_ptr(),
            keys.as_ptr(),
            values.as_ptr(),
            v.as_ptr(),
            batch.as_ptr(),
            len.as_ptr(),
            out,
            err,
            cap,
        )
    })
}

/// The same context from libtorch's ops: the scores of all (row, source) pairs, padded
/// sources at −∞, softmax, and a batched product with each row's values.
pub fn attention_context_slow(
    q: &Tensor,
    keys: &Tensor,
    values: &Tensor,
    v: &Tensor,
    batch: &Tensor,
    len: &Tensor,
) -> Tensor {
    let (b, s, h) = keys.size3().expect("keys (B, S, H)");
    let r = q.size()[0];
    let qi = Tensor::arange(r, (Kind::Int64, q.device()))
        .unsqueeze(1)
        .expand([r, s], false);
    let positions = Tensor::arange(s, (Kind::Int64, q.device()));
    let ki = batch.unsqueeze(1) * s + &positions;
    let real = positions
        .unsqueeze(0)
        .lt_tensor(&len.index_select(0, batch).unsqueeze(1));
    let e = additive_scores_slow(
        q,
        &keys.reshape([b * s, h]),
        v,
        &qi.reshape([-1]),
        &ki.reshape([-1]),
    )
    .reshape([r, s])
    .masked_fill(&real.logical_not(), f64::NEG_INFINITY);
    let alpha = e.softmax(-1, e.kind());
    alpha
        .unsqueeze(1)
        .bmm(&values.index_select(0, batch))
        .squeeze_dim(1)
}

/// The same scores from libtorch's ops.
pub fn additive_scores_slow(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    qi: &Tensor,
    ki: &Tensor,
) -> Tensor {
    let h = q.size()[1];
    (q.index_select(0, qi) + k.index_select(0, ki))
        .tanh()
        .matmul(&v.reshape([h, 1]))
        .reshape([-1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn inputs(h: i64) -> [Tensor; 5] {
        let opts = (Kind::Float, Device::Cpu);
        let q = (Tensor::randn([7, h], opts) * 0.8).set_requires_grad(true);
        let k = (Tensor::randn([5, h], opts) * 0.8).set_requires_grad(true);
        let v = Tensor::randn([1, h], opts).set_requires_grad(true);
        // Repeated rows on both sides, so that the backward pass accumulates.
        let qi = Tensor::from_slice(&[0i64, 0, 3, 6, 6, 6, 2, 1, 4]);
        let ki = Tensor::from_slice(&[1i64, 4, 4, 0, 2, 3, 0, 0, 4]);
        [q, k, v, qi, ki]
    }

    /// The fused node gives the ops' scores and gradients to float rounding, on the vector
    /// path (H a multiple of 8) and the scalar one.
    #[test]
    fn additive_scores_equals_its_slow_twin_in_values_and_gradients() {
        for h in [128, 13] {
            let [q, k, v, qi, ki] = inputs(h);
            let w = Tensor::randn([9], (Kind::Float, Device::Cpu));
            let mut results = Vec::new();
            for fused in [true, false] {
                let e = if fused {
                    additive_scores(&q, &k, &v, &qi, &ki)
                } else {
                    additive_scores_slow(&q, &k, &v, &qi, &ki)
                };
                (&e * &w).sum(Kind::Float).backward();
                let grads: Vec<Tensor> = [&q, &k, &v]
                    .iter()
                    .map(|t| {
                        let g = t.grad().copy();
                        let _ = t.grad().zero_();
                        g
                    })
                    .collect();
                results.push((e.detach(), grads));
            }
            let (ours, theirs) = (&results[0], &results[1]);
            let diff = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
            assert!(diff(&ours.0, &theirs.0) < 1e-4, "h {h}: scores differ");
            for (name, (a, b)) in ["q", "k", "v"].iter().zip(ours.1.iter().zip(&theirs.1)) {
                assert_eq!(a.size(), b.size(), "h {h}: d{name}'s shape");
                assert!(
                    diff(a, b) < 1e-4,
                    "h {h}: d{name} differs by {}",
                    diff(a, b)
                );
                assert!(
                    b.abs().max().double_value(&[]) > 0.1,
                    "d{name} is not trivially 0"
                );
            }
        }
    }

    /// The fused context node gives the ops' context and gradients (q, keys, values, v) to
    /// float rounding: rows of one batch row share its keys and values (accumulating), and
    /// sources past a row's length get no weight and no gradient.
    #[test]
    fn attention_context_equals_its_slow_twin_in_values_and_gradients() {
        // Fixed inputs (no draws: lib tests share libtorch's generator across threads).
        let wave = |shape: &[i64], phase: f64, scale: f64| {
            let n: i64 = shape.iter().product();
            let values: Vec<f32> = (0..n)
                .map(|i| ((i as f64 * 0.7 + phase).sin() * scale) as f32)
                .collect();
            Tensor::from_slice(&values).reshape(shape)
        };
        for h in [128, 13] {
            let q = wave(&[6, h], 0.1, 0.8).set_requires_grad(true);
            let keys = wave(&[3, 4, h], 1.3, 0.8).set_requires_grad(true);
            let values = wave(&[3, 4, h], 2.9, 1.0).set_requires_grad(true);
            let v = wave(&[1, h], 0.5, 1.0).set_requires_grad(true);
            let batch = Tensor::from_slice(&[0i64, 0, 1, 2, 2, 2]);
            let len = Tensor::from_slice(&[4i64, 1, 2]);
            let w = wave(&[6, h], 4.2, 1.0);
            let mut results = Vec::new();
            for fused in [true, false] {
                let c = if fused {
                    attention_context(&q, &keys, &values, &v, &batch, &len)
                } else {
                    attention_context_slow(&q, &keys, &values, &v, &batch, &len)
                };
                (&c * &w).sum(Kind::Float).backward();
                let grads: Vec<Tensor> = [&q, &keys, &values, &v]
                    .iter()
                    .map(|t| {
                        let g = t.grad().copy();
                        let _ = t.grad().zero_();
                        g
                    })
                    .collect();
                results.push((c.detach(), grads));
            }
            let (ours, theirs) = (&results[0], &results[1]);
            let diff = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
            assert!(diff(&ours.0, &theirs.0) < 1e-4, "h {h}: contexts differ");
            for (name, (a, b)) in ["q", "keys", "values", "v"]
                .iter()
                .zip(ours.1.iter().zip(&theirs.1))
            {
                assert_eq!(a.size(), b.size(), "h {h}: d{name}'s shape");
                assert!(
                    diff(a, b) < 1e-4,
                    "h {h}: d{name} differs by {}",
                    diff(a, b)
                );
                assert!(
                    b.abs().max().double_value(&[]) > 1e-3,
                    "d{name} is not trivially 0"
                );
            }
            // Batch row 1 has one real source: its padded positions get nothing.
            let padded = ours.1[2].get(1).narrow(0, 1, 3);
            assert_eq!(
                padded.abs().max().double_value(&[]),
                0.0,
                "padding got a gradient"
            );
        }
    }

    #[test]
    #[should_panic(expected = "source length outside")]
    fn a_source_length_out_of_range_is_an_error_not_a_read() {
        let opts = (Kind::Float, Device::Cpu);
        let q = Tensor::randn([2, 8], opts);
        let kv = Tensor::randn([2, 3, 8], opts);
        let v = Tensor::randn([8], opts);
        let batch = Tensor::from_slice(&[0i64, 1]);
        let _ = attention_context(&q, &kv, &kv, &v, &batch, &Tensor::from_slice(&[3i64, 4]));
    }

    #[test]
    #[should_panic(expected = "index out of range")]
    fn an_index_out_of_range_is_an_error_not_a_read() {
        let [q, k, v, _, ki] = inputs(16);
        let qi = Tensor::from_slice(&[0i64, 0, 3, 6, 6, 6, 2, 1, 7]);
        let _ = additive_scores(&q, &k, &v, &qi, &ki);
    }
}
