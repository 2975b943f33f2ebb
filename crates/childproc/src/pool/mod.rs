//! [`Pool`]: a pool of worker processes over [`fork`](crate::fork).
//!
//! The pieces: this file is the public face (the builder, [`Pool`], its errors and
//! counters); `queue.rs` holds the tasks waiting for a worker; `slot.rs` keeps one worker
//! running (restarts and their backoff); `worker.rs` feeds one worker its tasks and settles
//! them when it dies; `answer.rs` reads the worker's answers.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use childproc_ipc::{IntoMessage, IpcError, Value};

use crate::error::Error;
use crate::exit::ExitStatus;
use crate::fork::Fork;
use crate::usage::ResourceUsage;

mod answer;
mod queue;
mod slot;
mod worker;

pub(crate) use answer::parse as parse_answer;

/// Why a task submitted to a [`Pool`] has no result.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The worker answered with `{ id, error }`: the value it sent (usually the message).
    /// Never retried.
    #[error("the task failed in its worker: {}", describe(.0))]
    Task(Value),
    /// The task ran longer than its timeout; its worker was killed and replaced. Never
    /// retried.
    #[error("the task timed out after {0:?}; its worker was killed")]
    Timeout(Duration),
    /// The worker the task was given to ended before answering it: it exited, closed its
    /// channel, could not be written to, or was killed for another task's timeout. The
    /// status is how it exited, awaited before the task fails (a worker that closed its
    /// channel but went on running is killed after the retire grace); `None` only if it
    /// could not be awaited. With [`PoolBuilder::retry`] the task is first tried again.
    ///
    /// Also the error of a task that comes while every worker slot waits out its restart
    /// backoff after three workers in a row died before answering anything: it fails at
    /// once with the last one's status instead of waiting.
    #[error("the worker ended before answering ({})", .0.map_or_else(|| "its exit is unknown".to_string(), |s| s.to_string()))]
    WorkerExited(Option<ExitStatus>),
    /// A worker could not be started (see [`WorkerExited`](Self::WorkerExited) for when
    /// tasks fail at once), or the task could not be encoded for the worker's channel.
    #[error("no worker for the task: {0}")]
    Worker(Arc<Error>),
    /// The queue is full (only from [`Pool::try_run`]).
    #[error("the pool's queue is full")]
    Full,
    /// The pool was closed.
    #[error("the pool is closed")]
    Closed,
    /// The result did not have the type [`Pool::call`] asked for.
    #[error("the task's result has an unexpected shape: {0}")]
    Decode(Arc<IpcError>),
}

/// A task's error value as text: a string as it is, anything else as its debug form.
fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

/// Counters of what the pool has done, for monitoring (and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Workers started, the first `size` included.
    pub started: u64,
    /// Tasks answered with a result or an error.
    pub answered: u64,
    /// Workers that ended, closed their channel or could not be written to, unasked (idle
    /// or during a task).
    pub crashed: u64,
    /// Tasks that timed out (each one's worker was killed).
    pub timed_out: u64,
    /// Workers retired after `max_tasks_per_worker` tasks.
    pub recycled: u64,
    /// Tasks queued again because their worker died before answering
    /// ([`PoolBuilder::retry`]); a task tried three times counts twice.
    pub retried: u64,
    /// What every worker that has ended cost, together: CPU times and counts summed, the
    /// largest maximum RSS (see [`ResourceUsage`]; each worker's own is
    /// [`Pool::worker_usage`]). Beyond Node.
    pub workers_usage: ResourceUsage,
}

#[derive(Default)]
struct Counters {
    started: AtomicU64,
    answered: AtomicU64,
    crashed: AtomicU64,
    timed_out: AtomicU64,
    recycled: AtomicU64,
    retried: AtomicU64,
    usage: Usage,
}

/// What the ended workers cost: their sum and the last [`UsageLog::KEPT`] of them.
#[derive(Default)]
struct UsageLog {
    total: ResourceUsage,
    recent: std::collections::VecDeque<ResourceUsage>,
}

impl UsageLog {
    /// How many ended workers' own usage is kept.
    const KEPT: usize = 32;

    fn record(&mut self, usage: ResourceUsage) {
        self.total.add(&usage);
        if self.recent.len() == Self::KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back(usage);
    }
}

/// The pool's [`UsageLog`], shared with the tasks that reap workers.
type Usage = Arc<std::sync::Mutex<UsageLog>>;

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

