//! The LSTM cell's element-wise arithmetic for one step of [`crate::fast::lstm`], on raw float32
//! rows, in one pass each way.
//!
//! As tensor ops a step of the encoder was about twenty dispatches forward (gate
//! activations, the cell update, copies of the running state) and ten backward, each on a
//! few thousand numbers: per-op cost, not arithmetic. Here the recurrent matrix product stays
//! libtorch's (one `addmm` / `mm` per step) and everything element-wise is one loop over the
//! rows. The loops are written so that they compile to vector code — `exp` is a polynomial
//! with the exponent set by bit arithmetic (Cephes' `expf`, within 2 ulp), no calls or
//! branches — and are compiled twice, for AVX2+FMA (chosen at run time) and for the x86-64
//! baseline. Their sigmoid and tanh differ from libtorch's in the last bits, so the fast
//! encoder no longer equals `lstm_data` bit for bit (its tests allow 1e-6); exact mode does
//! not use this module.

/// e^x (float32; x clamped to ±87, where e^x is still a normal number).
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // 1.5·2²³: adding it rounds to an integer, which the low mantissa bits then hold.
    const SHIFTER: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 87.0);
    let t = x * LOG2E + SHIFTER;
    let k = t - SHIFTER;
    let bits = t.to_bits().wrapping_sub(SHIFTER.to_bits());
    // x − k·ln 2 in two parts, so that r keeps its low bits.
    let r = x - k * 0.693_359_4 - k * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(bits.wrapping_add(127) << 23)
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// tanh x = 1 − 2 / (e^{2x} + 1): absolute error ~1e-7 (relative error grows near 0, where
/// only the absolute one reaches the cell state).
#[inline(always)]
fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

/// One forward step's rows, `n` of hidden size `h`. On entry `gates` (n × 4h) holds
/// `b_hh + h₋₁ W_hhᵀ`; `x_proj` (n × 4h) is `x W_ihᵀ + b_ih` of these rows, `c_prev` (n × h)
/// the cells they start from. [`forward`] leaves in `gates` the activated gates (i, f, g, o)
/// and in `c`, `tanh_c`, `h_out` (n × h) the new cell, its tanh and the output.
pub struct Forward<'a> {
    pub gates: &'a mut [f32],
    pub x_proj: &'a [f32],
    pub c_prev: &'a [f32],
    pub c: &'a mut [f32],
    pub tanh_c: &'a mut [f32],
    pub h_out: &'a mut [f32],
    pub h: usize,
}

/// Runs one forward step (see [`Forward`]).
pub fn forward(step: Forward) {
    // The vector path writes eight columns at a time; other widths take forward_rows.
    #[cfg(target_arch = "x86_64")]
    if step.h.is_multiple_of(8)
        && std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
    {
        // SAFETY: the CPU has the features the function is compiled for.
        return unsafe { forward_avx2(step) };
    }
    forward_rows(step)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_avx2(step: Forward) {
    let Forward {
        gates,
        x_proj,
        c_prev,
        c,
        tanh_c,
        h_out,
        h,
    } = step;
    use std::arch::x86_64::*;
    // The compiler does not vectorise forward_rows' loop (it keeps the exp's steps scalar),
    // so eight columns at a time are written out here (`forward` sends only widths that are
    // multiples of 8).
    assert!(h.is_multiple_of(8));
    let rows = gates.len() / (4 * h);
    assert!(x_proj.len() >= rows * 4 * h && c_prev.len() >= rows * h);
    assert!(c.len() >= rows * h && tanh_c.len() >= rows * h && h_out.len() >= rows * h);
    let one = _mm256_set1_ps(1.0);
    let two = _mm256_set1_ps(2.0);
    let sigmoid8 = |x: __m256| {
        _mm256_div_ps(
            one,
            _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))),
        )
    };
    let tanh8 = |x: __m256| {
        _mm256_sub_ps(
            one,
            _mm256_div_ps(two, _mm256_add_ps(exp8(_mm256_mul_ps(two, x)), one)),
        )
    };
    for r in 0..rows {
        let (g, x) = (
            gates.as_mut_ptr().add(r * 4 * h),
            x_proj.as_ptr().add(r * 4 * h),
        );
        let (cp, cr) = (c_prev.as_ptr().add(r * h), c.as_mut_ptr().add(r * h));
        let (tc, ho) = (
            tanh_c.as_mut_ptr().add(r * h),
            h_out.as_mut_ptr().add(r * h),
        );
        for j in (0..h).step_by(8) {
            let pre = |k: usize| {
                _mm256_add_ps(
                    _mm256_loadu_ps(g.add(k * h + j)),
                    _mm256_loadu_ps(x.add(k * h + j)),
                )
            };
            let (i, f, gg, o) = (
                sigmoid8(pre(0)),
                sigmoid8(pre(1)),
                tanh8(pre(2)),
                sigmoid8(pre(3)),
            );
            let cj = _mm256_fmadd_ps(f, _mm256_loadu_ps(cp.add(j)), _mm256_mul_ps(i, gg));
            let tj = tanh8(cj);
            _mm256_storeu_ps(g.add(j), i);
            _mm256_storeu_ps(g.add(h + j), f);
            _mm256_storeu_ps(g.add(2 * h + j), gg);
            _mm256_storeu_ps(g.add(3 * h + j), o);
            _mm256_storeu_ps(cr.add(j), cj);
            _mm256_storeu_ps(tc.add(j), tj);
            _mm256_storeu_ps(ho.add(j), _mm256_mul_ps(o, tj));
        }
    }
}

