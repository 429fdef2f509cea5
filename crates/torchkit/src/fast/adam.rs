//! Adam's update in one vectorised pass over a parameter's memory instead of PyTorch's eight
//! tensor ops: the same rule, other float rounding (PyTorch's vectorised `lerp` uses a fused
//! multiply-add). The fast backends' Adam ([`crate::optim::Adam::one_pass`]); the twin is
//! [`crate::optim::adam::update_slow`], PyTorch's ops, and the equivalence test
//! `optim::adam::tests::one_pass_update_is_the_tensor_ops_update`.

use tch::{Kind, Tensor};

/// One step's constants in single precision, as the update computes (made from PyTorch's
/// double-precision scalars).
#[derive(Debug, Clone, Copy)]
pub struct Constants {
    beta2: f32,
    one_minus_beta1: f32,
    one_minus_beta2: f32,
    step_size: f32,
    bias2_sqrt: f32,
    eps: f32,
    weight_decay: f32,
}

impl Constants {
    /// From (β1, β2), lr / (1 − β1ᵗ), √(1 − β2ᵗ), ε and the weight decay, in double precision.
    pub fn new(
        betas: (f64, f64),
        step_size: f64,
        bias2_sqrt: f64,
        eps: f64,
        weight_decay: f64,
    ) -> Self {
        let (b1, b2) = betas;
        Self {
            beta2: b2 as f32,
            one_minus_beta1: (1.0 - b1) as f32,
            one_minus_beta2: (1.0 - b2) as f32,
            step_size: step_size as f32,
            bias2_sqrt: bias2_sqrt as f32,
            eps: eps as f32,
            weight_decay: weight_decay as f32,
        }
    }
}

/// The update of [`crate::optim::adam::update_slow`] (its twin) over the memory of a dense float32 CPU parameter, its
/// gradient and its two moments, element by element in one loop the compiler vectorises
/// (at Q3's sizes, 19 tensors of 322,781 floats, PyTorch's eight ops a tensor cost 1.4 ms a
/// step, most of it per-op overhead). Returns false, touching nothing, for any other
/// tensors, which then take the tensor-op path.
pub fn update(p: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor, h: &Constants) -> bool {
    // Dense and laid out alike (contiguous, or channels-last as a convolution's weight may
    // be): the update is element-wise, so memory order will do.
    let dense =
        |t: &Tensor| t.is_contiguous() || (t.dim() == 4 && t.permute([0, 2, 3, 1]).is_contiguous());
    let n = p.numel();
    if ![p, g, m, v].iter().all(|t| {
        t.device() == tch::Device::Cpu
            && t.kind() == Kind::Float
            && dense(t)
            && t.size() == p.size()
            && t.stride() == p.stride()
    }) {
        return false;
    }
    // SAFETY: four distinct dense float32 tensors of `n` elements (a parameter, its
    // gradient and its moments never share memory), and nothing else reads or writes them
    // while the slices live (the step runs without autograd, on this thread).
    let (p, g, m, v) = unsafe {
        (
            std::slice::from_raw_parts_mut(p.data_ptr() as *mut f32, n),
            std::slice::from_raw_parts(g.data_ptr() as *const f32, n),
            std::slice::from_raw_parts_mut(m.data_ptr() as *mut f32, n),
            std::slice::from_raw_parts_mut(v.data_ptr() as *mut f32, n),
        )
    };
    let (w1, w2, beta2) = (h.one_minus_beta1, h.one_minus_beta2, h.beta2);
    let (step_size, bias2_sqrt, eps, weight_decay) =
        (h.step_size, h.bias2_sqrt, h.eps, h.weight_decay);
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m).zip(v) {
        let g = g + weight_decay * *p;
        *m += w1 * (g - *m);
        *v = beta2 * *v + w2 * g * g;
        *p -= step_size * *m / (v.sqrt() / bias2_sqrt + eps);
    }
    true
}
