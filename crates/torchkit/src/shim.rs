//! Calling the C entry points of the workspace's C++ kernels (`seq2seq`'s attention,
//! `vision`'s pooled batch norm). Each entry point takes tch's tensors as `at::Tensor*`,
//! writes a new tensor to `out` and returns 0, or returns -1 with a message in `err`: the
//! C++ side (`torch-link/include/kernel_shim.h`) lets no exception cross into Rust.

use tch::{Device, Kind, Tensor};
use torch_sys::C_tensor;

/// The signature's tail every entry point shares: `(out, err, cap) -> status`.
pub type Out = *mut *mut C_tensor;

/// Calls one entry point: `call(out, err, cap)` returns its status; the result is the new
/// tensor it made, or a panic naming `what` with the kernel's message (a broken invariant of
/// the caller, as a libtorch op's own check would panic in tch).
pub fn call(
    what: &str,
    call: impl FnOnce(Out, *mut std::ffi::c_char, usize) -> std::ffi::c_int,
) -> Tensor {
    let mut out: *mut C_tensor = std::ptr::null_mut();
    let mut err: [std::ffi::c_char; 512] = [0; 512];
    let rc = call(&mut out, err.as_mut_ptr(), err.len());
    if rc != 0 {
        // SAFETY: the kernel wrote a NUL-terminated message into `err`.
        let why = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) };
        panic!("{what}: {}", why.to_string_lossy());
    }
    // SAFETY: rc == 0 means `out` is a new tensor owned by us.
    unsafe { Tensor::from_ptr(out) }
}

/// Whether every tensor is float32 on the CPU: what the kernels take (anything else goes
/// through libtorch's ops).
pub fn cpu_float(tensors: &[&Tensor]) -> bool {
    tensors
        .iter()
        .all(|t| t.device() == Device::Cpu && t.kind() == Kind::Float)
}
