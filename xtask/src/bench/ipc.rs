//! The "ipc" section (issue 5): Node's IPC channel message by message — round trips and
//! one-way throughput — for Rust↔Rust in each serialization, a Rust parent with a Node.js
//! child (json and advanced), Node.js↔Node.js as the baseline, and a raw socketpair as the physical limit.
//!
//! The Rust parent is this process, through childproc's public API (`fork_exe`, `send`,
//! `channel()`, `events()`); the Rust child is this same binary as
//! `xtask bench-worker ipc-child`, through `childproc::ipc::from_env()`. The Node.js peers
//! are `xtask/bench/ipc.js` (the `child` role for the Rust parent; the `parent` role forks
//! itself and times itself). The raw limit is `xtask bench-worker ipc-raw`: blocking
//! `read`/`write` of 16 bytes on a socketpair, the same on our side.
//!
//! Every child speaks one small protocol, in any serialization: a string is echoed back;
//! `{sink: N}` makes it count the next N messages and answer `{got: N}`; `{source: N, size}`
//! makes it send N strings of `size` characters; `{numbered: N, size}` the same with each
//! string's sequence number first (the memory rows, see `memory`). It exits when the parent
//! disconnects.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use childproc::Serialization;
use tokio::runtime::Runtime;

use super::doc::Section;
use super::{json_u64, rotation, Env, Options, Rate};
use crate::BoxError;

mod affinity;
mod children;
mod memory;
mod peers;
mod report;

/// `xtask bench-worker ipc-child|ipc-raw|ipc-tokio|ipc-memory ..`: this section's workers.
pub(crate) fn worker(args: &[String]) -> Result<(), BoxError> {
    match args.first().map(String::as_str) {
        Some("ipc-memory") => memory::worker(args),
        _ => children::worker(args),
    }
}
use report::Results;

/// The characters of a small message (a string; the raw peer sends this many bytes).
const SMALL_SIZE: usize = 16;
/// The characters of a big message.
const BIG_SIZE: usize = 64 * 1024;
/// A guard against a hung child: far above any measurement.
const GUARD: Duration = Duration::from_secs(300);

/// How much to measure per pair and round.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Rounds; each runs every pair once, in a rotating order.
    rounds: usize,
    /// Timed round trips.
    round_trips: u64,
    /// Small messages per one-way run.
    small: u64,
    /// Big messages per one-way run.
    big: u64,
    /// Untimed round trips first.
    warmup: u64,
}

impl Plan {
    /// The plan of a full run; `--quick` takes a tenth of every count.
    fn new(quick: bool) -> Plan {
        let full = Plan {
            rounds: 5,
            round_trips: 10_000,
            small: 100_000,
            big: 1_000,
            warmup: 500,
        };
        if quick {
            Plan {
                rounds: 3,
                round_trips: full.round_trips / 10,
                small: full.small / 10,
                big: full.big / 10,
                warmup: full.warmup / 10,
            }
        } else {
            full
        }
    }
}

/// A parent and child being compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pair {
    /// Rust parent, Rust child, Node's 'json'.
    RustJson,
    /// Rust parent, Rust child, length-delimited JSON.
    RustLengthJson,
    /// Rust parent, Rust child, MessagePack.
    RustMsgPack,
    /// Rust parent, Rust child, Node's 'advanced' (V8 format).
    RustAdvanced,
    /// Rust parent, Node.js child, 'json'.
    RustNode,
    /// Rust parent, Node.js child, 'advanced'.
    RustNodeAdvanced,
    /// Node.js `fork()`, Node.js child, 'json'.
    NodeJson,
    /// Node.js `fork()`, Node.js child, 'advanced'.
    NodeAdvanced,
    /// Bun running `ipc.js` on both sides, 'json'.
    BunJson,
    /// Bun on both sides, 'advanced'.
    BunAdvanced,
    /// Deno running `ipc.js` on both sides, 'json'.
    DenoJson,
    /// Deno on both sides, 'advanced'.
    DenoAdvanced,
    /// Blocking `read`/`write` of 16 bytes on a socketpair.
    Raw,
    /// The same 16 bytes through tokio's `UnixStream` on both sides: no framing, no tasks.
    TokioRaw,
}

impl Pair {
    /// Every pair, in table order.
    const ALL: [Pair; 14] = [
        Pair::RustJson,
        Pair::RustLengthJson,
        Pair::RustMsgPack,
        Pair::RustAdvanced,
        Pair::RustNode,
        Pair::RustNodeAdvanced,
        Pair::NodeJson,
        Pair::NodeAdvanced,
        Pair::BunJson,
        Pair::BunAdvanced,
        Pair::DenoJson,
        Pair::DenoAdvanced,
        Pair::Raw,
        Pair::TokioRaw,
    ];

