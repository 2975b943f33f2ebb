//! The spawn section's paired runs: childproc, tokio::process and std::process in every order within one pass, and bursts of back-to-back spawns.

#[allow(unused_imports)]
use super::*;

/// The orders of one paired pass (0 childproc, 1 tokio::process, 2 std::process).
pub(super) const ORDERS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
];

/// Paired timing of childproc, tokio::process and (at concurrency 1) std::process: total
/// wall time of each one's spawns.
pub(super) struct Paired {
    pub(super) childproc: std::time::Duration,
    pub(super) tokio: std::time::Duration,
    /// `None` above concurrency 1, where a blocking call would stall the runtime's workers.
    pub(super) std: Option<std::time::Duration>,
    pub(super) each: u64,
    /// Per pass, tokio::process's spawn time minus childproc's, in µs: how far apart the two
    /// are, with how much the passes scatter.
    pub(super) diff: Diff,
}

/// Running sums of per-pass differences, for their mean and its standard error.
#[derive(Default, Clone, Copy)]
pub(super) struct Diff {
    pub(super) n: u64,
    pub(super) sum: f64,
    pub(super) squares: f64,
}

impl Diff {
    pub(super) fn add(&mut self, d: f64) {
        self.n += 1;
        self.sum += d;
        self.squares += d * d;
    }

    pub(super) fn merge(&mut self, other: Diff) {
        self.n += other.n;
        self.sum += other.sum;
        self.squares += other.squares;
    }

    /// The mean difference and the standard error of that mean.
    pub(super) fn mean_and_error(self) -> (f64, f64) {
        let n = self.n.max(2) as f64;
        let mean = self.sum / n;
        let variance = ((self.squares - n * mean * mean) / (n - 1.0)).max(0.0);
        (mean, (variance / n).sqrt())
    }
}

/// Runs `n` spawn-and-waits of each of childproc and tokio::process from `concurrency` tasks,
/// each task alternating the two, timing every spawn.
pub(super) fn paired(
    rt: &tokio::runtime::Runtime,
    n: u64,
    concurrency: usize,
) -> Result<Paired, BoxError> {
    use std::time::Duration;
    rt.block_on(async move {
        let next = std::sync::Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let next = next.clone();
                tokio::spawn(async move {
                    let (mut ours, mut theirs, mut std) =
                        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
                    let mut diff = Diff::default();
                    let mut i = 0;
                    while next.fetch_add(1, Ordering::Relaxed) < n {
                        // The order cycles through all six permutations: whichever runs
                        // right after another spawn pays a little for it (about 1.5% here),
                        // and what it pays depends on which peer ran before it (a blocking
                        // std spawn stalls the worker), so each peer follows each other one
                        // equally often.
                        let mut pass = [Duration::ZERO; 2];
                        for peer in ORDERS[i % ORDERS.len()] {
                            let t = Instant::now();
                            match peer {
                                0 => {
                                    childproc_once().await?;
                                    pass[0] = t.elapsed();
                                    ours += pass[0];
                                }
                                1 => {
                                    tokio_once().await?;
                                    pass[1] = t.elapsed();
                                    theirs += pass[1];
                                }
                                _ if concurrency == 1 => {
                                    std_once()?;
                                    std += t.elapsed();
                                }
                                _ => {}
                            }
                        }
                        diff.add((pass[1].as_secs_f64() - pass[0].as_secs_f64()) * 1e6);
                        i += 1;
                    }
                    Ok::<_, BoxError>((ours, theirs, std, diff))
                })
            })
            .collect();
        let mut total = Paired {
            childproc: Duration::ZERO,
            tokio: Duration::ZERO,
            std: (concurrency == 1).then_some(Duration::ZERO),
            each: n,
            diff: Diff::default(),
        };
        for task in tasks {
            let (ours, theirs, std, diff) = task.await??;
            total.diff.merge(diff);
            total.childproc += ours;
            total.tokio += theirs;
            total.std = total.std.map(|t| t + std);
        }
        Ok(total)
    })
}

