//! How many CPUs this process may keep busy: its affinity mask, lowered to its cgroup's quota.
//!
//! This module owns that one number, which sizes the artifact compressor's threads. The
//! affinity mask (`sched_getaffinity`) is what `taskset`, cpusets and a Kubernetes static CPU
//! policy give the container. A CPU limit is a CFS quota instead, which the mask does not
//! show: it is read from cgroup v2's `cpu.max` where a container sees its own cgroup, at
//! `/sys/fs/cgroup` (cgroup v2 with a cgroup namespace, the default of containerd, CRI-O and
//! Docker on cgroup v2). cgroup v1, or a cgroup mounted elsewhere, is not looked at: a quota
//! there costs only some time slicing between our threads, never correctness.

use std::mem;
use std::path::Path;

use crate::sys::fsx;

/// The CPUs this process may keep busy, at least 1.
pub fn usable() -> usize {
    affinity().min(quota()).max(1)
}

/// The number of CPUs in this thread's affinity mask; 1 when it cannot be read (more CPUs
/// than a `cpu_set_t` holds), so that nothing is spread over CPUs we may not have.
fn affinity() -> usize {
    // SAFETY: cpu_set_t is a plain bit array, for which all zeros is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    // SAFETY: set is a valid, writable cpu_set_t of exactly the size passed.
    let r = unsafe { libc::sched_getaffinity(0, mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return 1;
    }
    // SAFETY: set is initialised (zeroed, then filled in by the kernel).
    let n = unsafe { libc::CPU_COUNT(&set) };
    usize::try_from(n).unwrap_or(1)
}

/// The cgroup v2 CPU quota in whole CPUs, as `cpu.max` says it; `usize::MAX` when there is none
/// or it cannot be read.
fn quota() -> usize {
    match fsx::read_small(Path::new("/sys/fs/cgroup/cpu.max"), 64) {
        Ok(Some(text)) => parse_cpu_max(&text),
        _ => usize::MAX,
    }
}

/// `cpu.max` is `QUOTA PERIOD` in microseconds, or `max PERIOD` for no limit. A fraction of a
/// CPU rounds down (1.5 CPUs: 1 thread, as Go's automaxprocs does), but never below 1.
fn parse_cpu_max(text: &[u8]) -> usize {
    let text = std::str::from_utf8(text).unwrap_or_default();
    let mut fields = text.split_ascii_whitespace().map(|f| f.parse::<u64>().ok());
    match (fields.next().flatten(), fields.next().flatten()) {
        (Some(quota), Some(period)) if period > 0 => {
            usize::try_from(quota / period).unwrap_or(usize::MAX).max(1)
        }
        _ => usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_max_quotas() {
        assert_eq!(parse_cpu_max(b"max 100000\n"), usize::MAX);
        assert_eq!(parse_cpu_max(b"200000 100000\n"), 2);
        assert_eq!(parse_cpu_max(b"150000 100000\n"), 1);
        assert_eq!(parse_cpu_max(b"50000 100000\n"), 1);
        assert_eq!(parse_cpu_max(b"400000 100000"), 4);
        assert_eq!(parse_cpu_max(b""), usize::MAX);
        assert_eq!(parse_cpu_max(b"100000 0"), usize::MAX);
        assert_eq!(parse_cpu_max(b"garbage"), usize::MAX);
    }

    #[test]
    fn at_least_one_cpu() {
        let n = usable();
        assert!(n >= 1);
        assert!(n <= affinity());
    }
}
