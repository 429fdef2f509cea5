//! From the `--device` flag (`cli::Device`, the one device enum) to a libtorch device.

use anyhow::{bail, Result};
use cli::Device as Choice;
use tch::Device;

/// The libtorch device `choice` names: an error for `cuda` where libtorch sees no GPU.
pub fn resolve(choice: Choice) -> Result<Device> {
    match choice {
        Choice::Auto => Ok(Device::cuda_if_available()),
        Choice::Cpu => Ok(Device::Cpu),
        Choice::Cuda if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        Choice::Cuda => bail!(
            "--device cuda: libtorch sees no CUDA GPU (build with --features cuda, install libtorch with `cargo xtask setup --cuda`, or use --device cpu)"
        ),
    }
}

/// The choice that names `device` exactly, to hand a resolved device to a child process
/// (whose own `auto` could resolve differently).
pub fn choice_of(device: Device) -> Choice {
    match device {
        Device::Cpu => Choice::Cpu,
        _ => Choice::Cuda,
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
