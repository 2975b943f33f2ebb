//! The ipc section's results: the tables and the Markdown of docs/benchmarks.md.

use super::super::doc::Table;
use super::super::{median, spread, Rate};
use super::{Ctx, Metric, Pair, Sample, BIG_SIZE, SMALL_SIZE};

/// Every round of every pair: `runs[pair][metric]` holds one rate per round.
pub(super) struct Results {
    runs: Vec<Vec<Vec<Rate>>>,
}

impl Results {
    pub(super) fn new() -> Results {
        Results {
            runs: vec![vec![Vec::new(); Metric::ALL.len()]; Pair::ALL.len()],
        }
    }

    pub(super) fn add(&mut self, pair: Pair, sample: &Sample) {
        for (i, rate) in sample.iter().enumerate() {
            if let Some(rate) = rate {
                self.runs[pair.index()][i].push(*rate);
            }
        }
    }

    pub(super) fn rounds(&self, pair: Pair, metric: Metric) -> &[Rate] {
        &self.runs[pair.index()][metric.index()]
    }

    pub(super) fn median(&self, pair: Pair, metric: Metric) -> Option<Rate> {
        median(self.rounds(pair, metric))
    }

    /// `pair ÷ other` on `metric`, as `1.85×`, or a dash.
    pub(super) fn ratio(&self, pair: Pair, other: Pair, metric: Metric) -> String {
        match (self.median(pair, metric), self.median(other, metric)) {
            (Some(a), Some(b)) if b.per_sec() > 0.0 => format!("{:.2}×", a.per_sec() / b.per_sec()),
            _ => dash(),
        }
    }

    /// Round trips per second, and the ratios to the raw limit and to Node.js.
    pub(super) fn round_trip_table(&self, pairs: &[Pair]) -> Table {
        let m = Metric::RoundTrips;
        Table {
            header: [
                "Pair",
                "round trips/s",
                "µs per round trip",
                "÷ raw socketpair",
                "÷ tokio UnixStream",
                "÷ Node ↔ Node json",
            ]
            .map(String::from)
            .to_vec(),
            rows: pairs
                .iter()
                .map(|&p| {
                    let rate = self.median(p, m);
                    vec![
                        p.name().to_string(),
                        rate.map_or_else(dash, |r| format!("{:.0}", r.per_sec())),
                        rate.map_or_else(dash, |r| format!("{:.1}", 1e6 / r.per_sec())),
                        self.ratio(p, Pair::Raw, m),
                        self.ratio(p, Pair::TokioRaw, m),
                        self.ratio(p, Pair::NodeJson, m),
                    ]
                })
                .collect(),
        }
    }

    /// One direction of the one-way runs: messages/s and MB/s for both sizes.
    pub(super) fn one_way_table(&self, pairs: &[Pair], small: Metric, big: Metric) -> Table {
        let cells = |rate: Option<Rate>, size: usize| match rate {
            Some(r) => [
                format!("{:.0}", r.per_sec()),
                format!("{:.1}", r.per_sec() * size as f64 / 1e6),
            ],
            None => [dash(), dash()],
        };
        Table {
            header: [
                "Pair",
                "16 B msgs/s",
                "16 B MB/s",
                "64 KiB msgs/s",
                "64 KiB MB/s",
                "16 B ÷ Node json",
                "64 KiB ÷ Node json",
            ]
            .map(String::from)
            .to_vec(),
            rows: pairs
                .iter()
                .map(|&p| {
                    let mut row = vec![p.name().to_string()];
                    row.extend(cells(self.median(p, small), small.size()));
                    row.extend(cells(self.median(p, big), big.size()));
                    row.push(self.ratio(p, Pair::NodeJson, small));
                    row.push(self.ratio(p, Pair::NodeJson, big));
                    row
                })
                .collect(),
        }
    }

