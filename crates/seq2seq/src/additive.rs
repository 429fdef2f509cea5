//! Bahdanau attention's additive scores, `e_p = vᵀ tanh(q[qi_p] + k[ki_p])` over a list of
//! (query, source) pairs, as one autograd node with a fused CPU kernel (`additive.cpp`).
//!
//! As libtorch ops — two gathers, an add, tanh, a matrix-vector product and, backwards,
//! the gathers' scatters — these scores cost about a third of a Q3 (b) training step, most
//! of it making and walking (pairs, H) intermediates; the fused node walks the pairs once
//! each way. Its sums run in another order than MKL's, so its scores differ from the ops' in
//! the last bits: exact mode (`crate::exact`) keeps the ops.

use tch::{Device, Kind, Tensor};
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
}

/// `e_p = Σ_h v_h tanh(q[qi_p, h] + k[ki_p, h])` for the pairs `(qi_p, ki_p)`: `q` (n, H),
/// `k` (m, H), `v` H elements in any shape, `qi`, `ki` int64 (P). Differentiable in `q`, `k`
/// and `v`. Float32 CPU tensors take the fused kernel, anything else libtorch's ops.
pub fn additive_scores(q: &Tensor, k: &Tensor, v: &Tensor, qi: &Tensor, ki: &Tensor) -> Tensor {
    let fused = [q, k, v]
        .iter()
        .all(|t| t.device() == Device::Cpu && t.kind() == Kind::Float);
    if !fused {
        return unfused(q, k, v, qi, ki);
    }
    let mut out: *mut C_tensor = std::ptr::null_mut();
    let mut err: [std::ffi::c_char; 512] = [0; 512];
    // SAFETY: tch's tensors are `at::Tensor*`; the shim only reads them, and on success
    // hands over a new tensor that `from_ptr` owns (and frees on drop).
    let rc = unsafe {
        seq2seq_additive_scores(
            q.as_ptr(),
            k.as_ptr(),
            v.as_ptr(),
            qi.as_ptr(),
            ki.as_ptr(),
            &mut out,
            err.as_mut_ptr(),
            err.len(),
        )
    };
    if rc != 0 {
        // SAFETY: the shim wrote a NUL-terminated message into `err`.
        let why = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) };
        panic!("additive attention scores: {}", why.to_string_lossy());
    }
    // SAFETY: rc == 0 means `out` is a new tensor owned by us.
    unsafe { Tensor::from_ptr(out) }
}

/// The same scores from libtorch's ops.
pub fn unfused(q: &Tensor, k: &Tensor, v: &Tensor, qi: &Tensor, ki: &Tensor) -> Tensor {
    let h = q.size()[1];
    (q.index_select(0, qi) + k.index_select(0, ki))
        .tanh()
        .matmul(&v.reshape([h, 1]))
        .reshape([-1])
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn fused_scores_and_gradients_are_the_ops_ones() {
        for h in [128, 13] {
            let [q, k, v, qi, ki] = inputs(h);
            let w = Tensor::randn([9], (Kind::Float, Device::Cpu));
            let mut results = Vec::new();
            for fused in [true, false] {
                let e = if fused {
                    additive_scores(&q, &k, &v, &qi, &ki)
                } else {
                    unfused(&q, &k, &v, &qi, &ki)
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

    #[test]
    #[should_panic(expected = "index out of range")]
    fn an_index_out_of_range_is_an_error_not_a_read() {
        let [q, k, v, _, ki] = inputs(16);
        let qi = Tensor::from_slice(&[0i64, 0, 3, 6, 6, 6, 2, 1, 7]);
        let _ = additive_scores(&q, &k, &v, &qi, &ki);
    }
}