    /// The name shown in output.
    fn name(self) -> &'static str {
        match self {
            Pair::RustJson => "Rust ↔ Rust, json",
            Pair::RustLengthJson => "Rust ↔ Rust, json-length",
            Pair::RustMsgPack => "Rust ↔ Rust, msgpack",
            Pair::RustAdvanced => "Rust ↔ Rust, advanced",
            Pair::RustNode => "Rust parent ↔ Node child, json",
            Pair::RustNodeAdvanced => "Rust parent ↔ Node child, advanced",
            Pair::NodeJson => "Node ↔ Node, json",
            Pair::NodeAdvanced => "Node ↔ Node, advanced",
            Pair::BunJson => "Bun ↔ Bun, json",
            Pair::BunAdvanced => "Bun ↔ Bun, advanced",
            Pair::DenoJson => "Deno ↔ Deno, json",
            Pair::DenoAdvanced => "Deno ↔ Deno, advanced",
            Pair::Raw => "raw socketpair, blocking read/write",
            Pair::TokioRaw => "raw socketpair, tokio UnixStream",
        }
    }

    fn index(self) -> usize {
        Pair::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    /// The JavaScript runtime this pair needs on PATH, if any.
    fn runtime(self, env: &Env) -> Option<Option<&super::Node>> {
        match self {
            Pair::RustNode | Pair::RustNodeAdvanced | Pair::NodeJson | Pair::NodeAdvanced => {
                Some(env.node.as_ref())
            }
            Pair::BunJson | Pair::BunAdvanced => Some(env.bun.as_ref()),
            Pair::DenoJson | Pair::DenoAdvanced => Some(env.deno.as_ref()),
            _ => None,
        }
    }
}

/// What is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    /// Round trips of a small message.
    RoundTrips,
    /// Small messages, parent → child.
    SmallOut,
    /// Big messages, parent → child.
    BigOut,
    /// Small messages, child → parent.
    SmallIn,
    /// Big messages, child → parent.
    BigIn,
}

impl Metric {
    /// Every metric, in the order of a [`Sample`].
    const ALL: [Metric; 5] = [
        Metric::RoundTrips,
        Metric::SmallOut,
        Metric::BigOut,
        Metric::SmallIn,
        Metric::BigIn,
    ];

    /// The field name in `ipc.js`'s output (`round_trips`, `round_trips_ns`, ...).
    fn key(self) -> &'static str {
        match self {
            Metric::RoundTrips => "round_trips",
            Metric::SmallOut => "small_out",
            Metric::BigOut => "big_out",
            Metric::SmallIn => "small_in",
            Metric::BigIn => "big_in",
        }
    }

    /// The characters per message.
    fn size(self) -> usize {
        match self {
            Metric::RoundTrips | Metric::SmallOut | Metric::SmallIn => SMALL_SIZE,
            Metric::BigOut | Metric::BigIn => BIG_SIZE,
        }
    }

    /// How many messages (or round trips) one run times.
    fn count(self, plan: Plan) -> u64 {
        match self {
            Metric::RoundTrips => plan.round_trips,
            Metric::SmallOut | Metric::SmallIn => plan.small,
            Metric::BigOut | Metric::BigIn => plan.big,
        }
    }

    fn index(self) -> usize {
        Metric::ALL.iter().position(|m| *m == self).unwrap_or(0)
    }
}

/// One pair's timings in one round, in [`Metric::ALL`] order (`None`: not measured).
type Sample = [Option<Rate>; 5];

