//! Choosing where tensors live, from a command-line flag.

use anyhow::{bail, Result};
use tch::Device;

/// `--device auto|cpu|cuda`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// CUDA when libtorch sees a GPU, else CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The first CUDA GPU; an error when there is none.
    Cuda,
}

impl DeviceChoice {
    /// Resolves the choice to a libtorch device.
    pub fn resolve(self) -> Result<Device> {
        match self {
            DeviceChoice::Auto => Ok(Device::cuda_if_available()),
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
            DeviceChoice::Cuda => bail!(
                "--device cuda: libtorch sees no CUDA GPU (build with --features cuda, install libtorch with `cargo xtask setup --cuda`, or use --device cpu)"
            ),
        }
    }

    /// The choice that names `device` exactly, to hand a resolved device to a child process
    /// (whose own `auto` could resolve differently).
    pub fn of(device: Device) -> Self {
        match device {
            Device::Cpu => DeviceChoice::Cpu,
            _ => DeviceChoice::Cuda,
        }
    }

    /// The flag's value, to pass the choice on to a child process.
    pub fn as_arg(self) -> &'static str {
        match self {
            DeviceChoice::Auto => "auto",
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Cuda => "cuda",
        }
    }
}

/// A short human description of a device, for logs and reports.
pub fn describe(device: Device) -> String {
    match device {
        Device::Cpu => format!("cpu ({} threads)", tch::get_num_threads()),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}"),
    }
}
