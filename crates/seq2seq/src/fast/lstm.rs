//! The encoder's packed bidirectional LSTM with a hand-written backward pass.
//!
//! The forward pass is PyTorch's CPU packed LSTM (input projections of all steps at once, then
//! per step `addmm(b_hh, h, W_hhᵀ) + x_proj`, the gates, `c = f·c + i·g`, `h = o·tanh(c)`).
//! On the CPU in float32 each step's element-wise part is one vectorised loop
//! ([`crate::fast::cell`]), whose sigmoid and tanh agree with libtorch's to about 1e-7; elsewhere
//! it is libtorch's ops in libtorch's order, which give `Tensor::lstm_data`'s numbers bit for
//! bit. Under autograd, `lstm_data` records about a dozen nodes per step and direction, and
//! at this size (hidden 64, batch ≤ 64) the bookkeeping costs more than the arithmetic: the
//! backward pass dominated a training step. Here the forward pass runs without autograd,
//! keeps what the backward pass needs in a [`Tape`], and [`Tape::backward`] does
//! back-propagation through time (per step one loop of `cell` and one `mm`, or about six
//! tensor ops), then hands the input and weight gradients back to autograd.

use tch::{Kind, Tensor};

/// Outputs of [`packed_bilstm`].
#[derive(Debug)]
pub struct BiLstmOutput {
    /// Packed outputs (Σ batch sizes, 2H): forward then backward direction.
    pub output: Tensor,
    /// Final hidden states (2, B, H), forward then backward, in the packed (sorted) row order.
    pub h: Tensor,
    /// Final cell states (2, B, H).
    pub c: Tensor,
    /// What the backward pass needs; `Some` when the input or the weights require grad.
    /// `output`, `h` and `c` are then autograd leaves: run the loss's backward pass first,
    /// then [`Tape::backward`].
    pub tape: Option<Tape>,
}

/// What one direction's forward pass saved.
#[derive(Debug)]
struct Saved {
    /// Activated gates (Σn, 4H): i, f, g, o.
    gates: Tensor,
    /// Cell states (Σn, H).
    c: Tensor,
    /// tanh of the cell states (Σn, H).
    tanh_c: Tensor,
    /// Hidden states (Σn, H).
    h: Tensor,
}

/// `states` (Σn, H) one step earlier in the direction's order, row by row — the state each
/// step started from (where a sequence starts, zero or its row of `init` (B, H)); `prev` is
/// [`previous_rows`] as a tensor.
fn previous_states(states: &Tensor, prev: &Tensor, init: Option<&Tensor>) -> Tensor {
    let start = match init {
        Some(init) => init.shallow_clone(),
        None => states.new_zeros([1, states.size()[1]], (states.kind(), states.device())),
    };
    Tensor::cat(&[states, &start], 0).index_select(0, prev)
}

/// The forward pass's record, for [`Tape::backward`].
#[derive(Debug)]
pub struct Tape {
    input: Tensor,
    params: Vec<Tensor>,
    batch_sizes: Vec<i64>,
    saved: Vec<Saved>,
    /// The initial (h, c), (B, H) each, when not zero (one direction only).
    init: Option<(Tensor, Tensor)>,
    output: Tensor,
    h: Tensor,
    c: Tensor,
}

/// Start offset of every step's rows in the packed layout.
fn offsets(batch_sizes: &[i64]) -> Vec<i64> {
    batch_sizes
        .iter()
        .scan(0, |acc, &n| {
            let off = *acc;
            *acc += n;
            Some(off)
        })
        .collect()
}

/// Steps in the order a direction visits them.
fn steps(n: usize, reverse: bool) -> Box<dyn Iterator<Item = usize>> {
    if reverse {
        Box::new((0..n).rev())
    } else {
        Box::new(0..n)
    }
}

