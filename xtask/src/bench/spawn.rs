//! The "spawn" section: spawn `/bin/true` and wait for it to exit, over and over, at
//! concurrency 1 and 8, with childproc, tokio::process, std::process and Node.js.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::cpu::with_cpu;
use super::doc::{Section, Table};
use super::{json_u64, median, median_f64, rotation, spread, time_async, Env, Options, Rate};
use crate::BoxError;

mod paired;
#[allow(unused_imports)]
pub(crate) use paired::*;
mod workers;
#[allow(unused_imports)]
pub(crate) use workers::*;

/// The program every peer spawns.
const PROGRAM: &str = "/bin/true";
/// Spawns timed per peer and concurrency in a full run (`--quick`: a tenth).
const SPAWNS: u64 = 2000;
/// Untimed spawns per peer and concurrency before timing starts.
const WARMUP: u64 = 50;
/// The concurrency levels: how many spawn-and-wait loops run at once.
const CONCURRENCY: [usize; 2] = [1, 8];

/// Timed rounds per concurrency: each round gives every peer `spawns / ROUNDS` spawns, in a
/// rotating order, so a burst of load from elsewhere on the machine hits one round of one
/// peer rather than a whole column. The table shows each peer's median round.
const ROUNDS: u64 = 20;
/// Passes of the paired run (each one spawn per peer), at concurrency 1 (`--quick`: a tenth).
const PAIRED_PASSES: u64 = 10000;

/// A library being compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    /// `childproc::Command::spawn` + `ChildProcess::wait`.
    Childproc,
    /// `tokio::process::Command::status`.
    Tokio,
    /// `std::process::Command::status`, one OS thread per loop.
    Std,
    /// Node.js `child_process.spawn` + `'exit'`, in `xtask/bench/spawn.js`.
    Node,
    /// Bun running the same `spawn.js` (its child_process).
    Bun,
    /// Bun's own `Bun.spawn` + `exited`, in `xtask/bench/spawn-bun.js`.
    BunSpawn,
    /// Deno running the same `spawn.js` (its `node:child_process`).
    Deno,
}

/// The number of peers.
const PEERS: usize = 7;

impl Peer {
    /// Every peer, childproc first.
    const ALL: [Peer; PEERS] = [
        Peer::Childproc,
        Peer::Tokio,
        Peer::Std,
        Peer::Node,
        Peer::Bun,
        Peer::BunSpawn,
        Peer::Deno,
    ];

    /// The name shown in output.
    fn name(self) -> &'static str {
        match self {
            Peer::Childproc => "childproc",
            Peer::Tokio => "tokio::process",
            Peer::Std => "std::process",
            Peer::Node => "Node.js",
            Peer::Bun => "Bun (child_process)",
            Peer::BunSpawn => "Bun.spawn",
            Peer::Deno => "Deno (node:child_process)",
        }
    }

    /// The JavaScript runtime and script that measure this peer, if it is one.
    fn script(self, env: &Env) -> Option<(&super::Node, &'static str)> {
        match self {
            Peer::Node => Some((env.node.as_ref()?, "spawn.js")),
            Peer::Bun => Some((env.bun.as_ref()?, "spawn.js")),
            Peer::BunSpawn => Some((env.bun.as_ref()?, "spawn-bun.js")),
            Peer::Deno => Some((env.deno.as_ref()?, "spawn.js")),
            _ => None,
        }
    }

    fn is_js(self) -> bool {
        matches!(self, Peer::Node | Peer::Bun | Peer::BunSpawn | Peer::Deno)
    }
}

/// One row of the table: every peer at one concurrency (`None`: not measured).
struct Row {
    /// Spawn-and-wait loops running at once.
    concurrency: usize,
    /// The median round of each peer, in [`Peer::ALL`] order.
    rates: [Option<Rate>; PEERS],
    /// The slowest and fastest round of each peer, in [`Peer::ALL`] order.
    spreads: [Option<(Rate, Rate)>; PEERS],
    /// The parent's CPU time per spawn (µs), median of the rounds, in [`Peer::ALL`] order.
    cpu: [Option<f64>; PEERS],
}

