//! Where the workers of a pool row run. On this two-CPU machine the pipelined ×2 row is
//! decided by where the kernel puts the two workers: both on one CPU, a worker waits for the
//! other's turn before it can answer; one on each, both answer at once. The kernel chooses
//! anew each run (by later wake-ups, not by the order of the spawns), so besides the row as
//! the kernel places it, the section runs the floors, the childproc pool and the Node.js
//! dispatcher with their workers pinned each way (`taskset -c`, the same for every peer;
//! the parent is left free).

use std::ffi::OsString;
use std::process::Command;

use crate::BoxError;

/// Where a row's workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placement {
    /// Where the kernel puts them (what a user gets).
    Kernel,
    /// All on one CPU.
    OneCpu,
    /// Worker `i` on the `i`-th allowed CPU (round robin).
    OneEach,
}

impl Placement {
    /// How the table names the placement (`""` for the kernel's).
    pub(super) fn label(self) -> &'static str {
        match self {
            Placement::Kernel => "",
            Placement::OneCpu => "pinned to one CPU",
            Placement::OneEach => "pinned one per CPU",
        }
    }

    /// `", pinned …"` for a pinned placement, `""` for the kernel's: after a row's name.
    pub(super) fn suffix(self) -> String {
        match self {
            Placement::Kernel => String::new(),
            p => format!(", {}", p.label()),
        }
    }

    /// The CPU worker `i` is pinned to, out of `cpus` (`None`: not pinned).
    pub(super) fn cpu(self, i: usize, cpus: &[usize]) -> Option<usize> {
        match self {
            Placement::Kernel => None,
            Placement::OneCpu => cpus.first().copied(),
            Placement::OneEach => cpus.get(i % cpus.len().max(1)).copied(),
        }
    }

    /// The CPU of each of `workers` workers (`None`: not pinned).
    pub(super) fn pins(self, workers: usize, cpus: &[usize]) -> Vec<Option<usize>> {
        (0..workers).map(|i| self.cpu(i, cpus)).collect()
    }

    /// The CPUs of `workers` workers, comma-separated, as `pool.js dispatch` takes them.
    pub(super) fn list(self, workers: usize, cpus: &[usize]) -> Option<String> {
        let each: Option<Vec<String>> = (0..workers)
            .map(|i| self.cpu(i, cpus).map(|c| c.to_string()))
            .collect();
        each.map(|e| e.join(","))
    }
}

/// `program args`, run pinned to `cpu` if one is given: `taskset -c CPU program args`.
pub(super) fn command(cpu: Option<usize>, program: OsString, args: &[&str]) -> Command {
    match cpu {
        None => {
            let mut c = Command::new(program);
            c.args(args);
            c
        }
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(program).args(args);
            c
        }
    }
}

/// A Rust worker of the pool rows (`bench-worker pool-worker`), run through `taskset -c` if
/// pinned to a CPU.
pub(super) fn rust_worker(pin: Option<usize>) -> Result<childproc::Fork, BoxError> {
    match pin {
        None => Ok(childproc::fork_current_exe([
            "bench-worker",
            "pool-worker",
        ])?),
        Some(cpu) => {
            let me = std::env::current_exe()?;
            let cpu = cpu.to_string();
            let args = [std::ffi::OsStr::new("-c"), cpu.as_ref(), me.as_ref()];
            Ok(childproc::fork_exe(
                "taskset",
                args.into_iter()
                    .chain(["bench-worker".as_ref(), "pool-worker".as_ref()]),
            ))
        }
    }
}

/// The CPUs this process may run on, when there are two or more and `taskset` runs: the
/// pinned rows need both. `None` (with the reason) skips them.
pub(super) fn cpus() -> Result<Vec<usize>, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("/proc/self/status: {e}"))?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .ok_or("no Cpus_allowed_list in /proc/self/status")?;
    let cpus = parse_list(list.trim()).ok_or_else(|| format!("a CPU list {list:?}"))?;
    if cpus.len() < 2 {
        return Err(format!("only {} CPU allowed", cpus.len()));
    }
    let taskset = Command::new("taskset").args(["-c", "0", "true"]).output();
    if !taskset.is_ok_and(|o| o.status.success()) {
        return Err("`taskset` does not run".into());
    }
    Ok(cpus)
}

/// `0-1,4,6-7` → `[0, 1, 4, 6, 7]`.
fn parse_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().ok()?..=b.parse().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_and_place() {
        assert_eq!(parse_list("0-1,4,6-7"), Some(vec![0, 1, 4, 6, 7]));
        assert_eq!(parse_list("3"), Some(vec![3]));
        assert_eq!(parse_list("a"), None);
        let cpus = [2, 5];
        assert_eq!(Placement::Kernel.list(2, &cpus), None);
        assert_eq!(Placement::OneCpu.list(2, &cpus).as_deref(), Some("2,2"));
        assert_eq!(Placement::OneEach.list(3, &cpus).as_deref(), Some("2,5,2"));
    }
}
