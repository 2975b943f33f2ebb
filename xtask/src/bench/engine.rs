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
    let target = workspace_root().join("target");
    std::fs::create_dir_all(&target)?;
    let exe = target.join("rawspawn");
    let out = StdCommand::new("cc")
        .args(["-O2", "-Wall", "-pthread", "-o"])
        .arg(&exe)
        .arg(scripts.join("rawspawn.c"))
        .output()
        .map_err(|e| format!("cannot run cc: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cc rawspawn.c failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(exe)
}

/// The tables of the section.
struct Tables {
    /// Small parent, concurrency 1 and 8: rates and ratios.
    small: Vec<(usize, Table)>,
    /// The big parent: rates and ratios.
    big: Table,
    /// Peak RSS of each parent.
    rss: Table,
    /// The spread of the rounds, concurrency 1.
    spread: Table,
    /// Issue 6's targets, each with whether it holds.
    targets: Vec<String>,
    /// childproc and posix_spawn paired in one process (small parent, concurrency 1).
    paired: Option<Table>,
}

/// A rate cell.
fn rate_cell(r: Option<Rate>) -> String {
    r.map_or_else(|| "—".to_string(), |r| format!("{:.0}", r.per_sec()))
}

/// `ours ÷ theirs`, or `None` if either is missing.
fn ratio(ours: Option<Rate>, theirs: Option<Rate>) -> Option<f64> {
    let (o, t) = (ours?.per_sec(), theirs?.per_sec());
    (t > 0.0).then(|| o / t)
}

/// A ratio cell: two decimals below 10, none above.
fn ratio_cell(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 10.0 => format!("{r:.0}×"),
        Some(r) => format!("{r:.2}×"),
        None => "—".to_string(),
    }
}

