//! The harness every section measures with: a rate, medians and spreads over interleaved
//! rounds, the rotating order of peers in a round, timing a batch of calls or of async
//! operations from several tasks, and reading the numbers a Node.js script prints. A section
//! is what it measures; how rounds are run and summed up is here.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use crate::BoxError;

/// A throughput measurement: `count` operations in `elapsed`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rate {
    /// Operations timed.
    pub(crate) count: u64,
    /// Wall-clock time they took.
    pub(crate) elapsed: Duration,
}

impl Rate {
    /// Operations per second.
    pub(crate) fn per_sec(self) -> f64 {
        // Counts are far below 2^52, so the conversion is exact.
        #[allow(clippy::cast_precision_loss)]
        let count = self.count as f64;
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            count / secs
        } else {
            0.0
        }
    }
}

/// The median of `rates` by rate (the upper middle one for an even count).
pub(crate) fn median(rates: &[Rate]) -> Option<Rate> {
    let mut sorted = rates.to_vec();
    sorted.sort_by(|a, b| a.per_sec().total_cmp(&b.per_sec()));
    sorted.get(sorted.len() / 2).copied()
}

/// The slowest and fastest of `rates`.
pub(crate) fn spread(rates: &[Rate]) -> Option<(Rate, Rate)> {
    let by_rate = |a: &&Rate, b: &&Rate| a.per_sec().total_cmp(&b.per_sec());
    Some((
        *rates.iter().min_by(by_rate)?,
        *rates.iter().max_by(by_rate)?,
    ))
}

/// The order peers run in during round `round`: `peers` rotated by the round number, so no
/// peer always runs first (or right after the same neighbour).
pub(crate) fn rotation<T: Copy>(peers: &[T], round: usize) -> Vec<T> {
    if peers.is_empty() {
        return Vec::new();
    }
    let start = round % peers.len();
    peers[start..]
        .iter()
        .chain(&peers[..start])
        .copied()
        .collect()
}

/// Runs `op` `n` times on `rt` from `concurrency` tasks pulling from one counter.
pub(crate) fn time_async<F, Fut>(
    rt: &Runtime,
    n: u64,
    concurrency: usize,
    op: F,
) -> Result<Rate, BoxError>
where
    F: Fn() -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    rt.block_on(async move {
        let next = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let next = Arc::clone(&next);
                tokio::spawn(async move {
                    while next.fetch_add(1, Ordering::Relaxed) < n {
                        op().await?;
                    }
                    Ok::<(), BoxError>(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        Ok(Rate {
            count: n,
            elapsed: start.elapsed(),
        })
    })
}

/// The unsigned integer field `name` of the one-line JSON object a Node.js script printed
/// (`{"spawns":200,"elapsed_ns":5000}`); `script` names the script in errors.
pub(crate) fn json_u64(out: &str, name: &str, script: &str) -> Result<u64, BoxError> {
    let key = format!("\"{name}\":");
    let at = out
        .find(&key)
        .ok_or_else(|| format!("{script} printed no `{name}`: {out:?}"))?;
    let digits: String = out[at + key.len()..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Ok(digits
        .parse()
        .map_err(|e| format!("{script} `{name}`: {e}: {out:?}"))?)
}

/// The median of `xs` (the upper middle one for an even count; NaN for none).
pub(crate) fn median_f64(xs: &[f64]) -> f64 {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The median of `times` (the upper middle one for an even count).
pub(crate) fn median_duration(times: &[Duration]) -> Option<Duration> {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied()
}

/// Runs `f` repeatedly for about `budget` (at least `min` times): the mean time of one call.
/// One untimed call first sizes the batch.
pub(crate) fn batch(
    budget: Duration,
    min: u32,
    mut f: impl FnMut() -> Result<(), BoxError>,
) -> Result<Duration, BoxError> {
    let t = Instant::now();
    f()?;
    let once = t.elapsed().max(Duration::from_nanos(100));
    let n = (budget.as_nanos() / once.as_nanos()).clamp(u128::from(min), 1_000_000) as u32;
    let t = Instant::now();
    for _ in 0..n {
        f()?;
    }
    Ok(t.elapsed() / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_starts_at_the_round() {
        assert_eq!(rotation(&[1, 2, 3], 0), [1, 2, 3]);
        assert_eq!(rotation(&[1, 2, 3], 1), [2, 3, 1]);
        assert_eq!(rotation(&[1, 2, 3], 5), [3, 1, 2]);
        assert!(rotation::<u8>(&[], 3).is_empty());
    }

    #[test]
    fn json_fields() {
        let out = "{\"bytes\":1024,\"elapsed_ns\": 77}\n";
        assert_eq!(json_u64(out, "bytes", "x.js").unwrap(), 1024);
        assert_eq!(json_u64(out, "elapsed_ns", "x.js").unwrap(), 77);
        assert!(json_u64(out, "nope", "x.js").is_err());
        assert!(json_u64("{\"bytes\":-1}", "bytes", "x.js").is_err());
    }

    #[test]
    fn medians() {
        assert_eq!(median_f64(&[3.0, 1.0, 2.0]), 2.0);
        assert!(median_f64(&[]).is_nan());
        let ms = Duration::from_millis;
        assert_eq!(median_duration(&[ms(5), ms(1), ms(9), ms(7)]), Some(ms(7)));
        assert_eq!(median_duration(&[]), None);
        let rates = [1u64, 3, 2].map(|n| Rate {
            count: n,
            elapsed: Duration::from_secs(1),
        });
        assert_eq!(median(&rates).map(|r| r.count), Some(2));
        assert_eq!(
            spread(&rates).map(|(a, b)| (a.count, b.count)),
            Some((1, 3))
        );
    }

    #[test]
    fn a_batch_times_one_call() {
        let mut calls = 0;
        let each = batch(Duration::from_millis(1), 3, || {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert!(calls >= 4, "{calls}");
        assert!(each < Duration::from_millis(1));
    }
}
