//! The pool section's "childproc channels, no pool" rows: the same Rust workers, each driven
//! by one loop that sends tasks in the pool's protocol on the worker's channel, as many as
//! the row has in flight, and sends the next as each answer comes, as a hand-written
//! dispatcher would.

use std::time::{Duration, Instant};

use childproc::ipc::Value;

use super::placement::rust_worker;
use super::{summary, Kind, Run, Setup, FIB_VALUE, WARMUP};
use crate::BoxError;

/// [`Peer::Channels`]: `setup.workers` Rust workers, each driven by one loop that keeps
/// `setup.depth` tasks in the pool's protocol in flight on the worker's channel, `tasks` in
/// all, worker `i` pinned to `pins[i]` if that is a CPU. Latency is from a task's send to
/// its answer (no queue, no callers to wake).
pub(super) async fn channels(
    setup: Setup,
    tasks: usize,
    pins: Vec<Option<usize>>,
) -> Result<Run, BoxError> {
    let mut workers = Vec::new();
    for i in 0..setup.workers {
        let child = rust_worker(pins.get(i).copied().flatten())?.spawn()?;
        let events = child.events();
        workers.push((child, events));
    }
    let kind = setup.kind;
    for (child, events) in &mut workers {
        for i in 0..WARMUP {
            send(child, kind, i).await?;
            answer(events, kind, i).await?;
        }
    }
    let start = Instant::now();
    let depth = setup.depth;
    let loops = workers.iter_mut().enumerate().map(|(w, (child, events))| {
        let share = tasks / setup.workers + usize::from(w < tasks % setup.workers);
        async move {
            let mut latencies = Vec::with_capacity(share);
            // Sent and not yet answered, oldest first: (task number, when sent).
            let mut out = std::collections::VecDeque::with_capacity(depth);
            let mut sent = 0;
            while latencies.len() < share {
                while sent < share && out.len() < depth {
                    out.push_back((sent, Instant::now()));
                    send(child, kind, sent).await?;
                    sent += 1;
                }
                let (id, at) = out.pop_front().ok_or("nothing in flight")?;
                answer(events, kind, id).await?;
                latencies.push(at.elapsed());
            }
            Ok::<_, BoxError>(latencies)
        }
    });
    let mut latencies: Vec<Duration> = futures_util::future::try_join_all(loops)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let elapsed = start.elapsed();
    for (child, _) in &workers {
        child.disconnect();
    }
    for (child, _) in &workers {
        child.wait().await?;
    }
    latencies.sort_unstable();
    Ok(summary(&latencies, elapsed))
}

/// The task of `kind` with number `id`, sent on `child`'s channel in the pool's protocol.
async fn send(child: &childproc::ChildProcess, kind: Kind, id: usize) -> Result<(), BoxError> {
    child
        .send(Value::object([("id", number(id)), ("task", kind.task(id))]))
        .await?;
    Ok(())
}

/// The next answer read from `events`, checked to be the answer to task `id` of `kind`.
async fn answer(events: &mut childproc::Events, kind: Kind, id: usize) -> Result<(), BoxError> {
    use childproc::Event;
    use futures_util::StreamExt;
    let number = number(id);
    loop {
        match events.next().await {
            Some(Event::Message(answer)) => {
                let result = answer.get("result");
                let ok = answer.get("id") == Some(&number)
                    && match kind {
                        Kind::Tiny => {
                            result.and_then(|r| r.get("s")).and_then(Value::as_str) == Some("hello")
                        }
                        Kind::Cpu => result
                            .and_then(Value::as_f64)
                            .is_some_and(|v| v == FIB_VALUE),
                    };
                if !ok {
                    return Err(format!("a wrong answer: {answer:?}").into());
                }
                return Ok(());
            }
            Some(Event::Spawn) => {}
            other => return Err(format!("expected an answer, got {other:?}").into()),
        }
    }
}

/// Task `id`'s number in the pool's protocol.
fn number(id: usize) -> Value {
    // Task numbers are far below 2^52: exact.
    #[allow(clippy::cast_precision_loss)]
    Value::from(id as f64)
}
