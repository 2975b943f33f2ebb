//! The "pool" section: a pool of worker processes answering tasks, two kinds of task (tiny:
//! echo a small object; cpu: a naive `fib(FIB)`), 2 and 8 workers, one or four tasks in
//! flight per worker, these ways:
//! - a childproc [`Pool`] of Rust workers (this binary as `bench-worker pool-worker`,
//!   answering with `childproc_ipc::serve`);
//! - the same Rust workers without a pool: one loop per worker on its channel, as a
//!   hand-written dispatcher would (`pool/channels.rs`), as many tasks in flight as the row;
//! - a childproc [`Pool`] of Node.js workers (`xtask/bench/pool.js worker`);
//! - a Node.js parent dispatching to the same number of forked Node.js workers
//!   (`xtask/bench/pool.js dispatch`), as many tasks in flight per worker as the pool has;
//! - Bun and Deno running that dispatcher's script unchanged, when they are on PATH;
//! - Python's `multiprocessing.Pool` (`xtask/bench/pool.py`), one `apply_async` per task;
//! - for tiny tasks, the floor: one thread in `epoll_wait` over raw echo children, 16 bytes
//!   a task, no framing and no runtime (`pool/raw.rs`).
//!
//! Every peer is driven the same way: a closed loop of `4 × workers` clients, each sending
//! its next task when the last is answered, so the latency of a task is its time in the
//! queue and at the worker. Tasks/s and the p50 and p99 latency, median over the rounds.
//! Workers are started (and warmed with a few tasks) before timing.

use std::process::Command as StdCommand;
use std::sync::Arc;
use std::time::{Duration, Instant};

use childproc::ipc::{serve, Value};
use childproc::{fork, Pool};
use tokio::runtime::Runtime;

use super::doc::Section;
use super::{json_u64, rotation, Env, Options};
use crate::BoxError;

mod channels;
mod placement;
mod raw;
mod section;
mod tokio_floor;
use channels::channels;
use placement::{rust_worker, Placement};

/// Rounds (`--quick`: 1).
const ROUNDS: usize = 3;
/// What is measured: each kind of task with 2 and 8 workers; tiny tasks also pipelined;
/// the pipelined ×2 row also with its workers pinned both ways (see `pool/placement.rs`).
const SETUPS: [Setup; 8] = [
    Setup::new(Kind::Tiny, 2, 1),
    Setup::new(Kind::Tiny, 2, 4),
    Setup::new(Kind::Tiny, 2, 4).placed(Placement::OneCpu),
    Setup::new(Kind::Tiny, 2, 4).placed(Placement::OneEach),
    Setup::new(Kind::Tiny, 8, 1),
    Setup::new(Kind::Tiny, 8, 4),
    Setup::new(Kind::Cpu, 2, 1),
    Setup::new(Kind::Cpu, 8, 1),
];
/// Clients per worker in the closed loop.
const CLIENTS_PER_WORKER: usize = 4;
/// The `n` of a cpu task's `fib(n)`.
const FIB: u32 = 24;
/// `fib(FIB)`, what a cpu task's answer must be (computed once, not by the parent per task).
const FIB_VALUE: f64 = 46_368.0;
/// Untimed tasks per client before timing.
const WARMUP: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tiny,
    Cpu,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Tiny => "tiny",
            Kind::Cpu => "cpu",
        }
    }

    /// Tasks timed per run (`--quick`: a tenth).
    fn tasks(self, quick: bool) -> usize {
        let n = match self {
            Kind::Tiny => 20_000,
            Kind::Cpu => 800,
        };
        if quick {
            n / 10
        } else {
            n
        }
    }

    fn task(self, i: usize) -> Value {
        // Task numbers are far below 2^52: exact.
        #[allow(clippy::cast_precision_loss)]
        match self {
            Kind::Tiny => Value::object([(
                "echo",
                Value::object([("i", Value::from(i as f64)), ("s", Value::from("hello"))]),
            )]),
            Kind::Cpu => Value::object([("fib", Value::from(f64::from(FIB)))]),
        }
    }
}