/// Measures every pair and returns the section for the docs.
pub(super) fn run(opts: &Options, env: &Env) -> Result<Section, BoxError> {
    let plan = Plan::new(opts.quick);
    let ctx = Ctx {
        env,
        xtask: std::env::current_exe()?,
        plan,
    };
    let pairs: Vec<Pair> = Pair::ALL
        .into_iter()
        .filter(|p| p.runtime(env).is_none_or(|r| r.is_some()))
        .collect();
    println!(
        "ipc: {} rounds; per pair and round {} round trips ({} untimed first), {} messages of \
         {SMALL_SIZE} B and {} of {BIG_SIZE} B each way; then the round trips again with \
         every process on one CPU\n",
        plan.rounds, plan.round_trips, plan.warmup, plan.small, plan.big
    );
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let workers = rt.metrics().num_workers();
    let free = measure_rounds(&ctx, &pairs, plan, &rt, "")?;
    let memory = memory::measure(&ctx.xtask, opts.quick)?;
    drop(rt);
    // The same round trips with the parent, its runtime's threads and every child pinned
    // to one CPU: no wake-up has to cross to another (possibly sleeping) CPU, so this
    // measures the software, where the free run also measures the machine's scheduler.
    let one_cpu = std::thread::scope(|s| {
        s.spawn(|| -> Result<Option<Results>, BoxError> {
            let cpu = match affinity::pin_current_thread() {
                Ok(cpu) => cpu,
                Err(e) => {
                    println!("note: cannot pin to one CPU ({e}); one-CPU round trips skipped\n");
                    return Ok(None);
                }
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let only_round_trips = Plan {
                small: 0,
                big: 0,
                ..plan
            };
            let label = format!(" (CPU {cpu} only)");
            measure_rounds(&ctx, &pairs, only_round_trips, &rt, &label).map(Some)
        })
        .join()
        .map_err(|_| "the one-CPU measuring thread panicked")?
    })?;
    if let Some(one) = &one_cpu {
        let vs = |ours: Pair| {
            let (o, t) = (
                one.median(ours, Metric::RoundTrips)?,
                one.median(Pair::NodeJson, Metric::RoundTrips)?,
            );
            (t.per_sec() > 0.0).then(|| o.per_sec() / t.per_sec())
        };
        super::record("ipc.json_vs_node_one_cpu", vs(Pair::RustJson));
        super::record("ipc.advanced_vs_node_one_cpu", vs(Pair::RustAdvanced));
    }
    println!(
        "ipc: measured in {:.0} s\n",
        started.elapsed().as_secs_f64()
    );

    // The raw pairs only do round trips.
    let messaging: Vec<Pair> = pairs
        .iter()
        .copied()
        .filter(|p| !matches!(p, Pair::Raw | Pair::TokioRaw))
        .collect();
    let tables = report::Tables {
        round_trips_one_cpu: one_cpu.as_ref().map(|r| r.round_trip_table(&pairs)),
        round_trips: free.round_trip_table(&pairs),
        out: free.one_way_table(&messaging, Metric::SmallOut, Metric::BigOut),
        inward: free.one_way_table(&messaging, Metric::SmallIn, Metric::BigIn),
        spreads: free.spread_table(&pairs, one_cpu.as_ref()),
    };
    println!("{}", tables.render_plain());
    Ok(Section {
        name: "ipc",
        body: report::body(&ctx, &free, one_cpu.as_ref(), workers, &tables) + &memory.render(),
    })
}

/// Every pair, `plan.rounds` times in a rotating order, on `rt`; prints each round.
fn measure_rounds(
    ctx: &Ctx<'_>,
    pairs: &[Pair],
    plan: Plan,
    rt: &Runtime,
    label: &str,
) -> Result<Results, BoxError> {
    let mut results = Results::new();
    for round in 0..plan.rounds {
        for pair in rotation(pairs, round) {
            let sample = measure(ctx, pair, plan, rt)?;
            let shown: Vec<String> = Metric::ALL
                .iter()
                .zip(&sample)
                .filter_map(|(m, r)| r.map(|r| format!("{} {:.0}/s", m.key(), r.per_sec())))
                .collect();
            println!(
                "  round {}{label}: {:<36} {}",
                round + 1,
                pair.name(),
                shown.join(", ")
            );
            results.add(pair, &sample);
        }
    }
    println!();
    Ok(results)
}

/// What measuring needs.
struct Ctx<'a> {
    env: &'a Env,
    /// This executable, forked as the Rust child.
    xtask: PathBuf,
    /// The plan of the full measurement.
    plan: Plan,
}