/// For every packed row, the row of the same sequence one step earlier in the direction's
/// order, or where the sequence starts there `total` (a zero row) or, with `init`,
/// `total + r` for sequence `r` (its row of the initial state; forward direction only).
fn previous_rows(batch_sizes: &[i64], reverse: bool, init: bool) -> Vec<i64> {
    assert!(
        !(init && reverse),
        "initial states are for the forward direction"
    );
    let offs = offsets(batch_sizes);
    let total: i64 = batch_sizes.iter().sum();
    let mut prev = vec![total; total as usize];
    if init {
        // Every sequence starts at step 0, row r.
        for r in 0..batch_sizes.first().copied().unwrap_or(0) {
            prev[r as usize] = total + r;
        }
    }
    for (t, (&n, &off)) in batch_sizes.iter().zip(&offs).enumerate() {
        let before = if reverse { t + 1 } else { t.wrapping_sub(1) };
        if let (Some(&m), Some(&poff)) = (batch_sizes.get(before), offs.get(before)) {
            for r in 0..n.min(m) {
                prev[(off + r) as usize] = poff + r;
            }
        }
    }
    prev
}

/// One direction over the packed steps from `init` (h, c), each (B, H), or zeros; `x_proj` =
/// `x W_ihᵀ + b_ih` for every row.
fn direction(
    x_proj: &Tensor,
    (w_hh, b_hh): (&Tensor, &Tensor),
    sizes: &[i64],
    reverse: bool,
    init: Option<&(Tensor, Tensor)>,
) -> Saved {
    let (total, four_h) = x_proj.size2().expect("(Σn, 4H)");
    let h = four_h / 4;
    let batch = sizes.first().copied().unwrap_or(0);
    let opts = (x_proj.kind(), x_proj.device());
    let gates = Tensor::empty([total, four_h], opts);
    let c_all = Tensor::empty([total, h], opts);
    let tanh_c = Tensor::empty([total, h], opts);
    let h_all = Tensor::empty([total, h], opts);
    // The running state; rows past the step's batch size keep their sequence's last state.
    let (h_state, c_state) = match init {
        Some((h0, c0)) => (h0.contiguous().copy(), c0.contiguous().copy()),
        None => (
            Tensor::zeros([batch, h], opts),
            Tensor::zeros([batch, h], opts),
        ),
    };
    let w_hh_t = w_hh.tr();
    let offs = offsets(sizes);
    if cell_loops(x_proj) {
        let x_proj = x_proj.contiguous();
        for t in steps(sizes.len(), reverse) {
            let (n, off) = (sizes[t], offs[t]);
            let g = gates.narrow(0, off, n);
            let _ = b_hh.addmm_out(&g, &h_state.narrow(0, 0, n), &w_hh_t);
            crate::fast::cell::forward(crate::fast::cell::Forward {
                gates: step_rows(&gates, off, n, 4 * h),
                x_proj: step_rows(&x_proj, off, n, 4 * h),
                c_prev: floats(&c_state, 0, n * h),
                c: step_rows(&c_all, off, n, h),
                tanh_c: step_rows(&tanh_c, off, n, h),
                h_out: step_rows(&h_all, off, n, h),
                h: h as usize,
            });
            // The running state: these rows' new h and c.
            floats(&h_state, 0, n * h).copy_from_slice(step_rows(&h_all, off, n, h));
            floats(&c_state, 0, n * h).copy_from_slice(step_rows(&c_all, off, n, h));
        }
        return Saved {
            gates,
            c: c_all,
            tanh_c,
            h: h_all,
        };
    }
    for t in steps(sizes.len(), reverse) {
        let (n, off) = (sizes[t], offs[t]);
        let (hx, cx) = (h_state.narrow(0, 0, n), c_state.narrow(0, 0, n));
        let mut g = gates.narrow(0, off, n);
        let _ = b_hh.addmm_out(&g, &hx, &w_hh_t);
        let _ = g.g_add_(&x_proj.narrow(0, off, n));
        let _ = g.narrow(1, 0, 2 * h).sigmoid_();
        let _ = g.narrow(1, 2 * h, h).tanh_();
        let _ = g.narrow(1, 3 * h, h).sigmoid_();
        let (i, f, gg, o) = (
            g.narrow(1, 0, h),
            g.narrow(1, h, h),
            g.narrow(1, 2 * h, h),
            g.narrow(1, 3 * h, h),
        );
        let mut c = c_all.narrow(0, off, n);
        let _ = f.mul_out(&c, &cx);
        let _ = c.g_add_(&(&i * &gg));
        let tc = tanh_c.narrow(0, off, n);
        let _ = c.tanh_out(&tc);
        let hy = h_all.narrow(0, off, n);
        let _ = o.mul_out(&hy, &tc);
        h_state.narrow(0, 0, n).copy_(&hy);
        c_state.narrow(0, 0, n).copy_(&c);
    }
    Saved {
        gates,
        c: c_all,
        tanh_c,
        h: h_all,
    }
}

