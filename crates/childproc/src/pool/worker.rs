//! One worker's life in the pool: the tasks it has in flight, its answers, and how they are
//! settled when it dies.
//!
//! Two tasks share a worker's tasks (its [`Desk`]). The channel's reader settles each answer
//! as it reads it and gives the worker its next task from the queue; when the queue is empty
//! then (the callers it just woke have not run yet), it lets the scheduler have one turn
//! once it has read everything, and looks again ([`Intercept::drained`]): a busy pool moves
//! a task with one wake-up in the parent, the reader's, besides the caller's. The reader
//! holds the channel's writes back while it takes the answers already read
//! ([`Sender::cork`]), so the next tasks for all of them go out in one write: one wake-up of
//! the worker. The slot's task ([`serve`]) does the rest: it waits on the queue while the
//! worker has room the reader could not fill, keeps the tasks' deadlines, and notices the
//! worker's end. The reader runs until
//! the channel's end, whatever the slot waits for (including while the worker is being
//! reaped): answers are never left unread in a buffer, and a worker that answers and exits
//! at once still has its answers delivered.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio::time::Instant;

use childproc_ipc::{AnyCodec, Envelope, Sender, Value};

use super::queue::Next;
use super::{answer, Counters, Factory, Job, PoolError, Shared, Status, Usage};
use crate::child::ChildProcess;
use crate::error::Error;
use crate::events::{Event, Events, Intercept, Interceptor};
use crate::signal::Signal;

/// A running worker, its channel's sender and its event stream.
pub(super) struct Worker {
    child: ChildProcess,
    sender: Sender<AnyCodec>,
    events: Events,
}