impl Tables {
    /// Builds the tables and checks the targets.
    fn new(res: &Results) -> Tables {
        let header = |extra: &[&str]| -> Vec<String> {
            let mut h = vec!["Child".to_string()];
            h.extend(Peer::ALL.map(|p| p.name().to_string()));
            h.extend(extra.iter().map(|s| (*s).to_string()));
            h
        };
        let rates = |big: bool, c: usize, kind: Kind| -> Vec<String> {
            let mut row = vec![kind.label().to_string()];
            row.extend(Peer::ALL.map(|p| rate_cell(res.rate(big, c, p, kind))));
            row
        };
        let mut targets = Vec::new();
        let mut check = |what: String, value: Option<f64>, target: f64| {
            let verdict = match value {
                Some(v) if v >= target => "holds",
                Some(_) => "**missed**",
                None => "not measured",
            };
            targets.push(format!(
                "- {what}: {} (target ≥ {}) — {verdict}",
                ratio_cell(value),
                ratio_cell(Some(target))
            ));
        };

        let small = SMALL_CONCURRENCY
            .iter()
            .map(|&c| {
                let rows = Kind::ALL
                    .iter()
                    .map(|&kind| {
                        let ours = res.rate(false, c, Peer::Childproc, kind);
                        let vs_posix = ratio(ours, res.rate(false, c, Peer::PosixSpawn, kind));
                        let vs_tokio = ratio(ours, res.rate(false, c, Peer::Tokio, kind));
                        if c == 1 {
                            check(
                                format!(
                                    "small parent, {}: childproc ÷ C posix_spawn",
                                    kind.label()
                                ),
                                vs_posix,
                                0.95,
                            );
                            check(
                                format!(
                                    "small parent, {}: childproc ÷ tokio::process",
                                    kind.label()
                                ),
                                vs_tokio,
                                1.1,
                            );
                        }
                        let mut row = rates(false, c, kind);
                        row.extend([ratio_cell(vs_posix), ratio_cell(vs_tokio)]);
                        row
                    })
                    .collect();
                let table = Table {
                    header: header(&["childproc ÷ posix_spawn", "childproc ÷ tokio"]),
                    rows,
                };
                (c, table)
            })
            .collect();

        let big_rows = Kind::ALL
            .iter()
            .map(|&kind| {
                let ours = res.rate(true, 1, Peer::Childproc, kind);
                let own = ratio(ours, res.rate(false, 1, Peer::Childproc, kind));
                let vs_tokio = ratio(ours, res.rate(true, 1, Peer::Tokio, kind));
                let vs_node = ratio(ours, res.rate(true, 1, Peer::Node, kind));
                if kind != Kind::Plain {
                    let label = kind.label();
                    check(
                        format!("{BIG_GIB} GiB parent, {label}: childproc ÷ childproc with a small parent"),
                        own,
                        0.8,
                    );
                    check(
                        format!("{BIG_GIB} GiB parent, {label}: childproc ÷ tokio::process"),
                        vs_tokio,
                        100.0,
                    );
                    check(
                        format!("{BIG_GIB} GiB parent, {label}: childproc ÷ Node.js"),
                        vs_node,
                        100.0,
                    );
                }
                let posix = res.rate(true, 1, Peer::PosixSpawn, kind);
                let posix_own = ratio(posix, res.rate(false, 1, Peer::PosixSpawn, kind));
                let vs_posix = ratio(ours, posix);
                let mut row = rates(true, 1, kind);
                row.extend([own, posix_own, vs_posix, vs_tokio, vs_node].map(ratio_cell));
                row
            })
            .collect();
        let big = Table {
            header: header(&[
                "childproc ÷ its small-parent rate",
                "posix_spawn ÷ its small-parent rate",
                "childproc ÷ posix_spawn",
                "childproc ÷ tokio",
                "childproc ÷ Node.js",
            ]),
            rows: big_rows,
        };

        let mib = |big: bool, peer: Peer| {
            res.vmhwm_kb.get(&(big, peer)).map_or_else(
                || "—".to_string(),
                // kB to MiB for display; a few MiB either way does not matter.
                |kb| format!("{:.0}", *kb as f64 / 1024.0),
            )
        };
        let rss = Table {
            header: [
                "Parent",
                "Rust worker (childproc, tokio, std)",
                "Node.js",
                "C posix_spawn",
                "C vfork",
            ]
            .map(String::from)
            .to_vec(),
            rows: [false, true]
                .iter()
                .map(|&big| {
                    vec![
                        if big {
                            format!("{BIG_GIB} GiB")
                        } else {
                            "small".to_string()
                        },
                        mib(big, Peer::Childproc),
                        mib(big, Peer::Node),
                        mib(big, Peer::PosixSpawn),
                        mib(big, Peer::Vfork),
                    ]
                })
                .collect(),
        };

        let spread_cell = |key: Key| {
            res.rounds.get(&key).and_then(|r| spread(r)).map_or_else(
                || "—".to_string(),
                |(lo, hi)| format!("{:.0}–{:.0}", lo.per_sec(), hi.per_sec()),
            )
        };
        let mut spread_rows = Vec::new();
        for big in [false, true] {
            for kind in Kind::ALL {
                let mut row = vec![format!(
                    "{}, {}",
                    if big { "4 GiB" } else { "small" },
                    kind.label()
                )];
                row.extend(Peer::ALL.map(|p| spread_cell((big, 1, p, kind))));
                spread_rows.push(row);
            }
        }
        let mut spread_header = vec!["Parent, child".to_string()];
        spread_header.extend(Peer::ALL.map(|p| p.name().to_string()));

        Tables {
            small,
            big,
            rss,
            spread: Table {
                header: spread_header,
                rows: spread_rows,
            },
            targets,
            paired: None,
        }
    }

    /// The tables for the terminal.
    /// Adds the paired table and its targets: childproc ÷ posix_spawn measured spawn by spawn
    /// in one process, the same target as the C column's but without the drift between runs.
    fn add_paired(&mut self, pairs: &[paired::Paired]) {
        for p in pairs {
            let ratio = p.ratio();
            let verdict = if ratio >= 0.95 { "holds" } else { "**missed**" };
            self.targets.push(format!(
                "- small parent, {}: childproc ÷ C posix_spawn, paired in one process: {} \
                 (target ≥ 0.95×) — {verdict}",
                p.kind.label(),
                ratio_cell(Some(ratio))
            ));
        }
        self.paired = Some(paired::table(pairs));
    }

