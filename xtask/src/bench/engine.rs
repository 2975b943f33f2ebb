//! The "engine" section (issue 6): spawn-and-wait of `/bin/true` from a small parent and
//! from a parent holding 4 GiB of resident memory, for four kinds of child, with
//! childproc, tokio::process, std::process, Node.js and raw C (`posix_spawn`, `vfork`).
//!
//! A runtime that creates children with `fork()` copies the parent's page tables on every
//! spawn, so its rate falls with the parent's size; `vfork`-class creation (childproc's
//! `clone(CLONE_VM | CLONE_VFORK)`, glibc's `posix_spawn`) does not. tokio::process and
//! std::process use `posix_spawn` for a plain child but must fall back to `fork()` as soon
//! as a `pre_exec` hook is needed (a new session, an fd at 3); Node.js (libuv) always forks.
//!
//! Every measurement runs in a process of its own, one per round and runner, so the bench
//! process itself stays small: the Rust peers in `xtask bench-worker engine …` (this same
//! binary, see [`worker`]), Node.js in `xtask/bench/engine.js`, raw C in
//! `xtask/bench/rawspawn.c` (compiled here with `cc -O2` into `target/`). With a big parent,
//! each of those processes first allocates 4 GiB and writes one byte per 4 KiB page.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use super::doc::{Section, Table};

pub(super) mod paired;
use super::{json_u64, median, rotation, spread, time_async, Env, Options, Rate};
use crate::{workspace_root, BoxError};

mod report;
#[allow(unused_imports)]
pub(crate) use report::*;
mod runner;
#[allow(unused_imports)]
pub(crate) use runner::*;

/// The program every peer spawns.
const PROGRAM: &str = "/bin/true";
/// The big parent's resident memory, in GiB.
const BIG_GIB: u64 = 4;
/// Concurrency levels measured with the small parent (the big parent: 1 only).
const SMALL_CONCURRENCY: [usize; 2] = [1, 8];

/// How much to measure: per round, per peer, kind and parent.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Rounds with the small parent (per concurrency).
    small_rounds: usize,
    /// Timed spawns per round with the small parent.
    small_spawns: u64,
    /// Rounds with the big parent.
    big_rounds: usize,
    /// Timed spawns per round with the big parent, for peers that do not fork.
    big_fast_spawns: u64,
    /// Timed spawns per round with the big parent, for peers that fork (a few per second).
    big_slow_spawns: u64,
    /// Untimed spawns before each measurement of a fast peer.
    warmup: u64,
    /// Untimed spawns before each measurement of a forking peer in the big parent.
    slow_warmup: u64,
}

impl Plan {
    /// The plan for a full run or a `--quick` one.
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                small_rounds: 2,
                small_spawns: 40,
                big_rounds: 1,
                big_fast_spawns: 40,
                big_slow_spawns: 3,
                warmup: 5,
                slow_warmup: 1,
            }
        } else {
            Plan {
                small_rounds: 5,
                small_spawns: 150,
                big_rounds: 3,
                big_fast_spawns: 200,
                big_slow_spawns: 8,
                warmup: 20,
                slow_warmup: 1,
            }
        }
    }
}

/// What the child gets besides stdin, stdout and stderr on `/dev/null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Nothing more.
    Plain,
    /// A new session (`setsid`): Node's `detached`.
    Detached,
    /// One extra pipe at fd 3.
    Fd,
    /// One end of a socketpair at fd 3: what an IPC child needs.
    Ipc,
}

impl Kind {
    /// Every kind, in table order.
    const ALL: [Kind; 4] = [Kind::Plain, Kind::Detached, Kind::Fd, Kind::Ipc];

    /// The name on the command lines of the worker and the scripts.
    fn key(self) -> &'static str {
        match self {
            Kind::Plain => "plain",
            Kind::Detached => "detached",
            Kind::Fd => "fd",
            Kind::Ipc => "ipc",
        }
    }

    /// The name shown in the tables.
    fn label(self) -> &'static str {
        match self {
            Kind::Plain => "plain",
            Kind::Detached => "detached",
            Kind::Fd => "extra fd",
            Kind::Ipc => "IPC-like",
        }
    }

    /// The kind named `key`.
    fn parse(key: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.key() == key)
    }
}

