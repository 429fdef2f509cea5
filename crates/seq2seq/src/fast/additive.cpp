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
#include <ATen/ops/from_blob.h>
#include <ATen/ops/mv.h>
#include <ATen/ops/tanh.h>
#include <ATen/ops/zeros.h>

#include <immintrin.h>

#include "kernel_shim.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Pointers and sizes of one call (all float32 rows of length h, contiguous).
struct Pairs {
  const float *q, *k, *v;
  const int64_t *qi, *ki;
  int64_t pairs, h;
};

using kernel_shim::has_avx2;

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

// Bahdanau attention's context for the query rows of a batch, as one autograd node:
//   e[r, s] = v . tanh(q[r] + keys[b(r), s])  for s < len[b(r)],
//   a[r, .] = softmax(e[r, .]),  context[r] = sum_s a[r, s] values[b(r), s].
// As ops this was scores, a (B, T, S) tensor filled with -inf, masked_scatter, softmax and
// bmm, and their backward nodes: per-op cost at these sizes (a few thousand pairs). The
// pairs of a row are its batch row's real sources, so they are walked in place.
// The pairs (query row, key row) of every query row's real sources, and where each row's
// pairs begin (rows + 1 entries): `batch` (rows) gives a query row's batch row, `len` that
// batch row's real sources, `s` the keys per batch row.
void row_pairs(const int64_t *batch, const int64_t *len, int64_t rows, int64_t s,
               std::vector<int64_t> &qi, std::vector<int64_t> &ki, int64_t *start) {
  start[0] = 0;
  for (int64_t i = 0; i < rows; ++i) {
    int64_t b = batch[i], n = len[b];
    for (int64_t j = 0; j < n; ++j) {
      qi.push_back(i);
      ki.push_back(b * s + j);
    }
    start[i + 1] = start[i] + n;
  }
}

// out[j] += w * x[j] over h floats.
inline void axpy(float w, const float *x, float *out, int64_t h) {
  for (int64_t j = 0; j < h; ++j) out[j] += w * x[j];
}

inline float dot(const float *x, const float *y, int64_t h) {
  float acc = 0.0f;
  for (int64_t j = 0; j < h; ++j) acc += x[j] * y[j];
  return acc;
}