type Factory = Arc<dyn Fn() -> Fork + Send + Sync>;

/// Configures a [`Pool`]; from [`Pool::builder`].
#[must_use = "a PoolBuilder does nothing until built"]
pub struct PoolBuilder {
    factory: Factory,
    size: usize,
    /// `None`: 64 per worker, from the size at `build`.
    queue: Option<usize>,
    task_timeout: Option<Duration>,
    max_tasks: Option<u64>,
    retire_grace: Duration,
    concurrency: usize,
    retries: u32,
}

impl fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("size", &self.size)
            .field("queue", &self.queue)
            .field("task_timeout", &self.task_timeout)
            .field("max_tasks", &self.max_tasks)
            .field("retire_grace", &self.retire_grace)
            .field("concurrency", &self.concurrency)
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}

impl PoolBuilder {
    /// How many workers run at once (default: the number of CPUs).
    pub fn size(mut self, workers: usize) -> Self {
        self.size = workers.max(1);
        self
    }

    /// How many submitted tasks may wait for a worker before [`Pool::run`] waits too and
    /// [`Pool::try_run`] says [`PoolError::Full`] (default 64 per worker). Tasks queued again
    /// by [`retry`](Self::retry) do not count.
    pub fn queue(mut self, tasks: usize) -> Self {
        self.queue = Some(tasks.max(1));
        self
    }

    /// The default time a task may take once a worker has it (default: none). Past it the
    /// task fails with [`PoolError::Timeout`] and its worker is killed (SIGKILL, the whole
    /// tree if the worker was started with `detached`) and replaced. With
    /// [`concurrency`](Self::concurrency) above one, the worker's other tasks then end as
    /// when a worker dies: [`PoolError::WorkerExited`], or another try with
    /// [`retry`](Self::retry).
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    /// Retire a worker after this many tasks, once it has answered them, and start a fresh
    /// one (default: never): for workers that leak memory.
    pub fn max_tasks_per_worker(mut self, tasks: u64) -> Self {
        self.max_tasks = Some(tasks.max(1));
        self
    }

    /// How long a retired worker (recycled, or at [`Pool::close`]) may take to exit after its
    /// channel is disconnected before it is killed (default 5 s). Also how long a worker
    /// that closed its channel but goes on running is given before it is killed.
    pub fn retire_grace(mut self, grace: Duration) -> Self {
        self.retire_grace = grace;
        self
    }

    /// How many tasks one worker may have at once (default 1, at least 1): for workers that
    /// wait on I/O, a Node.js worker (whose `'message'` handlers interleave at each `await`)
    /// or a Rust one using [`childproc_ipc::serve_concurrent`]. The worker may answer them
    /// in any order: answers are matched by the task's id. If the worker dies, every task
    /// it had fails (or is retried) as one; a task's timeout kills the worker and so ends
    /// its other tasks the same way.
    pub fn concurrency(mut self, tasks: usize) -> Self {
        self.concurrency = tasks.max(1);
        self
    }

    /// Tries a task again, up to `attempts` more times, when the worker it was given to
    /// died before answering it: exited, closed its channel, could not be written to, or
    /// was killed for another task's timeout (default 0: never). The task goes back to the
    /// head of the queue. Never retried: a task the worker answered with an error
    /// ([`PoolError::Task`]), a task that timed out itself ([`PoolError::Timeout`]), a task
    /// whose caller has stopped waiting. Opt-in because a task that reached a worker may
    /// have had effects before the worker died: retry only tasks that are safe to run twice.
    pub fn retry(mut self, attempts: u32) -> Self {
        self.retries = attempts;
        self
    }

    /// Starts the workers. Must be called inside a tokio runtime. Fails, with nothing left
    /// running, if a worker cannot be started or has no IPC channel.
    pub fn build(self) -> crate::Result<Pool> {
        let mut first = Vec::with_capacity(self.size);
        for _ in 0..self.size {
            first.push(worker::start(&self.factory)?);
        }
        let bound = self.queue.unwrap_or(64 * self.size);
        let closing = CancellationToken::new();
        let shared = Arc::new(Shared {
            factory: self.factory,
            queue: queue::Queue::new(bound, closing.clone()),
            size: self.size,
            concurrency: self.concurrency,
            retries: self.retries,
            task_timeout: self.task_timeout,
            max_tasks: self.max_tasks,
            retire_grace: self.retire_grace,
            next_id: AtomicU64::new(1),
            counters: Counters::default(),
            failing: watch::Sender::new(0),
            closing: closing.clone(),
            live_slots: AtomicUsize::new(self.size),
        });
        Counters::add(&shared.counters.started, first.len() as u64);
        let supervisors = first
            .into_iter()
            .map(|worker| tokio::spawn(slot::supervise(shared.clone(), worker)))
            .collect();
        Ok(Pool {
            shared,
            supervisors: std::sync::Mutex::new(supervisors),
            _closing: closing.drop_guard(),
        })
    }
}