    fn render_plain(&self) -> String {
        let mut out = String::new();
        for (c, t) in &self.small {
            let _ = writeln!(
                out,
                "Small parent, concurrency {c} (spawns/s):\n\n{}",
                t.render()
            );
        }
        if let Some(t) = &self.paired {
            let _ = writeln!(
                out,
                "Small parent, concurrency 1, paired with posix_spawn:\n\n{}",
                t.render()
            );
        }
        let _ = writeln!(
            out,
            "{BIG_GIB} GiB parent, concurrency 1 (spawns/s):\n\n{}",
            self.big.render()
        );
        let _ = writeln!(
            out,
            "Peak RSS of the parent (MiB):\n\n{}",
            self.rss.render()
        );
        let _ = writeln!(out, "Targets (issue 6):\n\n{}", self.targets.join("\n"));
        out
    }
}

/// The Markdown of the section.
fn body(ctx: &Ctx<'_>, t: &Tables) -> String {
    let p = ctx.plan;
    let node = ctx.env.node.as_ref().map_or_else(
        || "not found, so its column is empty".to_string(),
        |n| n.version.clone(),
    );
    let c_note = if ctx.rawspawn.is_some() {
        ""
    } else {
        " (`cc` failed on this machine, so the C columns are empty)"
    };
    let paired = t.paired.as_ref().map_or_else(String::new, |table| {
        format!(
            "Small parent, concurrency 1, childproc and C `posix_spawn` *paired*: the columns\n\
             above come from different processes at different moments, and on this machine a\n\
             peer's speed drifts by up to 2× over seconds. So one worker process per kind and\n\
             round ({} rounds of {} pairs, {} warm-up) also alternates a childproc\n\
             spawn-and-wait with glibc's `posix_spawn` and a blocking `waitpid` of the same child\n\
             (the calls of `rawspawn.c`'s `posix_spawn` mode, made from Rust through `libc`),\n\
             swapping which goes first every time. Both create the same child: for extra fd\n\
             and IPC-like, a fresh pipe or socketpair end at fd 3 (childproc\n\
             `.fd(3, Stdio::from(end))`). Mean wall time per spawn; the ratio is\n\
             childproc's rate divided by posix_spawn's:\n\n{}\n",
            p.small_rounds,
            p.small_spawns,
            p.warmup,
            table.render()
        )
    });
    let small = t
        .small
        .iter()
        .map(|(c, table)| format!("Small parent, concurrency {c}:\n\n{}", table.render()))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "## Spawn engine: small and {BIG_GIB} GiB parents\n\n\
         Issue 6: spawn `{PROGRAM}` and wait for it to exit, from a small parent and from a\n\
         parent holding {BIG_GIB} GiB of resident memory (a {BIG_GIB} GiB buffer with one byte\n\
         written per 4 KiB page, so every page is really mapped), for four kinds of child.\n\
         Creating a child with `fork()` copies the parent's page tables, so its cost grows with\n\
         the parent's size; `vfork`-class creation shares the parent's memory until `execve` and\n\
         does not. childproc always uses `clone(CLONE_VM | CLONE_VFORK)`. tokio::process and\n\
         std::process use `posix_spawn` for a plain child but must `fork()` once a `pre_exec`\n\
         hook is needed (for a new session or an fd at 3). Node.js {node} (libuv) forks.\n\n\
         The kinds of child (stdin, stdout and stderr are `/dev/null` in all of them):\n\n\
         - plain: childproc `Command::new(\"{PROGRAM}\").stdio_all(StdioShorthand::Ignore)`;\n  \
           tokio/std `Stdio::null()` ×3; Node `{{ stdio: 'ignore' }}`\n\
         - detached: childproc `.detached(true)`; tokio/std `pre_exec(setsid)`; Node\n  \
           `{{ detached: true, stdio: 'ignore' }}`; C `POSIX_SPAWN_SETSID` / `setsid()`\n\
         - extra fd: childproc `.fd(3, Stdio::Pipe)` (a socketpair, as Node's `'pipe'` above\n  \
           fd 2); tokio/std a fresh pipe put at fd 3 by `pre_exec(dup2)`; Node\n  \
           `{{ stdio: ['ignore', 'ignore', 'ignore', 'pipe'] }}`; C a fresh pipe, `dup2` file\n  \
           action / `dup2`\n\
         - IPC-like: one end of a fresh `UnixStream::pair()` at fd 3 (childproc\n  \
           `.fd(3, Stdio::from(end))`, tokio/std `pre_exec(dup2)`); Node\n  \
           `{{ stdio: ['ignore', 'ignore', 'ignore', 'ipc'] }}`; C a fresh socketpair\n\n\
         childproc waits with `.spawn()?.wait().await`, tokio::process with `.status().await`\n\
         (both on a multi-thread runtime), std::process with a blocking `.status()` (one OS\n\
         thread per loop); Node.js waits for `'exit'` and times itself in\n\
         `xtask/bench/engine.js`; raw C is `xtask/bench/rawspawn.c`, compiled with `cc -O2`{c_note},\n\
         `posix_spawn` or `vfork` + `execve`, then `waitpid` — the physical limit.\n\n\
         Every measurement runs in a fresh parent process per round: the Rust peers in a worker\n\
         (`cargo xtask` re-executing itself), Node.js and C in their own; a big parent\n\
         allocates its {BIG_GIB} GiB before timing starts. Small parent: {} rounds of {} timed\n\
         spawns per peer, kind and concurrency (after {} warm-up spawns). {BIG_GIB} GiB parent,\n\
         concurrency 1: {} rounds of {} spawns ({} warm-up) for peers that do not fork and of {}\n\
         ({} warm-up) for those that fork, which manage only a few per second there. The\n\
         rounds interleave the runners in a rotating order; tables show each peer's median\n\
         round, in spawns per second, and a ratio is childproc's rate divided by the other.\n\n\
         {small}\n\
         {paired}\
         {BIG_GIB} GiB parent, concurrency 1. \"its small-parent rate\" is the same peer and kind\n\
         in the small-parent table above; C `posix_spawn`'s own ratio shows what a big parent\n\
         costs on this machine even without any copying:\n\n{}\n\
         Peak RSS of the parent (VmHWM from `/proc/self/status`, MiB, largest over the\n\
         rounds):\n\n{}\n\
         The spread of the rounds at concurrency 1 (slowest–fastest spawns/s):\n\n{}\n\
         Issue 6's targets on this run:\n\n{}\n",
        p.small_rounds,
        p.small_spawns,
        p.warmup,
        p.big_rounds,
        p.big_fast_spawns,
        p.warmup,
        p.big_slow_spawns,
        p.slow_warmup,
        t.big.render(),
        t.rss.render(),
        t.spread.render(),
        t.targets.join("\n"),
    )
}

