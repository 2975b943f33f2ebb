//! One worker's life in the pool: the tasks it has in flight, its answers, and how they are
//! settled when it dies.
//!
//! A worker's events are read all the time, whatever else it waits for (a send, a task's
//! deadline, the queue), including while it is being reaped: its answers are never left
//! unread in a buffer, and a worker that answers and exits at once still has its answers
//! delivered.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::OptionFuture;
use futures_util::StreamExt;
use tokio::time::Instant;

use childproc_ipc::{IpcError, Value};

use super::{answer, Counters, Factory, Job, PoolError, Shared, Status, Usage};
use crate::child::ChildProcess;
use crate::error::Error;
use crate::events::{Event, Events};
use crate::signal::Signal;

/// A running worker and its event stream.
pub(super) struct Worker {
    child: ChildProcess,
    events: Events,
}

/// Spawns a worker from the factory; it must have an IPC channel.
pub(super) fn start(factory: &Factory) -> crate::Result<Worker> {
    let child = factory().kill_on_drop(true).spawn()?;
    if child.sender().is_none() {
        return Err(Error::InvalidOption {
            option: "stdio",
            reason: "a pool worker needs an IPC channel".into(),
        });
    }
    let events = child.events();
    Ok(Worker { child, events })
}

/// Why [`serve`] gave its worker up.
pub(super) enum Leave {
    /// It is dead and reaped; every task it had is settled. `crashed`: it ended unasked
    /// (rather than being killed for a timeout).
    Ended { status: Status, crashed: bool },
    /// It answered its share of tasks: retire it, start another.
    Recycle,
    /// The pool is closed and the queue empty: retire it and stop.
    Closed,
}

/// How [`serve`] went.
pub(super) struct Served {
    pub(super) leave: Leave,
    /// Tasks this worker answered (with a result or an error).
    pub(super) answered: u64,
}

/// A write of one task to the worker: its id and how the write went.
type Sending = Pin<Box<dyn Future<Output = (u64, Result<(), IpcError>)> + Send>>;

/// A task the worker has.
struct Flight {
    job: Job,
    /// Its timeout and when it passes.
    deadline: Option<(Duration, Instant)>,
}

/// The tasks a worker has, by id (ids grow, so this is also the order they were given).
struct Tasks<'a> {
    shared: &'a Shared,
    in_flight: BTreeMap<u64, Flight>,
    answered: u64,
}