/// Whether the step's element-wise work runs in [`crate::fast::cell`]'s loops: float32 on the CPU
/// (elsewhere, and for other kinds, libtorch's ops). The model's device and dtype decide it,
/// so it is the same for every step of a run, and [`crate::kernels::Kernels::describe`] says
/// which when the run starts.
fn cell_loops(t: &Tensor) -> bool {
    t.device() == tch::Device::Cpu && t.kind() == Kind::Float
}

/// `len` floats of the contiguous float32 CPU tensor `t` from element `start`, as a slice.
/// The tensors passed are this module's own buffers (or contiguous copies), each used by one
/// step at a time and not read by libtorch while the slice is alive; the slices of one call
/// never overlap (distinct tensors, or distinct rows).
#[allow(clippy::mut_from_ref)]
fn floats(t: &Tensor, start: i64, len: i64) -> &mut [f32] {
    debug_assert!(cell_loops(t) && t.is_contiguous() && start + len <= t.numel() as i64);
    // SAFETY: `t` is a contiguous float32 CPU tensor holding at least `start + len`
    // elements (checked above in debug builds; every caller passes in-range rows), and the
    // aliasing rules are kept by the callers as said above.
    unsafe {
        std::slice::from_raw_parts_mut((t.data_ptr() as *mut f32).add(start as usize), len as usize)
    }
}

/// Rows `off..off + n` of a contiguous float32 CPU tensor of `width` columns (see [`floats`]).
#[allow(clippy::mut_from_ref)]
fn step_rows(t: &Tensor, off: i64, n: i64, width: i64) -> &mut [f32] {
    floats(t, off * width, n * width)
}

/// Runs a one-layer bidirectional LSTM over packed `input` (Σn, I) with `batch_sizes` (the
/// non-increasing rows per step) and `params` in PyTorch's order (`weight_ih_l0`,
/// `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, then the `_reverse` four), from zero states.
pub fn packed_bilstm(input: &Tensor, batch_sizes: &[i64], params: &[Tensor]) -> BiLstmOutput {
    assert_eq!(params.len(), 8, "a bidirectional layer has 8 tensors");
    run(input, batch_sizes, params, None)
}

/// A one-layer, one-direction LSTM over packed `input` from `init` = (h₀, c₀), each (B, H)
/// in the packed (sorted) row order; `params` the four of PyTorch's order. The outputs are
/// [`packed_bilstm`]'s with one direction (`h`, `c`: (1, B, H)); with gradients on, the
/// tape also hands h₀ and c₀ their gradients.
pub fn packed_lstm(
    input: &Tensor,
    batch_sizes: &[i64],
    params: &[Tensor],
    init: (&Tensor, &Tensor),
) -> BiLstmOutput {
    assert_eq!(params.len(), 4, "a one-direction layer has 4 tensors");
    let init = (init.0.shallow_clone(), init.1.shallow_clone());
    run(input, batch_sizes, params, Some(init))
}

