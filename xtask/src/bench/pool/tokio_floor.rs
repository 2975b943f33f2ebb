//! The pool section's tokio floor row: the raw echo children of the floor row (`raw.rs`),
//! driven the way a pool on tokio has to drive them. Each client is a task that queues its
//! task with a oneshot and awaits the answer; one task per worker writes what the queue
//! holds (up to `depth` in flight, one write per turn), reads its socket and settles the
//! answers, then yields one turn so that the clients it woke queue their next tasks before
//! it refills. No framing, no encoding, no pool: what is left over the epoll floor is what
//! awaiting callers cost on tokio's multi-thread runtime (task wake-ups, the threads'
//! parking), which no pool with an `async fn run(task)` avoids.

use std::collections::VecDeque;
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;

use super::raw::{echo_worker, TASK};
use super::{summary, Run, Setup, WARMUP};
use crate::BoxError;

/// A queued task: when its client sent it, and where its answer goes.
type Queued = (Instant, oneshot::Sender<()>);

/// What the clients and the worker tasks share.
struct Shared {
    queue: Mutex<VecDeque<Queued>>,
    /// Rung when a task is queued, for a worker task with room.
    queued: Notify,
}

/// [`Peer::TokioFloor`](super::Peer::TokioFloor): `tasks` echo tasks from tokio tasks.
pub(super) async fn tokio_floor(
    setup: Setup,
    tasks: usize,
    pins: Vec<Option<usize>>,
) -> Result<Run, BoxError> {
    let mut children = Vec::with_capacity(setup.workers);
    let mut sockets = Vec::with_capacity(setup.workers);
    for i in 0..setup.workers {
        let (socket, child) = echo_worker(pins.get(i).copied().flatten())?;
        sockets.push(UnixStream::from_std(socket)?);
        children.push(child);
    }
    let shared = Arc::new(Shared {
        queue: Mutex::new(VecDeque::new()),
        queued: Notify::new(),
    });
    let stop = CancellationToken::new();
    let mut feeders = Vec::new();
    for socket in sockets {
        let (shared, stop) = (Arc::clone(&shared), stop.clone());
        feeders.push(tokio::spawn(feed(socket, shared, stop, setup.depth)));
    }
    let clients = setup.clients();
    drive(&shared, clients, clients * WARMUP).await?;
    let start = Instant::now();
    let mut latencies = drive(&shared, clients, tasks).await?;
    let elapsed = start.elapsed();
    stop.cancel();
    for feeder in feeders {
        feeder.await??; // its socket closes: the child reads EOF and exits
    }
    for mut child in children {
        end(&mut child)?;
    }
    latencies.sort_unstable();
    Ok(summary(&latencies, elapsed))
}

fn end(child: &mut Child) -> Result<(), BoxError> {
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("a raw echo worker ended with {status}").into());
    }
    Ok(())
}

/// `clients` client tasks in a closed loop until `tasks` are answered; their latencies.
async fn drive(
    shared: &Arc<Shared>,
    clients: usize,
    tasks: usize,
) -> Result<Vec<Duration>, BoxError> {
    let left = Arc::new(AtomicUsize::new(tasks));
    let mut joins = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (shared, left) = (Arc::clone(shared), Arc::clone(&left));
        joins.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            // Takes one task of those left, if any.
            while left
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok()
            {
                let (tx, rx) = oneshot::channel();
                let sent = Instant::now();
                lock(&shared.queue).push_back((sent, tx));
                shared.queued.notify_one();
                rx.await.map_err(|_| "a worker task dropped a task")?;
                latencies.push(sent.elapsed());
            }
            Ok::<_, BoxError>(latencies)
        }));
    }
    let mut all = Vec::with_capacity(tasks);
    for join in joins {
        all.extend(join.await??);
    }
    Ok(all)
}

fn lock(queue: &Mutex<VecDeque<Queued>>) -> std::sync::MutexGuard<'_, VecDeque<Queued>> {
    queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One worker's task: refill from the queue in one write, read and settle answers, yield a
/// turn; until `stop`, with nothing in flight.
async fn feed(
    mut socket: UnixStream,
    shared: Arc<Shared>,
    stop: CancellationToken,
    depth: usize,
) -> Result<(), BoxError> {
    let mut in_flight: VecDeque<oneshot::Sender<()>> = VecDeque::with_capacity(depth);
    let mut buf = vec![0u8; 64 * 1024];
    let tasks = vec![b'x'; depth * TASK];
    let mut partial = 0;
    loop {
        let room = depth - in_flight.len();
        let mut taken = 0;
        if room > 0 {
            let mut queue = lock(&shared.queue);
            while taken < room {
                let Some((_, tx)) = queue.pop_front() else {
                    break;
                };
                in_flight.push_back(tx);
                taken += 1;
            }
        }
        if taken > 0 {
            socket.write_all(&tasks[..taken * TASK]).await?;
        }
        let n = tokio::select! {
            read = socket.read(&mut buf) => read?,
            () = shared.queued.notified(), if in_flight.len() < depth => continue,
            () = stop.cancelled(), if in_flight.is_empty() => return Ok(()),
        };
        if n == 0 {
            return Err("a raw echo worker closed its socket".into());
        }
        partial += n;
        for _ in 0..partial / TASK {
            let tx = in_flight.pop_front().ok_or("an answer nobody asked for")?;
            let _ = tx.send(());
        }
        partial %= TASK;
        // The clients just woken queue their next tasks in this turn: refill after it.
        tokio::task::yield_now().await;
    }
}