impl Tasks<'_> {
    /// Settles the task `message` answers, if it is an answer to one of ours.
    fn answer(&mut self, message: Value) {
        let Some((id, answer)) = answer::parse(message) else {
            return; // not an answer: a worker may log through its channel
        };
        if let Some(flight) = self.in_flight.remove(&id) {
            self.answered += 1;
            Counters::add(&self.shared.counters.answered, 1);
            flight.job.finish(answer.map_err(PoolError::Task));
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.in_flight
            .values()
            .filter_map(|f| f.deadline.map(|(_, at)| at))
            .min()
    }

    /// Fails every task whose deadline has passed with [`PoolError::Timeout`]; how many.
    fn time_out(&mut self, now: Instant) -> u64 {
        let late: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.deadline.is_some_and(|(_, at)| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in &late {
            if let Some(Flight {
                job,
                deadline: Some((limit, _)),
            }) = self.in_flight.remove(id)
            {
                job.finish(Err(PoolError::Timeout(limit)));
            }
        }
        Counters::add(&self.shared.counters.timed_out, late.len() as u64);
        late.len() as u64
    }

    /// The worker is dead (`status`): every task it still had is retried if allowed, else
    /// fails with [`PoolError::WorkerExited`], in the order they were given.
    fn settle_dead(&mut self, status: Status) {
        let shared = self.shared;
        for (_, Flight { mut job, .. }) in std::mem::take(&mut self.in_flight) {
            if job.retried < shared.retries && !job.reply.is_closed() {
                job.retried += 1;
                Counters::add(&shared.counters.retried, 1);
                shared.queue.retry(job);
            } else {
                job.finish(Err(PoolError::WorkerExited(status)));
            }
        }
    }
}

/// What [`serve`] waited for.
enum Step {
    Event(Option<Event>),
    Sent(u64, Result<(), IpcError>),
    Deadline,
    Job(Option<Job>),
}

/// Why the worker must go.
enum End {
    /// It exited, closed its channel, or could not be written to.
    Crashed,
    /// A task's deadline passed: it is killed.
    TimedOut,
}

/// Feeds `worker` tasks, `first` before any from the queue, up to the pool's concurrency at
/// once, until it must be left. When it dies, it is reaped before its tasks are settled, so
/// they fail with its real exit status.
pub(super) async fn serve(shared: &Shared, worker: &mut Worker, first: Option<Job>) -> Served {
    let mut tasks = Tasks {
        shared,
        in_flight: BTreeMap::new(),
        answered: 0,
    };
    let mut sending: Option<Sending> = None;
    let (mut given, mut taking, mut closed) = (0u64, true, false);
    if let Some(job) = first {
        sending = give(shared, worker, &mut tasks, job, &mut given);
    }
    let end = loop {
        if shared.max_tasks.is_some_and(|max| given >= max) {
            taking = false;
        }
        if !taking && tasks.in_flight.is_empty() && sending.is_none() {
            let leave = if closed {
                Leave::Closed
            } else {
                Leave::Recycle
            };
            return Served {
                leave,
                answered: tasks.answered,
            };
        }
        let deadline = tasks.next_deadline();
        // Checked here too, not only by the timer below: a worker flooding its channel
        // keeps the (first, biased) event branch ready and must not escape its timeout.
        if deadline.is_some_and(|at| at <= Instant::now()) {
            break End::TimedOut;
        }
        let room = taking && sending.is_none() && tasks.in_flight.len() < shared.concurrency;
        // Events first: a worker that died while idle is not given a task.
        let step = tokio::select! {
            biased;
            event = worker.events.next() => Step::Event(event),
            Some((id, sent)) = OptionFuture::from(sending.as_mut()), if sending.is_some() => {
                Step::Sent(id, sent)
            }
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)),
                if deadline.is_some() => Step::Deadline,
            job = shared.queue.next(), if room => Step::Job(job),
        };
        match step {
            Step::Event(Some(Event::Message(message))) => tasks.answer(message),
            Step::Event(Some(Event::Disconnect | Event::Exit(_) | Event::Close(_)) | None) => {
                break End::Crashed;
            }
            Step::Event(Some(_)) => {}
            Step::Sent(id, sent) => {
                sending = None;
                match sent {
                    Ok(()) => {}
                    Err(e) if unencodable(&e) => {
                        // Nothing was written: the task's fault, not the worker's.
                        if let Some(flight) = tasks.in_flight.remove(&id) {
                            let error = Arc::new(Error::Ipc(e));
                            flight.job.finish(Err(PoolError::Worker(error)));
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "childproc pool: a send to a worker failed");
                        break End::Crashed;
                    }
                }
            }
            Step::Deadline => break End::TimedOut,
            Step::Job(Some(job)) => sending = give(shared, worker, &mut tasks, job, &mut given),
            Step::Job(None) => (taking, closed) = (false, true),
        }
    };
    // A write in progress is abandoned: its task is settled with the others.
    drop(sending);
    let crashed = match end {
        End::Crashed => {
            Counters::add(&shared.counters.crashed, 1);
            true
        }
        End::TimedOut => {
            tasks.time_out(Instant::now());
            kill_now(&worker.child);
            false
        }
    };
    let status = wind_down(worker, &mut tasks, shared.retire_grace).await;
    tracing::debug!(?status, crashed, "childproc pool: a worker ended");
    tasks.settle_dead(status);
    Served {
        leave: Leave::Ended { status, crashed },
        answered: tasks.answered,
    }
}