/// `xtask bench-worker engine BIG_GIB CONCURRENCY ITEMS`: the Rust peers' side of a round,
/// in a process of its own. ITEMS is a comma-separated list of `peer:kind:spawns:warmup`
/// (peer: `childproc`, `tokio` or `std`); with BIG_GIB > 0 the worker first makes that many
/// GiB resident. Prints one JSON line per item, in order.
pub(crate) fn worker(args: &[String]) -> Result<(), BoxError> {
    let usage = "usage: xtask bench-worker engine BIG_GIB CONCURRENCY peer:kind:spawns:warmup,..";
    let [section, gib, concurrency, items] = args else {
        return Err(usage.into());
    };
    if section != "engine" {
        return Err(usage.into());
    }
    let gib: u64 = gib.parse().map_err(|_| usage)?;
    let concurrency: usize = concurrency.parse().map_err(|_| usage)?;
    let mut items_parsed = Vec::new();
    for item in items.split(',') {
        let parts: Vec<&str> = item.split(':').collect();
        let [peer, kind, n, warmup] = parts[..] else {
            return Err(format!("{usage}: bad item `{item}`").into());
        };
        let peer = Peer::RUST
            .into_iter()
            .find(|p| p.key() == peer)
            .ok_or_else(|| format!("bench-worker: unknown peer `{peer}`"))?;
        let kind =
            Kind::parse(kind).ok_or_else(|| format!("bench-worker: unknown kind `{kind}`"))?;
        items_parsed.push((peer, kind, n.parse::<u64>()?, warmup.parse::<u64>()?));
    }

    let memory = resident(gib)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    for (peer, kind, n, warmup) in items_parsed {
        spawn_n(&rt, peer, kind, warmup, concurrency)?;
        let rate = spawn_n(&rt, peer, kind, n, concurrency)?;
        println!(
            "{{\"peer\":\"{}\",\"kind\":\"{}\",\"spawns\":{n},\"elapsed_ns\":{},\"vmhwm_kb\":{}}}",
            peer.key(),
            kind.key(),
            rate.elapsed.as_nanos(),
            vmhwm_kb().unwrap_or(0)
        );
    }
    // The memory stays resident until every item is measured.
    std::hint::black_box(&memory);
    Ok(())
}

