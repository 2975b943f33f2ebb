//! One worker slot: keeps a worker running, replaces it when it ends, and backs off while
//! workers die before answering anything.
//!
//! Every replacement goes through [`Backoff`]: a worker that answered nothing (it died at
//! start, on its first task, while idle, or was killed for a timeout) is replaced only after
//! a pause of 50 ms, doubling to 5 s; a worker that answered at least one task was making
//! progress, so it is replaced at once and the backoff starts over. After three workers in
//! a row crashed without answering (or one could not be started at all), the slot is
//! *failing*: it starts a worker only for a task, and while every slot is failing and
//! pausing, tasks fail at once with the last worker's status instead of waiting.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::worker::{self, Leave, Served, Worker};
use super::{Counters, Job, PoolError, Shared};

/// Workers in a row that crash before answering anything, after which the slot is failing.
const FAILING_AFTER: u32 = 3;

/// The pause before the next restart.
struct Backoff {
    /// Workers in a row that ended before answering anything.
    stillborn: u32,
    delay: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_secs(5);

    fn new() -> Self {
        Backoff {
            stillborn: 0,
            delay: Self::FIRST,
        }
    }

    /// The pause to take now; the next one is twice as long.
    fn next(&mut self) -> Duration {
        let now = self.delay;
        self.delay = (now * 2).min(Self::MAX);
        now
    }
}

/// The slot's life: `first` (started by `build`), then its replacements, until the pool is
/// closed and its queue drained; then it waits for its retiring workers to exit.
/// Its [`Live`] count is made with the future: a supervisor dropped before it ever ran
/// (the runtime shut down first) is counted out too.
pub(super) fn supervise(shared: Arc<Shared>, first: Worker) -> impl Future<Output = ()> {
    let live = Live(shared.clone());
    supervising(shared, first, live)
}

async fn supervising(shared: Arc<Shared>, first: Worker, _live: Live) {
    let mut retiring = JoinSet::new();
    let mut current = Some(first);
    let mut backoff = Backoff::new();
    // `Some` while the slot is failing: what a task fails with when it cannot wait.
    let mut failing: Option<PoolError> = None;
    // A task taken before its worker was started.
    let mut held: Option<Job> = None;
    loop {
        let mut worker = match current.take() {
            Some(worker) => worker,
            None => {
                // A failing slot, or a closing pool, starts a worker only for a task.
                if held.is_none() && (failing.is_some() || shared.closing.is_cancelled()) {
                    match shared.queue.next().await {
                        Some(job) => held = Some(job),
                        None => break,
                    }
                }
                match worker::start(&shared.factory) {
                    Ok(worker) => {
                        Counters::add(&shared.counters.started, 1);
                        worker
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "childproc pool: cannot start a worker");
                        let error = PoolError::Worker(Arc::new(e));
                        if let Some(job) = held.take() {
                            job.finish(Err(error.clone()));
                        }
                        failing = Some(error);
                        match pause(&shared, backoff.next(), failing.as_ref()).await {
                            Paused::Resume(job) => held = job,
                            Paused::Exit => break,
                        }
                        continue;
                    }
                }
            }
        };
        let Served { leave, answered } = worker::serve(&shared, &mut worker, held.take()).await;
        if answered > 0 {
            backoff = Backoff::new();
            failing = None;
        }
        match leave {
            Leave::Ended { status, crashed } => {
                // Reaped already; its event stream must not outlive it unread.
                drop(worker);
                if answered == 0 {
                    backoff.stillborn += 1;
                    if crashed && backoff.stillborn >= FAILING_AFTER {
                        failing = Some(PoolError::WorkerExited(status));
                    }
                    match pause(&shared, backoff.next(), failing.as_ref()).await {
                        Paused::Resume(job) => held = job,
                        Paused::Exit => break,
                    }
                }
            }
            Leave::Recycle => {
                Counters::add(&shared.counters.recycled, 1);
                retiring.spawn(worker::retire(
                    worker,
                    shared.retire_grace,
                    shared.counters.usage.clone(),
                ));
            }
            Leave::Closed => {
                retiring.spawn(worker::retire(
                    worker,
                    shared.retire_grace,
                    shared.counters.usage.clone(),
                ));
                break;
            }
        }
    }
    while retiring.join_next().await.is_some() {}
}

/// A slot's supervisor, counted while it runs. The last one to end, at the pool's close or
/// dropped with its runtime, shuts the queue: no task waits for a worker that will never
/// come (a pool used from another runtime once its own has shut down).
struct Live(Arc<Shared>);

impl Drop for Live {
    fn drop(&mut self) {
        if self.0.live_slots.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.queue.shut();
        }
    }
}

/// How a [`pause`] ended.
enum Paused {
    /// Start the next worker, with this task first if one was taken meanwhile.
    Resume(Option<Job>),
    /// The pool is closed and its queue empty: nothing more to do.
    Exit,
}

/// Waits out `delay` before the next restart.
///
/// Meanwhile the slot takes no task, except: while every slot is failing and pausing
/// (`failing` is this one's error), it fails each task that comes with that error at once,
/// as no worker could take it; and while the pool is closing, it takes one task to start
/// its next worker for (or learns that the queue is empty and the slot can stop).
async fn pause(shared: &Shared, delay: Duration, failing: Option<&PoolError>) -> Paused {
    let timer = tokio::time::sleep(delay);
    tokio::pin!(timer);
    let mut failing_slots = shared.failing.subscribe();
    if failing.is_some() {
        shared.failing.send_modify(|n| *n += 1);
    }
    let mut held = None;
    let paused = loop {
        let all_failing = failing.is_some() && *failing_slots.borrow_and_update() >= shared.size;
        let closing = shared.closing.is_cancelled();
        let take = held.is_none() && (all_failing || closing);
        let job = tokio::select! {
            biased;
            () = &mut timer => break Paused::Resume(held),
            _ = failing_slots.changed(), if failing.is_some() => continue,
            () = shared.closing.cancelled(), if !closing => continue,
            job = shared.queue.next(), if take => job,
        };
        match (job, failing) {
            (None, _) => break Paused::Exit,
            (Some(job), Some(error)) if all_failing => job.finish(Err(error.clone())),
            (Some(job), _) => held = Some(job),
        }
    };
    if failing.is_some() {
        shared.failing.send_modify(|n| *n -= 1);
    }
    paused
}
