// The tail of Q2's convolutional block — the convolution's bias, batch norm (optional), 2×2
// max-pool, ReLU and a dropout mask (optional) — as one autograd node over channels-last
// memory.
// As libtorch ops these were four kernels forward and four backward, each walking the
// convolution's full-size output or a quarter of it, and the batch norm's backward alone was
// the slowest op of a 2.2 step (0.73 ms for 32×48² at batch 8). Here the forward pass reads
// the input twice (its statistics, then the pooled output) and the backward pass once more
// (with batch statistics; not at all without), writing the input's gradient once. It keeps
// where each maximum was, or that no gradient flows there (the ReLU or the mask zeroed it),
// and with batch norm the maximum's raw value: a quarter of the input each. The bias comes
// in here rather than in the convolution because oneDNN's bias gradient cost a 2.2 step
// 0.26 ms of its 5.9 (most of it the first layer's), where here it is a per-channel constant
// forward and, backward, a sum the node takes anyway.
#include <torch/csrc/autograd/custom_function.h>

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty.h>

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernel_shim.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The input's sizes in memory order (n, h, w, c); the output is (n, h/2, w/2, c).
struct Dims {
  int64_t n, h, w, c;
  int64_t oh() const { return h / 2; }
  int64_t ow() const { return w / 2; }
  // Output rows, each ow·c floats; output row r pools input rows 2·(r mod oh) and the next.
  int64_t rows() const { return n * oh(); }
  int64_t row_floats() const { return ow() * c; }
};

// Where the first input row of output row r begins.
int64_t input_offset(const Dims &d, int64_t r) {
  int64_t n = r / d.oh(), oh = r % d.oh();
  return (n * d.h + 2 * oh) * d.w * d.c;
}

// The input offsets of output pixel j of output row r's window, row-major as PyTorch scans
// it.
inline void window(const Dims &d, int64_t r, int64_t j, int64_t at[4]) {
  at[0] = input_offset(d, r) + 2 * j * d.c;
  at[1] = at[0] + d.c;
  at[2] = at[0] + d.w * d.c;
  at[3] = at[2] + d.c;
}

// Rows per parallel task: about 16k floats of output each, so that small layers stay on
// one thread.
int64_t grain(const Dims &d) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, d.row_floats())); }

// Each kernel has a portable scalar loop and an AVX2+FMA one over 8 channels at a time
// (GCC does not vectorise the scalar ones: the max-pool's selects and the strided sums),
// chosen at run time; the window position of a maximum is kept as a float so that the
// vector paths compare it in place.
bool vector_path(const Dims &d) { return kernel_shim::has_avx2() && d.c % 8 == 0; }

// Per-image channel sums of x and x² (float within an input row, double across rows).
void moments_scalar(const float *x, const Dims &d, int64_t image, double *sum, double *sq,
                    float *rs, float *rq) {
  const int64_t c = d.c;
  for (int64_t i = 0; i < d.h; ++i) {
    const float *row = x + (image * d.h + i) * d.w * c;
    std::fill(rs, rs + c, 0.0f);
    std::fill(rq, rq + c, 0.0f);
    for (int64_t j = 0; j < d.w; ++j)
      for (int64_t k = 0; k < c; ++k) {
        rs[k] += row[j * c + k];
        rq[k] += row[j * c + k] * row[j * c + k];
      }
    for (int64_t k = 0; k < c; ++k) {
      sum[k] += rs[k];
      sq[k] += rq[k];
    }
  }
}

// acc[k..k+8] += v's 8 floats, in double.
__attribute__((target("avx2,fma"))) inline void add_to_doubles(double *acc, __m256 v) {
  __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
  __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
  _mm256_storeu_pd(acc, _mm256_add_pd(_mm256_loadu_pd(acc), lo));
  _mm256_storeu_pd(acc + 4, _mm256_add_pd(_mm256_loadu_pd(acc + 4), hi));
}