/// `gib` GiB with one byte written per 4 KiB page, so all of it is resident.
fn resident(gib: u64) -> Result<Vec<u8>, BoxError> {
    let len = usize::try_from(gib << 30)?;
    let mut memory = vec![0u8; len];
    for i in (0..len).step_by(4096) {
        memory[i] = 1;
    }
    Ok(std::hint::black_box(memory))
}

/// The VmHWM (peak resident set) of this process, in kB.
fn vmhwm_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Spawns and waits `n` times with `peer` from `concurrency` loops.
fn spawn_n(
    rt: &Runtime,
    peer: Peer,
    kind: Kind,
    n: u64,
    concurrency: usize,
) -> Result<Rate, BoxError> {
    match peer {
        Peer::Childproc => time_async(rt, n, concurrency, move || {
            childproc_once(kind, ExtraFd::Pipe)
        }),
        Peer::Tokio => time_async(rt, n, concurrency, move || tokio_once(kind)),
        Peer::Std => time_threads(n, concurrency, kind),
        other => Err(format!("bench-worker: {} is not a Rust peer", other.name()).into()),
    }
}

/// How childproc's extra-fd child gets its fd 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExtraFd {
    /// `.fd(3, Stdio::Pipe)`: what a user writes (a socketpair whose parent end is set up
    /// for async reads). The engine tables use this.
    Pipe,
    /// The very fd the raw peers get: a fresh pipe end through `Stdio::from(fd)`. The paired
    /// comparison with `posix_spawn` uses this.
    SameAsRaw,
}

/// One spawn-and-wait with childproc.
async fn childproc_once(kind: Kind, extra_fd: ExtraFd) -> Result<(), BoxError> {
    let mut cmd = childproc::Command::new(PROGRAM);
    cmd.stdio_all(childproc::StdioShorthand::Ignore);
    if kind == Kind::Detached {
        cmd.detached(true);
    }
    // The parent's end of a pipe or socketpair, kept until the child is reaped.
    let mut ours = None;
    if kind == Kind::Fd && extra_fd == ExtraFd::Pipe {
        cmd.fd(3, childproc::Stdio::Pipe);
    } else if let Some(Extra { theirs, _ours }) = Extra::new(kind)? {
        cmd.fd(3, childproc::Stdio::from(theirs));
        ours = Some(_ours);
    }
    let child = cmd.spawn()?;
    drop(cmd);
    let status = child.wait().await?;
    drop(ours);
    check(status.success(), "childproc", &status)
}

/// The fds of an extra-fd or IPC-like child: the end the child gets at fd 3, and ours.
struct Extra {
    /// Installed at fd 3 in the child; closed in the parent once the child is spawned.
    theirs: OwnedFd,
    /// The parent's end, held only to be closed once the child is reaped.
    _ours: OwnedFd,
}

impl Extra {
    /// A fresh pipe (extra fd) or socketpair (IPC-like); `None` for the other kinds.
    fn new(kind: Kind) -> Result<Option<Extra>, BoxError> {
        Ok(match kind {
            Kind::Plain | Kind::Detached => None,
            Kind::Fd => {
                let (read, write) = raw::pipe()?;
                Some(Extra {
                    theirs: write,
                    _ours: read,
                })
            }
            Kind::Ipc => {
                let (ours, theirs) = UnixStream::pair()?;
                Some(Extra {
                    theirs: theirs.into(),
                    _ours: ours.into(),
                })
            }
        })
    }

    /// The raw fd the child's `pre_exec` hook puts at fd 3.
    fn theirs_raw(extra: Option<&Extra>) -> Option<RawFd> {
        extra.map(|e| e.theirs.as_raw_fd())
    }
}

/// One spawn-and-wait with tokio::process.
async fn tokio_once(kind: Kind) -> Result<(), BoxError> {
    use std::process::Stdio;
    let extra = Extra::new(kind)?;
    let mut cmd = tokio::process::Command::new(PROGRAM);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if kind != Kind::Plain {
        raw::tokio_pre_exec(&mut cmd, kind, Extra::theirs_raw(extra.as_ref()));
    }
    let status = cmd.status().await?;
    drop(extra);
    check(status.success(), "tokio::process", &status)
}

