//! The parents' sides of a round: the Rust parent through childproc's public API, and the
//! two raw ping-pongs.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use childproc::ipc::{AnyCodec, Sender, Value};
use childproc::{ChildProcess, Event, Events};
use futures_util::StreamExt;

use super::children::{count_value, send_many};
use tokio::runtime::Runtime;

use super::{Metric, Plan, Rate, Sample, SMALL_SIZE};
use crate::BoxError;

/// The Rust parent's side of one round: every metric on one child, then disconnect.
pub(super) async fn rust_parent(child: &ChildProcess, plan: Plan) -> Result<Sample, BoxError> {
    let mut events = child.events();
    let tx = child.channel().ok_or("the child has no channel")?.clone();
    round_trips(child, &mut events, plan.warmup).await?;
    let mut sample = [None; 5];
    for metric in Metric::ALL {
        let n = metric.count(plan);
        if n == 0 {
            continue;
        }
        let size = metric.size();
        let start = Instant::now();
        match metric {
            Metric::RoundTrips => round_trips(child, &mut events, n).await?,
            Metric::SmallOut | Metric::BigOut => to_child(&tx, &mut events, n, size).await?,
            Metric::SmallIn | Metric::BigIn => from_child(&tx, &mut events, n, size).await?,
        }
        sample[metric.index()] = Some(Rate {
            count: n,
            elapsed: start.elapsed(),
        });
    }
    child.disconnect();
    let status = child.closed().await?;
    if !status.success() {
        return Err(format!("the IPC child ended with {status}").into());
    }
    Ok(sample)
}

/// The next message, skipping `Spawn`; anything else is an error.
async fn next_message(events: &mut Events) -> Result<Value, BoxError> {
    loop {
        match events.next().await {
            Some(Event::Message(m)) => return Ok(m),
            Some(Event::Spawn) => {}
            Some(other) => return Err(format!("expected a message, got {other:?}").into()),
            None => return Err("the child's events ended".into()),
        }
    }
}

/// `n` round trips: send a small string, wait for its echo, send the echo again.
async fn round_trips(child: &ChildProcess, events: &mut Events, n: u64) -> Result<(), BoxError> {
    let ping = Value::from("x".repeat(SMALL_SIZE));
    let mut message = ping.clone();
    for _ in 0..n {
        child.send(message).await?;
        message = next_message(events).await?;
        if message != ping {
            return Err(format!("the echo was {message:?}").into());
        }
    }
    Ok(())
}

/// `n` strings of `size` characters to the child, which answers `{got: n}` after the last.
async fn to_child(
    tx: &Sender<AnyCodec>,
    events: &mut Events,
    n: u64,
    size: usize,
) -> Result<(), BoxError> {
    tx.send(Value::object([("sink", count_value(n))])).await?;
    send_many(tx, n, size).await?;
    let reply = next_message(events).await?;
    if reply.get("got") != Some(&count_value(n)) {
        return Err(format!("the child answered {reply:?}").into());
    }
    Ok(())
}

/// Asks the child for `n` strings of `size` characters and receives them.
async fn from_child(
    tx: &Sender<AnyCodec>,
    events: &mut Events,
    n: u64,
    size: usize,
) -> Result<(), BoxError> {
    let request = Value::object([
        ("source", count_value(n)),
        ("size", count_value(size as u64)),
    ]);
    tx.send(request).await?;
    for _ in 0..n {
        match next_message(events).await? {
            Value::String(s) if s.len() == size => {}
            other => return Err(format!("unexpected message {other:?}").into()),
        }
    }
    Ok(())
}

/// A socketpair whose other end is the stdin of `xtask bench-worker ROLE`.
fn raw_child_with(xtask: &Path, role: &str) -> Result<(UnixStream, std::process::Child), BoxError> {
    let (ours, theirs) = UnixStream::pair()?;
    let child = std::process::Command::new(xtask)
        .args(["bench-worker", role])
        .stdin(OwnedFd::from(theirs))
        .stdout(Stdio::null())
        .spawn()?;
    Ok((ours, child))
}

/// Reaps a raw echo child, which exits 0 at EOF.
fn reap_raw(mut child: std::process::Child, echoed: bool) -> Result<(), BoxError> {
    let status = child.wait()?;
    if !status.success() || !echoed {
        return Err(format!("the raw echo child ended with {status}").into());
    }
    Ok(())
}

/// Round trips of 16 bytes over a socketpair with tokio's `UnixStream` on both sides
/// (the parent on `rt`, `xtask bench-worker ipc-tokio` on a current-thread runtime): the
/// floor of any channel built on tokio.
pub(super) fn tokio_round_trips(xtask: &Path, plan: Plan, rt: &Runtime) -> Result<Rate, BoxError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (ours, child) = raw_child_with(xtask, "ipc-tokio")?;
    let (rate, echoed) = rt.block_on(async move {
        tokio::spawn(async move {
            ours.set_nonblocking(true)?;
            let mut ours = tokio::net::UnixStream::from_std(ours)?;
            let ping = [b'x'; SMALL_SIZE];
            let mut echo = [0u8; SMALL_SIZE];
            let mut start = Instant::now();
            for i in 0..plan.warmup + plan.round_trips {
                if i == plan.warmup {
                    start = Instant::now();
                }
                ours.write_all(&ping).await?;
                ours.read_exact(&mut echo).await?;
            }
            let rate = Rate {
                count: plan.round_trips,
                elapsed: start.elapsed(),
            };
            Ok::<_, BoxError>((rate, echo == ping))
        })
        .await?
    })?;
    reap_raw(child, echoed)?;
    Ok(rate)
}

/// Round trips of 16 bytes over a socketpair with blocking `write`/`read`, against
/// `xtask bench-worker ipc-raw`.
pub(super) fn raw_round_trips(xtask: &Path, plan: Plan) -> Result<Rate, BoxError> {
    let (mut ours, child) = raw_child_with(xtask, "ipc-raw")?;
    let ping = [b'x'; SMALL_SIZE];
    let mut echo = [0u8; SMALL_SIZE];
    let mut once = || -> std::io::Result<()> {
        ours.write_all(&ping)?;
        ours.read_exact(&mut echo)
    };
    for _ in 0..plan.warmup {
        once()?;
    }
    let start = Instant::now();
    for _ in 0..plan.round_trips {
        once()?;
    }
    let elapsed = start.elapsed();
    drop(ours);
    reap_raw(child, echo == ping)?;
    Ok(Rate {
        count: plan.round_trips,
        elapsed,
    })
}
