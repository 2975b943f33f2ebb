//! The state a [`ChildProcess`](super::ChildProcess) shares with the task that watches it:
//! reaping and publishing the exit once, whoever gets there first, and the kills by policy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{watch, Notify};
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::events::{Event, EventHub};
use crate::exit::ExitStatus;
use crate::pipes::StreamWatch;
use crate::signal::Signal;
use crate::sys::{Process, RawStatus};

use super::refs::{referenced_changed, REFERENCED, UNWATCHED};
use super::watch::{run_watch, Watch};
#[cfg(doc)]
use super::{wait_referenced, ChildProcess};

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A watcher task not started yet, with what it needs to start.
pub(super) struct Lazy {
    pub(super) watch: Watch,
    pub(super) span: tracing::Span,
    pub(super) handle: tokio::runtime::Handle,
}

/// State shared by a [`ChildProcess`] and the task that watches it.
pub(crate) struct Shared {
    pub(crate) process: Process,
    pub(crate) hub: EventHub,
    pub(super) status: watch::Sender<Option<ExitStatus>>,
    pub(super) closed: watch::Sender<bool>,
    pub(super) killed: AtomicBool,
    /// Set by the watcher when the timeout fired / the token was cancelled.
    pub(crate) timed_out: AtomicBool,
    pub(crate) aborted: AtomicBool,
    /// Set when escalation sent SIGKILL.
    pub(crate) escalated: AtomicBool,
    /// The child leads its own process group (detached or `process_group(0)`).
    pub(super) leads_group: bool,
    /// Policy kills (timeout, abort, escalation, drop) go to the whole group.
    pub(super) kill_group: bool,
    /// A policy kill happened outside the watcher (kill-on-drop, exec's max-buffer overflow,
    /// a pipeline's timeout or abort): the watcher starts the escalation timer.
    pub(super) killed_by_policy: Notify,
    /// The abort (cancellation token) was handled, by the watcher or by exec: once only.
    pub(super) abort_handled: AtomicBool,
    /// A wait delay expired: the watcher cut the readable pipes a grandchild kept open.
    pub(crate) pipes_cut: AtomicBool,
    /// `(referenced, closed)`, changed together.
    pub(super) refs: Mutex<(bool, bool)>,
    /// Held while reaping and publishing the exit, and across a policy kill and the `Error`
    /// that reports it, so that error comes before `Exit` whoever reaps.
    pub(super) exit: Mutex<()>,
    /// Only the watcher may reap: it observes the exit without reaping until a group
    /// escalation is over (the zombie keeps the group id reserved), or until the IPC reader
    /// has delivered what the child sent and `Disconnect` (so `Exit` comes after them).
    /// `wait()` then waits for the status the watcher publishes.
    pub(super) watcher_reaps: bool,
    /// The watcher task was dropped before its end (its runtime shut down mid-watch): a
    /// `wait()` from another runtime reaps, even where only the watcher would.
    pub(super) watcher_lost: AtomicBool,
    /// The watcher task, until it is needed. A child without timers, cancellation or IPC gets
    /// no task at spawn: `wait()` reaps it and `closed()` or the drop of the `ChildProcess`
    /// emits `Close` in place when its streams are already closed (the common case: one task
    /// and its cross-thread wake-ups less per child). `events()`, `closed()` with streams
    /// still open, a drop before the exit, and [`wait_referenced`] start the task.
    pub(super) lazy: Mutex<Option<Lazy>>,
}

impl Shared {
    pub(crate) fn new(
        process: Process,
        leads_group: bool,
        kill_group: bool,
        escalates: bool,
        ipc: bool,
    ) -> Arc<Self> {
        REFERENCED.fetch_add(1, Ordering::SeqCst);
        Arc::new(Shared {
            process,
            hub: EventHub::default(),
            status: watch::channel(None).0,
            closed: watch::channel(false).0,
            killed: AtomicBool::new(false),
            timed_out: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            escalated: AtomicBool::new(false),
            leads_group,
            kill_group,
            killed_by_policy: Notify::new(),
            abort_handled: AtomicBool::new(false),
            pipes_cut: AtomicBool::new(false),
            refs: Mutex::new((true, false)),
            exit: Mutex::new(()),
            watcher_reaps: (kill_group && escalates) || ipc,
            watcher_lost: AtomicBool::new(false),
            lazy: Mutex::new(None),
        })
    }