/// One spawn-and-wait with std::process.
fn std_once(kind: Kind) -> Result<(), BoxError> {
    use std::process::Stdio;
    let extra = Extra::new(kind)?;
    let mut cmd = StdCommand::new(PROGRAM);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if kind != Kind::Plain {
        raw::std_pre_exec(&mut cmd, kind, Extra::theirs_raw(extra.as_ref()));
    }
    let status = cmd.status()?;
    drop(extra);
    check(status.success(), "std::process", &status)
}

/// An error unless the child succeeded: a failed spawn must not pass for a fast one.
fn check(ok: bool, peer: &str, status: &dyn std::fmt::Display) -> Result<(), BoxError> {
    if ok {
        Ok(())
    } else {
        Err(format!("{peer}: {PROGRAM} ended with {status}").into())
    }
}

/// Runs [`std_once`] `n` times from `concurrency` OS threads pulling from one counter.
fn time_threads(n: u64, concurrency: usize, kind: Kind) -> Result<Rate, BoxError> {
    let next = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..concurrency)
            .map(|_| {
                s.spawn(|| {
                    while next.fetch_add(1, Ordering::Relaxed) < n {
                        std_once(kind)?;
                    }
                    Ok::<(), BoxError>(())
                })
            })
            .collect();
        for t in threads {
            t.join().map_err(|_| "a std::process thread panicked")??;
        }
        Ok::<(), BoxError>(())
    })?;
    Ok(Rate {
        count: n,
        elapsed: start.elapsed(),
    })
}

/// The `pre_exec` hooks tokio::process and std::process need for a detached child or an
/// fd at 3 — the reason they fork — and the raw calls behind them. The only unsafe code
/// in the bench.
#[allow(unsafe_code)]
mod raw {
    use std::ffi::c_int;
    use std::io;
    use std::os::fd::{FromRawFd, OwnedFd, RawFd};
    use std::os::unix::process::CommandExt;

    use super::Kind;

    /// `O_CLOEXEC` on Linux.
    const O_CLOEXEC: c_int = 0o2_000_000;
    /// `F_SETFD`.
    const F_SETFD: c_int = 2;

    extern "C" {
        fn setsid() -> c_int;
        fn dup2(old: c_int, new: c_int) -> c_int;
        fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
        fn pipe2(fds: *mut c_int, flags: c_int) -> c_int;
    }

    /// A pipe, both ends close-on-exec: (read end, write end).
    pub(super) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
        let mut fds: [c_int; 2] = [-1, -1];
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        if unsafe { pipe2(fds.as_mut_ptr(), O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both are new fds that nothing else owns.
        Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
    }

    /// What the child runs between `fork` and `exec`: `setsid` for a detached child, and
    /// `fd` put at fd 3 (without close-on-exec) for the others. Only async-signal-safe calls.
    fn hook(kind: Kind, fd: Option<RawFd>) -> impl FnMut() -> io::Result<()> + Send + Sync {
        move || {
            // SAFETY: setsid, dup2 and fcntl are async-signal-safe and touch no memory.
            unsafe {
                if kind == Kind::Detached && setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                if let Some(fd) = fd {
                    // dup2 onto itself would keep close-on-exec: clear it instead.
                    let ok = if fd == 3 {
                        fcntl(3, F_SETFD, 0) >= 0
                    } else {
                        dup2(fd, 3) >= 0
                    };
                    if !ok {
                        return Err(io::Error::last_os_error());
                    }
                }
            }
            Ok(())
        }
    }

    /// Installs [`hook`] on a std command (which makes it fork).
    pub(super) fn std_pre_exec(cmd: &mut std::process::Command, kind: Kind, fd: Option<RawFd>) {
        // SAFETY: the hook only makes async-signal-safe calls and allocates nothing; `fd`
        // stays open until the command has spawned (the caller keeps it).
        unsafe {
            cmd.pre_exec(hook(kind, fd));
        }
    }

    /// Installs [`hook`] on a tokio command (which makes it fork).
    pub(super) fn tokio_pre_exec(cmd: &mut tokio::process::Command, kind: Kind, fd: Option<RawFd>) {
        // SAFETY: as in `std_pre_exec`.
        unsafe {
            cmd.pre_exec(hook(kind, fd));
        }
    }
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