/// The paired results: mean time per spawn-and-wait, and the peers' over childproc's.
pub(super) fn paired_table(pairs: &[(usize, Paired)]) -> Table {
    let micros =
        |d: std::time::Duration, n: u64| format!("{:.0} µs", d.as_secs_f64() * 1e6 / n as f64);
    Table {
        header: [
            "Concurrency",
            "childproc (mean per spawn)",
            "tokio::process",
            "std::process (blocking)",
            "tokio ÷ childproc",
            "tokio − childproc (± 2 SE)",
            "std ÷ childproc",
        ]
        .map(String::from)
        .to_vec(),
        rows: pairs
            .iter()
            .map(|(c, p)| {
                let ratio = |t: std::time::Duration| {
                    format!("{:.2}×", t.as_secs_f64() / p.childproc.as_secs_f64())
                };
                vec![
                    c.to_string(),
                    micros(p.childproc, p.each),
                    micros(p.tokio, p.each),
                    p.std.map_or_else(|| "—".to_string(), |t| micros(t, p.each)),
                    ratio(p.tokio),
                    {
                        let (mean, error) = p.diff.mean_and_error();
                        format!("{mean:+.1} ± {:.1} µs", 2.0 * error)
                    },
                    p.std.map_or_else(|| "—".to_string(), ratio),
                ]
            })
            .collect(),
    }
}

/// Spawns per burst in the burst-paired run, by concurrency: each burst takes about 20 ms.
pub(super) fn burst_size(concurrency: usize) -> u64 {
    if concurrency == 1 {
        24
    } else {
        64
    }
}

/// Pairs of bursts per concurrency in the burst-paired run (`--quick`: a tenth).
pub(super) const BURST_PAIRS: u64 = 400;

/// Throughput, paired: `pairs` times, a short burst of spawns with childproc and one with
/// tokio::process back to back (alternating which goes first), at `concurrency`. Returns
/// childproc's rate over tokio's: the geometric mean of the pairs' ratios and the interval of
/// two standard errors around it. Bursts 20 ms apart see the same machine, so the ratio of
/// the pair holds where rates of whole rounds, seconds apart, drift by ±15% here.
pub(super) fn bursts(
    rt: &tokio::runtime::Runtime,
    pairs: u64,
    concurrency: usize,
) -> Result<(f64, f64, f64), BoxError> {
    let burst = burst_size(concurrency);
    let mut logs = Diff::default();
    for pair in 0..pairs {
        let mut rates = [0.0; 2];
        let order = if pair % 2 == 0 { [0, 1] } else { [1, 0] };
        for peer in order {
            rates[peer] = match peer {
                0 => time_async(rt, burst, concurrency, childproc_once)?,
                _ => time_async(rt, burst, concurrency, tokio_once)?,
            }
            .per_sec();
        }
        logs.add((rates[0] / rates[1]).ln());
    }
    let (mean, error) = logs.mean_and_error();
    Ok((
        mean.exp(),
        (mean - 2.0 * error).exp(),
        (mean + 2.0 * error).exp(),
    ))
}

/// The burst-paired results: one row per concurrency.
pub(super) fn bursts_table(rows: &[(usize, (f64, f64, f64))], pairs: u64) -> Table {
    Table {
        header: [
            "Concurrency",
            "spawns per burst",
            "pairs",
            "childproc ÷ tokio (geometric mean)",
            "± 2 SE",
        ]
        .map(String::from)
        .to_vec(),
        rows: rows
            .iter()
            .map(|(c, (mean, lo, hi))| {
                vec![
                    c.to_string(),
                    burst_size(*c).to_string(),
                    pairs.to_string(),
                    format!("{mean:.3}×"),
                    format!("{lo:.3}–{hi:.3}×"),
                ]
            })
            .collect(),
    }
}