/// A way of spawning being compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Peer {
    /// `childproc::Command::spawn` + `ChildProcess::wait`.
    Childproc,
    /// `tokio::process::Command::status`.
    Tokio,
    /// `std::process::Command::status`, one OS thread per loop.
    Std,
    /// Node.js `child_process.spawn` + `'exit'`.
    Node,
    /// C `posix_spawn` + `waitpid`.
    PosixSpawn,
    /// C `vfork` + `execve` + `waitpid`.
    Vfork,
}

impl Peer {
    /// Every peer, in table order.
    const ALL: [Peer; 6] = [
        Peer::Childproc,
        Peer::Tokio,
        Peer::Std,
        Peer::Node,
        Peer::PosixSpawn,
        Peer::Vfork,
    ];
    /// The peers measured inside the Rust worker.
    const RUST: [Peer; 3] = [Peer::Childproc, Peer::Tokio, Peer::Std];

    /// The name shown in output.
    fn name(self) -> &'static str {
        match self {
            Peer::Childproc => "childproc",
            Peer::Tokio => "tokio::process",
            Peer::Std => "std::process",
            Peer::Node => "Node.js",
            Peer::PosixSpawn => "C posix_spawn",
            Peer::Vfork => "C vfork",
        }
    }

    /// The name on the worker's command line.
    fn key(self) -> &'static str {
        match self {
            Peer::Childproc => "childproc",
            Peer::Tokio => "tokio",
            Peer::Std => "std",
            Peer::Node => "node",
            Peer::PosixSpawn => "posix_spawn",
            Peer::Vfork => "vfork",
        }
    }

    /// Whether this peer creates this kind of child with `fork()`, so that it slows down
    /// with the parent's size and gets fewer spawns in the big parent.
    fn forks(self, kind: Kind) -> bool {
        match self {
            Peer::Tokio | Peer::Std => kind != Kind::Plain,
            Peer::Node => true,
            Peer::Childproc | Peer::PosixSpawn | Peer::Vfork => false,
        }
    }
}

/// A process measuring one or more peers: one per round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runner {
    /// `xtask bench-worker engine`: childproc, tokio::process and std::process.
    Rust,
    /// `node xtask/bench/engine.js`.
    Node,
    /// `target/rawspawn posix_spawn`.
    PosixSpawn,
    /// `target/rawspawn vfork`.
    Vfork,
}

/// One measurement: a peer, a kind of child, and the parent's peak RSS afterwards.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Who spawned.
    peer: Peer,
    /// What kind of child.
    kind: Kind,
    /// The timed spawns.
    rate: Rate,
    /// The parent's VmHWM (kB) right after this measurement.
    vmhwm_kb: u64,
}

/// Where a measurement belongs: big parent?, concurrency, peer, kind.
type Key = (bool, usize, Peer, Kind);

/// Everything measured.
#[derive(Default)]
struct Results {
    /// The rounds of each (big, concurrency, peer, kind).
    rounds: BTreeMap<Key, Vec<Rate>>,
    /// The largest VmHWM of each (big, peer), in kB.
    vmhwm_kb: BTreeMap<(bool, Peer), u64>,
}

impl Results {
    /// Records the samples of one runner.
    fn add(&mut self, big: bool, concurrency: usize, samples: &[Sample]) {
        for s in samples {
            self.rounds
                .entry((big, concurrency, s.peer, s.kind))
                .or_default()
                .push(s.rate);
            let hwm = self.vmhwm_kb.entry((big, s.peer)).or_default();
            *hwm = (*hwm).max(s.vmhwm_kb);
        }
    }

    /// The median round of (big, concurrency, peer, kind).
    fn rate(&self, big: bool, concurrency: usize, peer: Peer, kind: Kind) -> Option<Rate> {
        median(self.rounds.get(&(big, concurrency, peer, kind))?)
    }
}

/// What the runners need.
struct Ctx<'a> {
    /// The bench environment (Node.js, the scripts).
    env: &'a Env,
    /// The compiled `rawspawn`, if `cc` worked.
    rawspawn: Option<PathBuf>,
    /// This binary, to start the worker.
    xtask: PathBuf,
    /// The counts.
    plan: Plan,
}

