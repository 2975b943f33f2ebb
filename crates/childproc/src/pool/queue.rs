//! The tasks waiting for a worker: the bounded queue that [`Pool::run`](super::Pool::run)
//! fills, and ahead of it the tasks queued again after their worker died.

use std::collections::VecDeque;

use tokio::sync::{mpsc, Mutex, Notify};

use super::Job;

/// Tasks for the slots to take, retried ones first.
pub(super) struct Queue {
    /// Submitted tasks, bounded (the pool's backpressure). One slot at a time waits on it.
    jobs: Mutex<mpsc::Receiver<Job>>,
    /// Tasks whose worker died, to try again before any new one. Unbounded, but never
    /// longer than the tasks in flight when workers died (`size × concurrency` at most).
    retries: std::sync::Mutex<VecDeque<Job>>,
    /// Wakes the slots waiting in [`next`](Self::next) when a task is retried.
    retried: Notify,
}

impl Queue {
    pub(super) fn new(jobs: mpsc::Receiver<Job>) -> Self {
        Queue {
            jobs: Mutex::new(jobs),
            retries: std::sync::Mutex::new(VecDeque::new()),
            retried: Notify::new(),
        }
    }

    /// The next task: a retried one if any, else the next submitted one; `None` once the
    /// pool is closed and both are empty. Cancel-safe: dropping the future loses no task.
    pub(super) async fn next(&self) -> Option<Job> {
        loop {
            // Listen before looking, so a retry queued in between still wakes us.
            let retried = self.retried.notified();
            tokio::pin!(retried);
            retried.as_mut().enable();
            if let Some(job) = self.take_retry() {
                return Some(job);
            }
            let mut jobs = tokio::select! {
                biased;
                () = &mut retried => continue,
                jobs = self.jobs.lock() => jobs,
            };
            tokio::select! {
                biased;
                () = &mut retried => continue,
                job = jobs.recv() => match job {
                    Some(job) => return Some(job),
                    // Closed and empty; a retry may have come meanwhile.
                    None => return self.take_retry(),
                },
            }
        }
    }

    /// Queues `job` again, ahead of every submitted task (behind earlier retries).
    pub(super) fn retry(&self, job: Job) {
        self.retries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(job);
        self.retried.notify_waiters();
    }

    fn take_retry(&self) -> Option<Job> {
        self.retries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }
}
