//! What a child cost: [`ResourceUsage`], the kernel's accounting of a reaped child. Below the
//! child, exec, the sync trio and the pool, which all report it.

use std::time::Duration;

use crate::sys::RawUsage;

/// What a child cost, as the kernel counted it: its `rusage`, gathered when it was reaped
/// (from the same `wait4` that reads its exit status; nothing is read from `/proc`). It
/// covers the child and the descendants it waited for. Beyond Node, whose
/// `process.resourceUsage()` is only for the process itself; Bun's
/// `subprocess.resourceUsage()` is the nearest, and the field names follow it where they fit.
///
/// On Linux the maximum RSS of a child created without copying its parent (childproc's
/// clone-vfork engine, and every `posix_spawn`) is at least its parent's peak RSS at the
/// moment of creation: the kernel records the address space the child leaves at `execve`
/// (the parent's, shared until then) as part of the child's high-water mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ResourceUsage {
    /// CPU time in user mode (Bun's `cpuTime.user`).
    pub user_time: Duration,
    /// CPU time in the kernel on its behalf (Bun's `cpuTime.system`).
    pub system_time: Duration,
    /// The largest resident set it had, in bytes (Bun's `maxRSS`; see above for Linux).
    pub max_rss: u64,
    /// Page faults served without I/O (Node's `minorPageFault`).
    pub minor_page_faults: u64,
    /// Page faults that needed I/O (Node's `majorPageFault`).
    pub major_page_faults: u64,
    /// Context switches it made, waiting (Bun's `contextSwitches.voluntary`).
    pub voluntary_context_switches: u64,
    /// Context switches forced on it (Bun's `contextSwitches.involuntary`).
    pub involuntary_context_switches: u64,
    /// File system inputs (Bun's `ops.in`).
    pub block_inputs: u64,
    /// File system outputs (Bun's `ops.out`).
    pub block_outputs: u64,
    /// Signals received (Bun's `signalCount`; 0 on Linux, which does not count them).
    pub signals: u64,
    /// Swaps (Bun's `swapCount`; 0 on Linux).
    pub swaps: u64,
}

impl ResourceUsage {
    /// User and system CPU time together (Bun's `cpuTime.total`).
    pub fn cpu_time(&self) -> Duration {
        self.user_time + self.system_time
    }

    pub(crate) fn from_raw(raw: RawUsage) -> ResourceUsage {
        ResourceUsage {
            user_time: Duration::from_micros(raw.user_us),
            system_time: Duration::from_micros(raw.system_us),
            max_rss: raw.max_rss_bytes,
            minor_page_faults: raw.minor_faults,
            major_page_faults: raw.major_faults,
            voluntary_context_switches: raw.voluntary_switches,
            involuntary_context_switches: raw.involuntary_switches,
            block_inputs: raw.block_inputs,
            block_outputs: raw.block_outputs,
            signals: raw.signals,
            swaps: raw.swaps,
        }
    }

    /// The usage of several children together: times and counts summed, the largest RSS
    /// (for the pool, which needs the `ipc` feature).
    #[cfg(feature = "ipc")]
    pub(crate) fn add(&mut self, other: &ResourceUsage) {
        self.user_time += other.user_time;
        self.system_time += other.system_time;
        self.max_rss = self.max_rss.max(other.max_rss);
        self.minor_page_faults += other.minor_page_faults;
        self.major_page_faults += other.major_page_faults;
        self.voluntary_context_switches += other.voluntary_context_switches;
        self.involuntary_context_switches += other.involuntary_context_switches;
        self.block_inputs += other.block_inputs;
        self.block_outputs += other.block_outputs;
        self.signals += other.signals;
        self.swaps += other.swaps;
    }
}