/// Measures every peer and kind with the small and the big parent and returns the section.
pub(super) fn run(opts: &Options, env: &Env) -> Result<Section, BoxError> {
    let plan = Plan::new(opts.quick);
    let rawspawn = match compile_rawspawn(&env.scripts) {
        Ok(path) => Some(path),
        Err(e) => {
            println!("note: {e}; the raw C columns are skipped\n");
            None
        }
    };
    let ctx = Ctx {
        env,
        rawspawn,
        xtask: std::env::current_exe()?,
        plan,
    };
    let mut runners = vec![Runner::Rust];
    if env.node.is_some() {
        runners.push(Runner::Node);
    }
    if ctx.rawspawn.is_some() {
        runners.extend([Runner::PosixSpawn, Runner::Vfork]);
    }
    println!(
        "engine: {PROGRAM} from a small parent ({} rounds of {} spawns per peer, kind and \
         concurrency) and from a {BIG_GIB} GiB parent ({} rounds of {} spawns, {} for peers \
         that fork)\n",
        plan.small_rounds,
        plan.small_spawns,
        plan.big_rounds,
        plan.big_fast_spawns,
        plan.big_slow_spawns
    );

    let mut results = Results::default();
    let start = Instant::now();
    let phases = SMALL_CONCURRENCY
        .iter()
        .map(|&c| (false, c, plan.small_rounds))
        .chain(std::iter::once((true, 1, plan.big_rounds)));
    for (big, concurrency, rounds) in phases {
        for round in 0..rounds {
            for runner in rotation(&runners, round) {
                let samples = measure(&ctx, runner, big, concurrency, round)?;
                for s in &samples {
                    println!(
                        "  {} parent, concurrency {concurrency}, round {}: {:<14} {:<8} {:>6.0} \
                         spawns/s  (VmHWM {} MiB)",
                        if big { "4 GiB" } else { "small" },
                        round + 1,
                        s.peer.name(),
                        s.kind.key(),
                        s.rate.per_sec(),
                        s.vmhwm_kb / 1024
                    );
                }
                results.add(big, concurrency, &samples);
            }
        }
    }
    let pairs = paired::measure(&ctx, plan.small_rounds, plan.small_spawns, plan.warmup)?;
    println!("  ({:.0} s)\n", start.elapsed().as_secs_f64());

    let mut tables = Tables::new(&results);
    tables.add_paired(&pairs);
    println!("{}", tables.render_plain());
    Ok(Section {
        name: "engine",
        body: body(&ctx, &tables),
    })
}

/// Runs one runner for one round and returns what it measured.
fn measure(
    ctx: &Ctx<'_>,
    runner: Runner,
    big: bool,
    concurrency: usize,
    round: usize,
) -> Result<Vec<Sample>, BoxError> {
    let plan = ctx.plan;
    // Timed and warm-up spawns for one peer and kind.
    let counts = |peer: Peer, kind: Kind| {
        if !big {
            (plan.small_spawns, plan.warmup)
        } else if peer.forks(kind) {
            (plan.big_slow_spawns, plan.slow_warmup)
        } else {
            (plan.big_fast_spawns, plan.warmup)
        }
    };
    let gib = if big { BIG_GIB } else { 0 };
    let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.key()).collect();
    let kinds = kinds.join(",");
    match runner {
        Runner::Rust => {
            let mut items = Vec::new();
            let mut expected = Vec::new();
            for peer in rotation(&Peer::RUST, round) {
                for kind in Kind::ALL {
                    let (n, w) = counts(peer, kind);
                    items.push(format!("{}:{}:{n}:{w}", peer.key(), kind.key()));
                    expected.push((peer, kind, n));
                }
            }
            let mut cmd = StdCommand::new(&ctx.xtask);
            cmd.args(["bench-worker", "engine", &gib.to_string()])
                .arg(concurrency.to_string())
                .arg(items.join(","));
            parse_lines(&output(&mut cmd, "the engine worker")?, &expected)
        }
        Runner::Node => {
            let node = ctx.env.node.as_ref().ok_or("node was not found")?;
            let (count, w) = counts(Peer::Node, Kind::Plain);
            let args = [
                kinds,
                count.to_string(),
                w.to_string(),
                concurrency.to_string(),
                gib.to_string(),
            ];
            let out = node.run(&ctx.env.scripts.join("engine.js"), &args)?;
            let expected: Vec<_> = Kind::ALL.map(|k| (Peer::Node, k, count)).to_vec();
            parse_lines(&out, &expected)
        }
        Runner::PosixSpawn | Runner::Vfork => {
            let (peer, mode) = if runner == Runner::Vfork {
                (Peer::Vfork, "vfork")
            } else {
                (Peer::PosixSpawn, "posix_spawn")
            };
            let exe = ctx.rawspawn.as_ref().ok_or("rawspawn was not built")?;
            let (count, w) = counts(peer, Kind::Plain);
            let mut cmd = StdCommand::new(exe);
            cmd.args([mode, &kinds])
                .args([count, w].map(|v| v.to_string()))
                .args([concurrency.to_string(), gib.to_string()]);
            let expected: Vec<_> = Kind::ALL.map(|k| (peer, k, count)).to_vec();
            parse_lines(&output(&mut cmd, "rawspawn")?, &expected)
        }
    }
}