/// Measures every peer at every concurrency and returns the section for the docs.
pub(super) fn run(opts: &Options, env: &Env) -> Result<Section, BoxError> {
    let spawns = if opts.quick { SPAWNS / 10 } else { SPAWNS };
    let per_round = spawns / ROUNDS;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let workers = rt.metrics().num_workers();
    let peers: Vec<Peer> = Peer::ALL
        .into_iter()
        .filter(|p| !p.is_js() || p.script(env).is_some())
        .collect();
    println!(
        "spawn: {PROGRAM}, {ROUNDS} rounds of {per_round} spawns per peer and concurrency \
         ({WARMUP} warm-up spawns first)\n"
    );

    let mut rows = Vec::new();
    for concurrency in CONCURRENCY {
        // Each round's rate and the parent's CPU time over it (this process's, every
        // thread; Node's from `process.cpuUsage()` in the script).
        let measure = |peer: Peer, n: u64, warmup: bool| -> Result<(Rate, Duration), BoxError> {
            let (rate, cpu) = match peer {
                Peer::Childproc => with_cpu(|| time_async(&rt, n, concurrency, childproc_once)),
                Peer::Tokio => with_cpu(|| time_async(&rt, n, concurrency, tokio_once)),
                Peer::Std => with_cpu(|| time_threads(n, concurrency)),
                // A fresh runtime each time: the script warms itself up, untimed.
                _ if warmup => return Ok((Rate::default(), Duration::ZERO)),
                js => return time_node(env, js, n, concurrency),
            };
            Ok((rate?, cpu))
        };
        for &peer in &peers {
            measure(peer, WARMUP, true)?;
        }
        let mut rounds: Vec<Vec<Rate>> = vec![Vec::new(); Peer::ALL.len()];
        let mut cpus: Vec<Vec<f64>> = vec![Vec::new(); Peer::ALL.len()];
        for round in 0..ROUNDS {
            for peer in rotation(&peers, usize::try_from(round).unwrap_or(0)) {
                let (rate, cpu) = measure(peer, per_round, false)?;
                let idx = Peer::ALL.iter().position(|p| *p == peer).unwrap_or(0);
                rounds[idx].push(rate);
                // Spawn counts are far below 2^52: exact.
                #[allow(clippy::cast_precision_loss)]
                cpus[idx].push(cpu.as_secs_f64() * 1e6 / rate.count.max(1) as f64);
            }
        }
        let mut rates = [None; PEERS];
        let mut spreads = [None; PEERS];
        let mut cpu = [None; PEERS];
        for (i, peer) in Peer::ALL.into_iter().enumerate() {
            rates[i] = median(&rounds[i]);
            spreads[i] = spread(&rounds[i]);
            cpu[i] = (!cpus[i].is_empty()).then(|| median_f64(&cpus[i]));
            if let Some(rate) = rates[i] {
                let all: Vec<String> = rounds[i]
                    .iter()
                    .map(|r| format!("{:.0}", r.per_sec()))
                    .collect();
                println!(
                    "  concurrency {concurrency}: {:<15} {:>6.0} spawns/s  (rounds: {})",
                    peer.name(),
                    rate.per_sec(),
                    all.join(", ")
                );
            }
        }
        if let [Some(ours), Some(tokio), ..] = cpu {
            super::record(
                format!("spawn.cpu_vs_tokio_c{concurrency}"),
                Some(tokio / ours),
            );
        }
        rows.push(Row {
            concurrency,
            rates,
            spreads,
            cpu,
        });
    }

    let table = table(&rows);
    let spread = spread_table(&rows);
    println!("\n{}\n{}", table.render(), spread.render());
    let passes = if opts.quick {
        PAIRED_PASSES / 10
    } else {
        PAIRED_PASSES
    };
    let pairs = [(1, paired(&rt, passes, 1)?)];
    let burst_pairs = if opts.quick {
        BURST_PAIRS / 10
    } else {
        BURST_PAIRS
    };
    let burst_rows: Vec<(usize, (f64, f64, f64))> = CONCURRENCY
        .into_iter()
        .map(|c| Ok((c, bursts(&rt, burst_pairs, c)?)))
        .collect::<Result<_, BoxError>>()?;
    for (c, (mean, _, _)) in &burst_rows {
        super::record(format!("spawn.bursts_c{c}"), Some(*mean));
    }
    let bursts_table = bursts_table(&burst_rows, burst_pairs);
    println!("{}", bursts_table.render());
    let paired_table = paired_table(&pairs);
    println!("{}", paired_table.render());
    let version =
        |r: Option<&super::Node>| r.map_or_else(|| "not found".to_string(), |r| r.version.clone());
    let node_note = format!(
        "and\n\
         8 children in flight for the JavaScript runtimes (Node.js {}, Bun {}, Deno {}; timed\n\
         inside `xtask/bench/spawn.js`, or `spawn-bun.js` for `Bun.spawn`, which do their own\n\
         {WARMUP} warm-up spawns before each round; a runtime not on PATH has no row)",
        version(env.node.as_ref()),
        version(env.bun.as_ref()),
        version(env.deno.as_ref()),
    );
    let body = format!(
        "## Spawn\n\n\
         Spawn `{PROGRAM}` with stdin, stdout and stderr ignored (`/dev/null`) and wait for it\n\
         to exit; each spawn builds its command afresh. Per peer and concurrency: {WARMUP} untimed\n\
         warm-up spawns, then {spawns} timed spawns in {ROUNDS} rounds of {per_round}. The rounds\n\
         interleave the peers in a rotating order, so load from elsewhere on the machine hits\n\
         one round rather than one column, and the table shows each peer's median round.\n\n\
         Concurrency 8 means 8 loops pulling from one shared counter: 8 tokio tasks on a\n\
         multi-thread runtime ({workers} worker threads) for childproc and tokio::process, 8 OS\n\
         threads calling the blocking `status()` for std::process, {node_note}.\n\n\
         - childproc: `Command::new(\"{PROGRAM}\").stdio_all(StdioShorthand::Ignore).spawn()?.wait().await`\n\
         - tokio::process: `Command::new(\"{PROGRAM}\")`, `Stdio::null()` for all three, `.status().await`\n\
         - std::process: the same with `std::process::Command` and a blocking `.status()`\n\
         - Node.js: `child_process.spawn('{PROGRAM}', [], {{ stdio: 'ignore' }})` until `'exit'`;\n  \
           Bun and Deno run the same script; Bun.spawn: `Bun.spawn(['{PROGRAM}'], {{ stdio: \n  \
           ['ignore', 'ignore', 'ignore'] }})` until `exited`\n\n\
         Spawns per second; a ratio is childproc's rate divided by the peer's. The parent's\n\
         own CPU time per spawn is user + system of the spawning process, every thread, the\n\
         children's not counted (µs, median of the rounds): for the Rust peers this\n\
         process's clock around each round, for the JavaScript runtimes `process.cpuUsage()`\n\
         around their timed spawns.\n\n{}\n\
         The spread of the rounds (slowest–fastest spawns/s): whole rounds, seconds apart,\n\
         drift this much on this machine, so a median ratio near 1 is no result by itself.\n\
         The two paired measurements below are what decides childproc against\n\
         tokio::process.\n\n{}\n\
         ### childproc and tokio::process, paired\n\n\
         **Throughput, in bursts.** A short burst of spawns with childproc and one with\n\
         tokio::process, back to back (which goes first alternates), {burst_pairs} times per\n\
         concurrency, on the runtime above. Bursts about 20 ms apart see the same machine,\n\
         so the ratio within each pair holds where whole rounds drift. The table gives the\n\
         geometric mean of the pairs' ratios (childproc's rate over tokio's: above 1,\n\
         childproc is faster) and the interval of two standard errors around it.\n\n{}\n\
         **Latency, spawn by spawn.** At concurrency 1 one loop runs childproc,\n\
         tokio::process and std::process's blocking `status()` (glibc's `posix_spawn` and a\n\
         blocking `waitpid`, no reactor: the closest to raw C that shares the process) spawn\n\
         by spawn, {passes} times each. The order within each pass cycles through every\n\
         permutation, so each peer follows each other one equally often (whoever runs right\n\
         after another spawn pays a little for it). The table gives the mean wall time of\n\
         one spawn-and-wait each; a ratio is the peer's time divided by childproc's (above 1:\n\
         childproc is faster), and the difference comes with two standard errors of its\n\
         mean. (Not at concurrency 8: there the spawns in flight share both CPUs, so the CPU\n\
         one peer saves speeds up the other's spawns as much as its own; the bursts measure\n\
         that.) `cargo xtask bench-worker spawn-phases 4000 1` splits the same comparison\n\
         into `spawn()`, the wait and the drop.\n\n{}",
        table.render(),
        spread.render(),
        bursts_table.render(),
        paired_table.render()
    );
    Ok(Section {
        name: "spawn",
        body,
    })
}

