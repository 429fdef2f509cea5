// A linear layer's forward pass for a few rows (Q2's batches of 8), y = x·Wᵀ + b, computed as
// (W·xᵀ)ᵀ: MKL's kernels for a product with 8 rows are much slower with the weight
// transposed (x·Wᵀ, what libtorch's linear asks for) than as the left operand — 1.0 against
// 0.58 ms for model 2.1's fc1 (8 × 4608 by 4608 × 1024) on an Intel Xeon. Backward,
// dx = g·W is the fast way round already, and for fc1 faster still as two products over
// halves of W's rows (0.46 against 0.61 ms).
//
// With SGD in backward (`sgd_linear`), the node is also the optimiser's step for its weight:
// backward updates W in place, W ← W·(1 − lr·wd) − lr·gᵀx, after taking dx from the old W,
// and hands autograd no weight gradient. For model 2.1's fc1 (4.7M of its 5.3M weights) that
// is libtorch's SGD without writing and re-reading a 19 MB gradient every batch, about 10% of
// a step; the optimiser (libtorch's SGD) skips the weight, whose gradient stays undefined.
#include <torch/csrc/autograd/custom_function.h>

#include <ATen/core/Tensor.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>

#include "kernel_shim.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct FewRowsLinear : public torch::autograd::Function<FewRowsLinear> {
  // x (B, F), w (O, F), b (O) or empty. lr < 0: an ordinary node; else backward takes the
  // SGD step (lr, wd) on w.
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x, const at::Tensor &w,
                            const at::Tensor &b, double lr, double wd) {
    TORCH_CHECK(x.dim() == 2 && w.dim() == 2 && x.size(1) == w.size(1),
                "few-rows linear: x (B, F) and w (O, F)");
    TORCH_CHECK(b.numel() == 0 || (b.dim() == 1 && b.size(0) == w.size(0)),
                "few-rows linear: bias (O)");
    at::Tensor yt = b.numel() ? at::addmm(b.unsqueeze(1), w, x.t()) : at::mm(w, x.t());
    ctx->save_for_backward({x, w});
    ctx->saved_data["lr"] = lr;
    ctx->saved_data["wd"] = wd;
    // (O, B) → (B, O), contiguous for what follows (a few thousand floats).
    return yt.t().contiguous();
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1];
    at::Tensor g = grads[0], dx, dw, db;
    if (ctx->needs_input_grad(0)) {
      int64_t o = w.size(0), half = o / 2;
      dx = o >= 1024 ? at::addmm(at::mm(g.narrow(1, 0, half), w.narrow(0, 0, half)),
                                 g.narrow(1, half, o - half), w.narrow(0, half, o - half))
                     : at::mm(g, w);
    }
    double lr = ctx->saved_data["lr"].toDouble(), wd = ctx->saved_data["wd"].toDouble();
    if (lr >= 0) {
      // The step libtorch's SGD takes (d = g + wd·W, W −= lr·d), as one product into W.
      at::NoGradGuard no_grad;
      at::Tensor weight = w;
      if (wd != 0) weight.mul_(1.0 - lr * wd);
      // W (O × F) += (−lr·g)ᵀ (O × B) · x (B × F)
      weight.addmm_(g.t().mul(-lr), x);
    } else if (ctx->needs_input_grad(1)) {
      dw = at::mm(g.t(), x);
    }
    // (The empty stand-in for no bias needs no gradient.)
    if (ctx->needs_input_grad(2)) db = g.sum(0);
    return {dx, dw, db, at::Tensor(), at::Tensor()};
  }
};

} // namespace

extern "C" {

// y = x·Wᵀ + b as a new tensor in *out (owned by the caller); b may be undefined (no bias).
// lr ≥ 0: backward takes the SGD step (lr, weight decay wd) on w instead of returning its
// gradient. Returns 0, or -1 with a message in err.
int vision_few_rows_linear(const at::Tensor *x, const at::Tensor *w, const at::Tensor *b,
                           double lr, double wd, at::Tensor **out, char *err, size_t cap) {
  return kernel_shim::guarded(
      [&] {
        // Autograd's custom functions take no undefined inputs: an empty bias stands for none.
        at::Tensor bias = b->defined() ? *b : at::empty({0}, w->options());
        return FewRowsLinear::apply(*x, *w, bias, lr, wd);
      },
      out, err, cap);
}

} // extern "C"