    /// The slowest and fastest round of every pair and metric, and of the one-CPU round
    /// trips if measured.
    pub(super) fn spread_table(&self, pairs: &[Pair], one_cpu: Option<&Results>) -> Table {
        let cell = |rounds: &[Rate]| {
            spread(rounds).map_or_else(dash, |(lo, hi)| {
                format!("{:.0}–{:.0}", lo.per_sec(), hi.per_sec())
            })
        };
        let mut header = vec!["Pair".to_string()];
        if one_cpu.is_some() {
            header.push("round trips/s, one CPU".to_string());
        }
        header.extend(
            [
                "round trips/s",
                "16 B → child",
                "64 KiB → child",
                "16 B ← child",
                "64 KiB ← child",
            ]
            .map(String::from),
        );
        Table {
            header,
            rows: pairs
                .iter()
                .map(|&p| {
                    let mut row = vec![p.name().to_string()];
                    if let Some(one_cpu) = one_cpu {
                        row.push(cell(one_cpu.rounds(p, Metric::RoundTrips)));
                    }
                    row.extend(Metric::ALL.map(|m| cell(self.rounds(p, m))));
                    row
                })
                .collect(),
        }
    }
}

/// The section's tables.
pub(super) struct Tables {
    /// Round trips with every process on one CPU, if that could be arranged.
    pub(super) round_trips_one_cpu: Option<Table>,
    /// Round trips, free to use every CPU.
    pub(super) round_trips: Table,
    /// One way, parent → child.
    pub(super) out: Table,
    /// One way, child → parent.
    pub(super) inward: Table,
    /// The spread of the rounds.
    pub(super) spreads: Table,
}

impl Tables {
    /// Every table, for the terminal.
    pub(super) fn render_plain(&self) -> String {
        [
            self.round_trips_one_cpu.as_ref(),
            Some(&self.round_trips),
            Some(&self.out),
            Some(&self.inward),
            Some(&self.spreads),
        ]
        .into_iter()
        .flatten()
        .map(Table::render)
        .collect::<Vec<_>>()
        .join("\n")
    }
}

fn dash() -> String {
    "—".to_string()
}