/// [`exp`] on eight lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn exp8(x: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    const SHIFTER: f32 = 12_582_912.0;
    let set = _mm256_set1_ps;
    let x = _mm256_min_ps(_mm256_max_ps(x, set(-87.0)), set(87.0));
    let t = _mm256_fmadd_ps(x, set(std::f32::consts::LOG2_E), set(SHIFTER));
    let k = _mm256_sub_ps(t, set(SHIFTER));
    let bits = _mm256_sub_epi32(
        _mm256_castps_si256(t),
        _mm256_set1_epi32(SHIFTER.to_bits() as i32),
    );
    let r = _mm256_fnmadd_ps(k, set(0.693_359_4), x);
    let r = _mm256_fnmadd_ps(k, set(-2.121_944_4e-4), r);
    let mut p = set(1.987_569_1e-4);
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        0.166_666_65,
        0.5,
    ] {
        p = _mm256_fmadd_ps(p, r, set(c));
    }
    let e = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, set(1.0)));
    let scale = _mm256_slli_epi32::<23>(_mm256_add_epi32(bits, _mm256_set1_epi32(127)));
    _mm256_mul_ps(e, _mm256_castsi256_ps(scale))
}

#[inline(always)]
fn forward_rows(step: Forward) {
    let Forward {
        gates,
        x_proj,
        c_prev,
        c,
        tanh_c,
        h_out,
        h,
    } = step;
    let rows = gates
        .chunks_exact_mut(4 * h)
        .zip(x_proj.chunks_exact(4 * h))
        .zip(c_prev.chunks_exact(h))
        .zip(c.chunks_exact_mut(h))
        .zip(tanh_c.chunks_exact_mut(h))
        .zip(h_out.chunks_exact_mut(h));
    for (((((g, x), cp), c), tc), ho) in rows {
        let (i, rest) = g.split_at_mut(h);
        let (f, rest) = rest.split_at_mut(h);
        let (gg, o) = rest.split_at_mut(h);
        let (xi, rest) = x.split_at(h);
        let (xf, rest) = rest.split_at(h);
        let (xg, xo) = rest.split_at(h);
        // Every slice re-cut to h, so that the loop has no bounds checks and vectorises.
        let (i, f, gg, o) = (&mut i[..h], &mut f[..h], &mut gg[..h], &mut o[..h]);
        let (xi, xf, xg, xo) = (&xi[..h], &xf[..h], &xg[..h], &xo[..h]);
        let (cp, c, tc, ho) = (&cp[..h], &mut c[..h], &mut tc[..h], &mut ho[..h]);
        for j in 0..h {
            let ij = sigmoid(i[j] + xi[j]);
            let fj = sigmoid(f[j] + xf[j]);
            let gj = tanh(gg[j] + xg[j]);
            let oj = sigmoid(o[j] + xo[j]);
            let cj = fj * cp[j] + ij * gj;
            let tj = tanh(cj);
            (i[j], f[j], gg[j], o[j]) = (ij, fj, gj, oj);
            (c[j], tc[j], ho[j]) = (cj, tj, oj * tj);
        }
    }
}