// The vector sums below run over a row's pixels for up to 32 channels at once (G vectors of
// 8): one vector at a time makes each row a chain of dependent adds; G independent chains
// hide the add's latency (about 5% off the statistics pass) and still fit in the 16
// registers. Each channel's sum keeps its order, so the bits are the same.
template <class Kernel, class... Args>
__attribute__((target("avx2,fma"))) inline void in_channel_groups(int64_t c, Args... args) {
  int64_t k = 0;
  for (; k + 32 <= c; k += 32) Kernel::template run<4>(k, args...);
  switch ((c - k) / 8) {
  case 3: Kernel::template run<3>(k, args...); break;
  case 2: Kernel::template run<2>(k, args...); break;
  case 1: Kernel::template run<1>(k, args...); break;
  }
}

// One input row's sums of x and x² for channels k.., added to sum and sq.
struct RowMoments {
  template <int G>
  __attribute__((target("avx2,fma"))) static void run(int64_t k, const float *row, int64_t w,
                                                      int64_t c, double *sum, double *sq) {
    __m256 s[G], q[G];
    for (int i = 0; i < G; ++i) s[i] = q[i] = _mm256_setzero_ps();
    for (int64_t j = 0; j < w; ++j)
      for (int i = 0; i < G; ++i) {
        __m256 v = _mm256_loadu_ps(row + j * c + k + 8 * i);
        s[i] = _mm256_add_ps(s[i], v);
        q[i] = _mm256_fmadd_ps(v, v, q[i]);
      }
    for (int i = 0; i < G; ++i) {
      add_to_doubles(sum + k + 8 * i, s[i]);
      add_to_doubles(sq + k + 8 * i, q[i]);
    }
  }
};

__attribute__((target("avx2,fma"))) void moments_avx2(const float *x, const Dims &d,
                                                      int64_t image, double *sum, double *sq) {
  for (int64_t i = 0; i < d.h; ++i)
    in_channel_groups<RowMoments>(d.c, x + (image * d.h + i) * d.w * d.c, d.w, d.c, sum, sq);
}

void moments(const float *x, const Dims &d, int64_t image, double *sum, double *sq, float *rs,
             float *rq) {
  if (vector_path(d))
    moments_avx2(x, d, image, sum, sq);
  else
    moments_scalar(x, d, image, sum, sq, rs, rq);
}

// Pointers of one call's forward pass. out = relu(max over the window of x·scale + shift),
// times noise where there is one. code: the window position of the maximum (0..3,
// row-major as PyTorch scans it), or -1 where no gradient flows back (the ReLU or the mask
// zeroed the output); xm: the maximum's raw input value. Either is null when not kept.
struct ForwardArgs {
  const float *x, *scale, *shift, *noise;
  float *out, *code, *xm;
};

void forward_scalar(const ForwardArgs &f, const Dims &d, int64_t r0, int64_t r1) {
  const int64_t c = d.c, ow = d.ow();
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t j = 0; j < ow; ++j) {
      int64_t at[4];
      window(d, r, j, at);
      const float *p[4] = {f.x + at[0], f.x + at[1], f.x + at[2], f.x + at[3]};
      const int64_t o = (r * ow + j) * c;
      for (int64_t k = 0; k < c; ++k) {
        float best = p[0][k] * f.scale[k] + f.shift[k], raw = p[0][k], pos = 0.0f;
        for (int q = 1; q < 4; ++q) {
          float v = p[q][k] * f.scale[k] + f.shift[k];
          // PyTorch's test: a larger value or a NaN takes the place.
          if (v > best || v != v) best = v, raw = p[q][k], pos = float(q);
        }
        // The ReLU keeps a NaN, as libtorch's does, and passes its gradient.
        bool dead = best <= 0.0f || (f.noise && f.noise[o + k] == 0.0f);
        float y = best <= 0.0f ? 0.0f : best;
        f.out[o + k] = f.noise ? y * f.noise[o + k] : y;
        if (f.code) f.code[o + k] = dead ? -1.0f : pos;
        if (f.xm) f.xm[o + k] = raw;
      }
    }
  }
}