/// One configuration of the pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Setup {
    kind: Kind,
    workers: usize,
    /// Tasks one worker may have at once: 1, or pipelined (the next ones wait in its socket
    /// while it answers one: childproc's `Pool::concurrency`).
    depth: usize,
    /// Where the workers run.
    placement: Placement,
}

impl Setup {
    const fn new(kind: Kind, workers: usize, depth: usize) -> Setup {
        Setup {
            kind,
            workers,
            depth,
            placement: Placement::Kernel,
        }
    }

    const fn placed(self, placement: Placement) -> Setup {
        Setup { placement, ..self }
    }

    fn clients(self) -> usize {
        self.workers * CLIENTS_PER_WORKER
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    RustWorkers,
    /// No pool: one loop per Rust worker keeping the row's tasks in flight on the worker's
    /// channel, sending the next as each answer comes, as a hand-written dispatcher would.
    Channels,
    NodeWorkers,
    NodeDispatcher,
    BunDispatcher,
    DenoDispatcher,
    Python,
    /// The floor: raw echo children and an epoll loop, nothing else (`pool/raw.rs`).
    RawFloor,
    /// The same children driven from awaiting tokio tasks (`pool/tokio_floor.rs`).
    TokioFloor,
}

impl Peer {
    fn label(self) -> &'static str {
        match self {
            Peer::RustWorkers => "childproc Pool, Rust workers",
            Peer::Channels => "childproc channels, no pool",
            Peer::NodeWorkers => "childproc Pool, Node.js workers",
            Peer::NodeDispatcher => "Node.js parent, forked Node.js workers",
            Peer::BunDispatcher => "Bun parent, forked Bun workers (the same script)",
            Peer::DenoDispatcher => "Deno parent, forked Deno workers (the same script)",
            Peer::Python => "Python multiprocessing.Pool",
            Peer::RawFloor => "floor: epoll loop, raw echo children",
            Peer::TokioFloor => "tokio floor: awaiting tasks, raw echo children",
        }
    }
}

/// One timed run.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
}

pub(super) fn run(opts: &Options, env: &Env) -> Result<Section, BoxError> {
    let rounds = if opts.check {
        3
    } else if opts.quick {
        1
    } else {
        ROUNDS
    };
    let mut peers = vec![
        Peer::RustWorkers,
        Peer::Channels,
        Peer::RawFloor,
        Peer::TokioFloor,
    ];
    if env.node.is_some() {
        peers.extend([Peer::NodeWorkers, Peer::NodeDispatcher]);
    }
    if env.bun.is_some() {
        peers.push(Peer::BunDispatcher);
    }
    if env.deno.is_some() {
        peers.push(Peer::DenoDispatcher);
    }
    let python = python();
    if python.is_some() {
        peers.push(Peer::Python);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // The pinned rows need two CPUs and `taskset`; the gate does without them.
    let cpus = if opts.check {
        Err("not in the gate".to_string())
    } else {
        placement::cpus()
    };
    let mut rows = Vec::new();
    for setup in SETUPS {
        let placed = setup.placement != Placement::Kernel;
        let cpus: &[usize] = match (&cpus, placed) {
            (_, false) => &[],
            (Ok(cpus), true) => cpus,
            (Err(why), true) => {
                println!(
                    "  pool: the rows {} are skipped: {why}",
                    setup.placement.label()
                );
                continue;
            }
        };
        // Python's pool has one task queue that every worker pulls from: its workers always
        // have the next task at hand, so it belongs with the pipelined rows only. The pinned
        // rows compare the floors, the pool and Node.js.
        let peers: Vec<Peer> = peers
            .iter()
            .copied()
            .filter(|p| *p != Peer::Python || setup.depth > 1)
            .filter(|p| !matches!(p, Peer::RawFloor | Peer::TokioFloor) || setup.kind == Kind::Tiny)
            .filter(|p| {
                !placed
                    || matches!(
                        p,
                        Peer::RustWorkers
                            | Peer::RawFloor
                            | Peer::TokioFloor
                            | Peer::NodeDispatcher
                    )
            })
            .collect();
        let mut runs: Vec<Vec<Run>> = vec![Vec::new(); peers.len()];
        for round in 0..rounds {
            for peer in rotation(&peers, round) {
                let run = once(peer, setup, opts.quick, &rt, env, python, cpus)?;
                println!(
                    "  pool {} ×{} depth {}{} round {round}: {:<40} {:>8.0} tasks/s, p50 {:?}, p99 {:?}",
                    setup.kind.name(),
                    setup.workers,
                    setup.depth,
                    setup.placement.suffix(),
                    peer.label(),
                    run.per_sec,
                    run.p50,
                    run.p99
                );
                let at = peers.iter().position(|p| *p == peer).unwrap_or(0);
                runs[at].push(run);
            }
        }
        rows.push((setup, peers, runs));
    }
    Ok(section::section(&rows, opts.quick))
}

/// `python3` if it runs.
fn python() -> Option<&'static str> {
    let ok = StdCommand::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some("python3")
}