/// The results as a table: one row per peer, both concurrencies, with childproc's rate over
/// the peer's and the parent's CPU per spawn.
fn table(rows: &[Row]) -> Table {
    let rate =
        |r: Option<Rate>| r.map_or_else(|| "—".to_string(), |r| format!("{:.0}", r.per_sec()));
    let ratio = |ours: Option<Rate>, theirs: Option<Rate>| match (ours, theirs) {
        (Some(o), Some(t)) => format!("{:.2}×", o.per_sec() / t.per_sec()),
        _ => "—".to_string(),
    };
    let cpu = |c: Option<f64>| c.map_or_else(|| "—".to_string(), |c| format!("{c:.0} µs"));
    let mut header = vec!["Peer".to_string()];
    for what in ["spawns/s", "childproc ÷ this", "parent CPU per spawn"] {
        header.extend(
            rows.iter()
                .map(|r| format!("{what}, concurrency {}", r.concurrency)),
        );
    }
    Table {
        header,
        rows: Peer::ALL
            .iter()
            .enumerate()
            .filter(|(i, _)| rows.iter().any(|r| r.rates[*i].is_some()))
            .map(|(i, peer)| {
                let mut row = vec![peer.name().to_string()];
                row.extend(rows.iter().map(|r| rate(r.rates[i])));
                row.extend(rows.iter().map(|r| ratio(r.rates[0], r.rates[i])));
                row.extend(rows.iter().map(|r| cpu(r.cpu[i])));
                row
            })
            .collect(),
    }
}