/// One round of one pair, the Rust parent on `rt`; metrics `plan` counts 0 of are skipped.
fn measure(ctx: &Ctx<'_>, pair: Pair, plan: Plan, rt: &Runtime) -> Result<Sample, BoxError> {
    let serialization = match pair {
        Pair::RustLengthJson => Serialization::LengthJson,
        Pair::RustMsgPack => Serialization::MsgPack,
        Pair::RustAdvanced
        | Pair::RustNodeAdvanced
        | Pair::NodeAdvanced
        | Pair::BunAdvanced
        | Pair::DenoAdvanced => Serialization::Advanced,
        _ => Serialization::Json,
    };
    match pair {
        Pair::RustJson
        | Pair::RustLengthJson
        | Pair::RustMsgPack
        | Pair::RustAdvanced
        | Pair::RustNode
        | Pair::RustNodeAdvanced => {
            let fork = if matches!(pair, Pair::RustNode | Pair::RustNodeAdvanced) {
                childproc::fork(ctx.env.scripts.join("ipc.js"), ["child"])
            } else {
                childproc::fork_exe(&ctx.xtask, ["bench-worker", "ipc-child"])
            };
            let fork = fork.serialization(serialization).kill_on_drop(true);
            rt.block_on(async move {
                let child = fork.spawn()?;
                let task = tokio::spawn(async move { peers::rust_parent(&child, plan).await });
                tokio::time::timeout(GUARD, task)
                    .await
                    .map_err(|_| format!("{}: timed out", pair.name()))??
            })
        }
        Pair::NodeJson
        | Pair::NodeAdvanced
        | Pair::BunJson
        | Pair::BunAdvanced
        | Pair::DenoJson
        | Pair::DenoAdvanced => {
            let node = pair
                .runtime(ctx.env)
                .flatten()
                .ok_or_else(|| format!("{}: its runtime was not found", pair.name()))?;
            let mode = if serialization == Serialization::Advanced {
                "advanced"
            } else {
                "json"
            };
            let mut args = vec!["parent".to_string(), mode.to_string()];
            args.extend(
                [plan.round_trips, plan.small, plan.big, plan.warmup].map(|n| n.to_string()),
            );
            let out = node.run(&ctx.env.scripts.join("ipc.js"), &args)?;
            parse_node(&out, plan)
        }
        Pair::Raw | Pair::TokioRaw => {
            let mut sample = [None; 5];
            let rate = if pair == Pair::Raw {
                peers::raw_round_trips(&ctx.xtask, plan)?
            } else {
                peers::tokio_round_trips(&ctx.xtask, plan, rt)?
            };
            sample[Metric::RoundTrips.index()] = Some(rate);
            Ok(sample)
        }
    }
}

/// Reads the JSON line of `ipc.js parent`.
fn parse_node(out: &str, plan: Plan) -> Result<Sample, BoxError> {
    let mut sample = [None; 5];
    for metric in Metric::ALL {
        let count = json_u64(out, metric.key(), "ipc.js")?;
        if count != metric.count(plan) {
            return Err(format!("ipc.js timed {count} {}", metric.key()).into());
        }
        if count == 0 {
            continue;
        }
        let ns = json_u64(out, &format!("{}_ns", metric.key()), "ipc.js")?;
        sample[metric.index()] = Some(Rate {
            count,
            elapsed: Duration::from_nanos(ns),
        });
    }
    Ok(sample)
}

#[cfg(test)]
mod tests {
    use super::*;
    use childproc::ipc::Value;
    use children::{count_field, count_value};

    #[test]
    fn parses_node_output() {
        let plan = Plan::new(true);
        let out = format!(
            "{{\"round_trips\":{},\"round_trips_ns\":1000000000,\"small_out\":{s},\
             \"small_out_ns\":500000000,\"big_out\":{b},\"big_out_ns\":7,\"small_in\":{s},\
             \"small_in_ns\":8,\"big_in\":{b},\"big_in_ns\":9}}\n",
            plan.round_trips,
            s = plan.small,
            b = plan.big
        );
        let sample = parse_node(&out, plan).unwrap();
        let rt = sample[Metric::RoundTrips.index()].unwrap();
        assert!((rt.per_sec() - plan.round_trips as f64).abs() < 1e-6);
        assert_eq!(sample[Metric::BigIn.index()].unwrap().elapsed.as_nanos(), 9);
        assert!(parse_node("{\"round_trips\":1}", plan).is_err());
    }

    #[test]
    fn quick_is_a_tenth() {
        let (full, quick) = (Plan::new(false), Plan::new(true));
        assert_eq!(quick.round_trips * 10, full.round_trips);
        assert_eq!(quick.small * 10, full.small);
        assert_eq!(quick.big * 10, full.big);
    }

    #[test]
    fn counts_round_trip_through_messages() {
        let m = Value::object([("sink", count_value(100_000))]);
        assert_eq!(count_field(&m, "sink"), Some(100_000));
        assert_eq!(count_field(&m, "nope"), None);
        let bad = Value::object([("sink", Value::from(-1.5))]);
        assert_eq!(count_field(&bad, "sink"), None);
    }
}
