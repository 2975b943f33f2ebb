//! The "exec" section: buffered exec, as Node's `execFile`/`exec`, side by side with
//! tokio::process's `output()`, a raw pipe read loop and Node.js.
//!
//! Two parts:
//! - throughput: a child writes 1 GiB of zeros (`head -c 1073741824 /dev/zero`) and every
//!   peer collects all of it; MiB/s, with a raw blocking pipe read loop as the limit;
//! - rate: exec of `/bin/true` per second at concurrency 1 and 8.

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use tokio::io::AsyncReadExt;
use tokio::runtime::Runtime;

use super::doc::{Section, Table};
use super::{json_u64, median, rotation, spread, time_async, Env, Options, Rate};
use crate::BoxError;

mod bulk;
#[allow(unused_imports)]
pub(crate) use bulk::*;
mod rate;
#[allow(unused_imports)]
pub(crate) use rate::*;

/// The program every throughput peer runs, with [`bulk_args`].
const BULK_PROGRAM: &str = "head";
/// The bytes the child writes in a full run: 1 GiB.
const BULK_BYTES: u64 = 1 << 30;
/// The bytes the child writes with `--quick`: 64 MiB.
const QUICK_BULK_BYTES: u64 = 64 << 20;
/// The bytes of the untimed warm-up run of each peer.
const BULK_WARMUP_BYTES: u64 = 16 << 20;
/// Timed runs per throughput peer, one per round (`--quick`: 3).
const BULK_ROUNDS: usize = 5;
/// childproc's `maxBuffer` for the throughput runs: above the output, so nothing is cut.
const MAX_BUFFER: usize = 2 << 30;
/// Below this the Node.js throughput run does not fall back to a smaller size any more.
const NODE_MIN_BYTES: u64 = 16 << 20;
/// The reused buffer of the "counting" raw pipe loop.
const COUNT_BUF: usize = 1 << 20;

/// The program of the rate part.
const RATE_PROGRAM: &str = "/bin/true";
/// Execs timed per rate peer and concurrency in a full run (`--quick`: a tenth).
const EXECS: u64 = 1000;
/// Untimed execs per rate peer and concurrency before timing starts.
const WARMUP: u64 = 20;
/// The concurrency levels of the rate part.
const CONCURRENCY: [usize; 2] = [1, 8];
/// Rounds per concurrency of the rate part (see `spawn::ROUNDS`).
const RATE_ROUNDS: u64 = 10;

/// The arguments of `head` that make it write `bytes` zeros.
fn bulk_args(bytes: u64) -> [String; 3] {
    ["-c".to_string(), bytes.to_string(), "/dev/zero".to_string()]
}

/// A way of collecting the child's whole stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bulk {
    /// `childproc::exec_file(..).max_buffer(2 GiB).encoding(Encoding::Buffer).await`.
    Exec,
    /// [`Bulk::Exec`] on a current-thread runtime.
    ExecCurrent,
    /// `childproc::exec_file_sync(..).max_buffer(2 GiB).encoding(Encoding::Buffer).run()`.
    ExecSync,
    /// `childproc::Command::spawn` + tokio `read_to_end` of `child.stdout` + `wait`.
    Pipe,
    /// `tokio::process::Command::output()`.
    Tokio,
    /// [`Bulk::Tokio`] on a current-thread runtime.
    TokioCurrent,
    /// std::process, a blocking `read` loop into one preallocated Vec of the output's size.
    RawVec,
    /// std::process, a blocking `read` loop into one reused 1 MiB buffer, counting bytes.
    RawCount,
    /// [`Bulk::RawVec`] with the pipe non-blocking: `read` until it would block, then
    /// `epoll_wait`, on one thread: the floor of any reactor's collector.
    RawEpoll,
    /// Node.js `execFile(.., { encoding: 'buffer', maxBuffer: 2 ** 31 })`.
    Node,
    /// Bun running the same script.
    Bun,
    /// Deno running the same script.
    Deno,
}

impl Bulk {
    /// Every throughput peer, in table order.
    const ALL: [Bulk; 12] = [
        Bulk::Exec,
        Bulk::ExecCurrent,
        Bulk::ExecSync,
        Bulk::Pipe,
        Bulk::Tokio,
        Bulk::TokioCurrent,
        Bulk::RawVec,
        Bulk::RawEpoll,
        Bulk::RawCount,
        Bulk::Node,
        Bulk::Bun,
        Bulk::Deno,
    ];

    /// The name shown in output.
    fn name(self) -> &'static str {
        match self {
            Bulk::Exec => "childproc exec_file (Buffer)",
            Bulk::ExecCurrent => "childproc exec_file, current-thread",
            Bulk::ExecSync => "childproc exec_file_sync",
            Bulk::Pipe => "childproc spawn + read_to_end",
            Bulk::Tokio => "tokio::process output()",
            Bulk::TokioCurrent => "tokio output(), current-thread",
            Bulk::RawVec => "raw pipe → preallocated Vec",
            Bulk::RawCount => "raw pipe → reused 1 MiB buffer",
            Bulk::RawEpoll => "raw pipe → preallocated Vec, epoll",
            Bulk::Node => "Node.js execFile (buffer)",
            Bulk::Bun => "Bun execFile (buffer)",
            Bulk::Deno => "Deno execFile (buffer)",
        }
    }

    /// The JavaScript runtime that runs this peer's script, if it is one and is present.
    fn runtime(self, env: &Env) -> Option<&super::Node> {
        match self {
            Bulk::Node => env.node.as_ref(),
            Bulk::Bun => env.bun.as_ref(),
            Bulk::Deno => env.deno.as_ref(),
            _ => None,
        }
    }

    fn is_js(self) -> bool {
        matches!(self, Bulk::Node | Bulk::Bun | Bulk::Deno)
    }

    fn index(self) -> usize {
        Bulk::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// A peer of the rate part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Execs {
    /// `childproc::exec_file("/bin/true", []).await`.
    ExecFile,
    /// `childproc::exec("/bin/true").await`, through `/bin/sh -c`.
    Exec,
    /// `tokio::process::Command::new("/bin/true").output().await`.
    Tokio,
    /// Node.js `execFile('/bin/true')`.
    NodeExecFile,
    /// Node.js `exec('/bin/true')`, through `/bin/sh -c`.
    NodeExec,
    /// Bun running the same `execFile('/bin/true')` script.
    BunExecFile,
    /// Deno running the same `execFile('/bin/true')` script.
    DenoExecFile,
    /// C `posix_spawn` of `/bin/sh -c /bin/true` and `waitpid` (xtask/bench/rawspawn.c), no
    /// pipes: the shell's own cost, which bounds every `exec`.
    RawSh,
}