/// The spread of the rounds as a table: one row per concurrency.
fn spread_table(rows: &[Row]) -> Table {
    let cell = |s: Option<(Rate, Rate)>| {
        s.map_or_else(
            || "—".to_string(),
            |(lo, hi)| format!("{:.0}–{:.0}", lo.per_sec(), hi.per_sec()),
        )
    };
    let mut header = vec!["Concurrency".to_string()];
    header.extend(Peer::ALL.map(|p| p.name().to_string()));
    Table {
        header,
        rows: rows
            .iter()
            .map(|r| {
                let mut row = vec![r.concurrency.to_string()];
                row.extend(r.spreads.map(cell));
                row
            })
            .collect(),
    }
}

/// One spawn-and-wait with std::process.
fn std_once() -> Result<(), BoxError> {
    use std::process::Stdio;
    let status = std::process::Command::new(PROGRAM)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
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
fn time_threads(n: u64, concurrency: usize) -> Result<Rate, BoxError> {
    let next = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..concurrency)
            .map(|_| {
                s.spawn(|| {
                    while next.fetch_add(1, Ordering::Relaxed) < n {
                        std_once()?;
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

/// Runs the JavaScript peer's script for `n` timed spawns (after its own warm-up): the rate
/// and the runtime's CPU time over them.
fn time_node(
    env: &Env,
    peer: Peer,
    n: u64,
    concurrency: usize,
) -> Result<(Rate, Duration), BoxError> {
    let (runtime, script) = peer.script(env).ok_or("the runtime was not found")?;
    let args = [n, concurrency as u64, WARMUP].map(|v| v.to_string());
    let out = runtime.run(&env.scripts.join(script), &args)?;
    let cpu = Duration::from_micros(json_u64(&out, "cpu_us", "spawn.js")?);
    Ok((parse_node(&out, n)?, cpu))
}

/// Reads the JSON line `xtask/bench/spawn.js` prints: `{"spawns":N,...,"elapsed_ns":T}`.
fn parse_node(out: &str, expected: u64) -> Result<Rate, BoxError> {
    let field = |name: &str| json_u64(out, name, "spawn.js");
    let count = field("spawns")?;
    if count != expected {
        return Err(format!("spawn.js timed {count} spawns, expected {expected}").into());
    }
    Ok(Rate {
        count,
        elapsed: std::time::Duration::from_nanos(field("elapsed_ns")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_node_output() {
        let rate = parse_node(
            "{\"spawns\":200,\"concurrency\":8,\"elapsed_ns\":500000000,\"per_sec\":400}\n",
            200,
        )
        .unwrap();
        assert_eq!(rate.count, 200);
        assert_eq!(rate.elapsed, std::time::Duration::from_millis(500));
        assert!(parse_node("{\"spawns\":100,\"elapsed_ns\":1}", 200).is_err());
        assert!(parse_node("garbage", 200).is_err());
    }
}
