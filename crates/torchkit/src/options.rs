//! Checks of what the options ask for that no parser can make alone (the value checks of
//! single flags are `cli::values`).

/// Refuses, before allocating it, what needs more memory than the machine has available
/// (`MemAvailable` of `/proc/meminfo`; where that cannot be read, nothing is refused).
/// `what` says what the bytes are for, the flag that asked for them first.
pub fn check_fits_in_memory(bytes: u64, what: &str) -> anyhow::Result<()> {
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib.saturating_mul(1024))
        });
    match available {
        Some(free) if bytes > free => anyhow::bail!(
            "{what} needs about {} of memory; this machine has {} available",
            human_bytes(bytes),
            human_bytes(free)
        ),
        _ => Ok(()),
    }
}

/// `1.5 GiB`, `320.0 MiB`, `12.0 TiB`.
pub fn human_bytes(bytes: u64) -> String {
    let mut value = bytes as f64;
    for unit in ["B", "KiB", "MiB", "GiB", "TiB"] {
        if value < 1024.0 || unit == "TiB" {
            return format!("{value:.1} {unit}");
        }
        value /= 1024.0;
    }
    unreachable!("the loop returns at TiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_beyond_the_machine_is_refused_in_words() {
        check_fits_in_memory(1 << 20, "one MiB").unwrap();
        let err = check_fits_in_memory(u64::MAX, "--hidden-size 1000000")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "--hidden-size 1000000 needs about 16777216.0 TiB of memory; this machine has"
            ),
            "{err}"
        );
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
    }
}