__attribute__((target("avx2,fma"))) void forward_avx2(const ForwardArgs &f, const Dims &d,
                                                      int64_t r0, int64_t r1) {
  const int64_t c = d.c, ow = d.ow();
  const __m256 zero = _mm256_setzero_ps(), none = _mm256_set1_ps(-1.0f);
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t j = 0; j < ow; ++j) {
      int64_t at[4];
      window(d, r, j, at);
      const float *p[4] = {f.x + at[0], f.x + at[1], f.x + at[2], f.x + at[3]};
      const int64_t o = (r * ow + j) * c;
      for (int64_t k = 0; k < c; k += 8) {
        const __m256 sc = _mm256_loadu_ps(f.scale + k), sh = _mm256_loadu_ps(f.shift + k);
        __m256 raw = _mm256_loadu_ps(p[0] + k);
        __m256 best = _mm256_fmadd_ps(raw, sc, sh), pos = zero;
        for (int q = 1; q < 4; ++q) {
          __m256 x = _mm256_loadu_ps(p[q] + k), v = _mm256_fmadd_ps(x, sc, sh);
          __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ),
                                     _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
          best = _mm256_blendv_ps(best, v, take);
          raw = _mm256_blendv_ps(raw, x, take);
          pos = _mm256_blendv_ps(pos, _mm256_set1_ps(float(q)), take);
        }
        // max(0, best) as the ReLU: a NaN stays (the second operand is returned).
        __m256 y = _mm256_max_ps(zero, best);
        __m256 dead = _mm256_cmp_ps(best, zero, _CMP_LE_OQ);
        if (f.noise) {
          __m256 z = _mm256_loadu_ps(f.noise + o + k);
          y = _mm256_mul_ps(y, z);
          dead = _mm256_or_ps(dead, _mm256_cmp_ps(z, zero, _CMP_EQ_OQ));
        }
        _mm256_storeu_ps(f.out + o + k, y);
        if (f.code) _mm256_storeu_ps(f.code + o + k, _mm256_blendv_ps(pos, none, dead));
        if (f.xm) _mm256_storeu_ps(f.xm + o + k, raw);
      }
    }
  }
}

void pool_forward(const ForwardArgs &f, const Dims &d, int64_t r0, int64_t r1) {
  if (vector_path(d))
    forward_avx2(f, d, r0, r1);
  else
    forward_scalar(f, d, r0, r1);
}

// The output's gradient as the backward pass reads it: g = dy (· noise) at the window
// position `code` names.
struct Grad {
  const float *dy, *noise, *code;
  float at(int64_t i) const {
    return code[i] < 0.0f ? 0.0f : noise ? dy[i] * noise[i] : dy[i];
  }
};

__attribute__((target("avx2,fma"))) inline __m256 grad_avx2(const Grad &g, int64_t i) {
  __m256 v = _mm256_loadu_ps(g.dy + i);
  return g.noise ? _mm256_mul_ps(v, _mm256_loadu_ps(g.noise + i)) : v;
}

// Per-image channel sums of g and g·(xm − mean) (float within a row, double across rows);
// without xm (no batch norm: only the bias's gradient) the second stays 0.
void grad_sums_scalar(const Grad &g, const float *xm, const float *mean, const Dims &d,
                      int64_t image, double *sg, double *sgx, float *rs, float *rq) {
  const int64_t c = d.c, ow = d.ow();
  for (int64_t r = image * d.oh(); r < (image + 1) * d.oh(); ++r) {
    std::fill(rs, rs + c, 0.0f);
    std::fill(rq, rq + c, 0.0f);
    for (int64_t j = 0; j < ow; ++j)
      for (int64_t k = 0; k < c; ++k) {
        const int64_t o = (r * ow + j) * c + k;
        rs[k] += g.at(o);
        if (xm) rq[k] += g.at(o) * (xm[o] - mean[k]);
      }
    for (int64_t k = 0; k < c; ++k) {
      sg[k] += rs[k];
      sgx[k] += rq[k];
    }
  }
}

// One output row's sums of g and g·(xm − mean) for channels k.. (see in_channel_groups).
template <bool WithX> struct RowGradSums {
  template <int G>
  __attribute__((target("avx2,fma"))) static void run(int64_t k, const Grad *g, const float *xm,
                                                      const float *mean, int64_t row,
                                                      int64_t ow, int64_t c, double *sg,
                                                      double *sgx) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 s[G], q[G], m[G];
    for (int i = 0; i < G; ++i) {
      s[i] = q[i] = zero;
      m[i] = _mm256_loadu_ps(mean + k + 8 * i);
    }
    for (int64_t j = 0; j < ow; ++j)
      for (int i = 0; i < G; ++i) {
        const int64_t o = (row * ow + j) * c + k + 8 * i;
        __m256 live = _mm256_cmp_ps(_mm256_loadu_ps(g->code + o), zero, _CMP_GE_OQ);
        __m256 gv = _mm256_and_ps(live, grad_avx2(*g, o));
        s[i] = _mm256_add_ps(s[i], gv);
        if (WithX)
          q[i] = _mm256_fmadd_ps(gv, _mm256_sub_ps(_mm256_loadu_ps(xm + o), m[i]), q[i]);
      }
    for (int i = 0; i < G; ++i) {
      add_to_doubles(sg + k + 8 * i, s[i]);
      add_to_doubles(sgx + k + 8 * i, q[i]);
    }
  }
};

