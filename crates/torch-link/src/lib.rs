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

/// Compiles a C++ file against libtorch's headers into a static library named `name`,
/// linked into the crate: for the few libtorch functions tch does not bind. Needs the crate
/// to depend on `torch-sys` (for `DEP_TCH_LIBTORCH_LIB`) and on `cc` as a build dependency
/// of this helper.
pub fn compile_cpp(source: &str, name: &str) {
    println!("cargo:rerun-if-changed={source}");
    // `kernel_shim.h`: the exception guard and CPU test every kernel file shares.
    let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/include");
    println!("cargo:rerun-if-changed={shared}/kernel_shim.h");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .expect("DEP_TCH_LIBTORCH_LIB: the crate must depend on torch-sys");
    let include = std::path::Path::new(&lib).join("../include");
    // ATen's `parallel_for` is a header template: unless the file is compiled with OpenMP
    // (`_OPENMP`), it runs the whole range on the calling thread (so our kernels did, while
    // libtorch's other thread spun). Their OpenMP calls must reach the runtime libtorch
    // itself loads (the wheel's own `libgomp.so.1`, which the rpath finds): a second runtime
    // would bring a second pool of spinning threads. A libtorch without that file gets
    // serial kernels.
    let openmp = std::path::Path::new(&lib).join("libgomp.so.1").exists();
    let mut build = cc::Build::new();
    if openmp {
        build.flag("-fopenmp");
    }
    build
        .cpp(true)
        .file(source)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .include(shared)
        .flag("-std=c++17")
        // The PyPI wheels (what `cargo xtask setup` installs) use the C++11 ABI.
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .warnings(false)
        .compile(name);
    // Once per build script (cargo refuses a library named twice with modifiers); a link
    // directive rather than an argument, so that crates depending on this one link it too.
    static LINKED: std::sync::Once = std::sync::Once::new();
    if openmp {
        // torch-sys already puts `lib` on the search path.
        LINKED.call_once(|| println!("cargo:rustc-link-lib=dylib:+verbatim=libgomp.so.1"));
    } else {
        println!(
            "cargo:warning=no libgomp.so.1 beside libtorch in {lib}: {source} is compiled \
             without OpenMP, so its parallel loops (if any) run on one thread"
        );
    }
}

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
