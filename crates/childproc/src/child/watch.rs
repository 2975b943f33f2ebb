//! The watcher task: waits on the pidfd, runs the timeout, the abort and the escalation,
//! reaps, and emits `Exit` and `Close` (after the pipes, or the wait delay).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::error::Error;
use crate::events::Event;
use crate::pipes::{Cut, StreamWatch};
use crate::signal::Signal;
use crate::unfinished::Unfinished;

#[cfg(feature = "ipc")]
use super::ipc::IpcDone;
use super::refs::{referenced_changed, UNWATCHED};
use super::shared::{lock, Lazy, Shared};

/// What the watcher task needs besides the shared state.
pub(crate) struct Watch {
    pub(crate) streams: Vec<StreamWatch>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) cancel: Option<CancellationToken>,
    pub(crate) kill_signal: Signal,
    pub(crate) escalate_after: Option<Duration>,
    /// How long `Close` waits for the pipes after the exit before cutting them.
    pub(crate) wait_delay: Option<Duration>,
    /// The IPC reader's end: `Exit` (if the channel hung up with the child) and `Close`
    /// wait for its `Disconnect`.
    #[cfg(feature = "ipc")]
    pub(crate) ipc_done: Option<IpcDone>,
}

/// Sets up the task that reaps the child and emits `Exit` and `Close` (and handles the
/// timeout and the cancellation token): started now if `eager` (timers, cancellation, IPC),
/// else when first needed (see [`Shared::lazy`]). A dropped `ChildProcess` never leaves a
/// zombie while the runtime runs: its drop closes in place or starts the task.
pub(crate) fn start_watch(shared: &Arc<Shared>, watch: Watch, span: tracing::Span, eager: bool) {
    if eager {
        tokio::spawn(run_watch(shared.clone(), watch).instrument(span));
        return;
    }
    *lock(&shared.lazy) = Some(Lazy {
        watch,
        span,
        handle: tokio::runtime::Handle::current(),
    });
    lock(&UNWATCHED).insert(shared.key(), Arc::downgrade(shared));
    // A `wait_referenced` in progress must start this one's watcher too.
    referenced_changed();
}

/// The watcher task's future. Its [`Lost`] guard exists from the start: a task dropped
/// before it ever ran (its runtime shut down first) counts as lost too.
pub(super) fn run_watch(shared: Arc<Shared>, watch: Watch) -> impl Future<Output = ()> {
    let lost = {
        let shared = shared.clone();
        Unfinished::new(move || shared.watcher_lost())
    };
    watching(shared, watch, lost)
}

async fn watching(shared: Arc<Shared>, watch: Watch, lost: Unfinished<impl FnOnce()>) {
    let Watch {
        streams,
        timeout,
        cancel,
        kill_signal,
        escalate_after,
        wait_delay,
        #[cfg(feature = "ipc")]
        ipc_done,
    } = watch;
    let deadline = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let cancelled = async {
        match &cancel {
            Some(c) => c.cancelled().await,
            None => std::future::pending().await,
        }
    };
    // Armed once a policy kill was sent: SIGKILL if the child outlives the grace period.
    // (Made only when needed: a runtime without timers works for children without them.)
    let mut escalation: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let dropped = shared.killed_by_policy.notified();
    // Exit is observed without reaping: while a group escalation is pending the zombie keeps
    // the group id reserved, so the group SIGKILL cannot reach a stranger. Reaped below.
    let watcher_reaps = shared.watcher_reaps;
    let mut exit = *shared.status.borrow();
    if exit.is_none() {
        let exited = shared.process.wait_until(|| {
            if watcher_reaps {
                Ok(shared.process.has_exited()?.then_some(None))
            } else {
                Ok(shared.reap_now()?.map(Some))
            }
        });
        tokio::pin!(deadline, cancelled, dropped, exited);
        let (mut timed_out, mut aborted, mut drop_seen, mut escalated) =
            (false, false, false, false);
        let mut observed = false;
        let pid = shared.process.pid();
        loop {
            let mut arm = false;
            tokio::select! {
                r = &mut exited, if !observed => {
                    observed = true;
                    if let Ok(Some(status)) = r {
                        exit = Some(status);
                    }
                    // On error, fall through to the reaping wait, which reports it.
                    if exit.is_some() || r.is_err() || escalation.is_none() {
                        break;
                    }
                }
                () = &mut deadline, if !timed_out && !observed => {
                    timed_out = true;
                    shared.timed_out.store(true, Ordering::SeqCst);
                    tracing::debug!(pid, signal = %kill_signal, "timeout: killing");
                    shared.policy_kill(kill_signal);
                    arm = true;
                }
                () = &mut cancelled, if !aborted && !observed => {
                    aborted = true;
                    tracing::debug!(pid, signal = %kill_signal, "aborted: killing");
                    shared.abort(kill_signal);
                    arm = true;
                }
                () = &mut dropped, if !drop_seen && !observed => {
                    drop_seen = true;
                    arm = true;
                }
                () = async { if let Some(e) = escalation.as_mut() { e.await } }, if escalation.is_some() => {
                    escalation = None;
                    escalated = true;
                    tracing::debug!(pid, "grace period over: SIGKILL");
                    if shared.policy_kill(Signal::SIGKILL) {
                        shared.escalated.store(true, Ordering::SeqCst);
                    }
                    if observed {
                        break;
                    }
                }
            }
            if let (true, Some(grace), None, false) = (arm, escalate_after, &escalation, escalated)
            {
                escalation = Some(Box::pin(tokio::time::sleep(grace)));
            }
        }
    }
    #[cfg(feature = "ipc")]
    if let (None, Some(ipc)) = (exit, &ipc_done) {
        ipc.delivered_before_exit().await; // what the child sent, and Disconnect, before Exit
    }
    let status = match exit {
        Some(status) => Ok(status),
        None => shared.reap().await,
    };
    let status = match status {
        Ok(status) => status,
        Err(source) => {
            let pid = shared.process.pid();
            shared
                .hub
                .emit(Event::Error(Arc::new(Error::Wait { pid, source })));
            lost.finish();
            shared.end_without_close();
            return;
        }
    };
    let cuts: Vec<Cut> = streams.iter().map(StreamWatch::cutter).collect();
    let closed = futures_util::future::join_all(streams.into_iter().map(StreamWatch::closed));
    match wait_delay {
        None => drop(closed.await),
        Some(delay) => {
            if tokio::time::timeout(delay, closed).await.is_err() {
                tracing::debug!(pid = shared.process.pid(), ?delay, "wait delay over: cut");
                shared.pipes_cut.store(true, Ordering::SeqCst);
                for cut in &cuts {
                    cut.cut();
                }
            }
        }
    }
    #[cfg(feature = "ipc")]
    if let Some(ipc) = &ipc_done {
        ipc.disconnected().await; // Disconnect comes before Close
    }
    lost.finish();
    tracing::debug!(pid = shared.process.pid(), %status, "close");
    shared.hub.emit(Event::Close(status));
    shared.closed.send_replace(true);
    shared.mark_closed();
}