/// One backward step's rows, `n` of hidden size `h`: the gradients reaching this step's
/// output (`dh_state` from the next step plus `d_out`) and cell (`dc_state`), and the step's
/// saved activated `gates`, `c_prev` and `tanh_c`. [`backward`] writes the pre-activation
/// gradients `d_gates` (n × 4h) and replaces `dc_state` by the gradient of the cell the step
/// started from. (`dh_state`'s, `d_gates · W_hh`, is the caller's product.)
pub struct Backward<'a> {
    pub d_gates: &'a mut [f32],
    pub dh_state: &'a [f32],
    pub d_out: &'a [f32],
    pub dc_state: &'a mut [f32],
    pub gates: &'a [f32],
    pub c_prev: &'a [f32],
    pub tanh_c: &'a [f32],
    pub h: usize,
}

/// Runs one backward step (see [`Backward`]).
pub fn backward(step: Backward) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        return unsafe { backward_avx2(step) };
    }
    backward_rows(step)
}

/// The portable loop compiled for AVX2+FMA (it vectorises as written).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn backward_avx2(step: Backward) {
    backward_rows(step)
}

#[inline(always)]
fn backward_rows(step: Backward) {
    let Backward {
        d_gates,
        dh_state,
        d_out,
        dc_state,
        gates,
        c_prev,
        tanh_c,
        h,
    } = step;
    let rows = d_gates
        .chunks_exact_mut(4 * h)
        .zip(dh_state.chunks_exact(h))
        .zip(dc_state.chunks_exact_mut(h))
        .zip(gates.chunks_exact(4 * h))
        .zip(c_prev.chunks_exact(h))
        .zip(tanh_c.chunks_exact(h))
        .zip(d_out.chunks_exact(h));
    for ((((((dg, dhs), dcs), g), cp), tc), dout) in rows {
        let (di, rest) = dg.split_at_mut(h);
        let (df, rest) = rest.split_at_mut(h);
        let (dgg, d_o) = rest.split_at_mut(h);
        let (i, rest) = g.split_at(h);
        let (f, rest) = rest.split_at(h);
        let (gg, o) = rest.split_at(h);
        let (di, df, dgg, d_o) = (&mut di[..h], &mut df[..h], &mut dgg[..h], &mut d_o[..h]);
        let (i, f, gg, o) = (&i[..h], &f[..h], &gg[..h], &o[..h]);
        let (dhs, dcs, cp, tc) = (&dhs[..h], &mut dcs[..h], &cp[..h], &tc[..h]);
        let dout = &dout[..h];
        for j in 0..h {
            let dh = dhs[j] + dout[j];
            let dc = dcs[j] + dh * o[j] * (1.0 - tc[j] * tc[j]);
            di[j] = dc * gg[j] * i[j] * (1.0 - i[j]);
            df[j] = dc * cp[j] * f[j] * (1.0 - f[j]);
            dgg[j] = dc * i[j] * (1.0 - gg[j] * gg[j]);
            d_o[j] = dh * tc[j] * o[j] * (1.0 - o[j]);
            dcs[j] = dc * f[j];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_sigmoid_and_tanh_are_close_to_the_standard_library() {
        let mut worst = [0.0f64; 3];
        for k in -20_000..=20_000 {
            let x = k as f32 * 0.004;
            let e = (x as f64).exp();
            worst[0] = worst[0].max(((exp(x) as f64 - e) / e).abs());
            worst[1] = worst[1].max((sigmoid(x) as f64 - 1.0 / (1.0 + (-x as f64).exp())).abs());
            worst[2] = worst[2].max((tanh(x) as f64 - (x as f64).tanh()).abs());
        }
        assert!(worst[0] < 3e-7, "exp: relative error {}", worst[0]);
        assert!(worst[1] < 2e-7, "sigmoid: error {}", worst[1]);
        assert!(worst[2] < 3e-7, "tanh: error {}", worst[2]);
        // Far out: no overflow to inf or NaN.
        assert!(sigmoid(-200.0) < 1e-37);
        assert_eq!(sigmoid(200.0), 1.0);
        assert_eq!(tanh(200.0), 1.0);
        assert_eq!(tanh(-200.0), -1.0);
    }
}