    pub(super) fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Starts the watcher task if it has not started yet: on the runtime the child was
    /// spawned in or, if that one has shut down since, on the current one. With neither,
    /// the watcher waits for the next call.
    pub(super) fn ensure_watch(self: &Arc<Self>) {
        let Some(Lazy {
            mut watch,
            mut span,
            handle,
        }) = lock(&self.lazy).take()
        else {
            return;
        };
        lock(&UNWATCHED).remove(&self.key());
        let current = tokio::runtime::Handle::try_current().ok();
        for runtime in std::iter::once(&handle).chain(current.as_ref()) {
            match self.spawn_watch(runtime, watch, span) {
                None => return,
                Some(back) => (watch, span) = back,
            }
        }
        *lock(&self.lazy) = Some(Lazy {
            watch,
            span,
            handle,
        });
        lock(&UNWATCHED).insert(self.key(), Arc::downgrade(self));
    }

    /// Spawns the watcher task on `runtime`; the watch back if that runtime has shut down.
    /// (A runtime that has shut down drops a task spawned on it at once, unpolled: its join
    /// handle is finished and the watch still where the task would have taken it.)
    fn spawn_watch(
        self: &Arc<Self>,
        runtime: &tokio::runtime::Handle,
        watch: Watch,
        span: tracing::Span,
    ) -> Option<(Watch, tracing::Span)> {
        let unstarted = Arc::new(Mutex::new(Some((watch, span))));
        let task = {
            let (shared, unstarted) = (self.clone(), unstarted.clone());
            async move {
                let Some((watch, span)) = lock(&unstarted).take() else {
                    return;
                };
                run_watch(shared, watch).instrument(span).await;
            }
        };
        if !runtime.spawn(task).is_finished() {
            return None;
        }
        // Finished: it ran to its end (and took the watch), or it never ran.
        let back = lock(&unstarted).take();
        back
    }

    /// For a child whose watcher never started: if it has exited and every stream is already
    /// closed, emits `Close` here and returns true; otherwise (or if the watcher runs) false.
    pub(super) fn close_in_place(&self) -> bool {
        let mut lazy = lock(&self.lazy);
        let Some(pending) = lazy.as_mut() else {
            return false;
        };
        let Ok(Some(status)) = self.reap_now() else {
            return false;
        };
        if !pending
            .watch
            .streams
            .iter_mut()
            .all(StreamWatch::closed_now)
        {
            return false;
        }
        *lazy = None;
        drop(lazy);
        lock(&UNWATCHED).remove(&self.key());
        tracing::debug!(pid = self.process.pid(), %status, "close");
        self.hub.emit(Event::Close(status));
        self.closed.send_replace(true);
        self.mark_closed();
        true
    }

    /// Finishes what needs the watcher: closes in place if it can, else starts the task.
    pub(super) fn close_or_watch(self: &Arc<Self>) {
        if !self.close_in_place() {
            self.ensure_watch();
        }
    }

    /// The exit status if the child has exited, reaping it now if nobody has yet.
    pub(super) fn current_status(&self) -> Option<ExitStatus> {
        if let Some(status) = *self.status.borrow() {
            return Some(status);
        }
        if self.watcher_reaps {
            return None;
        }
        self.reap_now().ok().flatten()
    }

    /// Reaps the child if it has exited, publishing the status (`wait()`) and emitting `Exit`
    /// exactly once, whichever task gets here first. `Some` once the child has exited.
    pub(super) fn reap_now(&self) -> std::io::Result<Option<ExitStatus>> {
        let _exit = self.exit.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(status) = *self.status.borrow() {
            return Ok(Some(status));
        }
        let Some(raw) = self.process.try_wait()? else {
            return Ok(None);
        };
        Ok(Some(self.publish_exit(raw)))
    }

    /// Blocks the thread until the child exits, then reaps it as [`Shared::reap_now`] does.
    pub(super) fn reap_blocking(&self) -> std::io::Result<ExitStatus> {
        let _exit = self.exit.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(status) = *self.status.borrow() {
            return Ok(status);
        }
        let raw = self.process.wait_blocking()?;
        Ok(self.publish_exit(raw))
    }

    /// Publishes a reaped child's status and emits `Exit` (the caller holds `exit`).
    pub(super) fn publish_exit(&self, raw: RawStatus) -> ExitStatus {
        let status = ExitStatus::from_raw(raw, self.process.usage());
        tracing::debug!(pid = self.process.pid(), %status, "exit");
        self.status.send_replace(Some(status));
        self.hub.emit(Event::Exit(status));
        status
    }

    /// Waits on the reactor until the child exits, then reaps it (see [`Shared::reap_now`]).
    pub(super) async fn reap(&self) -> std::io::Result<ExitStatus> {
        self.process.wait_until(|| self.reap_now()).await
    }

