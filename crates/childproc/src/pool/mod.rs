//! [`Pool`]: a pool of worker processes over [`fork`](crate::fork).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::task::{JoinHandle, JoinSet};

use childproc_ipc::{IntoMessage, IpcError, Value};

use crate::child::{ChildProcess, ExitStatus};
use crate::error::Error;
use crate::events::{Event, Events};
use crate::fork::Fork;
use crate::signal::Signal;

/// Why a task submitted to a [`Pool`] has no result.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The worker answered with `{ id, error }`: the value it sent (usually the message).
    #[error("the task failed in its worker: {}", describe(.0))]
    Task(Value),
    /// The task ran longer than its timeout; its worker was killed and replaced.
    #[error("the task timed out after {0:?}; its worker was killed")]
    Timeout(Duration),
    /// The worker ended (or closed its channel) before answering; it was replaced. The
    /// status is how it exited (a worker that closed its channel but went on running is
    /// killed after the retire grace); `None` if it could not be awaited.
    #[error("the worker ended before answering ({})", .0.map_or_else(|| "its exit is unknown".to_string(), |s| s.to_string()))]
    WorkerExited(Option<ExitStatus>),
    /// A worker could not be started or the task could not be sent to it.
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
    /// Workers that ended or closed their channel unasked (idle or during a task).
    pub crashed: u64,
    /// Tasks that timed out (each one's worker was killed).
    pub timed_out: u64,
    /// Workers retired after `max_tasks_per_worker` tasks.
    pub recycled: u64,
}

#[derive(Default)]
struct Counters {
    started: AtomicU64,
    answered: AtomicU64,
    crashed: AtomicU64,
    timed_out: AtomicU64,
    recycled: AtomicU64,
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
}

impl fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("size", &self.size)
            .field("queue", &self.queue)
            .field("task_timeout", &self.task_timeout)
            .field("max_tasks", &self.max_tasks)
            .field("retire_grace", &self.retire_grace)
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
    /// [`Pool::try_run`] says [`PoolError::Full`] (default 64 per worker).
    pub fn queue(mut self, tasks: usize) -> Self {
        self.queue = Some(tasks.max(1));
        self
    }

    /// The default time a task may take once a worker has it (default: none). Past it the
    /// task fails with [`PoolError::Timeout`] and its worker is killed (SIGKILL, the whole
    /// tree if the worker was started with `detached`) and replaced.
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    /// Retire a worker after this many answered tasks and start a fresh one (default: never):
    /// for workers that leak memory.
    pub fn max_tasks_per_worker(mut self, tasks: u64) -> Self {
        self.max_tasks = Some(tasks.max(1));
        self
    }

    /// How long a retired worker (recycled, or at [`Pool::close`]) may take to exit after its
    /// channel is disconnected before it is killed (default 5 s).
    pub fn retire_grace(mut self, grace: Duration) -> Self {
        self.retire_grace = grace;
        self
    }

    /// Starts the workers. Must be called inside a tokio runtime. Fails, with nothing left
    /// running, if a worker cannot be started or has no IPC channel.
    pub fn build(self) -> crate::Result<Pool> {
        let mut first = Vec::with_capacity(self.size);
        for _ in 0..self.size {
            first.push(start_worker(&self.factory)?);
        }
        let queue = self.queue.unwrap_or(64 * self.size);
        let (jobs_tx, jobs_rx) = mpsc::channel(queue);
        let shared = Arc::new(Shared {
            factory: self.factory,
            jobs: Mutex::new(jobs_rx),
            task_timeout: self.task_timeout,
            max_tasks: self.max_tasks,
            retire_grace: self.retire_grace,
            next_id: AtomicU64::new(1),
            counters: Counters::default(),
        });
        shared
            .counters
            .started
            .fetch_add(first.len() as u64, Ordering::Relaxed);
        let supervisors = first
            .into_iter()
            .map(|worker| tokio::spawn(supervise(shared.clone(), worker)))
            .collect();
        Ok(Pool {
            jobs: jobs_tx,
            shared,
            supervisors: std::sync::Mutex::new(supervisors),
        })
    }
}