/// A pool of worker processes over [`fork`](crate::fork): tasks in, results out.
///
/// Node has no pool in `child_process`; every service that forks workers writes one. This one
/// keeps `size` workers running, sends each task to a worker with room for it (one task at
/// a time, or up to [`concurrency`](PoolBuilder::concurrency)) tagged with a correlation id,
/// and matches the answer by that id. A worker that crashes is replaced (with a backoff while
/// workers die before answering anything), a task that runs past its timeout gets its worker
/// killed and replaced, a worker is recycled after a set number of tasks, submitting waits
/// while the queue is full (backpressure), and tasks whose worker died can be retried
/// ([`retry`](PoolBuilder::retry)).
///
/// The protocol is two plain messages, so workers can be Node.js scripts or Rust programs
/// (see [`childproc_ipc::serve`] for the Rust side and for the five lines of JavaScript):
/// the pool sends `{ id, task }` and expects `{ id, result }` or `{ id, error }` back.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use childproc::{fork, Pool};
///
/// let pool = Pool::builder(|| fork("worker.js", Vec::<String>::new()))
///     .size(4)
///     .task_timeout(Duration::from_secs(30))
///     .max_tasks_per_worker(1000)
///     .build()?;
/// let answer = pool.run("resize photo.jpg").await?;
/// println!("{answer:?}");
/// pool.close().await;
/// # Ok(()) }
/// ```
///
/// Dropping the pool (or [`close`](Pool::close)) lets the queued tasks finish, then
/// disconnects every worker; workers still running when their supervisor is dropped (the
/// runtime shutting down) are killed, and the pool's tasks then fail with
/// [`PoolError::Closed`] (used from another runtime, it does not wait for a worker that
/// will never come). Share the pool behind an `Arc`.
pub struct Pool {
    shared: Arc<Shared>,
    supervisors: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// Tells the slots the pool is closing, when the pool is closed or dropped.
    _closing: DropGuard,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// What the pool's slots share.
struct Shared {
    factory: Factory,
    queue: queue::Queue,
    /// The number of slots (workers).
    size: usize,
    /// Tasks in flight per worker.
    concurrency: usize,
    /// How many more times a task whose worker died is tried.
    retries: u32,
    task_timeout: Option<Duration>,
    max_tasks: Option<u64>,
    retire_grace: Duration,
    next_id: AtomicU64,
    counters: Counters,
    /// How many slots wait out a backoff with no worker to offer (see `slot::pause`).
    failing: watch::Sender<usize>,
    /// Cancelled when the pool is closed or dropped.
    closing: CancellationToken,
    /// Slots whose supervisor has not ended; the last to end shuts the queue.
    live_slots: AtomicUsize,
}

/// A submitted task and where its result goes.
struct Job {
    task: Value,
    timeout: Option<Duration>,
    reply: oneshot::Sender<Result<Value, PoolError>>,
    /// How many times it was queued again after its worker died.
    retried: u32,
}

impl Job {
    /// Settles the task (nobody may be waiting any more: that is fine).
    fn finish(self, result: Result<Value, PoolError>) {
        let _ = self.reply.send(result);
    }
}

impl Pool {
    /// A pool whose workers `factory` describes: called once per worker start, it returns
    /// the [`Fork`] to spawn (e.g. `|| childproc::fork("worker.js", ["--pool"])`).
    pub fn builder<F>(factory: F) -> PoolBuilder
    where
        F: Fn() -> Fork + Send + Sync + 'static,
    {
        let size = std::thread::available_parallelism().map_or(1, |n| n.get());
        PoolBuilder {
            factory: Arc::new(factory),
            size,
            queue: None,
            task_timeout: None,
            max_tasks: None,
            retire_grace: Duration::from_secs(5),
            concurrency: 1,
            retries: 0,
        }
    }

    /// Runs `task` on a worker and returns its result. Waits for room while the queue is
    /// full. Dropping the future before a worker took the task withdraws it.
    pub async fn run(&self, task: impl IntoMessage) -> Result<Value, PoolError> {
        self.submit(task, None).await
    }