fn run(
    input: &Tensor,
    batch_sizes: &[i64],
    params: &[Tensor],
    init: Option<(Tensor, Tensor)>,
) -> BiLstmOutput {
    let taped = input.requires_grad()
        || params.iter().any(Tensor::requires_grad)
        || init
            .as_ref()
            .is_some_and(|(h, c)| h.requires_grad() || c.requires_grad());
    let directions = params.len() / 4;
    let saved: Vec<Saved> = tch::no_grad(|| {
        let init = init.as_ref().map(|(h, c)| (h.detach(), c.detach()));
        (0..directions)
            .map(|dir| {
                let p = &params[4 * dir..][..4];
                let x_proj = p[2].addmm(input, &p[0].tr());
                direction(
                    &x_proj,
                    (&p[1], &p[3]),
                    batch_sizes,
                    dir == 1,
                    init.as_ref(),
                )
            })
            .collect()
    });
    let batch = batch_sizes.first().copied().unwrap_or(0);
    let (output, h, c) = tch::no_grad(|| {
        let output = Tensor::cat(&saved.iter().map(|s| &s.h).collect::<Vec<_>>(), 1);
        // A forward sequence ends at its last step; the backward direction at step 0.
        let last = last_rows(batch_sizes).to_device(input.device());
        let finals = |of: fn(&Saved) -> &Tensor| {
            let per_dir: Vec<Tensor> = saved
                .iter()
                .enumerate()
                .map(|(dir, s)| match dir {
                    0 => of(s).index_select(0, &last),
                    _ => of(s).narrow(0, 0, batch),
                })
                .collect();
            Tensor::stack(&per_dir, 0)
        };
        (output, finals(|s| &s.h), finals(|s| &s.c))
    });
    if !taped {
        return BiLstmOutput {
            output,
            h,
            c,
            tape: None,
        };
    }
    let (output, h, c) = (
        output.set_requires_grad(true),
        h.set_requires_grad(true),
        c.set_requires_grad(true),
    );
    BiLstmOutput {
        tape: Some(Tape {
            input: input.shallow_clone(),
            params: params.iter().map(Tensor::shallow_clone).collect(),
            batch_sizes: batch_sizes.to_vec(),
            saved,
            init,
            output: output.shallow_clone(),
            h: h.shallow_clone(),
            c: c.shallow_clone(),
        }),
        output,
        h,
        c,
    }
}

/// For every sequence (packed row order), its row at its last step.
fn last_rows(batch_sizes: &[i64]) -> Tensor {
    let offs = offsets(batch_sizes);
    let batch = batch_sizes.first().copied().unwrap_or(0);
    let rows: Vec<i64> = (0..batch)
        .map(|r| {
            // The last step whose batch still includes row r.
            let t = batch_sizes
                .iter()
                .rposition(|&n| n > r)
                .expect("rows have length ≥ 1");
            offs[t] + r
        })
        .collect();
    Tensor::from_slice(&rows)
}

/// The gradient a leaf received, or zeros when nothing downstream used it.
fn grad_or_zeros(leaf: &Tensor) -> Tensor {
    let g = leaf.grad();
    if g.defined() {
        g
    } else {
        leaf.zeros_like()
    }
}

impl Tape {
    /// Back-propagates the gradients that the loss's backward pass left on the outputs into
    /// the weights (accumulated into their `.grad`) and on through the input's graph.
    pub fn backward(self) {
        let (d_out, d_h, d_c) = (
            grad_or_zeros(&self.output),
            grad_or_zeros(&self.h),
            grad_or_zeros(&self.c),
        );
        let hidden = d_h.size()[2];
        let mut surrogate = Vec::new();
        let mut d_input: Option<Tensor> = None;
        let init = self.init.as_ref().map(|(h, c)| (h.detach(), c.detach()));
        tch::no_grad(|| {
            for (dir, s) in self.saved.iter().enumerate() {
                let reverse = dir == 1;
                let p = &self.params[4 * dir..4 * dir + 4];
                let prev = previous_rows(&self.batch_sizes, reverse, init.is_some());
                let prev = Tensor::from_slice(&prev).to_device(s.h.device());
                let (d_gates, d_init) = bptt(
                    s,
                    &previous_states(&s.c, &prev, init.as_ref().map(|i| &i.1)),
                    &p[1],
                    &d_out.narrow(1, dir as i64 * hidden, hidden),
                    (&d_h.get(dir as i64), &d_c.get(dir as i64)),
                    &self.batch_sizes,
                    reverse,
                );
                if let Some((h0, c0)) = &self.init {
                    surrogate.push((h0.shallow_clone(), d_init.0));
                    surrogate.push((c0.shallow_clone(), d_init.1));
                }
                let h_prev = previous_states(&s.h, &prev, init.as_ref().map(|i| &i.0));
                let d_gates_t = d_gates.tr();
                let d_bias = d_gates.sum_dim_intlist(0, false, d_gates.kind());
                surrogate.push((p[0].shallow_clone(), d_gates_t.mm(&self.input.detach())));
                surrogate.push((p[1].shallow_clone(), d_gates_t.mm(&h_prev)));
                surrogate.push((p[2].shallow_clone(), d_bias.shallow_clone()));
                surrogate.push((p[3].shallow_clone(), d_bias));
                let dx = d_gates.mm(&p[0]);
                d_input = Some(match d_input.take() {
                    Some(acc) => acc + dx,
                    None => dx,
                });
            }
        });
        // One autograd pass delivers both: ∂/∂w of Σ w·dw is dw (accumulated into w.grad),
        // and ∂/∂x of Σ x·dx is dx, which flows on into the embedding and dropout.
        let mut terms = Vec::new();
        if self.input.requires_grad() {
            let dx = d_input.expect("a direction ran");
            terms.push((&self.input * dx).sum(Kind::Float));
        }
        for (w, dw) in surrogate {
            if w.requires_grad() {
                terms.push((&w * dw).sum(Kind::Float));
            }
        }
        if !terms.is_empty() {
            Tensor::stack(&terms, 0).sum(Kind::Float).backward();
        }
    }
}