fn once(
    peer: Peer,
    setup: Setup,
    quick: bool,
    rt: &Runtime,
    env: &Env,
    python: Option<&str>,
    cpus: &[usize],
) -> Result<Run, BoxError> {
    let tasks = setup.kind.tasks(quick);
    let mut args = vec![
        setup.kind.name().to_string(),
        setup.workers.to_string(),
        tasks.to_string(),
        setup.clients().to_string(),
        FIB.to_string(),
        setup.depth.to_string(),
    ];
    args.extend(setup.placement.list(setup.workers, cpus));
    // The CPU each worker is pinned to, if any.
    let pins = setup.placement.pins(setup.workers, cpus);
    match peer {
        Peer::Channels => {
            rt.block_on(async move { tokio::spawn(channels(setup, tasks, pins)).await? })
        }
        Peer::RawFloor => raw::raw_floor(setup, tasks, &pins),
        Peer::TokioFloor => {
            rt.block_on(
                async move { tokio::spawn(tokio_floor::tokio_floor(setup, tasks, pins)).await? },
            )
        }
        Peer::RustWorkers | Peer::NodeWorkers => {
            let script = env.scripts.join("pool.js");
            rt.block_on(async move {
                tokio::spawn(childproc_pool(peer, setup, tasks, script, pins)).await?
            })
        }
        Peer::NodeDispatcher | Peer::BunDispatcher | Peer::DenoDispatcher => {
            let node = match peer {
                Peer::BunDispatcher => env.bun.as_ref(),
                Peer::DenoDispatcher => env.deno.as_ref(),
                _ => env.node.as_ref(),
            }
            .ok_or("the runtime was not found")?;
            let mut all = vec!["dispatch".to_string()];
            all.extend(args);
            parse(&node.run(&env.scripts.join("pool.js"), &all)?, "pool.js")
        }
        Peer::Python => {
            let python = python.ok_or("no python")?;
            let script = env.scripts.join("pool.py");
            let out = StdCommand::new(python)
                .arg(&script)
                .args(&args[..5])
                .output()?;
            if !out.status.success() {
                return Err(format!(
                    "{} failed: {}",
                    script.display(),
                    String::from_utf8_lossy(&out.stderr)
                )
                .into());
            }
            parse(&String::from_utf8_lossy(&out.stdout), "pool.py")
        }
    }
}

/// A script's `{"tasks":..,"elapsed_ns":..,"p50_ns":..,"p99_ns":..}`.
fn parse(out: &str, script: &str) -> Result<Run, BoxError> {
    let tasks = json_u64(out, "tasks", script)?;
    let elapsed = Duration::from_nanos(json_u64(out, "elapsed_ns", script)?);
    // Task counts are far below 2^52: exact.
    #[allow(clippy::cast_precision_loss)]
    let per_sec = tasks as f64 / elapsed.as_secs_f64().max(1e-9);
    Ok(Run {
        per_sec,
        p50: Duration::from_nanos(json_u64(out, "p50_ns", script)?),
        p99: Duration::from_nanos(json_u64(out, "p99_ns", script)?),
    })
}

