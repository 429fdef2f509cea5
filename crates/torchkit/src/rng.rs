//! All randomness of a training run comes from libtorch's global CPU generator.
//!
//! Initialisation (`uniform_`, `normal_`), dropout masks ([`dropout`]; [`crate::fast::dropout`] seeds
//! its own stream from it), shuffling (the
//! seeds a PyTorch `DataLoader` draws, [`loader_order`]) and sampling (`multinomial`) all
//! draw from it as the PyTorch homework code does; seeding it once with [`seed`] makes a run
//! repeatable and keeps the sequence of draws PyTorch's (`torch.manual_seed`). Its state can
//! be saved and restored ([`state`], [`set_state`]).

use std::sync::{Mutex, MutexGuard};

use tch::{Device, Kind, Tensor};

static GENERATOR: Mutex<()> = Mutex::new(());

/// Takes libtorch's process-wide generator for the caller until the guard drops.
///
/// Every thread of a process draws from the same generator, so a result that depends on
/// the exact draws after a [`seed`] (a repeatable training run, a draw-for-draw comparison)
/// holds only while no other thread draws in between. Where threads share a process —
/// tests of one test binary run in parallel — each one that draws holds this guard.
/// A panic while holding it does not poison it for the others.
pub fn exclusive() -> MutexGuard<'static, ()> {
    GENERATOR.lock().unwrap_or_else(|e| e.into_inner())
}

/// Seeds libtorch's generators (CPU and, where present, CUDA) like `torch.manual_seed`.
pub fn seed(seed: u64) {
    tch::manual_seed(seed as i64);
}

extern "C" {
    // src/generator_state.cpp
    fn torchkit_rng_state(device: std::ffi::c_int, buf: *mut u8, cap: i64) -> i64;
    fn torchkit_set_rng_state(device: std::ffi::c_int, buf: *const u8, n: i64) -> std::ffi::c_int;
    fn torchkit_randperm_seeded(seed: u64, n: i64, out: *mut i64) -> std::ffi::c_int;
}

/// One draw of what PyTorch's `DataLoader` takes from the global generator when an
/// iteration starts, `torch.empty((), dtype=torch.int64).random_()`: its workers' base seed,
/// and (for a shuffling loader) the seed of the epoch's private generator.
pub fn loader_seed() -> i64 {
    Tensor::empty([], (Kind::Int64, Device::Cpu))
        .random_()
        .int64_value(&[])
}

/// `torch.randperm(n, generator=g)` with `g = torch.Generator(); g.manual_seed(seed)`:
/// libtorch's own generator and permutation (a C++ shim, as tch has no `torch.Generator`).
pub fn randperm_seeded(seed: u64, n: usize) -> Vec<i64> {
    let mut out = vec![0i64; n];
    // SAFETY: the shim writes exactly `n` indices into `out`.
    let rc = unsafe { torchkit_randperm_seeded(seed, n as i64, out.as_mut_ptr()) };
    assert_eq!(rc, 0, "libtorch's randperm failed");
    out
}

/// The order a shuffling PyTorch `DataLoader` (no workers, default sampler) visits `n`
/// examples in one epoch: the base-seed draw, the sampler's seed draw, then `randperm` on a
/// private generator — two draws from the global generator, as in PyTorch.
pub fn loader_order(n: usize) -> Vec<i64> {
    let _base = loader_seed();
    let seed = loader_seed();
    randperm_seeded(seed as u64, n)
}

fn generator_index(device: Device) -> std::ffi::c_int {
    match device {
        Device::Cuda(i) => i as std::ffi::c_int,
        _ => -1,
    }
}

/// The state of the default generator of `device` (the CPU's, or a GPU's), as
/// `torch.get_rng_state()` gives it: saved with a resume point so that the resumed run draws
/// exactly what the uninterrupted one would have.
pub fn state(device: Device) -> anyhow::Result<Vec<u8>> {
    let index = generator_index(device);
    // SAFETY: a null buffer only asks for the size; the second call writes at most `cap`.
    let n = unsafe { torchkit_rng_state(index, std::ptr::null_mut(), 0) };
    anyhow::ensure!(n >= 0, "reading the generator state of {device:?} failed");
    let mut buf = vec![0u8; n as usize];
    let m = unsafe { torchkit_rng_state(index, buf.as_mut_ptr(), n) };
    anyhow::ensure!(m == n, "reading the generator state of {device:?} failed");
    Ok(buf)
}

/// Restores a state read by [`state`] (`torch.set_rng_state`).
pub fn set_state(device: Device, state: &[u8]) -> anyhow::Result<()> {
    // SAFETY: the function copies `state.len()` bytes from the slice.
    let rc = unsafe {
        torchkit_set_rng_state(generator_index(device), state.as_ptr(), state.len() as i64)
    };
    anyhow::ensure!(
        rc == 0,
        "restoring the generator state of {device:?} failed (a state of {} bytes from another libtorch?)",
        state.len()
    );
    Ok(())
}

/// Whether libtorch's CPU `bernoulli_` takes its MKL path: on Intel processors
/// (`at::native::bernoulli_scalar_kernel` checks the vendor), where the draws differ from
/// the default kernel's.
pub fn mkl_bernoulli() -> bool {
    static INTEL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *INTEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            #[allow(unused_unsafe)] // `__cpuid` is an unsafe fn on older toolchains
            let r = unsafe { std::arch::x86_64::__cpuid(0) };
            let vendor: Vec<u8> = [r.ebx, r.edx, r.ecx]
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect();
            vendor == b"GenuineIntel"
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    })
}

/// Element-wise dropout, `x · mask / (1 − p)`, with the mask PyTorch's CPU dropout draws.
///
/// On the CPU, `at::dropout` fills a mask with `bernoulli_(1 − p)`. On a CPU that is not
/// Intel's, that draws one 64-bit number per element and keeps the element when the uniform
/// double made of its low 53 bits is below 1 − p; `uniform_` on a double tensor draws the
/// same numbers and makes the same doubles, a quarter faster (it skips a per-element
/// distribution object), so the mask, the output and the generator's state afterwards are
/// libtorch's own, bit for bit — checked by `tests/generator.rs` against libtorch 2.11's
/// dropout on AMD EPYC, the CPU of this project's machines.
///
/// On Intel CPUs, libtorch built with MKL (the PyPI wheels are) draws the mask from an MKL
/// stream seeded by a single draw instead ([`mkl_bernoulli`]); there, and off the CPU, this
/// is libtorch's own dropout, so the result is PyTorch's on every machine.
pub fn dropout(x: &Tensor, p: f64, train: bool) -> Tensor {
    if !train || p == 0.0 || x.device() != Device::Cpu || x.numel() == 0 || mkl_bernoulli() {
        return x.dropout(p, train);
    }
    // `empty_like` keeps a dense input's memory layout, and the mask is drawn in memory
    // order: contiguous and channels-last inputs are handled here, anything else by libtorch.
    let channels_last = x.dim() == 4 && x.permute([0, 2, 3, 1]).is_contiguous();
    let opts = (Kind::Double, Device::Cpu);
    let mut u = if x.is_contiguous() {
        Tensor::empty(x.size(), opts)
    } else if channels_last {
        Tensor::empty_strided(x.size(), x.stride(), opts)
    } else {
        return x.dropout(p, train);
    };
    let keep = u.uniform_(0.0, 1.0).lt(1.0 - p);
    // PyTorch: noise = bernoulli mask in x's dtype, noise.div_(1 − p), x * noise.
    let noise = keep.to_kind(x.kind()).g_div_scalar_(1.0 - p);
    x * noise
}