/// Back-propagation through time for one direction, from the gradients of its outputs and
/// final (h, c); returns the gradient of the gates' pre-activations (Σn, 4H) and those of the
/// initial (h, c), (B, H) each.
fn bptt(
    s: &Saved,
    c_prev: &Tensor,
    w_hh: &Tensor,
    d_out: &Tensor,
    (d_h_final, d_c_final): (&Tensor, &Tensor),
    sizes: &[i64],
    reverse: bool,
) -> (Tensor, (Tensor, Tensor)) {
    let (total, four_h) = s.gates.size2().expect("(Σn, 4H)");
    let h = four_h / 4;
    if cell_loops(&s.gates) {
        let d_gates = Tensor::empty([total, four_h], (s.gates.kind(), s.gates.device()));
        let dh_state = d_h_final.contiguous().copy();
        let dc_state = d_c_final.contiguous().copy();
        let c_prev = c_prev.contiguous();
        // One direction's half of the outputs' gradient, made contiguous once.
        let d_out = d_out.contiguous();
        let offs = offsets(sizes);
        for t in steps(sizes.len(), !reverse) {
            let (n, off) = (sizes[t], offs[t]);
            crate::fast::cell::backward(crate::fast::cell::Backward {
                d_gates: step_rows(&d_gates, off, n, four_h),
                dh_state: floats(&dh_state, 0, n * h),
                d_out: step_rows(&d_out, off, n, h),
                dc_state: floats(&dc_state, 0, n * h),
                gates: step_rows(&s.gates, off, n, four_h),
                c_prev: step_rows(&c_prev, off, n, h),
                tanh_c: step_rows(&s.tanh_c, off, n, h),
                h: h as usize,
            });
            let _ = d_gates
                .narrow(0, off, n)
                .mm_out(&dh_state.narrow(0, 0, n), w_hh);
        }
        return (d_gates, (dh_state, dc_state));
    }
    let chunk = |k: i64| s.gates.narrow(1, k * h, h);
    let (i, f, g, o) = (chunk(0), chunk(1), chunk(2), chunk(3));
    let one_minus = |x: &Tensor| x.ones_like() - x;
    // What multiplies dc (blocks i, f, g) or dh (block o) in each pre-activation gradient:
    // ∂i = dc·g·i(1−i), ∂f = dc·c₋₁·f(1−f), ∂g = dc·i(1−g²), ∂o = dh·tanh c·o(1−o).
    let factors = Tensor::cat(
        &[
            &g * &i * one_minus(&i),
            c_prev * &f * one_minus(&f),
            &i * one_minus(&(&g * &g)),
            &s.tanh_c * &o * one_minus(&o),
        ],
        1,
    );
    // ∂c gains dh·o(1 − tanh²c).
    let dc_from_dh = &o * one_minus(&(&s.tanh_c * &s.tanh_c));
    let d_gates = Tensor::empty([total, four_h], (s.gates.kind(), s.gates.device()));
    let dh_state = d_h_final.copy();
    let dc_state = d_c_final.copy();
    let offs = offsets(sizes);
    // Backwards through the direction's own order.
    for t in steps(sizes.len(), !reverse) {
        let (n, off) = (sizes[t], offs[t]);
        let dh = dh_state.narrow(0, 0, n) + d_out.narrow(0, off, n);
        let dc = dc_state
            .narrow(0, 0, n)
            .addcmul(&dh, &dc_from_dh.narrow(0, off, n));
        let dg = d_gates.narrow(0, off, n);
        let fac = factors.narrow(0, off, n);
        let _ = fac
            .narrow(1, 0, 3 * h)
            .view([n, 3, h])
            .mul_out(&dg.narrow(1, 0, 3 * h).view([n, 3, h]), &dc.unsqueeze(1));
        let _ = fac
            .narrow(1, 3 * h, h)
            .mul_out(&dg.narrow(1, 3 * h, h), &dh);
        let _ = dg.mm_out(&dh_state.narrow(0, 0, n), w_hh);
        let _ = dc.mul_out(&dc_state.narrow(0, 0, n), &f.narrow(0, off, n));
    }
    (d_gates, (dh_state, dc_state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn previous_rows_follow_each_direction() {
        // Lengths 3, 2, 1 → batch sizes 3, 2, 1; packed rows t0: 0 1 2, t1: 3 4, t2: 5.
        let sizes = [3, 2, 1];
        assert_eq!(previous_rows(&sizes, false, false), vec![6, 6, 6, 0, 1, 3]);
        assert_eq!(previous_rows(&sizes, true, false), vec![3, 4, 6, 5, 6, 6]);
        assert_eq!(
            Vec::<i64>::try_from(last_rows(&sizes)).unwrap(),
            vec![5, 4, 2]
        );
    }

    /// Random packed input and weights of `kind`, both requiring grad.
    fn setup(sizes: &[i64], input: i64, hidden: i64, kind: Kind) -> (Tensor, Vec<Tensor>) {
        let total: i64 = sizes.iter().sum();
        let opts = (kind, Device::Cpu);
        let x = Tensor::randn([total, input], opts).set_requires_grad(true);
        let params = [false, true]
            .iter()
            .flat_map(|_| {
                [
                    Tensor::randn([4 * hidden, input], opts) * 0.3,
                    Tensor::randn([4 * hidden, hidden], opts) * 0.3,
                    Tensor::randn([4 * hidden], opts) * 0.3,
                    Tensor::randn([4 * hidden], opts) * 0.3,
                ]
            })
            .map(|p| p.set_requires_grad(true))
            .collect();
        (x, params)
    }

    /// Against libtorch's packed LSTM under autograd: float32 takes `cell`'s loops (outputs
    /// equal to 1e-6: their sigmoid and tanh are not libtorch's), float64 the tensor ops
    /// (outputs equal bit for bit: the same ops in the same order); the two-part backward
    /// gives the same gradients either way. Float32 at hidden 16 (the eight-lane loop, where the
    /// CPU has AVX2), 12 and 4 (the portable one).
    #[test]
    fn matches_libtorch_packed_lstm_forward_and_backward() {
        tch::manual_seed(3);
        let sizes = [5i64, 5, 4, 2, 2, 1];
        let cases = [
            (Kind::Float, 16),
            (Kind::Float, 12),
            (Kind::Float, 4),
            (Kind::Double, 4),
        ];
        for (kind, hidden) in cases {
            let (x, params) = setup(&sizes, 6, hidden, kind);
            let opts = (kind, Device::Cpu);
            let total: i64 = sizes.iter().sum();
            let (w_out, w_h, w_c) = (
                Tensor::randn([total, 2 * hidden], opts),
                Tensor::randn([2, 5, hidden], opts),
                Tensor::randn([2, 5, hidden], opts),
            );
            let loss = |out: &Tensor, h: &Tensor, c: &Tensor| {
                (out * &w_out).sum(kind) + (h * &w_h).sum(kind) + (c * &w_c).sum(kind)
            };
            let grads = |xs: &[&Tensor]| -> Vec<Tensor> {
                xs.iter()
                    .map(|t| {
                        let g = t.grad().copy();
                        let _ = t.grad().zero_();
                        g
                    })
                    .collect()
            };
            let zeros = Tensor::zeros([2, 5, hidden], opts);
            let (out, h, c) = Tensor::lstm_data(
                &x,
                &Tensor::from_slice(&sizes),
                &[&zeros, &zeros],
                &params.iter().collect::<Vec<_>>(),
                true,
                1,
                0.0,
                true,
                true,
            );
            loss(&out, &h, &c).backward();
            let all: Vec<&Tensor> = std::iter::once(&x).chain(&params).collect();
            let expected = grads(&all);
            let ours = packed_bilstm(&x, &sizes, &params);
            let close = if kind == Kind::Float { 1e-6 } else { 0.0 };
            for (name, a, b) in [
                ("output", &ours.output, &out),
                ("h", &ours.h, &h),
                ("c", &ours.c, &c),
            ] {
                let diff = (a - b).abs().max().double_value(&[]);
                assert!(
                    diff <= close,
                    "{kind:?}, hidden {hidden}: {name} differs by {diff}"
                );
            }
            loss(&ours.output, &ours.h, &ours.c).backward();
            ours.tape.expect("input requires grad").backward();
            for (k, (a, b)) in grads(&all).iter().zip(&expected).enumerate() {
                let scale = b.abs().max().double_value(&[]).max(1.0);
                let diff = (a - b).abs().max().double_value(&[]);
                assert!(
                    diff < 1e-5 * scale,
                    "{kind:?}, hidden {hidden}, tensor {k}: gradients differ by {diff}"
                );
                assert!(
                    b.abs().max().double_value(&[]) > 0.0,
                    "tensor {k} got a gradient"
                );
            }
        }
    }

    /// One direction from a given initial state: outputs, and gradients of the input, the
    /// weights and the initial (h, c), against libtorch's packed LSTM under autograd.
    #[test]
    fn one_direction_from_an_initial_state_matches_libtorch() {
        tch::manual_seed(4);
        let sizes = [4i64, 3, 3, 1];
        let (batch, hidden, total) = (4, 16, 11);
        let opts = (Kind::Float, Device::Cpu);
        let (x, params) = setup(&sizes, 5, hidden, Kind::Float);
        let params = &params[..4];
        let h0 = Tensor::randn([batch, hidden], opts).set_requires_grad(true);
        let c0 = Tensor::randn([batch, hidden], opts).set_requires_grad(true);
        let w_out = Tensor::randn([total, hidden], opts);
        let all: Vec<&Tensor> = [&x, &h0, &c0].into_iter().chain(params).collect();
        let grads = || -> Vec<Tensor> {
            all.iter()
                .map(|t| {
                    let g = t.grad().copy();
                    let _ = t.grad().zero_();
                    g
                })
                .collect()
        };
        let (out, _, _) = Tensor::lstm_data(
            &x,
            &Tensor::from_slice(&sizes),
            &[&h0.unsqueeze(0), &c0.unsqueeze(0)],
            &params.iter().collect::<Vec<_>>(),
            true,
            1,
            0.0,
            true,
            false,
        );
        (&out * &w_out).sum(Kind::Float).backward();
        let expected = grads();
        let ours = packed_lstm(&x, &sizes, params, (&h0, &c0));
        let diff = (&ours.output - &out).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "outputs differ by {diff}");
        (&ours.output * &w_out).sum(Kind::Float).backward();
        ours.tape.expect("grad on").backward();
        for (k, (a, b)) in grads().iter().zip(&expected).enumerate() {
            let scale = b.abs().max().double_value(&[]).max(1.0);
            let diff = (a - b).abs().max().double_value(&[]);
            assert!(
                diff < 1e-5 * scale,
                "tensor {k}: gradients differ by {diff}"
            );
            assert!(
                b.abs().max().double_value(&[]) > 0.0,
                "tensor {k} got a gradient"
            );
        }
    }

    #[test]
    fn no_tape_without_grad() {
        let (x, params) = setup(&[2, 1], 3, 2, Kind::Float);
        let out = tch::no_grad(|| {
            let params: Vec<Tensor> = params.iter().map(Tensor::detach).collect();
            packed_bilstm(&x.detach(), &[2, 1], &params)
        });
        assert!(out.tape.is_none());
        assert!(!out.output.requires_grad());
    }
}
