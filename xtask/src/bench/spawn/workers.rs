//! The spawn section's processes of their own (`xtask bench-worker spawn-loop`, `spawn-paired`, `spawn-phases`): one peer's loop, the paired run, and where a spawn's time goes.

#[allow(unused_imports)]
use super::*;

/// `xtask bench-worker spawn-loop PEER SPAWNS [CONCURRENCY]`: `SPAWNS` spawn-and-waits of one
/// Rust peer (`childproc`, `tokio` or `std`) from `CONCURRENCY` loops (default 1) as the
/// section runs them, and nothing else, so `perf stat` or `strace -c` can attribute every cost
/// to that peer. `tokio-floor` is the least any spawn-and-wait on tokio can do: std's
/// `spawn`, then the pidfd awaited through tokio's reactor and reaped (Linux only).
pub(crate) fn loop_worker(args: &[String]) -> Result<(), BoxError> {
    let usage =
        "usage: xtask bench-worker spawn-loop childproc|tokio|tokio-floor|std SPAWNS [CONCURRENCY]";
    let peer = match args.get(1).map(String::as_str) {
        Some(p @ ("childproc" | "tokio" | "tokio-floor" | "std")) => p.to_string(),
        _ => return Err(usage.into()),
    };
    let (spawns, concurrency) = spawns_and_concurrency(&args[2..], usage)?;
    let rt = worker_runtime()?;
    let (rate, cpu) = super::super::cpu::with_cpu(|| match peer.as_str() {
        "childproc" => time_async(&rt, spawns, concurrency, childproc_once),
        "tokio" => time_async(&rt, spawns, concurrency, tokio_once),
        "tokio-floor" => time_async(&rt, spawns, concurrency, tokio_floor_once),
        _ => time_threads(spawns, concurrency),
    });
    let rate = rate?.per_sec();
    // Spawn counts are far below 2^52: exact.
    #[allow(clippy::cast_precision_loss)]
    let cpu_us = cpu.as_secs_f64() * 1e6 / spawns as f64;
    println!(
        "{peer}: {spawns} spawns at concurrency {concurrency}, {rate:.0} spawns/s, parent CPU \
         {cpu_us:.1} µs per spawn"
    );
    Ok(())
}

/// The `SPAWNS [CONCURRENCY]` arguments of the spawn workers (concurrency at least 1,
/// default 1).
pub(super) fn spawns_and_concurrency(
    args: &[String],
    usage: &str,
) -> Result<(u64, usize), BoxError> {
    let bad = || BoxError::from(usage);
    match args {
        [n] => Ok((n.parse().map_err(|_| bad())?, 1)),
        [n, c] => Ok((
            n.parse().map_err(|_| bad())?,
            c.parse::<usize>().map_err(|_| bad())?.max(1),
        )),
        _ => Err(bad()),
    }
}

/// The runtime the spawn workers run on: the section's (multi-thread, default workers).
pub(super) fn worker_runtime() -> Result<tokio::runtime::Runtime, BoxError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// `xtask bench-worker spawn-paired SPAWNS CONCURRENCY`: the section's paired measurement
/// alone, printed as its table.
pub(crate) fn paired_worker(args: &[String]) -> Result<(), BoxError> {
    let usage = "usage: xtask bench-worker spawn-paired SPAWNS CONCURRENCY";
    let (spawns, concurrency) = spawns_and_concurrency(&args[1..], usage)?;
    let rt = worker_runtime()?;
    let pair = paired(&rt, spawns, concurrency)?;
    println!("{}", paired_table(&[(concurrency, pair)]).render());
    Ok(())
}