/// A pool of worker processes over [`fork`](crate::fork): tasks in, results out.
///
/// Node has no pool in `child_process`; every service that forks workers writes one. This one
/// keeps `size` workers running, sends each task to an idle one tagged with a correlation id,
/// and matches the answer by that id. A worker that crashes is replaced, a task that runs
/// past its timeout gets its worker killed and replaced, a worker is recycled after a set
/// number of tasks, and submitting waits while the queue is full (backpressure).
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
/// runtime shutting down) are killed. Share the pool behind an `Arc`.
pub struct Pool {
    jobs: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    supervisors: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

struct Shared {
    factory: Factory,
    jobs: Mutex<mpsc::Receiver<Job>>,
    task_timeout: Option<Duration>,
    max_tasks: Option<u64>,
    retire_grace: Duration,
    next_id: AtomicU64,
    counters: Counters,
}

struct Job {
    task: Value,
    timeout: Option<Duration>,
    reply: oneshot::Sender<Result<Value, PoolError>>,
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
    /// a future of its result.
    pub fn try_run(
        &self,
        task: impl IntoMessage,
    ) -> Result<impl std::future::Future<Output = Result<Value, PoolError>>, PoolError> {
        let (job, rx) = job(task, None)?;
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => PoolError::Full,
            mpsc::error::TrySendError::Closed(_) => PoolError::Closed,
        })?;
        Ok(async move { rx.await.unwrap_or(Err(PoolError::Closed)) })
    }

    async fn submit(
        &self,
        task: impl IntoMessage,
        timeout: Option<Duration>,
    ) -> Result<Value, PoolError> {
        let (job, rx) = job(task, timeout)?;
        self.jobs.send(job).await.map_err(|_| PoolError::Closed)?;
        rx.await.unwrap_or(Err(PoolError::Closed))
    }

    /// What the pool has done so far.
    pub fn stats(&self) -> PoolStats {
        let c = &self.shared.counters;
        PoolStats {
            started: c.started.load(Ordering::Relaxed),
            answered: c.answered.load(Ordering::Relaxed),
            crashed: c.crashed.load(Ordering::Relaxed),
            timed_out: c.timed_out.load(Ordering::Relaxed),
            recycled: c.recycled.load(Ordering::Relaxed),
        }
    }

    /// Stops taking tasks, lets the queued ones finish, then retires every worker
    /// (disconnect, then SIGKILL after the retire grace) and waits until all have exited.
    pub async fn close(self) {
        let Pool {
            jobs, supervisors, ..
        } = self;
        drop(jobs);
        let supervisors =
            std::mem::take(&mut *supervisors.lock().unwrap_or_else(|e| e.into_inner()));
        for s in supervisors {
            let _ = s.await;
        }
    }
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
        },
        rx,
    ))
}

/// A running worker and its event stream.
struct Worker {
    child: ChildProcess,
    events: Events,
}

fn start_worker(factory: &Factory) -> crate::Result<Worker> {
    let child = factory().kill_on_drop(true).spawn()?;
    if child.channel().is_none() {
        return Err(Error::InvalidOption {
            option: "stdio",
            reason: "a pool worker needs an IPC channel".into(),
        });
    }
    let events = child.events();
    Ok(Worker { child, events })
}

/// How waiting on a worker ended.
enum Outcome {
    Answer(Result<Value, Value>),
    /// It exited or closed its channel.
    Ended,
}

/// The next event that matters: the answer to `id`, or the worker's end. Other messages are
/// not for us (a worker may log through its channel) and are skipped.
async fn next_outcome(worker: &mut Worker, id: Option<u64>) -> Outcome {
    loop {
        match worker.events.next().await {
            Some(Event::Message(m)) => {
                if let (Some(want), Some(answer)) = (id, answer_to(m)) {
                    if answer.0 == want {
                        return Outcome::Answer(answer.1);
                    }
                }
            }
            Some(Event::Disconnect | Event::Exit(_) | Event::Close(_)) | None => {
                return Outcome::Ended;
            }
            Some(_) => {}
        }
    }
}

