//! Dropout in one pass: masks of PyTorch's distribution, not its draws (the fast backends'
//! dropout; the twin is [`crate::rng::dropout`], PyTorch's draws).

use tch::{Device, Kind, Tensor};

/// Element-wise dropout, `x · mask / (1 − p)`, with masks of the same distribution as
/// [`crate::rng::dropout`]'s (its twin) but not PyTorch's draws: one draw of libtorch's generator seeds
/// [`Lanes`], four xoshiro256++ streams whose 32-bit halves decide two elements each.
/// Seeded runs stay repeatable and a restored generator state resumes them exactly. For the
/// fast modes, which need not follow PyTorch's draws. On one core of an Intel Xeon: 0.065 ms
/// for Q3's 64×12×128 (a single xoshiro stream took 0.30, libtorch's MKL draw more) and 0.62
/// ms for Q2's 8×32×48×48 (2.0); `cargo bench -p vision --bench train_step -- --layers`
/// prints it beside libtorch's.
pub fn dropout(x: &Tensor, p: f64, train: bool) -> Tensor {
    if !train
        || p == 0.0
        || x.device() != Device::Cpu
        || x.kind() != Kind::Float
        || x.numel() == 0
        || p >= 1.0
    {
        return x.dropout(p, train);
    }
    // `empty_like` keeps a dense input's memory layout (contiguous or channels-last) and is
    // contiguous otherwise: either way its storage is exactly `numel` floats.
    x * dropout_noise(x.empty_like(), p)
}

/// [`dropout`]'s multiplier, drawn into `noise`'s storage and returned: `1 / (1 − p)`
/// where kept, 0 where dropped, in memory order (the elements are independent, so the order
/// is immaterial; one draw of libtorch's generator seeds it). For a kernel that applies the
/// mask itself (`vision`'s pooled block). `noise` must be a fresh dense float32 CPU tensor
/// (its storage exactly `numel` floats, in any layout), and `0 < p < 1`.
pub fn dropout_noise(noise: Tensor, p: f64) -> Tensor {
    let dense =
        noise.is_contiguous() || (noise.dim() == 4 && noise.permute([0, 2, 3, 1]).is_contiguous());
    assert!(
        dense && noise.device() == Device::Cpu && noise.kind() == Kind::Float && p > 0.0 && p < 1.0,
        "dropout_noise: a dense (contiguous or channels-last) float32 CPU tensor and 0 < p < 1"
    );
    let n = noise.numel();
    let seed = Tensor::randint(i64::MAX, [1], (Kind::Int64, Device::Cpu)).int64_value(&[0]);
    let mut lanes = Lanes::new(seed as u64);
    let threshold = ((1.0 - p) * 4_294_967_296.0).min(u32::MAX as f64) as u32;
    let scale = (1.0 / (1.0 - p)) as f32;
    // SAFETY: `noise` is dense float32 (checked above), so its storage from `data_ptr` is
    // `n` floats; the caller handed it over fresh, so nothing else refers to it until this
    // slice is gone.
    let values = unsafe { std::slice::from_raw_parts_mut(noise.data_ptr() as *mut f32, n) };
    // Bits first, then the mask, block by block: two loops that compile to vector code.
    let mut bits = [0u32; BLOCK];
    for block in values.chunks_mut(BLOCK) {
        lanes.fill(&mut bits);
        for (v, &b) in block.iter_mut().zip(&bits) {
            *v = if b < threshold { scale } else { 0.0 };
        }
    }
    noise
}

/// Streams of [`Lanes`] advanced together: four keep the generators' state in SSE2
/// registers, the x86-64 baseline.
const LANES: usize = 4;
/// Random 32-bit numbers drawn at a time (on the stack, in L1).
const BLOCK: usize = 256;

/// [`LANES`] xoshiro256++ generators (rand's `SmallRng` algorithm) stored word by word, so
/// that one step of all of them compiles to vector instructions: a single stream is a chain
/// of dependent operations and drew at 3 ns an element. Seeded from `SmallRng`, itself
/// seeded with SplitMix64 as rand does.
struct Lanes {
    s: [[u64; LANES]; 4],
}

impl Lanes {
    fn new(seed: u64) -> Self {
        use rand::{RngCore, SeedableRng};
        let mut seeder = rand::rngs::SmallRng::seed_from_u64(seed);
        let mut s = [[0; LANES]; 4];
        for word in s.iter_mut().flatten() {
            *word = seeder.next_u64();
        }
        Self { s }
    }

    /// Fills `bits` with the streams' outputs, each 64-bit output making two numbers.
    fn fill(&mut self, bits: &mut [u32; BLOCK]) {
        let [s0, s1, s2, s3] = &mut self.s;
        for group in bits.chunks_exact_mut(2 * LANES) {
            for l in 0..LANES {
                let r = s0[l]
                    .wrapping_add(s3[l])
                    .rotate_left(23)
                    .wrapping_add(s0[l]);
                group[2 * l] = r as u32;
                group[2 * l + 1] = (r >> 32) as u32;
                let t = s1[l] << 17;
                s2[l] ^= s0[l];
                s3[l] ^= s1[l];
                s1[l] ^= s2[l];
                s0[l] ^= s3[l];
                s2[l] ^= t;
                s3[l] = s3[l].rotate_left(45);
            }
        }
    }
}