    pub(super) fn set_referenced(&self, want: bool) {
        let mut refs = self.refs.lock().unwrap_or_else(|e| e.into_inner());
        if refs.1 || refs.0 == want {
            return;
        }
        refs.0 = want;
        if want {
            REFERENCED.fetch_add(1, Ordering::SeqCst);
        } else {
            REFERENCED.fetch_sub(1, Ordering::SeqCst);
            referenced_changed();
        }
    }

    /// Ends the child's events without a `Close` and marks it closed: its exit could not be
    /// observed, so no `Exit` or `Close` will come.
    pub(super) fn end_without_close(&self) {
        self.hub.end();
        self.closed.send_replace(true);
        self.mark_closed();
    }

    /// The watcher task was dropped before its end (its runtime shut down, maybe before it
    /// ever ran): the events end there, `closed()` no longer waits for a `Close` that cannot
    /// come, and `wait()` reaps from wherever it is called.
    pub(super) fn watcher_lost(&self) {
        tracing::debug!(
            pid = self.process.pid(),
            "the watcher's runtime shut down before Close"
        );
        self.watcher_lost.store(true, Ordering::SeqCst);
        self.end_without_close();
    }

    pub(super) fn mark_closed(&self) {
        let mut refs = self.refs.lock().unwrap_or_else(|e| e.into_inner());
        if !refs.1 {
            refs.1 = true;
            if refs.0 {
                REFERENCED.fetch_sub(1, Ordering::SeqCst);
                referenced_changed();
            }
        }
    }

    /// A kill by policy (timeout, abort, escalation, drop): the group if asked, else the child.
    pub(super) fn policy_kill(&self, signal: Signal) -> bool {
        if self.kill_group {
            self.signal_group(signal).unwrap_or(false)
        } else {
            self.kill(signal)
        }
    }

    /// A policy kill from outside the watcher (exec's max-buffer overflow, a pipeline's
    /// timeout or abort): as [`policy_kill`](Self::policy_kill), then the watcher arms the
    /// escalation if one is set. Whether the signal was delivered.
    pub(crate) fn kill_by_policy(self: &Arc<Self>, signal: Signal) -> bool {
        let delivered = self.policy_kill(signal);
        self.ensure_watch();
        self.killed_by_policy.notify_one();
        delivered
    }

    /// Handles the cancellation token once, whoever sees it first (the watcher, or exec,
    /// which must know at once): kills by policy and, if that reached the child, marks it
    /// aborted and emits `Error(Aborted)` (an exited child is not aborted, as in Node).
    /// Whether the child was aborted.
    pub(crate) fn abort(&self, signal: Signal) -> bool {
        let _exit = self.exit.lock().unwrap_or_else(|e| e.into_inner());
        if !self.abort_handled.swap(true, Ordering::SeqCst) && self.policy_kill(signal) {
            self.aborted.store(true, Ordering::SeqCst);
            self.hub.emit(Event::Error(Arc::new(Error::Aborted)));
        }
        self.aborted.load(Ordering::SeqCst)
    }

    /// Signals the child's process group; `Ok(false)` once the child is reaped.
    pub(super) fn signal_group(&self, signal: Signal) -> Result<bool> {
        if !self.leads_group {
            let reason = "the child does not lead a process group: spawn it with \
                          detached(true) or process_group(0)";
            return Err(Error::InvalidOption {
                option: "kill_tree",
                reason: reason.into(),
            });
        }
        match self.process.signal_group(signal.as_raw()) {
            Ok(()) => {
                self.killed.store(true, Ordering::SeqCst);
                Ok(true)
            }
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
            Err(source) => Err(Error::Kill {
                pid: self.process.pid(),
                signal,
                source,
            }),
        }
    }

    /// Node's `kill()`: true if delivered; an undeliverable signal (other than to an exited
    /// child) becomes an `Error` event.
    pub(crate) fn kill(&self, signal: Signal) -> bool {
        match self.process.signal(signal.as_raw()) {
            Ok(()) => {
                self.killed.store(true, Ordering::SeqCst);
                true
            }
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => false,
            Err(source) => {
                let err = Error::Kill {
                    pid: self.process.pid(),
                    signal,
                    source,
                };
                tracing::debug!(pid = self.process.pid(), %err, "kill failed");
                self.hub.emit(Event::Error(Arc::new(err)));
                false
            }
        }
    }
}

impl Drop for Shared {
    /// If the watcher never reached `Close` (its runtime was shut down), the child stops
    /// counting for `wait_referenced` once nobody holds it.
    fn drop(&mut self) {
        self.mark_closed();
    }
}