/// Gives `job` to the worker: registers it in flight and starts writing it. `None` if its
/// caller has already given up (nothing to do).
fn give(
    shared: &Shared,
    worker: &Worker,
    tasks: &mut Tasks<'_>,
    mut job: Job,
    given: &mut u64,
) -> Option<Sending> {
    if job.reply.is_closed() {
        return None; // its caller gave up before a worker took it
    }
    let sender = worker.child.sender()?.clone();
    let id = shared
        .next_id
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // A task that may be tried again keeps its value.
    let task = if job.retried < shared.retries {
        job.task.clone()
    } else {
        std::mem::replace(&mut job.task, Value::Undefined)
    };
    let request = Value::object([("id", Value::Number(id as f64)), ("task", task)]);
    let deadline = job
        .timeout
        .or(shared.task_timeout)
        .and_then(|limit| Some((limit, Instant::now().checked_add(limit)?)));
    tasks.in_flight.insert(id, Flight { job, deadline });
    *given += 1;
    Some(Box::pin(async move { (id, sender.send(request).await) }))
}

/// Whether a failed send failed before writing anything, because the task cannot be
/// encoded for this channel (the channel is still fine).
fn unencodable(e: &IpcError) -> bool {
    matches!(
        e,
        IpcError::Unsupported { .. } | IpcError::FrameTooLarge { .. }
    )
}

/// Reaps a dying (or killed) worker while still reading its events, so answers it sent
/// before it died settle their tasks; returns its exit status.
///
/// It is given `grace` to exit, then killed (a worker that closed its channel but runs on).
/// Once it has exited, if it still has tasks, its channel is read to its end (its last
/// answers may still be in the socket), for at most `grace` more: a descendant holding the
/// channel's socket open must not hold the pool up.
async fn wind_down(worker: &mut Worker, tasks: &mut Tasks<'_>, grace: Duration) -> Status {
    let Worker { child, events } = worker;
    let mut channel_open = true;
    let reaping = reap(child, grace, &tasks.shared.counters.usage);
    tokio::pin!(reaping);
    let status = loop {
        tokio::select! {
            biased;
            event = events.next(), if channel_open => {
                channel_open = read_on(event, tasks);
            }
            status = &mut reaping => break status,
        }
    };
    if channel_open && !tasks.in_flight.is_empty() {
        let rest =
            async { while !tasks.in_flight.is_empty() && read_on(events.next().await, tasks) {} };
        let _ = tokio::time::timeout(grace, rest).await;
    }
    status
}

/// Handles one event of a dying worker; whether its channel may still bring answers.
fn read_on(event: Option<Event>, tasks: &mut Tasks<'_>) -> bool {
    match event {
        Some(Event::Message(message)) => {
            tasks.answer(message);
            true
        }
        Some(Event::Disconnect | Event::Close(_)) | None => false,
        Some(_) => true,
    }
}

/// SIGKILL to the worker (its whole group if it leads one; a failure means it is gone).
fn kill_now(child: &ChildProcess) {
    if child.kill_tree(Signal::SIGKILL).is_err() {
        child.kill(Signal::SIGKILL);
    }
}

/// Disconnects `worker`, gives it `grace` to exit, then kills it; returns once reaped.
pub(super) async fn retire(worker: Worker, grace: Duration, usage: Usage) {
    let Worker { child, events } = worker;
    // Nobody reads its events any more: unsubscribe rather than let them pile up.
    drop(events);
    child.disconnect();
    reap(&child, grace, &usage).await;
}

/// Waits up to `grace` for the worker to exit, then kills it; its exit status once reaped,
/// with what it cost recorded in `usage`.
async fn reap(child: &ChildProcess, grace: Duration, usage: &Usage) -> Status {
    let status = match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            kill_now(child);
            child.wait().await.ok()
        }
    };
    if let Some(cost) = status.and_then(|s| s.resource_usage()) {
        usage.lock().unwrap_or_else(|e| e.into_inner()).record(cost);
    }
    status
}
