//! Finding, checking and installing libtorch 2.11.0, and running cargo against it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The libtorch release tch 0.24.0 is built against.
pub const VERSION: &str = "2.11.0";
const CPU_PACKAGES: &[&str] = &[
    "torch==2.11.0",
    "nvidia-cuda-runtime==13.0.96",
    "nvidia-cuda-cupti==13.0.85",
];

/// Options of `cargo xtask setup`.
#[derive(clap::Args, Default)]
pub struct SetupArgs {
    /// Full install with every CUDA library (several GB), for GPU machines; build the
    /// binaries with `--features cuda` afterwards.
    #[arg(long)]
    pub cuda: bool,
    /// Reinstall even if .libtorch/ already holds libtorch.
    #[arg(long)]
    pub force: bool,
}

/// A checked libtorch: its folder (holding `lib/`) and version string.
pub struct Libtorch {
    /// The folder LIBTORCH points at.
    pub dir: PathBuf,
    /// e.g. `2.11.0+cu130`.
    pub version: String,
}

/// Reads the version of the libtorch in `dir` (a pip `torch/` folder or an unpacked zip).
fn version_of(dir: &Path) -> Option<String> {
    if let Ok(text) = std::fs::read_to_string(dir.join("version.py")) {
        let line = text.lines().find(|l| l.starts_with("__version__"))?;
        return Some(line.split('\'').nth(1)?.to_string());
    }
    std::fs::read_to_string(dir.join("build-version"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Checks that `dir` holds libtorch 2.11.0; the error says what to do.
fn check(dir: &Path, origin: &str) -> Result<Libtorch> {
    if !dir.join("lib").join("libtorch_cpu.so").exists() {
        bail!(
            "{origin} {} holds no lib/libtorch_cpu.so: unset LIBTORCH to let `cargo xtask setup` install libtorch {VERSION}, or point it at a libtorch {VERSION} folder",
            dir.display()
        );
    }
    let version = version_of(dir).unwrap_or_else(|| "unknown".into());
    if !version.starts_with(VERSION) {
        bail!(
            "{origin} {} is libtorch {version}, but tch 0.24.0 needs {VERSION}: unset LIBTORCH and run `cargo xtask setup`",
            dir.display()
        );
    }
    Ok(Libtorch {
        dir: dir.to_path_buf(),
        version,
    })
}

fn local_dir(root: &Path) -> PathBuf {
    root.join(".libtorch").join("torch")
}

/// `cargo xtask setup`: respects LIBTORCH, else installs into `.libtorch/` unless present.
pub fn setup(root: &Path, args: &SetupArgs) -> Result<Libtorch> {
    // `.cargo/config.toml` sets LIBTORCH to the local install for every cargo command, this
    // one included; only a different value is the user's own choice.
    let user_dir = std::env::var_os("LIBTORCH")
        .map(PathBuf::from)
        .filter(|dir| {
            dir.canonicalize().ok() != local_dir(root).canonicalize().ok()
                && *dir != local_dir(root)
        });
    if let Some(dir) = user_dir {
        let torch = check(&dir, "LIBTORCH")?;
        eprintln!(
            "libtorch {} from LIBTORCH={}",
            torch.version,
            torch.dir.display()
        );
        return Ok(torch);
    }
    let target = root.join(".libtorch");
    if !args.force {
        if let Ok(torch) = check(&local_dir(root), "installed libtorch at") {
            let full = target.join("nvidia").join("cublas").exists();
            if !args.cuda || full {
                eprintln!(
                    "libtorch {} already installed in {}",
                    torch.version,
                    torch.dir.display()
                );
                return Ok(torch);
            }
        }
    }
    let (what, packages): (_, Vec<&str>) = if args.cuda {
        (
            "libtorch 2.11.0 with all CUDA libraries (about 4 GB download, 7 GB installed)",
            vec!["torch==2.11.0"],
        )
    } else {
        (
            "libtorch 2.11.0 for CPU (about 900 MB download, 1.2 GB installed)",
            CPU_PACKAGES.to_vec(),
        )
    };
    eprintln!("Installing {what} from PyPI into {} ...", target.display());
    // Install next to the target and rename at the end, so an interrupted install never
    // leaves a half-filled .libtorch/ that a later run would trust.
    let partial = root.join(".libtorch.partial");
    let _ = std::fs::remove_dir_all(&partial);
    let mut cmd = Command::new("python3");
    cmd.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--target",
    ])
    .arg(&partial)
    .args(&packages);
    if !args.cuda {
        cmd.arg("--no-deps");
    }
    let status = cmd
        .status()
        .context("running python3 -m pip (install Python 3 with pip, or set LIBTORCH to a libtorch 2.11.0 folder)")?;
    if !status.success() {
        bail!("pip could not install {}: check the network access to PyPI, or set LIBTORCH to a libtorch {VERSION} folder", packages.join(" "));
    }
    let _ = std::fs::remove_dir_all(&target);
    std::fs::rename(&partial, &target).context("moving .libtorch.partial into place")?;
    let torch = check(&local_dir(root), "freshly installed libtorch at")?;
    eprintln!(
        "Installed libtorch {} in {}",
        torch.version,
        torch.dir.display()
    );
    Ok(torch)
}

/// The version of the libtorch builds would use (LIBTORCH or `.libtorch/`), if installed.
pub fn installed_version(root: &Path) -> Option<String> {
    let dir = std::env::var_os("LIBTORCH")
        .map(PathBuf::from)
        .unwrap_or_else(|| local_dir(root));
    version_of(&dir)
}

/// Set-up if needed, quietly when libtorch is already there.
pub fn ensure(root: &Path) -> Result<Libtorch> {
    setup(root, &SetupArgs::default())
}

/// Runs `cargo <args>` with LIBTORCH set and libtorch on the loader path (doctests are linked
/// by rustdoc without our rpath), failing on a non-zero exit.
pub fn cargo(torch: &Libtorch, args: &[&str]) -> Result<()> {
    let status = cargo_command(torch)
        .args(args)
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("`cargo {}` failed", args.join(" "));
    }
    Ok(())
}

/// A `cargo` command with the libtorch environment.
pub fn cargo_command(torch: &Libtorch) -> Command {
    runtime_command(
        torch,
        Path::new(&std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())),
    )
}

/// `program` with LIBTORCH set and libtorch first on the loader path.
pub fn runtime_command(torch: &Libtorch, program: &Path) -> Command {
    let mut cmd = Command::new(program);
    let lib = torch.dir.join("lib");
    let ld = match std::env::var_os("LD_LIBRARY_PATH") {
        Some(old) if !old.is_empty() => {
            let mut paths = vec![lib];
            paths.extend(std::env::split_paths(&old));
            std::env::join_paths(paths).expect("valid paths")
        }
        _ => lib.into_os_string(),
    };
    cmd.env("LIBTORCH", &torch.dir).env("LD_LIBRARY_PATH", ld);
    cmd
}