template <bool WithX>
__attribute__((target("avx2,fma"))) void grad_sums_avx2(const Grad &g, const float *xm,
                                                        const float *mean, const Dims &d,
                                                        int64_t image, double *sg,
                                                        double *sgx) {
  for (int64_t r = image * d.oh(); r < (image + 1) * d.oh(); ++r)
    in_channel_groups<RowGradSums<WithX>>(d.c, &g, xm, mean, r, d.ow(), d.c, sg, sgx);
}

void grad_sums(const Grad &g, const float *xm, const float *mean, const Dims &d, int64_t image,
               double *sg, double *sgx, float *rs, float *rq) {
  if (!vector_path(d))
    grad_sums_scalar(g, xm, mean, d, image, sg, sgx, rs, rq);
  else if (xm)
    grad_sums_avx2<true>(g, xm, mean, d, image, sg, sgx);
  else
    grad_sums_avx2<false>(g, xm, mean, d, image, sg, sgx);
}

// Pointers of one call's input gradient: at each window position q, dx = a·g where q is the
// maximum's position (else 0), plus b + e·(x − mean) with batch statistics (full).
struct InputGradArgs {
  Grad g;
  const float *x, *a, *b, *e, *mean;
  float *dx;
  bool full;
};

void input_grad_scalar(const InputGradArgs &f, const Dims &d, int64_t r0, int64_t r1) {
  const int64_t c = d.c, ow = d.ow();
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t j = 0; j < ow; ++j) {
      const int64_t o = (r * ow + j) * c;
      int64_t at[4];
      window(d, r, j, at);
      for (int q = 0; q < 4; ++q)
        for (int64_t k = 0; k < c; ++k) {
          float v = f.g.code[o + k] == float(q) ? f.a[k] * f.g.at(o + k) : 0.0f;
          if (f.full) v += f.b[k] + f.e[k] * (f.x[at[q] + k] - f.mean[k]);
          f.dx[at[q] + k] = v;
        }
    }
  }
}

template <bool Full>
__attribute__((target("avx2,fma"))) void input_grad_avx2(const InputGradArgs &f, const Dims &d,
                                                         int64_t r0, int64_t r1) {
  const int64_t c = d.c, ow = d.ow();
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t j = 0; j < ow; ++j) {
      const int64_t o = (r * ow + j) * c;
      int64_t at[4];
      window(d, r, j, at);
      for (int64_t k = 0; k < c; k += 8) {
        const __m256 routed = _mm256_mul_ps(_mm256_loadu_ps(f.a + k), grad_avx2(f.g, o + k));
        const __m256 code = _mm256_loadu_ps(f.g.code + o + k);
        __m256 b, e, m;
        if (Full) {
          b = _mm256_loadu_ps(f.b + k);
          e = _mm256_loadu_ps(f.e + k);
          m = _mm256_loadu_ps(f.mean + k);
        }
        for (int q = 0; q < 4; ++q) {
          __m256 v = _mm256_and_ps(_mm256_cmp_ps(code, _mm256_set1_ps(float(q)), _CMP_EQ_OQ),
                                   routed);
          if (Full) {
            __m256 centred = _mm256_sub_ps(_mm256_loadu_ps(f.x + at[q] + k), m);
            v = _mm256_add_ps(v, _mm256_fmadd_ps(e, centred, b));
          }
          _mm256_storeu_ps(f.dx + at[q] + k, v);
        }
      }
    }
  }
}

