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

    /// The slowest and fastest round of every pair and metric.
    pub(super) fn spread_table(&self, pairs: &[Pair]) -> Table {
        let mut header = vec!["Pair".to_string()];
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
                    row.extend(Metric::ALL.map(|m| {
                        spread(self.rounds(p, m)).map_or_else(dash, |(lo, hi)| {
                            format!("{:.0}–{:.0}", lo.per_sec(), hi.per_sec())
                        })
                    }));
                    row
                })
                .collect(),
        }
    }
}

fn dash() -> String {
    "—".to_string()
}

/// The Markdown of the section.
pub(super) fn body(
    ctx: &Ctx<'_>,
    results: &Results,
    workers: usize,
    tables: [&Table; 4],
) -> String {
    let p = ctx.plan;
    let node = ctx
        .env
        .node
        .as_ref()
        .map_or("not found", |n| n.version.as_str());
    let [round_trips, out, inward, spreads] = tables;
    let vs = |pair: Pair, other: Pair, m: Metric| results.ratio(pair, other, m);
    let rust = [Pair::RustJson, Pair::RustLengthJson, Pair::RustMsgPack];
    let against = |other: Pair, m: Metric| {
        rust.iter()
            .zip(["json", "json-length", "msgpack"])
            .map(|(&pair, name)| format!("{name} {}", vs(pair, other, m)))
            .collect::<Vec<_>>()
            .join(", ")
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
         - Rust parent ↔ Node child: the same parent, `fork(\"xtask/bench/ipc.js\", [\"child\"])`\n\
         - Node ↔ Node: `xtask/bench/ipc.js parent json|advanced` forks itself with\n  \
           `{{ serialization }}` and times itself (its startup is not counted)\n\
         - raw socketpair, blocking read/write: `UnixStream::pair()`, the child's end as the\n  \
           stdin of `xtask bench-worker ipc-raw`; both sides `write` 16 bytes and block in\n  \
           `read` for 16 — no framing, no runtime: the physical limit of a round trip\n\
         - raw socketpair, tokio UnixStream: the same 16 bytes through tokio's `UnixStream`\n  \
           (`write_all`, `read_exact`) on both sides (`xtask bench-worker ipc-tokio`, a\n  \
           current-thread runtime): what any channel on a tokio reactor starts from\n\n\
         {} rounds; the rounds interleave the pairs in a rotating order and each table shows\n\
         the median round. These numbers come from a 2-core virtual machine shared with other\n\
         work, and will be re-measured on a quiet machine. Round trips there swing by up to 10×\n\
         from one minute to the next for every pair alike (how fast a sleeping virtual CPU is\n\
         woken up), so only the ratios within one run mean anything.\n\n\
         ### Round trips\n\n{}\n\
         Targets: Rust ↔ Rust ÷ raw socketpair ≥ 0.85× ({}); ÷ Node ↔ Node json ≈ 1.8×\n\
         ({}). A round trip costs each side of a childproc channel one `epoll_wait`, one\n\
         `recv` and one `send`, against one blocking `read` and one `write` for the raw pair:\n\
         see docs/ipc.md for why that is the floor on a tokio reactor.\n\n\
         ### One way, parent → child\n\n{}\n\
         ### One way, child → parent\n\n{}\n\
         Target: small-message throughput ≥ 5× Node ↔ Node json: parent → child {}; child →\n\
         parent {}.\n\n\
         The spread of the rounds (slowest–fastest, per second):\n\n{}",
        p.warmup,
        p.round_trips,
        p.small,
        p.big,
        p.rounds,
        round_trips.render(),
        against(Pair::Raw, Metric::RoundTrips),
        against(Pair::NodeJson, Metric::RoundTrips),
        out.render(),
        inward.render(),
        against(Pair::NodeJson, Metric::SmallOut),
        against(Pair::NodeJson, Metric::SmallIn),
        spreads.render(),
    )
}