/// `xtask bench-worker spawn-phases SPAWNS CONCURRENCY`: childproc and tokio::process
/// alternating, with each spawn-and-wait split into its phases — `spawn()` returning, the
/// wait, and dropping the child — as mean microseconds per phase: where a difference between
/// the two comes from.
pub(crate) fn phases_worker(args: &[String]) -> Result<(), BoxError> {
    use std::process::Stdio;
    let usage = "usage: xtask bench-worker spawn-phases SPAWNS CONCURRENCY";
    let (spawns, concurrency) = spawns_and_concurrency(&args[1..], usage)?;
    let concurrency = concurrency as u64;
    type Phases = [[f64; 3]; 2];
    let rt = worker_runtime()?;
    let total: Phases = rt.block_on(async move {
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                tokio::spawn(async move {
                    let mut sums: Phases = [[0.0; 3]; 2];
                    for i in 0..spawns / concurrency {
                        for peer in [i % 2, 1 - i % 2] {
                            let start = Instant::now();
                            let (spawned, waited) = if peer == 0 {
                                let child = childproc::Command::new(PROGRAM)
                                    .stdio_all(childproc::StdioShorthand::Ignore)
                                    .spawn()?;
                                let spawned = Instant::now();
                                child.wait().await?;
                                let waited = Instant::now();
                                drop(child);
                                (spawned, waited)
                            } else {
                                let mut child = tokio::process::Command::new(PROGRAM)
                                    .stdin(Stdio::null())
                                    .stdout(Stdio::null())
                                    .stderr(Stdio::null())
                                    .spawn()?;
                                let spawned = Instant::now();
                                child.wait().await?;
                                let waited = Instant::now();
                                drop(child);
                                (spawned, waited)
                            };
                            let row = &mut sums[usize::from(peer == 1)];
                            row[0] += (spawned - start).as_secs_f64();
                            row[1] += (waited - spawned).as_secs_f64();
                            row[2] += waited.elapsed().as_secs_f64();
                        }
                    }
                    Ok::<_, BoxError>(sums)
                })
            })
            .collect();
        let mut total: Phases = [[0.0; 3]; 2];
        for task in tasks {
            let sums = task.await??;
            for (t, s) in total.iter_mut().flatten().zip(sums.iter().flatten()) {
                *t += s;
            }
        }
        Ok::<_, BoxError>(total)
    })?;
    let each = 1e6 / spawns as f64;
    for (name, [spawn, wait, drop]) in ["childproc", "tokio::process"].iter().zip(total) {
        println!(
            "{name:<15} spawn {:7.1} µs   wait {:7.1} µs   drop {:5.1} µs",
            spawn * each,
            wait * each,
            drop * each
        );
    }
    Ok(())
}

/// One spawn-and-wait with childproc.
pub(super) async fn childproc_once() -> Result<(), BoxError> {
    let child = childproc::Command::new(PROGRAM)
        .stdio_all(childproc::StdioShorthand::Ignore)
        .spawn()?;
    let status = child.wait().await?;
    check(status.success(), "childproc", &status)
}

/// One spawn-and-wait with tokio::process.
pub(super) async fn tokio_once() -> Result<(), BoxError> {
    use std::process::Stdio;
    let status = tokio::process::Command::new(PROGRAM)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await?;
    check(status.success(), "tokio::process", &status)
}

/// One spawn-and-wait at tokio's floor: std's `spawn` (glibc's `posix_spawn`, stdio on
/// `/dev/null`), `pidfd_open`, the pidfd awaited through tokio's reactor, then the reap —
/// what every async spawn on tokio does at the least, with nothing of its own.
#[allow(unsafe_code)]
async fn tokio_floor_once() -> Result<(), BoxError> {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::process::Stdio;
    #[cfg(target_os = "linux")]
    {
        let mut child = std::process::Command::new(PROGRAM)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id(), 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        // SAFETY: the call above returned a new fd that nothing else owns.
        let pidfd = unsafe { OwnedFd::from_raw_fd(i32::try_from(fd)?) };
        // SAFETY: the AsyncFd owns the pidfd, so it stays open while registered.
        let pidfd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE)
        }
        .map_err(std::io::Error::from)?;
        drop(pidfd.readable().await?);
        // The pidfd is readable: the child has exited, so this wait does not block.
        let status = child.wait()?;
        check(status.success(), "tokio floor", &status)
    }
    #[cfg(not(target_os = "linux"))]
    Err("the tokio floor needs pidfds (Linux)".into())
}