    /// [`run`](Pool::run) with this task's own timeout instead of the pool's.
    pub async fn run_timeout(
        &self,
        task: impl IntoMessage,
        timeout: Duration,
    ) -> Result<Value, PoolError> {
        self.submit(task, Some(timeout)).await
    }

    /// [`run`](Pool::run), decoding the result as `T` (as [`childproc_ipc::from_value`]).
    pub async fn call<T: DeserializeOwned>(&self, task: impl IntoMessage) -> Result<T, PoolError> {
        let value = self.run(task).await?;
        childproc_ipc::from_value(&value).map_err(|e| PoolError::Decode(Arc::new(e)))
    }

    /// Queues `task` without waiting for room: [`PoolError::Full`] if the queue is full, else
    /// a future of its result. The task is queued when this returns, so tasks queued one
    /// after the other reach the workers in that order.
    pub fn try_run(
        &self,
        task: impl IntoMessage,
    ) -> Result<impl std::future::Future<Output = Result<Value, PoolError>>, PoolError> {
        let (job, rx) = job(task, None)?;
        self.shared.queue.try_push(job)?;
        Ok(async move { rx.await.unwrap_or(Err(PoolError::Closed)) })
    }

    async fn submit(
        &self,
        task: impl IntoMessage,
        timeout: Option<Duration>,
    ) -> Result<Value, PoolError> {
        let (job, rx) = job(task, timeout)?;
        self.shared.queue.push(job).await?;
        rx.await.unwrap_or(Err(PoolError::Closed))
    }

    /// What the pool has done so far.
    pub fn stats(&self) -> PoolStats {
        stats_of(&self.shared)
    }

    /// What each of the last 32 workers that ended cost (CPU time, maximum RSS, page faults,
    /// context switches: [`ResourceUsage`]), oldest first, gathered as each was reaped.
    pub fn worker_usage(&self) -> Vec<ResourceUsage> {
        usage_of(&self.shared)
    }

    /// Stops taking tasks, lets the queued ones finish, then retires every worker
    /// (disconnect, then SIGKILL after the retire grace) and waits until all have exited.
    ///
    /// Returns the final counters and what each worker cost (every worker has ended by
    /// then, so each is in [`PoolSummary::worker_usage`], up to the last 32).
    pub async fn close(self) -> PoolSummary {
        let Pool {
            supervisors,
            _closing,
            shared,
        } = self;
        drop(_closing);
        let supervisors =
            std::mem::take(&mut *supervisors.lock().unwrap_or_else(|e| e.into_inner()));
        for s in supervisors {
            let _ = s.await;
        }
        PoolSummary {
            stats: stats_of(&shared),
            worker_usage: usage_of(&shared),
        }
    }
}

/// What [`Pool::close`] returns once every worker has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolSummary {
    /// The final counters.
    pub stats: PoolStats,
    /// What each of the last 32 workers cost, oldest first ([`Pool::worker_usage`]).
    pub worker_usage: Vec<ResourceUsage>,
}

fn stats_of(shared: &Shared) -> PoolStats {
    let c = &shared.counters;
    PoolStats {
        started: c.started.load(Ordering::Relaxed),
        answered: c.answered.load(Ordering::Relaxed),
        crashed: c.crashed.load(Ordering::Relaxed),
        timed_out: c.timed_out.load(Ordering::Relaxed),
        recycled: c.recycled.load(Ordering::Relaxed),
        retried: c.retried.load(Ordering::Relaxed),
        workers_usage: c.usage.lock().unwrap_or_else(|e| e.into_inner()).total,
    }
}

fn usage_of(shared: &Shared) -> Vec<ResourceUsage> {
    let log = shared.counters.usage.lock();
    log.unwrap_or_else(|e| e.into_inner())
        .recent
        .iter()
        .copied()
        .collect()
}

fn job(
    task: impl IntoMessage,
    timeout: Option<Duration>,
) -> Result<(Job, oneshot::Receiver<Result<Value, PoolError>>), PoolError> {
    let task = task
        .into_message()
        .map_err(|e| PoolError::Worker(Arc::new(Error::Ipc(e))))?;
    let (reply, rx) = oneshot::channel();
    Ok((
        Job {
            task,
            timeout,
            reply,
            retried: 0,
        },
        rx,
    ))
}

/// How a worker's end is reported: the status it exited with.
type Status = Option<ExitStatus>;
