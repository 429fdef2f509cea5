// Bahdanau attention's additive scores as one autograd node with a fused CPU kernel:
//   e[p] = sum_h v[h] * tanh(q[qi[p], h] + k[ki[p], h])   for every (query, source) pair p.
// As libtorch ops (two gathers, an add, tanh, a matrix-vector product, and the backward
// pass's scatters) this was the largest part of a Q3 training step, mostly per-op and
// per-intermediate cost: each of those makes and walks a (pairs, H) tensor. Here the forward
// pass walks the pairs once (keeping the tanh values for the backward pass) and the backward
// pass once more.
#include <torch/csrc/autograd/custom_function.h>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mv.h>
#include <ATen/ops/tanh.h>
#include <ATen/ops/zeros.h>

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <exception>

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Pointers and sizes of one call (all float32 rows of length h, contiguous).
struct Pairs {
  const float *q, *k, *v;
  const int64_t *qi, *ki;
  int64_t pairs, h;
};

bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

// The pre-activations q[qi] + k[ki] (pairs, h), into th.
void gather_add(const Pairs &a, float *th) {
  for (int64_t p = 0; p < a.pairs; ++p) {
    const float *q = a.q + a.qi[p] * a.h, *k = a.k + a.ki[p] * a.h;
    float *t = th + p * a.h;
    for (int64_t j = 0; j < a.h; ++j) t[j] = q[j] + k[j];
  }
}

// From de (pairs): dq, dk (scattered by qi, ki; either may be null) and dv (null: skipped).
// g = de * v * (1 - tanh^2) is the gradient of the pre-activation, shared by q and k.
__attribute__((target("avx2,fma"))) void backward_avx2(const Pairs &a, const float *th,
                                                       const float *de, float *dq, float *dk,
                                                       float *dv) {
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t p = 0; p < a.pairs; ++p) {
    const float *t = th + p * a.h;
    const __m256 d = _mm256_set1_ps(de[p]);
    float *q = dq ? dq + a.qi[p] * a.h : nullptr, *k = dk ? dk + a.ki[p] * a.h : nullptr;
    for (int64_t j = 0; j < a.h; j += 8) {
      __m256 x = _mm256_loadu_ps(t + j);
      if (dv) _mm256_storeu_ps(dv + j, _mm256_fmadd_ps(d, x, _mm256_loadu_ps(dv + j)));
      __m256 g = _mm256_mul_ps(_mm256_mul_ps(d, _mm256_loadu_ps(a.v + j)),
                               _mm256_fnmadd_ps(x, x, one));
      if (q) _mm256_storeu_ps(q + j, _mm256_add_ps(_mm256_loadu_ps(q + j), g));
      if (k) _mm256_storeu_ps(k + j, _mm256_add_ps(_mm256_loadu_ps(k + j), g));
    }
  }
}

void backward_scalar(const Pairs &a, const float *th, const float *de, float *dq, float *dk,
                     float *dv) {
  for (int64_t p = 0; p < a.pairs; ++p) {
    const float *t = th + p * a.h;
    float *q = dq ? dq + a.qi[p] * a.h : nullptr, *k = dk ? dk + a.ki[p] * a.h : nullptr;
    for (int64_t j = 0; j < a.h; ++j) {
      if (dv) dv[j] += de[p] * t[j];
      float g = de[p] * a.v[j] * (1.0f - t[j] * t[j]);
      if (q) q[j] += g;
      if (k) k[j] += g;
    }
  }
}

Pairs pairs_of(const at::Tensor &q, const at::Tensor &k, const at::Tensor &v,
               const at::Tensor &qi, const at::Tensor &ki) {
  return Pairs{q.data_ptr<float>(), k.data_ptr<float>(),   v.data_ptr<float>(),
               qi.data_ptr<int64_t>(), ki.data_ptr<int64_t>(), qi.numel(), q.size(1)};
}