async fn childproc_pool(
    peer: Peer,
    setup: Setup,
    tasks: usize,
    script: std::path::PathBuf,
    pins: Vec<Option<usize>>,
) -> Result<Run, BoxError> {
    let Setup { kind, .. } = setup;
    let exe = peer == Peer::RustWorkers;
    // Workers are started one at a time: the n-th start takes the n-th pin.
    let started = std::sync::atomic::AtomicUsize::new(0);
    let pool = Pool::builder(move || {
        let n = started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pin = pins.get(n % pins.len().max(1)).copied().flatten();
        if exe {
            rust_worker(pin).expect("this program's path")
        } else {
            fork(&script, ["worker"])
        }
    })
    .size(setup.workers)
    .concurrency(setup.depth)
    .build()?;
    let pool = Arc::new(pool);
    let clients = setup.clients();
    let check = move |answer: &Value| match kind {
        Kind::Tiny => answer.get("s").and_then(Value::as_str) == Some("hello"),
        Kind::Cpu => answer.as_f64() == Some(FIB_VALUE),
    };
    // Warm up: every worker started and answering.
    let mut warm = Vec::new();
    for c in 0..clients {
        let pool = Arc::clone(&pool);
        warm.push(tokio::spawn(async move {
            for i in 0..WARMUP {
                pool.run(kind.task(c * WARMUP + i)).await?;
            }
            Ok::<(), BoxError>(())
        }));
    }
    for w in warm {
        w.await??;
    }
    let start = Instant::now();
    let mut handles = Vec::new();
    for c in 0..clients {
        let pool = Arc::clone(&pool);
        let share = tasks / clients + usize::from(c < tasks % clients);
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(share);
            for i in 0..share {
                let t = Instant::now();
                let answer = pool.run(kind.task(i)).await?;
                latencies.push(t.elapsed());
                if !check(&answer) {
                    return Err(format!("a wrong answer: {answer:?}").into());
                }
            }
            Ok::<_, BoxError>(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(tasks);
    for h in handles {
        latencies.extend(h.await??);
    }
    let elapsed = start.elapsed();
    if let Ok(pool) = Arc::try_unwrap(pool) {
        pool.close().await;
    }
    latencies.sort_unstable();
    Ok(summary(&latencies, elapsed))
}

/// Tasks per second and the p50 and p99 of `sorted` latencies, over `elapsed`.
fn summary(sorted: &[Duration], elapsed: Duration) -> Run {
    let at = |q: f64| {
        // Indexes are far below 2^52: exact.
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted.get(i).copied().unwrap_or_default()
    };
    #[allow(clippy::cast_precision_loss)]
    let per_sec = sorted.len() as f64 / elapsed.as_secs_f64().max(1e-9);
    Run {
        per_sec,
        p50: at(0.5),
        p99: at(0.99),
    }
}

/// The naive Fibonacci every peer's cpu task computes.
fn fib(n: u32) -> u64 {
    if n < 2 {
        u64::from(n)
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

/// `xtask bench-worker pool-run tiny|cpu WORKERS DEPTH TASKS
/// [current-thread|floor|tokio-floor|channels] [one-cpu|one-each]`: one run of the "childproc
/// Pool, Rust workers" row alone (on a current-thread runtime if asked), or of a floor row or
/// the "childproc channels, no pool" row, its workers pinned if asked,
/// printed, to profile under `perf` or `strace`.
pub(crate) fn run_alone(args: &[String]) -> Result<(), BoxError> {
    let usage = "usage: xtask bench-worker pool-run tiny|cpu WORKERS DEPTH TASKS \
                 [current-thread|floor|tokio-floor|channels] [one-cpu|one-each]";
    let kind = match args.get(1).map(String::as_str) {
        Some("tiny") => Kind::Tiny,
        Some("cpu") => Kind::Cpu,
        _ => return Err(usage.into()),
    };
    let number = |i: usize| -> Result<usize, BoxError> {
        Ok(args.get(i).ok_or(usage)?.parse().map_err(|_| usage)?)
    };
    let tasks = number(4)?;
    let (mut variant, mut placement) = ("", Placement::Kernel);
    for word in args.iter().skip(5).map(String::as_str) {
        match word {
            "current-thread" | "floor" | "tokio-floor" | "channels" => variant = word,
            "one-cpu" => placement = Placement::OneCpu,
            "one-each" => placement = Placement::OneEach,
            _ => return Err(usage.into()),
        }
    }
    let setup = Setup::new(kind, number(2)?, number(3)?).placed(placement);
    let cpus = match placement {
        Placement::Kernel => Vec::new(),
        _ => placement::cpus()?,
    };
    let pins = placement.pins(setup.workers, &cpus);
    let rt = if variant == "current-thread" {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
    };
    let (label, (run, cpu)) = match variant {
        "floor" => (
            "floor",
            super::cpu::with_cpu(|| raw::raw_floor(setup, tasks, &pins)),
        ),
        "channels" => (
            "channels",
            super::cpu::with_cpu(|| {
                rt.block_on(async move { tokio::spawn(channels(setup, tasks, pins)).await? })
            }),
        ),
        "tokio-floor" => (
            "tokio floor",
            super::cpu::with_cpu(|| {
                rt.block_on(async move {
                    tokio::spawn(tokio_floor::tokio_floor(setup, tasks, pins)).await?
                })
            }),
        ),
        _ => (
            kind.name(),
            super::cpu::with_cpu(|| {
                rt.block_on(async move {
                    let script = std::path::PathBuf::new();
                    let pool = childproc_pool(Peer::RustWorkers, setup, tasks, script, pins);
                    tokio::spawn(pool).await?
                })
            }),
        ),
    };
    print_alone(label, setup, tasks, &run?, cpu);
    Ok(())
}

/// The line `pool-run` prints for one run.
fn print_alone(label: &str, setup: Setup, tasks: usize, run: &Run, cpu: Duration) {
    // Task counts are far below 2^52: exact.
    #[allow(clippy::cast_precision_loss)]
    let per_task = cpu.as_secs_f64() * 1e6 / tasks as f64;
    println!(
        "{label} ×{} depth {}{}: {:.0} tasks/s, p50 {:?}, p99 {:?}, parent CPU {per_task:.2} µs \
         per task",
        setup.workers,
        setup.depth,
        setup.placement.suffix(),
        run.per_sec,
        run.p50,
        run.p99
    );
}

/// `xtask bench-worker pool-worker`: the Rust worker of the childproc pool rows.
pub(crate) fn worker() -> Result<(), BoxError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let channel = childproc::ipc::from_env().ok_or("not started with a channel")??;
        serve(channel, |mut task: Value| async move {
            // Moved out, not copied: the Node.js worker's `task.echo` copies nothing either.
            if let Some(echo) = task.remove("echo") {
                return Ok(echo);
            }
            match task.get("fib").and_then(Value::as_f64) {
                // The task's n is a small whole number.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Some(n) => Ok(Value::from(fib(n as u32) as f64)),
                None => Err(format!("unknown task {task:?}")),
            }
        })
        .await?;
        Ok(())
    })
}

type Row = (Setup, Vec<Peer>, Vec<Vec<Run>>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fib_is_fib() {
        assert_eq!(fib(10), 55);
        assert_eq!(fib(24), 46_368);
        #[allow(clippy::cast_precision_loss)]
        let value = fib(FIB) as f64;
        assert_eq!(value, FIB_VALUE);
    }
}