void input_grad(const InputGradArgs &f, const Dims &d, int64_t r0, int64_t r1) {
  if (!vector_path(d))
    input_grad_scalar(f, d, r0, r1);
  else if (f.full)
    input_grad_avx2<true>(f, d, r0, r1);
  else
    input_grad_avx2<false>(f, d, r0, r1);
}

// Per-image sums of two per-channel quantities, computed in parallel and added in image
// order: the same bits whatever the number of threads.
template <class PerImage>
void image_sums(const Dims &d, PerImage per_image, std::vector<double> &a, std::vector<double> &b) {
  std::vector<double> pa(d.n * d.c, 0.0), pb(d.n * d.c, 0.0);
  at::parallel_for(0, d.n, 1, [&](int64_t i0, int64_t i1) {
    std::vector<float> rs(d.c), rq(d.c);
    for (int64_t i = i0; i < i1; ++i)
      per_image(i, pa.data() + i * d.c, pb.data() + i * d.c, rs.data(), rq.data());
  });
  a.assign(d.c, 0.0);
  b.assign(d.c, 0.0);
  for (int64_t i = 0; i < d.n; ++i)
    for (int64_t k = 0; k < d.c; ++k) {
      a[k] += pa[i * d.c + k];
      b[k] += pb[i * d.c + k];
    }
}

at::Tensor channels_last(const at::Tensor &t) {
  return t.contiguous(at::MemoryFormat::ChannelsLast);
}

// Absent tensors are empty ones: autograd's custom functions take no undefined inputs.
bool present(const at::Tensor &t) { return t.defined() && t.numel() > 0; }

float *ptr_or_null(const at::Tensor &t) {
  return present(t) ? t.data_ptr<float>() : nullptr;
}