struct AdditiveScores : public torch::autograd::Function<AdditiveScores> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &q_in, const at::Tensor &k_in,
                            const at::Tensor &v_in, const at::Tensor &qi_in,
                            const at::Tensor &ki_in) {
    at::Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    at::Tensor qi = qi_in.contiguous(), ki = ki_in.contiguous();
    TORCH_CHECK(q.dim() == 2 && k.dim() == 2 && q.size(1) == k.size(1) && v.numel() == q.size(1),
                "additive scores: q (n, H), k (m, H), v H elements");
    TORCH_CHECK(q.scalar_type() == at::kFloat && k.scalar_type() == at::kFloat &&
                    v.scalar_type() == at::kFloat && q.is_cpu() && k.is_cpu() && v.is_cpu(),
                "additive scores: float32 CPU tensors");
    TORCH_CHECK(qi.scalar_type() == at::kLong && ki.scalar_type() == at::kLong &&
                    qi.numel() == ki.numel(),
                "additive scores: int64 index lists of one length");
    Pairs a = pairs_of(q, k, v, qi, ki);
    for (int64_t p = 0; p < a.pairs; ++p)
      TORCH_CHECK(a.qi[p] >= 0 && a.qi[p] < q.size(0) && a.ki[p] >= 0 && a.ki[p] < k.size(0),
                  "additive scores: index out of range at pair ", p);
    at::Tensor th = at::empty({a.pairs, a.h}, q.options());
    gather_add(a, th.data_ptr<float>());
    // libtorch's own tanh (MKL's vector kernel where it has one: the fastest at hand) and
    // matrix-vector product: the ops' values, in three passes instead of five.
    th.tanh_();
    at::Tensor e = at::mv(th, v.view({a.h}));
    ctx->save_for_backward({th, v, qi, ki});
    ctx->saved_data["rows_q"] = q.size(0);
    ctx->saved_data["rows_k"] = k.size(0);
    ctx->saved_data["v_shape"] = v_in.sizes().vec();
    return e;
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &th = saved[0], &v = saved[1], &qi = saved[2], &ki = saved[3];
    at::Tensor de = grads[0].contiguous();
    int64_t h = th.size(1);
    auto opts = th.options();
    at::Tensor dq, dk, dv;
    if (ctx->needs_input_grad(0))
      dq = at::zeros({ctx->saved_data["rows_q"].toInt(), h}, opts);
    if (ctx->needs_input_grad(1))
      dk = at::zeros({ctx->saved_data["rows_k"].toInt(), h}, opts);
    if (ctx->needs_input_grad(2)) dv = at::zeros({h}, opts);
    Pairs a{nullptr, nullptr, v.data_ptr<float>(), qi.data_ptr<int64_t>(), ki.data_ptr<int64_t>(),
            qi.numel(), h};
    float *pq = dq.defined() ? dq.data_ptr<float>() : nullptr;
    float *pk = dk.defined() ? dk.data_ptr<float>() : nullptr;
    float *pv = dv.defined() ? dv.data_ptr<float>() : nullptr;
    if (has_avx2() && h % 8 == 0)
      backward_avx2(a, th.data_ptr<float>(), de.data_ptr<float>(), pq, pk, pv);
    else
      backward_scalar(a, th.data_ptr<float>(), de.data_ptr<float>(), pq, pk, pv);
    if (dv.defined()) dv = dv.view(ctx->saved_data["v_shape"].toIntVector());
    return {dq, dk, dv, at::Tensor(), at::Tensor()};
  }
};

void set_error(char *err, size_t cap, const char *what) {
  if (err != nullptr && cap > 0) {
    std::strncpy(err, what, cap - 1);
    err[cap - 1] = '\0';
  }
}

} // namespace

extern "C" {

// The scores as a new tensor in *out (owned by the caller: tch's `Tensor::from_ptr`);
// returns 0, or -1 with a message in err. The arguments are tch's tensors (at::Tensor*).
int seq2seq_additive_scores(const at::Tensor *q, const at::Tensor *k, const at::Tensor *v,
                            const at::Tensor *qi, const at::Tensor *ki, at::Tensor **out,
                            char *err, size_t cap) {
  try {
    *out = new at::Tensor(AdditiveScores::apply(*q, *k, *v, *qi, *ki));
    return 0;
  } catch (const std::exception &e) {
    set_error(err, cap, e.what());
    return -1;
  } catch (...) {
    set_error(err, cap, "unknown C++ exception");
    return -1;
  }
}

} // extern "C"