/// The Markdown of the section.
pub(super) fn body(
    ctx: &Ctx<'_>,
    free: &Results,
    one_cpu: Option<&Results>,
    workers: usize,
    tables: &Tables,
) -> String {
    let p = ctx.plan;
    let node = ctx
        .env
        .node
        .as_ref()
        .map_or("not found", |n| n.version.as_str());
    let version = |r: Option<&super::super::Node>, name: &str| {
        r.map_or(format!("{name} (not found)"), |r| {
            format!("{name} {}", r.version)
        })
    };
    let (bun, deno) = (
        version(ctx.env.bun.as_ref(), "Bun"),
        version(ctx.env.deno.as_ref(), "Deno"),
    );
    let rust = [
        Pair::RustJson,
        Pair::RustLengthJson,
        Pair::RustMsgPack,
        Pair::RustAdvanced,
    ];
    let against = |results: &Results, other: Pair, m: Metric| {
        rust.iter()
            .zip(["json", "json-length", "msgpack", "advanced"])
            .map(|(&pair, name)| format!("{name} {}", results.ratio(pair, other, m)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rt = Metric::RoundTrips;
    let (one_cpu_table, one_cpu_targets) = match (one_cpu, &tables.round_trips_one_cpu) {
        (Some(results), Some(table)) => (
            format!(
                "Every process on one CPU (the parent, its runtime's threads and the child \
                 pinned\nwith `sched_setaffinity`): no wake-up crosses to another, possibly \
                 sleeping, CPU, so\nthis measures the software. Fresh children, {} round \
                 trips per pair and round.\n\n{}\n\
                 Free to use both CPUs (the same children as the one-way runs below):\n\n",
                p.round_trips,
                table.render()
            ),
            format!(
                "- Rust ↔ Rust ÷ raw socketpair ≥ 0.85×: one CPU {}; both CPUs {}\n\
                 - Rust ↔ Rust ÷ Node ↔ Node json ≈ 1.8×: one CPU {}; both CPUs {}\n",
                against(results, Pair::Raw, rt),
                against(free, Pair::Raw, rt),
                against(results, Pair::NodeJson, rt),
                against(free, Pair::NodeJson, rt),
            ),
        ),
        _ => (
            String::new(),
            format!(
                "- Rust ↔ Rust ÷ raw socketpair ≥ 0.85×: {}\n\
                 - Rust ↔ Rust ÷ Node ↔ Node json ≈ 1.8×: {}\n",
                against(free, Pair::Raw, rt),
                against(free, Pair::NodeJson, rt),
            ),
        ),
    };
    format!(
        "## IPC\n\n\
         Messages over Node's IPC channel (a Unix socketpair at fd 3 in the child), with\n\
         childproc's public API on the Rust side and Node.js {node}'s `fork()` on the Node side.\n\
         Each round starts one child per pair and times, after {} untimed round trips:\n\n\
         - round trips: {} ping-pongs of a {SMALL_SIZE}-character string (the parent sends,\n  \
           the child echoes, the parent waits for the echo before sending it again);\n\
         - parent → child: {} strings of {SMALL_SIZE} characters, then {} of {BIG_SIZE}; the\n  \
           time runs until the child, which counts them, answers after the last;\n\
         - child → parent: the same counts the other way, until the parent has the last.\n\n\
         Senders use Node's flow control: `send` without waiting while it returns true, and\n\
         after a false (more than 128 KiB queued) the next message is sent waiting for it to\n\
         be written (Rust: `send_nowait`, then `send(..).await`; Node: `send(msg)`, then\n\
         `send(msg, callback)`). Sizes count the string's characters (all ASCII), not the\n\
         framing; MB is 10^6 bytes.\n\n\
         - Rust ↔ Rust: the parent (this bench, a multi-thread runtime with {workers} worker\n  \
           threads) forks `xtask bench-worker ipc-child` with `fork_exe(..)\n  \
           .serialization(..)` and uses `child.send(..).await`, `child.channel()` and\n  \
           `child.events()`; the child is a current-thread runtime with\n  \
           `childproc::ipc::from_env()`'s `Channel` and its `Sender`\n\
         - Rust parent ↔ Node child: the same parent, `fork(\"xtask/bench/ipc.js\", [\"child\"])\n  \
           .serialization(..)`, json or advanced\n\
         - Node ↔ Node: `xtask/bench/ipc.js parent json|advanced` forks itself with\n  \
           `{{ serialization }}` and times itself (its startup is not counted)\n\
         - Bun ↔ Bun, Deno ↔ Deno: the same script under {bun} and {deno} (`run -A\n  \
           --unstable-detect-cjs`), unchanged; a runtime not on PATH has no rows\n\
         - raw socketpair, blocking read/write: `UnixStream::pair()`, the child's end as the\n  \
           stdin of `xtask bench-worker ipc-raw`; both sides `write` 16 bytes and block in\n  \
           `read` for 16 — no framing, no runtime: the physical limit of a round trip\n\
         - raw socketpair, tokio UnixStream: the same 16 bytes through tokio's `UnixStream`\n  \
           (`write_all`, `read_exact`) on both sides (`xtask bench-worker ipc-tokio`, a\n  \
           current-thread runtime): what any channel on a tokio reactor starts from\n\n\
         {} rounds; the rounds interleave the pairs in a rotating order and each table shows\n\
         the median round. These numbers come from a 2-core virtual machine shared with other\n\
         work, and will be re-measured on a quiet machine. There, a wake-up that crosses to the\n\
         other CPU often costs tens of microseconds, and whether the two processes of a pair\n\
         share a CPU changes from run to run: round trips free to use both CPUs swing by up\n\
         to 10×, for every pair alike, which the one-CPU table avoids.\n\n\
         ### Round trips\n\n{one_cpu_table}{}\n\
         Targets, in this run:\n\n{one_cpu_targets}\n\
         A round trip costs each side of a childproc channel one `epoll_wait`, one `recv` and\n\
         one `send`, against one blocking `read` and one `write` for the raw pair: see\n\
         docs/ipc.md for why that is the floor on a tokio reactor.\n\n\
         ### One way, parent → child\n\n{}\n\
         ### One way, child → parent\n\n{}\n\
         Target, in this run: small-message throughput ≥ 5× Node ↔ Node json:\n\n\
         - parent → child: {}\n\
         - child → parent: {}\n\n\
         The spread of the rounds (slowest–fastest, per second):\n\n{}",
        p.warmup,
        p.round_trips,
        p.small,
        p.big,
        p.rounds,
        tables.round_trips.render(),
        tables.out.render(),
        tables.inward.render(),
        against(free, Pair::NodeJson, Metric::SmallOut),
        against(free, Pair::NodeJson, Metric::SmallIn),
        tables.spreads.render(),
    )
}