/// Spawns a worker from the factory; it must have an IPC channel.
pub(super) fn start(factory: &Factory) -> crate::Result<Worker> {
    let child = factory().kill_on_drop(true).spawn()?;
    let Some(sender) = child.sender().cloned() else {
        return Err(Error::InvalidOption {
            option: "stdio",
            reason: "a pool worker needs an IPC channel".into(),
        });
    };
    let events = child.events();
    Ok(Worker {
        child,
        sender,
        events,
    })
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

/// A task the worker has.
struct Flight {
    job: Job,
    /// Its timeout and when it passes.
    deadline: Option<(Duration, Instant)>,
}

/// What a worker's channel reader and its slot share.
struct Desk {
    state: Mutex<DeskState>,
    /// Wakes the slot when it has something to do: room the reader could not fill from the
    /// queue, a task with a deadline, the last answer of a worker that takes no more tasks.
    changed: Notify,
    shared: Arc<Shared>,
    sender: Sender<AnyCodec>,
}

struct DeskState {
    /// The tasks the worker has, with their ids, in the order they were given: ids grow, so
    /// also by id (a worker mostly answers the oldest, at the front).
    in_flight: VecDeque<(u64, Flight)>,
    answered: u64,
    given: u64,
    /// Whether the worker is given more tasks: false once it was given `max_tasks`, the
    /// queue is closed, or the slot gave it up.
    taking: bool,
    /// The queue said it is closed and empty.
    closed: bool,
    /// The reader found the queue empty while the worker had room: it looks again after the
    /// callers its answers woke have had a turn (see [`Intercept::drained`]).
    hungry: bool,
    /// `{ id, task }`, filled in for each task given.
    envelope: Envelope,
}

impl DeskState {
    /// Takes the task `id` off the worker, if it has it.
    fn take(&mut self, id: u64) -> Option<Flight> {
        if self
            .in_flight
            .front()
            .is_some_and(|(first, _)| *first == id)
        {
            return self.in_flight.pop_front().map(|(_, flight)| flight);
        }
        let at = self
            .in_flight
            .binary_search_by_key(&id, |(id, _)| *id)
            .ok()?;
        self.in_flight.remove(at).map(|(_, flight)| flight)
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.in_flight
            .iter()
            .filter_map(|(_, f)| f.deadline.map(|(_, at)| at))
            .min()
    }
}

impl Desk {
    fn new(shared: &Arc<Shared>, sender: Sender<AnyCodec>) -> Self {
        Desk {
            state: Mutex::new(DeskState {
                in_flight: VecDeque::new(),
                answered: 0,
                given: 0,
                taking: true,
                closed: false,
                hungry: false,
                envelope: Envelope::new("task"),
            }),
            changed: Notify::new(),
            shared: shared.clone(),
            sender,
        }
    }

    fn lock(&self) -> MutexGuard<'_, DeskState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Settles the task `message` answers, if it is an answer to one of ours, then gives
    /// the worker what it has room for. Run by the channel's reader for every message.
    /// Settles the task an answer is for (`None`: not an answer, a worker may log through its
    /// channel).
    fn answer(&self, answer: Option<(u64, Result<Value, Value>)>) {
        let Some((id, answer)) = answer else {
            return;
        };
        let mut st = self.lock();
        let Some(flight) = st.take(id) else {
            return; // timed out meanwhile, or not ours
        };
        st.answered += 1;
        Counters::add(&self.shared.counters.answered, 1);
        // The worker's next task goes out before this one's caller is woken. With none
        // queued yet, the reader looks again after its turn: the callers it is about to
        // wake queue their next tasks meanwhile.
        let mut wake = match self.feed(&mut st) {
            Feed::Done => false,
            Feed::Hungry => {
                st.hungry = true;
                false
            }
            Feed::Look => true,
        };
        wake |= !st.taking && st.in_flight.is_empty();
        drop(st);
        flight.job.finish(answer.map_err(PoolError::Task));
        if wake {
            self.changed.notify_one();
        }
    }

    /// Gives the worker tasks from the queue while it has room. Call it corked (see
    /// [`Sender::cork`]): the tasks then go out in one write.
    fn feed(&self, st: &mut DeskState) -> Feed {
        let shared = &*self.shared;
        let mut look = false;
        while st.taking && st.in_flight.len() < shared.concurrency {
            if shared.max_tasks.is_some_and(|max| st.given >= max) {
                st.taking = false;
                return Feed::Look;
            }
            match shared.queue.try_next() {
                Next::Job(job) => look |= self.give(st, job),
                Next::Empty if look => return Feed::Look,
                Next::Empty => return Feed::Hungry,
                Next::Closed => {
                    (st.taking, st.closed) = (false, true);
                    return Feed::Look;
                }
            }
        }
        if look {
            Feed::Look
        } else {
            Feed::Done
        }
    }

    /// Gives `job` to the worker: registers it in flight and queues its write (the writer
    /// task finishes a write the socket does not take at once; a failed write comes as an
    /// [`Event::Error`]). Whether the slot must look.
    fn give(&self, st: &mut DeskState, mut job: Job) -> bool {
        let shared = &*self.shared;
        if job.reply.is_closed() {
            return false; // its caller gave up before a worker took it
        }
        let id = shared
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let deadline = job
            .timeout
            .or(shared.task_timeout)
            .and_then(|limit| Some((limit, Instant::now().checked_add(limit)?)));
        // `{ id, task }`, encoded where the task is. Its backlog is bounded by the
        // concurrency: `send_nowait`'s answer is not needed. A closed channel takes
        // nothing; the worker's end then settles the task.
        let sent = st
            .envelope
            .with(Value::Number(id as f64), &mut job.task, |request| {
                self.sender.send_ref_nowait(request)
            });
        // A task that may be tried again keeps its value.
        if job.retried >= shared.retries {
            job.task = Value::Undefined;
        }
        match sent {
            Ok(_) => {
                st.in_flight.push_back((id, Flight { job, deadline }));
                st.given += 1;
                deadline.is_some()
            }
            // Nothing was written: the task's fault, not the worker's.
            Err(e) => {
                job.finish(Err(PoolError::Worker(Arc::new(Error::Ipc(e)))));
                false
            }
        }
    }

    /// Fails every task whose deadline has passed with [`PoolError::Timeout`].
    fn time_out(&self, now: Instant) {
        let mut st = self.lock();
        let late: Vec<u64> = st
            .in_flight
            .iter()
            .filter(|(_, f)| f.deadline.is_some_and(|(_, at)| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in &late {
            if let Some(Flight {
                job,
                deadline: Some((limit, _)),
            }) = st.take(*id)
            {
                job.finish(Err(PoolError::Timeout(limit)));
            }
        }
        Counters::add(&self.shared.counters.timed_out, late.len() as u64);
    }

    /// The worker is dead (`status`): every task it still had is retried if allowed, else
    /// fails with [`PoolError::WorkerExited`], in the order they were given.
    fn settle_dead(&self, status: Status) {
        let shared = &*self.shared;
        let in_flight = std::mem::take(&mut self.lock().in_flight);
        for (_, Flight { mut job, .. }) in in_flight {
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

/// How [`Desk::feed`] left the worker.
enum Feed {
    /// Without room, or with nothing for the slot to do.
    Done,
    /// With room the queue could not fill: someone must wait on the queue.
    Hungry,
    /// The slot must look: a task with a deadline, or the worker takes no more tasks.
    Look,
}

/// The channel reader's side of a [`Desk`].
struct Reader(Arc<Desk>);

impl Intercept for Reader {
    fn message(&self, message: Value) -> Option<Value> {
        self.0.answer(answer::parse(message));
        None
    }

    fn envelopes(&self) -> &'static [&'static str] {
        answer::KEYS
    }

    fn opened(&self, id: Value, key: &'static str, value: Value) -> Option<Value> {
        self.0.answer(answer::opened(&id, key, value));
        None
    }

    fn drained(&self) -> bool {
        self.0.lock().hungry
    }

    /// Gives the worker the tasks its answers' callers queued meanwhile; if it still has
    /// room, the slot waits on the queue for it.
    fn after_turn(&self) {
        let desk = &*self.0;
        let mut st = desk.lock();
        st.hungry = false;
        if !matches!(desk.feed(&mut st), Feed::Done) {
            drop(st);
            desk.changed.notify_one();
        }
    }
}

/// What [`serve`] waited for.
enum Step {
    Event(Option<Event>),
    Changed,
    Deadline,
    Queued,
}

/// Why the worker must go.
enum End {
    /// It exited, closed its channel, could not be written to, or sent a malformed frame.
    Crashed,
    /// A task's deadline passed: it is killed.
    TimedOut,
}

/// Feeds `worker` tasks, `first` before any from the queue, up to the pool's concurrency at
/// once, until it must be left. When it dies, it is reaped before its tasks are settled, so
/// they fail with its real exit status.
pub(super) async fn serve(shared: &Arc<Shared>, worker: &mut Worker, first: Option<Job>) -> Served {
    let desk = Arc::new(Desk::new(shared, worker.sender.clone()));
    // A worker is served once, so this is its first interceptor.
    worker
        .child
        .intercept_messages(Interceptor(Box::new(Reader(desk.clone()))));
    if let Some(job) = first {
        let _cork = desk.sender.cork();
        desk.give(&mut desk.lock(), job);
    }
    let end = loop {
        let (deadline, room) = {
            let st = desk.lock();
            if !st.taking && st.in_flight.is_empty() {
                let leave = if st.closed {
                    Leave::Closed
                } else {
                    Leave::Recycle
                };
                return Served {
                    leave,
                    answered: st.answered,
                };
            }
            let room = st.taking && st.in_flight.len() < shared.concurrency;
            (st.next_deadline(), room)
        };
        // Checked here too, not only by the timer below: a worker flooding its channel
        // keeps the (first, biased) event branch ready and must not escape its timeout.
        if deadline.is_some_and(|at| at <= Instant::now()) {
            break End::TimedOut;
        }
        // Events first: a worker that died while idle is not given a task.
        let step = tokio::select! {
            biased;
            event = worker.events.next() => Step::Event(event),
            () = desk.changed.notified() => Step::Changed,
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)),
                if deadline.is_some() => Step::Deadline,
            () = shared.queue.ready(), if room => Step::Queued,
        };
        match step {
            // Only what was read before the interceptor was set comes this way.
            Step::Event(Some(Event::Message(message))) => desk.answer(answer::parse(message)),
            // A failed write, or a malformed frame (the channel then ends).
            Step::Event(Some(Event::Error(e))) => {
                tracing::debug!(error = %e, "childproc pool: a worker's channel failed");
                break End::Crashed;
            }
            Step::Event(Some(Event::Disconnect | Event::Exit(_) | Event::Close(_)) | None) => {
                break End::Crashed;
            }
            Step::Event(Some(_)) | Step::Changed => {}
            Step::Deadline => break End::TimedOut,
            Step::Queued => {
                // One turn of the scheduler first: callers woken by the same read of answers
                // queue their next tasks meanwhile, and they go out in one write.
                tokio::task::yield_now().await;
                let _cork = desk.sender.cork();
                desk.feed(&mut desk.lock());
            }
        }
    };
    // The reader gives no more tasks, but settles answers until the channel's end.
    desk.lock().taking = false;
    let crashed = match end {
        End::Crashed => {
            Counters::add(&shared.counters.crashed, 1);
            true
        }
        End::TimedOut => {
            desk.time_out(Instant::now());
            kill_now(&worker.child);
            false
        }
    };
    let status = wind_down(worker, &desk, shared.retire_grace).await;
    tracing::debug!(?status, crashed, "childproc pool: a worker ended");
    desk.settle_dead(status);
    let answered = desk.lock().answered;
    Served {
        leave: Leave::Ended { status, crashed },
        answered,
    }
}

/// Reaps a dying (or killed) worker while its channel's reader settles the answers it sent
/// before it died; returns its exit status.
///
/// It is given `grace` to exit, then killed (a worker that closed its channel but runs on).
/// Once it has exited, if it still has tasks, the channel is read to its end (its last
/// answers may still be in the socket), for at most `grace` more: a descendant holding the
/// channel's socket open must not hold the pool up.
async fn wind_down(worker: &mut Worker, desk: &Desk, grace: Duration) -> Status {
    let Worker { child, events, .. } = worker;
    let mut channel_open = true;
    let reaping = reap(child, grace, &desk.shared.counters.usage);
    tokio::pin!(reaping);
    let status = loop {
        tokio::select! {
            biased;
            event = events.next(), if channel_open => channel_open = read_on(event, desk),
            status = &mut reaping => break status,
        }
    };
    let waiting = || !desk.lock().in_flight.is_empty();
    if channel_open && waiting() {
        let rest = async {
            loop {
                tokio::select! {
                    event = events.next() => if !read_on(event, desk) { break },
                    () = desk.changed.notified() => {}
                }
                if !waiting() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(grace, rest).await;
    }
    status
}

/// Handles one event of a dying worker; whether its channel may still bring answers.
fn read_on(event: Option<Event>, desk: &Desk) -> bool {
    match event {
        Some(Event::Message(message)) => {
            desk.answer(answer::parse(message));
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
    let Worker { child, events, .. } = worker;
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
