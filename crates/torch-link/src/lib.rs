//! Link arguments shared by every crate that links libtorch through `tch`.
//!
//! Call [`emit`] from the crate's `build.rs`; the crate must depend on `torch-sys`
//! directly so that Cargo passes `DEP_TCH_LIBTORCH_LIB` to its build script.
//!
//! * `-rpath` to libtorch's `lib/` lets `cargo test -p <crate>` and the binaries run with no
//!   `LD_LIBRARY_PATH` (Cargo's `[env]` cannot set the loader path).
//! * `--allow-shlib-undefined` lets GNU ld accept the CUDA wheel's `libtorch_cpu.so` without
//!   the CUDA libraries installed (rust-lld accepts it anyway).
//! * With the crate's `cuda` feature, `libtorch_cuda.so` is linked even though no symbol
//!   of it is referenced, so that libtorch registers its CUDA backend at load time.

/// Prints the `cargo:` link directives; call it once from `build.rs`.
pub fn emit() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    println!("cargo:rustc-link-arg=-Wl,--allow-shlib-undefined");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
