//! The tasks waiting for a worker: the bounded queue that [`Pool::run`](super::Pool::run)
//! fills, and ahead of it the tasks queued again after their worker died.
//!
//! Any worker may take from it without waiting ([`Queue::try_next`]): a worker's channel
//! reader, having settled an answer, takes the next task and writes it in the same turn (see
//! `worker.rs`), so a busy pool moves tasks without waking its slots. A slot waits on it
//! ([`Queue::ready`]) only while its worker has room the readers could not fill.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use super::{Job, PoolError};

/// Tasks for the workers to take, retried ones first.
pub(super) struct Queue {
    tasks: Mutex<Tasks>,
    /// One permit per free place among the submitted tasks (the pool's backpressure).
    room: Semaphore,
    /// Wakes a slot waiting in [`ready`](Self::ready) when a task is queued.
    queued: Notify,
    /// Cancelled when the pool is closed or dropped: nothing more will be submitted.
    closing: CancellationToken,
    /// No slot is left to take a task (see [`shut`](Self::shut)).
    shut: AtomicBool,
}

#[derive(Default)]
struct Tasks {
    /// Tasks whose worker died, to try again before any new one. Unbounded, but never
    /// longer than the tasks in flight when workers died (`size × concurrency` at most).
    retries: VecDeque<Job>,
    /// Submitted tasks, at most the queue's bound.
    submitted: VecDeque<Job>,
}

/// What [`Queue::try_next`] found.
pub(super) enum Next {
    Job(Job),
    /// Nothing now; more may come.
    Empty,
    /// Nothing, and nothing more will come: the pool is closed.
    Closed,
}

impl Queue {
    pub(super) fn new(bound: usize, closing: CancellationToken) -> Self {
        Queue {
            tasks: Mutex::new(Tasks::default()),
            room: Semaphore::new(bound),
            queued: Notify::new(),
            closing,
            shut: AtomicBool::new(false),
        }
    }

    /// No slot is left to take tasks (every one ended: the pool was closed, or its runtime
    /// shut down): every queued task fails with [`PoolError::Closed`], and so does every
    /// later submission, at once, instead of waiting for a worker that will never come.
    pub(super) fn shut(&self) {
        self.shut.store(true, Ordering::SeqCst);
        self.room.close();
        self.fail_queued();
    }

    fn fail_queued(&self) {
        let Tasks { retries, submitted } = std::mem::take(&mut *self.lock());
        for job in retries.into_iter().chain(submitted) {
            job.finish(Err(PoolError::Closed));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tasks> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a submitted task, waiting while the queue is full. Cancel-safe.
    pub(super) async fn push(&self, job: Job) -> Result<(), PoolError> {
        let permit = self.room.acquire().await.map_err(|_| PoolError::Closed)?;
        permit.forget();
        self.queue(job);
        Ok(())
    }

    /// Queues a submitted task, or [`PoolError::Full`].
    pub(super) fn try_push(&self, job: Job) -> Result<(), PoolError> {
        let permit = self.room.try_acquire().map_err(|e| match e {
            tokio::sync::TryAcquireError::Closed => PoolError::Closed,
            tokio::sync::TryAcquireError::NoPermits => PoolError::Full,
        })?;
        permit.forget();
        self.queue(job);
        Ok(())
    }

    fn queue(&self, job: Job) {
        self.lock().submitted.push_back(job);
        self.queued.notify_one();
        self.after_queue();
    }

    /// Queues `job` again, ahead of every submitted task (behind earlier retries).
    pub(super) fn retry(&self, job: Job) {
        self.lock().retries.push_back(job);
        self.queued.notify_one();
        self.after_queue();
    }

    /// A task queued while [`shut`](Self::shut) ran (its permit taken before) fails too.
    fn after_queue(&self) {
        if self.shut.load(Ordering::SeqCst) {
            self.fail_queued();
        }
    }

    /// The next task without waiting: a retried one if any, else the next submitted one.
    pub(super) fn try_next(&self) -> Next {
        let mut tasks = self.lock();
        if let Some(job) = tasks.retries.pop_front() {
            return Next::Job(job);
        }
        if let Some(job) = tasks.submitted.pop_front() {
            drop(tasks);
            self.room.add_permits(1);
            return Next::Job(job);
        }
        if self.closing.is_cancelled() {
            Next::Closed
        } else {
            Next::Empty
        }
    }

    /// Resolves once a task is queued or the pool is closed (at once if so already); the
    /// task may be taken by another worker before the caller looks. Cancel-safe: a wake-up
    /// it was given but did not use passes to the next waiter.
    pub(super) async fn ready(&self) {
        let queued = self.queued.notified();
        tokio::pin!(queued);
        // Listen before looking, so a task queued in between still wakes us.
        queued.as_mut().enable();
        {
            let tasks = self.lock();
            if !tasks.retries.is_empty() || !tasks.submitted.is_empty() {
                return;
            }
        }
        tokio::select! {
            () = queued => {}
            () = self.closing.cancelled() => {}
        }
    }

    /// The next task: a retried one if any, else the next submitted one; `None` once the
    /// pool is closed and both are empty. Cancel-safe: dropping the future loses no task.
    pub(super) async fn next(&self) -> Option<Job> {
        loop {
            match self.try_next() {
                Next::Job(job) => return Some(job),
                Next::Closed => return None,
                Next::Empty => self.ready().await,
            }
        }
    }
}