/// The stdout of `cmd`; a failure is an error carrying stderr.
pub(super) fn output(cmd: &mut StdCommand, what: &str) -> Result<String, BoxError> {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Reads one JSON line per expected (peer, kind, spawns), in order:
/// `{"kind":"plain","spawns":N,"elapsed_ns":T,"vmhwm_kb":K}`.
fn parse_lines(out: &str, expected: &[(Peer, Kind, u64)]) -> Result<Vec<Sample>, BoxError> {
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with('{')).collect();
    if lines.len() != expected.len() {
        return Err(format!(
            "expected {} result lines, got {}: {out:?}",
            expected.len(),
            lines.len()
        )
        .into());
    }
    lines
        .iter()
        .zip(expected)
        .map(|(line, &(peer, kind, n))| {
            let what = peer.name();
            if !line.contains(&format!("\"kind\":\"{}\"", kind.key())) {
                return Err(format!("{what}: expected kind {}: {line}", kind.key()).into());
            }
            let count = json_u64(line, "spawns", what)?;
            if count != n {
                return Err(format!("{what} timed {count} spawns, expected {n}").into());
            }
            Ok(Sample {
                peer,
                kind,
                rate: Rate {
                    count,
                    elapsed: Duration::from_nanos(json_u64(line, "elapsed_ns", what)?),
                },
                vmhwm_kb: json_u64(line, "vmhwm_kb", what)?,
            })
        })
        .collect()
}

/// Compiles `rawspawn.c` into `target/rawspawn` with `cc -O2`.
pub(super) fn compile_rawspawn(scripts: &Path) -> Result<PathBuf, BoxError> {
    compile_c(scripts, "rawspawn")
}

/// Compiles `NAME.c` of the bench scripts into `target/NAME` with `cc -O2`.
pub(super) fn compile_c(scripts: &Path, name: &str) -> Result<PathBuf, BoxError> {
    let target = workspace_root().join("target");
    std::fs::create_dir_all(&target)?;
    let exe = target.join(name);
    let out = StdCommand::new("cc")
        .args(["-O2", "-Wall", "-pthread", "-o"])
        .arg(&exe)
        .arg(scripts.join(format!("{name}.c")))
        .output()
        .map_err(|e| format!("cannot run cc: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cc {name}.c failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(exe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_result_lines() {
        let out =
            "{\"kind\":\"plain\",\"spawns\":10,\"elapsed_ns\":1000000000,\"vmhwm_kb\":2048}\n\
                   {\"kind\":\"ipc\",\"spawns\":3,\"elapsed_ns\":500000000,\"vmhwm_kb\":4096}\n";
        let got = parse_lines(
            out,
            &[(Peer::Node, Kind::Plain, 10), (Peer::Node, Kind::Ipc, 3)],
        )
        .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].kind, Kind::Ipc);
        assert_eq!(got[1].vmhwm_kb, 4096);
        assert!((got[0].rate.per_sec() - 10.0).abs() < 1e-9);
        assert!(parse_lines(out, &[(Peer::Node, Kind::Plain, 10)]).is_err());
        assert!(parse_lines(
            out,
            &[(Peer::Node, Kind::Fd, 10), (Peer::Node, Kind::Ipc, 3)]
        )
        .is_err());
    }

    #[test]
    fn only_pre_exec_peers_and_node_fork() {
        assert!(!Peer::Childproc.forks(Kind::Ipc));
        assert!(!Peer::Tokio.forks(Kind::Plain));
        assert!(Peer::Std.forks(Kind::Detached));
        assert!(Peer::Node.forks(Kind::Plain));
    }
}