/// `{ id, result }` → `(id, Ok(result))`, `{ id, error }` → `(id, Err(error))`. A bare
/// `{ id }` is a result of `undefined`: what `JSON.stringify` leaves of
/// `{ id, result: undefined }`, a Node handler that returned nothing.
fn answer_to(message: Value) -> Option<(u64, Result<Value, Value>)> {
    let Value::Object(fields) = message else {
        return None;
    };
    let (mut id, mut answer) = (None, None);
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("id", Value::Number(n)) if n >= 0.0 && n.fract() == 0.0 => id = Some(n as u64),
            ("result", v) => answer = Some(Ok(v)),
            ("error", v) => answer = Some(Err(v)),
            _ => {}
        }
    }
    Some((id?, answer.unwrap_or(Ok(Value::Undefined))))
}

/// Waits for the next job, or `None` once the pool is closed and the queue empty.
async fn next_job(shared: &Shared) -> Option<Job> {
    shared.jobs.lock().await.recv().await
}

/// One worker slot: keeps a worker running and feeds it jobs, one at a time.
async fn supervise(shared: Arc<Shared>, first: Worker) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(50);
    let mut retiring = JoinSet::new();
    let mut current = Some(first);
    let mut backoff = FIRST_BACKOFF;
    // Workers in a row that ended before answering anything (a worker that dies at start).
    let mut stillborn = 0u32;
    loop {
        let mut worker = match current.take() {
            Some(w) => w,
            None => match start_worker(&shared.factory) {
                Ok(w) => {
                    shared.counters.started.fetch_add(1, Ordering::Relaxed);
                    w
                }
                Err(e) => {
                    // Nothing to run tasks on: fail the next one rather than let it wait
                    // forever, then try again a little later.
                    tracing::warn!(error = %e, "childproc pool: cannot start a worker");
                    let Some(job) = next_job(&shared).await else {
                        break;
                    };
                    let _ = job.reply.send(Err(PoolError::Worker(Arc::new(e))));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            },
        };
        let (leave, answered) = serve_worker(&shared, &mut worker).await;
        if answered > 0 {
            stillborn = 0;
            backoff = FIRST_BACKOFF;
        }
        match leave {
            Leave::Replace => {}
            Leave::DiedIdle(status) if answered == 0 => {
                // A worker that dies before its first task would otherwise be restarted in
                // a tight loop: back off, and after three in a row fail the next task with
                // the exit status, as when a worker cannot be started at all.
                stillborn += 1;
                if stillborn >= 3 {
                    let Some(job) = next_job(&shared).await else {
                        break;
                    };
                    let _ = job.reply.send(Err(PoolError::WorkerExited(status)));
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Leave::DiedIdle(_) => {}
            Leave::Recycle => {
                shared.counters.recycled.fetch_add(1, Ordering::Relaxed);
                retiring.spawn(retire(worker, shared.retire_grace));
            }
            Leave::Closed => {
                retiring.spawn(retire(worker, shared.retire_grace));
                break;
            }
        }
    }
    while retiring.join_next().await.is_some() {}
}

/// Why [`serve_worker`] gave its worker up.
enum Leave {
    /// It is dead (during a task) or was killed: start another.
    Replace,
    /// It ended while waiting for a task (its exit status): start another.
    DiedIdle(Option<ExitStatus>),
    /// It did its share of tasks: retire it, start another.
    Recycle,
    /// The pool is closed and the queue empty: retire it and stop.
    Closed,
}

/// Feeds `worker` jobs until it must be left; also says how many it answered.
async fn serve_worker(shared: &Shared, worker: &mut Worker) -> (Leave, u64) {
    let mut answered = 0u64;
    loop {
        // A worker that died while idle is replaced before it is given a job.
        let job = tokio::select! {
            biased;
            Outcome::Ended = next_outcome(worker, None) => {
                let status = reap(worker, shared.retire_grace).await;
                tracing::debug!(?status, "childproc pool: an idle worker ended");
                shared.counters.crashed.fetch_add(1, Ordering::Relaxed);
                return (Leave::DiedIdle(status), answered);
            }
            job = next_job(shared) => match job {
                Some(job) => job,
                None => return (Leave::Closed, answered),
            },
        };
        if job.reply.is_closed() {
            continue; // its caller gave up before a worker took it
        }
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let request = Value::object([("id", Value::Number(id as f64)), ("task", job.task)]);
        if let Err(e) = worker.child.send(request).await {
            let _ = job.reply.send(Err(PoolError::Worker(Arc::new(e))));
            shared.counters.crashed.fetch_add(1, Ordering::Relaxed);
            return (Leave::Replace, answered);
        }
        let waiting = next_outcome(worker, Some(id));
        let outcome = match job.timeout.or(shared.task_timeout) {
            Some(limit) => tokio::time::timeout(limit, waiting)
                .await
                .map_err(|_| limit),
            None => Ok(waiting.await),
        };
        match outcome {
            Ok(Outcome::Answer(answer)) => {
                shared.counters.answered.fetch_add(1, Ordering::Relaxed);
                let _ = job.reply.send(answer.map_err(PoolError::Task));
            }
            Ok(Outcome::Ended) => {
                shared.counters.crashed.fetch_add(1, Ordering::Relaxed);
                let status = reap(worker, shared.retire_grace).await;
                let _ = job.reply.send(Err(PoolError::WorkerExited(status)));
                return (Leave::Replace, answered);
            }
            Err(limit) => {
                shared.counters.timed_out.fetch_add(1, Ordering::Relaxed);
                kill_now(worker);
                let _ = job.reply.send(Err(PoolError::Timeout(limit)));
                return (Leave::Replace, answered);
            }
        }
        answered += 1;
        if shared.max_tasks.is_some_and(|max| answered >= max) {
            return (Leave::Recycle, answered);
        }
    }
}

/// SIGKILL to the worker (its whole group if it leads one; a failure means it is gone).
fn kill_now(worker: &Worker) {
    if worker.child.kill_tree(Signal::SIGKILL).is_err() {
        worker.child.kill(Signal::SIGKILL);
    }
}

/// Disconnects `worker`, gives it `grace` to exit, then kills it; returns once reaped.
async fn retire(worker: Worker, grace: Duration) {
    worker.child.disconnect();
    reap(&worker, grace).await;
}

/// Waits up to `grace` for `worker` to exit, then kills it; its exit status once reaped.
async fn reap(worker: &Worker, grace: Duration) -> Option<ExitStatus> {
    if let Ok(status) = tokio::time::timeout(grace, worker.child.wait()).await {
        return status.ok();
    }
    kill_now(worker);
    worker.child.wait().await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_matched_by_id_and_need_a_result_or_an_error() {
        let ok = Value::object([("id", Value::from(7)), ("result", Value::from("x"))]);
        assert_eq!(answer_to(ok), Some((7, Ok(Value::from("x")))));
        let err = Value::object([("error", Value::from("boom")), ("id", Value::from(8))]);
        assert_eq!(answer_to(err), Some((8, Err(Value::from("boom")))));
        let undefined_result = Value::object([("id", Value::from(9)), ("result", Value::Null)]);
        assert_eq!(answer_to(undefined_result), Some((9, Ok(Value::Null))));
        let bare = Value::object([("id", Value::from(1))]);
        assert_eq!(answer_to(bare), Some((1, Ok(Value::Undefined))));
        assert_eq!(
            answer_to(Value::object([
                ("id", Value::from(-1)),
                ("result", Value::Null)
            ])),
            None
        );
        assert_eq!(answer_to(Value::from("log line")), None);
    }
}