impl Execs {
    /// Every rate peer, in table order.
    const ALL: [Execs; 8] = [
        Execs::ExecFile,
        Execs::Exec,
        Execs::Tokio,
        Execs::NodeExecFile,
        Execs::NodeExec,
        Execs::BunExecFile,
        Execs::DenoExecFile,
        Execs::RawSh,
    ];

    /// The name shown in output.
    fn name(self) -> &'static str {
        match self {
            Execs::ExecFile => "childproc exec_file",
            Execs::Exec => "childproc exec",
            Execs::Tokio => "tokio output()",
            Execs::NodeExecFile => "Node.js execFile",
            Execs::NodeExec => "Node.js exec",
            Execs::BunExecFile => "Bun execFile",
            Execs::DenoExecFile => "Deno execFile",
            Execs::RawSh => "C posix_spawn sh -c",
        }
    }

    /// The JavaScript runtime that measures this peer, and the function it times.
    fn runtime(self, env: &Env) -> Option<(&super::Node, &'static str)> {
        match self {
            Execs::NodeExecFile => Some((env.node.as_ref()?, "execFile")),
            Execs::NodeExec => Some((env.node.as_ref()?, "exec")),
            Execs::BunExecFile => Some((env.bun.as_ref()?, "execFile")),
            Execs::DenoExecFile => Some((env.deno.as_ref()?, "execFile")),
            _ => None,
        }
    }

    fn is_js(self) -> bool {
        matches!(
            self,
            Execs::NodeExecFile | Execs::NodeExec | Execs::BunExecFile | Execs::DenoExecFile
        )
    }

    fn index(self) -> usize {
        Execs::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// Measures both parts and returns the section for the docs.
pub(super) fn run(opts: &Options, env: &Env) -> Result<Section, BoxError> {
    let rts = Runtimes {
        multi: tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
        current: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    };
    let workers = rts.multi.metrics().num_workers();
    let started = Instant::now();
    let bulk = throughput(opts, env, &rts, false)?;
    let loaded = throughput(opts, env, &rts, true)?;
    let rate = rate(opts, env, &rts.multi)?;
    println!(
        "exec: measured in {:.0} s\n",
        started.elapsed().as_secs_f64()
    );

    let node = env
        .node
        .as_ref()
        .map_or("not found", |n| n.version.as_str());
    let body = format!(
        "## Exec\n\n\
         Buffered exec — run a child and collect all of its output — as Node's\n\
         `execFile`/`exec`, next to tokio::process's `output()`, a raw pipe read loop and\n\
         Node.js {node} (timed inside `xtask/bench/exec.js`, so Node's startup is not\n\
         counted). childproc and tokio run on one multi-thread runtime ({workers} worker\n\
         threads) unless a row says current-thread. A ratio above 1 means childproc is faster.\n\n\
         ### Throughput\n\n{}\n{}\n\
         ### Rate\n\n{}",
        bulk.render(),
        loaded.render_loaded(),
        rate.render()
    );
    Ok(Section { name: "exec", body })
}

/// A rate of bytes in MiB/s.
fn mib(rate: Rate) -> f64 {
    rate.per_sec() / f64::from(1u32 << 20)
}

/// A MiB/s cell.
fn mib_cell(rate: Option<Rate>) -> String {
    rate.map_or_else(dash, |r| format!("{:.0}", mib(r)))
}

/// `ours ÷ theirs` by `metric`, as `0.95×`, or a dash if either is missing.
fn ratio(ours: Option<Rate>, theirs: Option<Rate>, metric: fn(Rate) -> f64) -> String {
    match (ours, theirs) {
        (Some(o), Some(t)) if metric(t) > 0.0 => format!("{:.2}×", metric(o) / metric(t)),
        _ => dash(),
    }
}

fn dash() -> String {
    "—".to_string()
}

/// A byte count as `1 GiB`, `64 MiB` or `N bytes`.
fn size(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.trailing_zeros() >= 30 {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1 << 20 && bytes.trailing_zeros() >= 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(1 << 30), "1 GiB");
        assert_eq!(size(64 << 20), "64 MiB");
        assert_eq!(size(1000), "1000 bytes");
    }

    #[test]
    fn ratios() {
        let r = |count| {
            Some(Rate {
                count,
                elapsed: std::time::Duration::from_secs(1),
            })
        };
        assert_eq!(ratio(r(3), r(2), Rate::per_sec), "1.50×");
        assert_eq!(ratio(r(3), None, Rate::per_sec), "—");
        assert_eq!(ratio(r(3), r(0), Rate::per_sec), "—");
    }
}