struct NormPool : public torch::autograd::Function<NormPool> {
  // x (N, C, H, W), H and W even; bias (C): the convolution's, added to x, or empty; gamma,
  // beta (C) or empty (1 and 0); running_mean and running_var (C) or empty (no batch norm);
  // noise (N, C, H/2, W/2) or empty.
  // batch_stats: normalise with the batch's statistics (training) and update the running
  // ones, else with the running ones. backward: whether autograd will ask for gradients
  // (false under no_grad, as in evaluation: nothing is kept for them).
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x_in, const at::Tensor &bias,
                            const at::Tensor &gamma, const at::Tensor &beta,
                            const at::Tensor &running_mean, const at::Tensor &running_var,
                            const at::Tensor &noise_in, bool batch_stats, double momentum,
                            double eps, bool backward) {
    TORCH_CHECK(x_in.dim() == 4 && x_in.scalar_type() == at::kFloat && x_in.is_cpu(),
                "norm-pool: x must be a float32 CPU tensor (N, C, H, W)");
    TORCH_CHECK(x_in.size(2) % 2 == 0 && x_in.size(3) % 2 == 0,
                "norm-pool: H and W must be even, got ", x_in.sizes());
    at::Tensor x = channels_last(x_in);
    Dims d{x.size(0), x.size(2), x.size(3), x.size(1)};
    const bool bn = present(running_mean);
    for (const at::Tensor *t : {&bias, &gamma, &beta, &running_mean, &running_var})
      TORCH_CHECK(!present(*t) || (t->numel() == d.c && t->scalar_type() == at::kFloat &&
                                   t->is_contiguous()),
                  "norm-pool: per-channel tensors must be float32 with C elements");
    TORCH_CHECK(bn == present(running_var), "norm-pool: running mean and variance go together");
    TORCH_CHECK(!batch_stats || d.n * d.h * d.w > 1,
                "norm-pool: batch statistics need more than one value per channel");
    at::Tensor noise = noise_in;
    if (present(noise_in)) {
      TORCH_CHECK(noise_in.scalar_type() == at::kFloat && noise_in.dim() == 4 &&
                      noise_in.size(0) == d.n && noise_in.size(1) == d.c &&
                      noise_in.size(2) == d.oh() && noise_in.size(3) == d.ow(),
                  "norm-pool: noise must be float32 (N, C, H/2, W/2)");
      noise = channels_last(noise_in);
    }

    // Per channel: y = x·scale + shift, and the mean and 1/σ the backward pass needs. The
    // mean is x's, without the bias: what the backward pass subtracts from x's values.
    auto copts = at::TensorOptions().dtype(at::kFloat);
    at::Tensor mean = at::empty({d.c}, copts), invstd = at::empty({d.c}, copts);
    std::vector<float> scale(d.c, 1.0f), shift(d.c, 0.0f), b0(d.c, 0.0f);
    if (present(bias)) std::copy_n(bias.data_ptr<float>(), d.c, b0.data());
    if (bn) {
      float *m = mean.data_ptr<float>(), *is = invstd.data_ptr<float>();
      float *rm = running_mean.data_ptr<float>(), *rv = running_var.data_ptr<float>();
      const float *px = x.data_ptr<float>();
      if (batch_stats) {
        std::vector<double> sum, sq;
        image_sums(d,
                   [&](int64_t i, double *a, double *b, float *rs, float *rq) {
                     moments(px, d, i, a, b, rs, rq);
                   },
                   sum, sq);
        const double count = double(d.n * d.h * d.w);
        for (int64_t k = 0; k < d.c; ++k) {
          double mu = sum[k] / count, var = std::max(sq[k] / count - mu * mu, 0.0);
          m[k] = float(mu);
          is[k] = float(1.0 / std::sqrt(var + eps));
          // PyTorch's update, of x + bias's mean: the unbiased variance into the running one.
          rm[k] = float(momentum * (mu + b0[k]) + (1.0 - momentum) * rm[k]);
          rv[k] = float(momentum * var * count / (count - 1.0) + (1.0 - momentum) * rv[k]);
        }
      } else {
        for (int64_t k = 0; k < d.c; ++k) {
          m[k] = rm[k] - b0[k];
          is[k] = float(1.0 / std::sqrt(double(rv[k]) + eps));
        }
      }
      const float *g = ptr_or_null(gamma), *b = ptr_or_null(beta);
      for (int64_t k = 0; k < d.c; ++k) {
        scale[k] = (g ? g[k] : 1.0f) * is[k];
        shift[k] = (b ? b[k] : 0.0f) - m[k] * scale[k];
      }
    } else {
      mean.zero_();
      invstd.fill_(1.0);
      shift = b0;
    }

    auto opts = x.options().memory_format(at::MemoryFormat::ChannelsLast);
    at::Tensor out = at::empty({d.n, d.c, d.oh(), d.ow()}, opts);
    // What the backward pass reads, when there is one: where the maxima were, and with batch
    // norm their raw values (for the batch statistics' and γ's gradients).
    auto pooled = [&](bool keep) {
      return keep ? at::empty({d.n, d.c, d.oh(), d.ow()}, opts) : at::empty({0}, copts);
    };
    at::Tensor code = pooled(backward), xm = pooled(backward && bn);
    ForwardArgs f{x.data_ptr<float>(),   scale.data(),       shift.data(), ptr_or_null(noise),
                  out.data_ptr<float>(), ptr_or_null(code), ptr_or_null(xm)};
    at::parallel_for(0, d.rows(), grain(d),
                     [&](int64_t r0, int64_t r1) { pool_forward(f, d, r0, r1); });

    // x itself only where the backward pass reads it: batch statistics (so whether it is
    // kept says which normalisation the backward pass undoes).
    ctx->save_for_backward({bn && batch_stats ? x : at::empty({0}, copts), gamma, noise, code,
                            xm, mean, invstd});
    return out;
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &gamma = saved[1], &noise = saved[2], &code = saved[3];
    const at::Tensor &xm = saved[4], &mean = saved[5], &invstd = saved[6];
    const bool batch_stats = present(x);
    // code has the output's shape (N, C, H/2, W/2).
    Dims d{code.size(0), 2 * code.size(2), 2 * code.size(3), code.size(1)};
    at::Tensor dy = channels_last(grads[0]);
    Grad g{dy.data_ptr<float>(), ptr_or_null(noise), code.data_ptr<float>()};

    // Σg and Σg·(x − mean) over each channel's maxima: β's and γ's gradients (the latter
    // times 1/σ), the convolution bias's (times γ/σ), and the batch statistics' share of dx.
    const float *pm = mean.data_ptr<float>(), *pi = invstd.data_ptr<float>();
    const float *pgam = ptr_or_null(gamma);
    // Inputs 1..3: the convolution's bias, γ, β.
    const bool param_grads =
        ctx->needs_input_grad(1) || ctx->needs_input_grad(2) || ctx->needs_input_grad(3);
    std::vector<double> sg, sgx;
    if (batch_stats || param_grads) {
      const float *px = ptr_or_null(xm);
      image_sums(d,
                 [&](int64_t i, double *a, double *b, float *rs, float *rq) {
                   grad_sums(g, px, pm, d, i, a, b, rs, rq);
                 },
                 sg, sgx);
    }

    at::Tensor dx;
    if (ctx->needs_input_grad(0)) {
      // dx = γ/σ · (g − Σg/M − x̂ · Σg·x̂ / M) with x̂ = (x − mean)/σ (batch statistics), or
      // γ/σ · g (running statistics, or no batch norm: γ/σ = 1).
      std::vector<float> a(d.c), b(d.c, 0.0f), e(d.c, 0.0f);
      const double count = double(d.n * d.h * d.w);
      for (int64_t k = 0; k < d.c; ++k) {
        double s = (pgam ? pgam[k] : 1.0) * pi[k];
        a[k] = float(s);
        if (batch_stats) {
          b[k] = float(-s * sg[k] / count);
          e[k] = float(-s * pi[k] * pi[k] * sgx[k] / count);
        }
      }
      dx = at::empty({d.n, d.c, d.h, d.w},
                     dy.options().memory_format(at::MemoryFormat::ChannelsLast));
      InputGradArgs f{g,        ptr_or_null(x), a.data(),        b.data(),
                      e.data(), pm,             dx.data_ptr<float>(), batch_stats};
      at::parallel_for(0, d.rows(), grain(d),
                       [&](int64_t r0, int64_t r1) { input_grad(f, d, r0, r1); });
    }

    at::Tensor dbias, dgamma, dbeta;
    auto copts = at::TensorOptions().dtype(at::kFloat);
    if (ctx->needs_input_grad(1)) {
      // Σ dx over each channel: γ/σ · Σg, or 0 with batch statistics, which subtract the
      // bias again with the mean (their share of dx, summed, is exactly −γ/σ · Σg).
      dbias = at::zeros({d.c}, copts);
      float *p = dbias.data_ptr<float>();
      if (!batch_stats)
        for (int64_t k = 0; k < d.c; ++k) p[k] = float((pgam ? pgam[k] : 1.0) * pi[k] * sg[k]);
    }
    if (ctx->needs_input_grad(2)) {
      dgamma = at::empty({d.c}, copts);
      float *p = dgamma.data_ptr<float>();
      for (int64_t k = 0; k < d.c; ++k) p[k] = float(sgx[k] * pi[k]);
    }
    if (ctx->needs_input_grad(3)) {
      dbeta = at::empty({d.c}, copts);
      float *p = dbeta.data_ptr<float>();
      for (int64_t k = 0; k < d.c; ++k) p[k] = float(sg[k]);
    }
    return {dx,           dbias,        dgamma,       dbeta,        at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

} // namespace

extern "C" {

// The node's output as a new tensor in *out (owned by the caller: tch's `Tensor::from_ptr`);
// returns 0, or -1 with a message in err. The tensors are tch's (at::Tensor*); undefined
// ones (tch's `Tensor::new()`) stand for what is absent (see NormPool::forward), and are
// handed to autograd as empty tensors.
int vision_norm_pool(const at::Tensor *x, const at::Tensor *bias, const at::Tensor *gamma,
                     const at::Tensor *beta, const at::Tensor *running_mean,
                     const at::Tensor *running_var, const at::Tensor *noise, int batch_stats,
                     double momentum, double eps, at::Tensor **out, char *err, size_t cap) {
  return kernel_shim::guarded(
      [&] {
        auto given = [](const at::Tensor *t) {
          return t->defined() ? *t : at::empty({0}, at::TensorOptions().dtype(at::kFloat));
        };
        auto learns = [](const at::Tensor *t) { return t->defined() && t->requires_grad(); };
        bool backward = at::GradMode::is_enabled() &&
                        (x->requires_grad() || learns(bias) || learns(gamma) || learns(beta));
        return NormPool::apply(*x, given(bias), given(gamma), given(beta), given(running_mean),
                               given(running_var), given(noise), batch_stats != 0, momentum,
                               eps, backward);
      },
      out, err, cap);
}

} // extern "C"