struct AttentionContext : public torch::autograd::Function<AttentionContext> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &q_in,
                            const at::Tensor &keys_in, const at::Tensor &values_in,
                            const at::Tensor &v_in, const at::Tensor &batch_in,
                            const at::Tensor &len_in) {
    at::Tensor q = q_in.contiguous(), keys = keys_in.contiguous();
    at::Tensor values = values_in.contiguous(), v = v_in.contiguous();
    at::Tensor batch = batch_in.contiguous(), len = len_in.contiguous();
    TORCH_CHECK(q.dim() == 2 && keys.dim() == 3 && values.sizes() == keys.sizes() &&
                    keys.size(2) == q.size(1) && v.numel() == q.size(1),
                "attention context: q (R, H), keys and values (B, S, H), v H elements");
    for (const at::Tensor *t : {&q, &keys, &values, &v})
      TORCH_CHECK(t->scalar_type() == at::kFloat && t->is_cpu(),
                  "attention context: float32 CPU tensors");
    TORCH_CHECK(batch.scalar_type() == at::kLong && len.scalar_type() == at::kLong &&
                    batch.numel() == q.size(0) && len.numel() == keys.size(0),
                "attention context: int64 batch rows (R) and source lengths (B)");
    int64_t rows = q.size(0), b_rows = keys.size(0), s = keys.size(1), h = q.size(1);
    const int64_t *pb = batch.data_ptr<int64_t>(), *pl = len.data_ptr<int64_t>();
    for (int64_t i = 0; i < rows; ++i)
      TORCH_CHECK(pb[i] >= 0 && pb[i] < b_rows, "attention context: batch row out of range");
    for (int64_t b = 0; b < b_rows; ++b)
      TORCH_CHECK(pl[b] >= 1 && pl[b] <= s, "attention context: a source length outside 1..S");
    at::Tensor start = at::empty({rows + 1}, batch.options());
    const int64_t *st = start.data_ptr<int64_t>();
    std::vector<int64_t> qv, kv;
    row_pairs(pb, pl, rows, s, qv, kv, start.data_ptr<int64_t>());
    at::Tensor qi = at::from_blob(qv.data(), {(int64_t)qv.size()}, batch.options()).clone();
    at::Tensor ki = at::from_blob(kv.data(), {(int64_t)kv.size()}, batch.options()).clone();
    Pairs a = pairs_of(q, keys.view({-1, h}), v, qi, ki);
    at::Tensor th = at::empty({a.pairs, h}, q.options());
    gather_add(a, th.data_ptr<float>());
    th.tanh_();
    // The scores, then in place their softmax over each row's pairs.
    at::Tensor alpha = at::mv(th, v.view({h}));
    float *pa = alpha.data_ptr<float>();
    for (int64_t i = 0; i < rows; ++i) {
      float m = -INFINITY, sum = 0.0f;
      for (int64_t p = st[i]; p < st[i + 1]; ++p) m = std::max(m, pa[p]);
      for (int64_t p = st[i]; p < st[i + 1]; ++p) sum += (pa[p] = std::exp(pa[p] - m));
      for (int64_t p = st[i]; p < st[i + 1]; ++p) pa[p] /= sum;
    }
    at::Tensor context = at::zeros({rows, h}, q.options());
    float *pc = context.data_ptr<float>();
    const float *pv = values.data_ptr<float>();
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t p = st[i]; p < st[i + 1]; ++p) axpy(pa[p], pv + kv[p] * h, pc + i * h, h);
    ctx->save_for_backward({th, alpha, values, v, qi, ki, start});
    ctx->saved_data["b_rows"] = b_rows;
    ctx->saved_data["v_shape"] = v_in.sizes().vec();
    return context;
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &th = saved[0], &alpha = saved[1], &values = saved[2], &v = saved[3];
    const at::Tensor &qi = saved[4], &ki = saved[5], &start = saved[6];
    at::Tensor dctx = grads[0].contiguous();
    int64_t rows = dctx.size(0), h = dctx.size(1), pairs = qi.numel();
    auto opts = th.options();
    const float *pa = alpha.data_ptr<float>(), *pv = values.data_ptr<float>();
    const float *pd = dctx.data_ptr<float>();
    const int64_t *st = start.data_ptr<int64_t>(), *pk = ki.data_ptr<int64_t>();
    at::Tensor dvalues;
    float *pdv = nullptr;
    if (ctx->needs_input_grad(2)) {
      dvalues = at::zeros(values.sizes(), opts);
      pdv = dvalues.data_ptr<float>();
    }
    // de = a * (da - sum a da), da[p] = dctx[r] . values[p]; dvalues[p] += a[p] dctx[r].
    at::Tensor de = at::empty({pairs}, opts);
    float *pe = de.data_ptr<float>();
    for (int64_t i = 0; i < rows; ++i) {
      const float *d = pd + i * h;
      float weighted = 0.0f;
      for (int64_t p = st[i]; p < st[i + 1]; ++p) {
        pe[p] = dot(d, pv + pk[p] * h, h);
        weighted += pa[p] * pe[p];
        if (pdv) axpy(pa[p], d, pdv + pk[p] * h, h);
      }
      for (int64_t p = st[i]; p < st[i + 1]; ++p) pe[p] = pa[p] * (pe[p] - weighted);
    }
    at::Tensor dq, dk, dv;
    if (ctx->needs_input_grad(0)) dq = at::zeros({rows, h}, opts);
    if (ctx->needs_input_grad(1)) dk = at::zeros(values.sizes(), opts);
    if (ctx->needs_input_grad(3)) dv = at::zeros({h}, opts);
    Pairs a{nullptr, nullptr, v.data_ptr<float>(), qi.data_ptr<int64_t>(), pk, pairs, h};
    float *oq = dq.defined() ? dq.data_ptr<float>() : nullptr;
    float *ok = dk.defined() ? dk.data_ptr<float>() : nullptr;
    float *ov = dv.defined() ? dv.data_ptr<float>() : nullptr;
    if (has_avx2() && h % 8 == 0)
      backward_avx2(a, th.data_ptr<float>(), pe, oq, ok, ov);
    else
      backward_scalar(a, th.data_ptr<float>(), pe, oq, ok, ov);
    if (dv.defined()) dv = dv.view(ctx->saved_data["v_shape"].toIntVector());
    return {dq, dk, dvalues, dv, at::Tensor(), at::Tensor()};
  }
};

} // namespace

extern "C" {

// The scores as a new tensor in *out (owned by the caller: tch's `Tensor::from_ptr`);
// returns 0, or -1 with a message in err. The arguments are tch's tensors (at::Tensor*).
int seq2seq_additive_scores(const at::Tensor *q, const at::Tensor *k, const at::Tensor *v,
                            const at::Tensor *qi, const at::Tensor *ki, at::Tensor **out,
                            char *err, size_t cap) {
  return kernel_shim::guarded([&] { return AdditiveScores::apply(*q, *k, *v, *qi, *ki); }, out, err, cap);
}

// The attention context of query rows (see AttentionContext); as seq2seq_additive_scores.
int seq2seq_attention_context(const at::Tensor *q, const at::Tensor *keys,
                              const at::Tensor *values, const at::Tensor *v,
                              const at::Tensor *batch, const at::Tensor *len, at::Tensor **out,
                              char *err, size_t cap) {
  return kernel_shim::guarded([&] { return AttentionContext::apply(*q, *keys, *values, *v, *batch, *len); },
                 out, err, cap);
}

} // extern "C"
