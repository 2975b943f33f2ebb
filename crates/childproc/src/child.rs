//! Node's `ChildProcess`: a running child, its pipes, its state and its events.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::os::fd::BorrowedFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use childproc_ipc::{AnyCodec, Handle, HangupProbe, IntoMessage, IpcError, Sender};

use crate::child_ipc::Ipc;
use crate::error::{Error, Result};
use crate::events::{Event, EventHub, Events};
use crate::pipes::{ChildPipe, ChildStderr, ChildStdin, ChildStdout, Cut, StreamWatch};
use crate::signal::Signal;
use crate::sys::{Process, RawStatus};

/// How a child ended: exactly one of [`code`](Self::code) or [`signal`](Self::signal) is set
/// (Node's `(code, signal)` pair of `'exit'` and `'close'`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExitStatus(RawStatus);

impl ExitStatus {
    /// The exit code, if the child exited on its own.
    pub fn code(&self) -> Option<i32> {
        match self.0 {
            RawStatus::Exited(c) => Some(c),
            RawStatus::Signaled(_) => None,
        }
    }
    /// The signal that terminated the child, if one did.
    pub fn signal(&self) -> Option<Signal> {
        match self.0 {
            RawStatus::Signaled(s) => Signal::from_raw(s).ok(),
            RawStatus::Exited(_) => None,
        }
    }
    /// Exited with code 0.
    pub fn success(&self) -> bool {
        self.0 == RawStatus::Exited(0)
    }
    pub(crate) fn from_raw(raw: RawStatus) -> Self {
        ExitStatus(raw)
    }
    #[cfg(test)]
    pub(crate) fn from_code(code: i32) -> Self {
        ExitStatus(RawStatus::Exited(code))
    }
}

impl fmt::Debug for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExitStatus({self})")
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            RawStatus::Exited(c) => write!(f, "code {c}"),
            RawStatus::Signaled(s) => match Signal::from_raw(s) {
                Ok(sig) => write!(f, "signal {sig}"),
                Err(_) => write!(f, "signal {s}"),
            },
        }
    }
}

/// Children that keep [`wait_referenced`] waiting (Node's event-loop references).
static REFERENCED: AtomicUsize = AtomicUsize::new(0);
static REFERENCED_CHANGED: Notify = Notify::const_new();
/// How many [`wait_referenced`] calls are in progress. Spawns and closes notify only when
/// one is: `Notify::notify_waiters` takes a process-wide lock, which every spawn and every
/// close would otherwise pay for nothing.
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// Wakes the [`wait_referenced`] calls in progress, if any. The counters it pairs with are
/// `SeqCst`: a waiter counts itself in `WAITING` before it reads `REFERENCED` (and drains
/// `UNWATCHED`), a changer updates those before it reads `WAITING`, so either the waiter sees
/// the change or the changer sees the waiter.
fn referenced_changed() {
    if WAITING.load(Ordering::SeqCst) > 0 {
        REFERENCED_CHANGED.notify_waiters();
    }
}

/// Counts one [`wait_referenced`] in progress while alive (also if the call is dropped).
struct Waiting;

impl Waiting {
    fn new() -> Waiting {
        WAITING.fetch_add(1, Ordering::SeqCst);
        Waiting
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Children whose watcher task has not started (see [`Shared::lazy`]), keyed by the address
/// of their `Shared`, so [`wait_referenced`] can start them.
static UNWATCHED: Mutex<BTreeMap<usize, Weak<Shared>>> = Mutex::new(BTreeMap::new());

/// Resolves once every *referenced* child has closed and every *referenced* IPC channel has
/// disconnected — the Rust counterpart of Node's event loop staying alive for its children
/// and their channels. A child is referenced from spawn until `Close`, unless
/// [`ChildProcess::unref`] was called; [`ChildProcess::ref_`] restores it. A channel is
/// referenced while it is connected unless its handle ([`ChildProcess::channel`]) was
/// unref'd, so, as in Node, `child.unref()` alone does not stop the wait for a child whose
/// channel is still open: unref the channel too, or disconnect it.
pub async fn wait_referenced() {
    let _waiting = Waiting::new();
    loop {
        let changed = REFERENCED_CHANGED.notified();
        // Children nobody watches yet must be watched to ever reach `Close`.
        let unwatched = std::mem::take(&mut *lock(&UNWATCHED));
        for shared in unwatched.values().filter_map(Weak::upgrade) {
            shared.ensure_watch();
        }
        if REFERENCED.load(Ordering::SeqCst) == 0 {
            childproc_ipc::wait_referenced().await;
            if REFERENCED.load(Ordering::SeqCst) == 0 {
                return;
            }
            continue;
        }
        changed.await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A watcher task not started yet, with what it needs to start.
struct Lazy {
    watch: Watch,
    span: tracing::Span,
    handle: tokio::runtime::Handle,
}

/// State shared by a [`ChildProcess`] and the task that watches it.
pub(crate) struct Shared {
    pub(crate) process: Process,
    pub(crate) hub: EventHub,
    status: watch::Sender<Option<ExitStatus>>,
    closed: watch::Sender<bool>,
    killed: AtomicBool,
    /// Set by the watcher when the timeout fired / the token was cancelled.
    pub(crate) timed_out: AtomicBool,
    pub(crate) aborted: AtomicBool,
    /// Set when escalation sent SIGKILL.
    pub(crate) escalated: AtomicBool,
    /// The child leads its own process group (detached or `process_group(0)`).
    leads_group: bool,
    /// Policy kills (timeout, abort, escalation, drop) go to the whole group.
    kill_group: bool,
    /// A policy kill happened outside the watcher (kill-on-drop, exec's max-buffer overflow,
    /// a pipeline's timeout or abort): the watcher starts the escalation timer.
    killed_by_policy: Notify,
    /// The abort (cancellation token) was handled, by the watcher or by exec: once only.
    abort_handled: AtomicBool,
    /// A wait delay expired: the watcher cut the readable pipes a grandchild kept open.
    pub(crate) pipes_cut: AtomicBool,
    /// `(referenced, closed)`, changed together.
    refs: Mutex<(bool, bool)>,
    /// Held while reaping and publishing the exit, and across a policy kill and the `Error`
    /// that reports it, so that error comes before `Exit` whoever reaps.
    exit: Mutex<()>,
    /// Only the watcher may reap: it observes the exit without reaping until a group
    /// escalation is over (the zombie keeps the group id reserved), or until the IPC reader
    /// has delivered what the child sent and `Disconnect` (so `Exit` comes after them).
    /// `wait()` then waits for the status the watcher publishes.
    watcher_reaps: bool,
    /// The watcher task, until it is needed. A child without timers, cancellation or IPC gets
    /// no task at spawn: `wait()` reaps it and `closed()` or the drop of the `ChildProcess`
    /// emits `Close` in place when its streams are already closed (the common case: one task
    /// and its cross-thread wake-ups less per child). `events()`, `closed()` with streams
    /// still open, a drop before the exit, and [`wait_referenced`] start the task.
    lazy: Mutex<Option<Lazy>>,
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
            lazy: Mutex::new(None),
        })
    }

    fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Starts the watcher task if it has not started yet.
    fn ensure_watch(self: &Arc<Self>) {
        let Some(lazy) = lock(&self.lazy).take() else {
            return;
        };
        lock(&UNWATCHED).remove(&self.key());
        let task = run_watch(self.clone(), lazy.watch).instrument(lazy.span);
        lazy.handle.spawn(task);
    }

    /// For a child whose watcher never started: if it has exited and every stream is already
    /// closed, emits `Close` here and returns true; otherwise (or if the watcher runs) false.
    fn close_in_place(&self) -> bool {
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
    fn close_or_watch(self: &Arc<Self>) {
        if !self.close_in_place() {
            self.ensure_watch();
        }
    }

    /// The exit status if the child has exited, reaping it now if nobody has yet.
    fn current_status(&self) -> Option<ExitStatus> {
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
    fn reap_now(&self) -> std::io::Result<Option<ExitStatus>> {
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
    fn reap_blocking(&self) -> std::io::Result<ExitStatus> {
        let _exit = self.exit.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(status) = *self.status.borrow() {
            return Ok(status);
        }
        let raw = self.process.wait_blocking()?;
        Ok(self.publish_exit(raw))
    }

    /// Publishes a reaped child's status and emits `Exit` (the caller holds `exit`).
    fn publish_exit(&self, raw: RawStatus) -> ExitStatus {
        let status = ExitStatus::from_raw(raw);
        tracing::debug!(pid = self.process.pid(), %status, "exit");
        self.status.send_replace(Some(status));
        self.hub.emit(Event::Exit(status));
        status
    }

    /// Waits on the reactor until the child exits, then reaps it (see [`Shared::reap_now`]).
    async fn reap(&self) -> std::io::Result<ExitStatus> {
        self.process.wait_until(|| self.reap_now()).await
    }

    fn set_referenced(&self, want: bool) {
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

    fn mark_closed(&self) {
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
    fn policy_kill(&self, signal: Signal) -> bool {
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
    fn signal_group(&self, signal: Signal) -> Result<bool> {
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

/// What the watcher task needs besides the shared state.
pub(crate) struct Watch {
    pub(crate) streams: Vec<StreamWatch>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) cancel: Option<CancellationToken>,
    pub(crate) kill_signal: Signal,
    pub(crate) escalate_after: Option<Duration>,
    /// How long `Close` waits for the pipes after the exit before cutting them.
    pub(crate) wait_delay: Option<Duration>,
    /// The IPC reader's end: cancelled once it emitted `Disconnect` (Close waits for it), and
    /// the probe that tells whether the child's end of the channel is closed.
    pub(crate) ipc_done: Option<(CancellationToken, Option<HangupProbe>)>,
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

/// How many scheduler turns the watcher gives a momentary extra holder of an exited IPC
/// child's socket end before deciding a grandchild holds it (see `run_watch`).
const HANGUP_TURNS: usize = 16;

async fn run_watch(shared: Arc<Shared>, watch: Watch) {
    let Watch {
        streams,
        timeout,
        cancel,
        kill_signal,
        escalate_after,
        wait_delay,
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
    if let (None, Some((done, Some(probe)))) = (exit, &ipc_done) {
        // The child has exited; if its end of the channel went with it (no grandchild holds
        // it), what it sent is all readable now: deliver it and `Disconnect` before `Exit`,
        // as Node does.
        // Another thread's child, between its creation and its fd cleanup, can hold a copy
        // of the child's end for a moment: give it a few turns of the scheduler to let go.
        for _ in 0..HANGUP_TURNS {
            if probe.peer_closed() || done.is_cancelled() {
                break;
            }
            tokio::task::yield_now().await;
        }
        if probe.peer_closed() {
            done.cancelled().await;
        }
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
            shared.hub.end();
            shared.closed.send_replace(true);
            shared.mark_closed();
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
    if let Some((done, _)) = ipc_done {
        done.cancelled().await; // Disconnect comes before Close
    }
    tracing::debug!(pid = shared.process.pid(), %status, "close");
    shared.hub.emit(Event::Close(status));
    shared.closed.send_replace(true);
    shared.mark_closed();
}

/// A spawned child process: Node's `ChildProcess`.
///
/// The pipes are public fields like `std`'s and tokio's `Child` (take them to move them into
/// tasks). Dropping a `ChildProcess` does not kill the child unless
/// [`Command::kill_on_drop`](crate::Command::kill_on_drop) was set (Node's
/// `subprocess[Symbol.dispose]()`); the child is reaped either way.
pub struct ChildProcess {
    /// The child's stdin, if it is a pipe (`subprocess.stdin`).
    pub stdin: Option<ChildStdin>,
    /// The child's stdout, if it is a pipe (`subprocess.stdout`).
    pub stdout: Option<ChildStdout>,
    /// The child's stderr, if it is a pipe (`subprocess.stderr`).
    pub stderr: Option<ChildStderr>,
    pub(crate) extra: BTreeMap<i32, ChildPipe>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) spawnfile: OsString,
    pub(crate) spawnargs: Vec<OsString>,
    pub(crate) kill_on_drop: bool,
    pub(crate) kill_signal: Signal,
    pub(crate) ipc: Option<Ipc>,
}

impl fmt::Debug for ChildProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildProcess")
            .field("pid", &self.pid())
            .field("spawnfile", &self.spawnfile)
            .field("exit", &*self.shared.status.borrow())
            .finish_non_exhaustive()
    }
}

impl ChildProcess {
    /// The process id (`subprocess.pid`).
    pub fn pid(&self) -> u32 {
        self.shared.process.pid()
    }

    /// The child's pidfd (Linux): a handle that always refers to this process, never to a
    /// later process that reuses its PID. `None` where the kernel has no pidfds, and on other
    /// Unixes.
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.shared.process.pidfd()
    }

    /// The pipe at child fd `fd` ≥ 3 (`subprocess.stdio[fd]`); `None` if that fd is not a pipe.
    /// Fds 0–2 are the `stdin`/`stdout`/`stderr` fields.
    pub fn stdio(&mut self, fd: i32) -> Option<&mut ChildPipe> {
        self.extra.get_mut(&fd)
    }

    /// Takes the pipe at child fd `fd` ≥ 3, to move it elsewhere.
    pub fn take_stdio(&mut self, fd: i32) -> Option<ChildPipe> {
        self.extra.remove(&fd)
    }

    /// Sends `signal` to the child's whole process group: the child and everything it started
    /// that stayed in the group (the `sh -c` grandchild of Node's manual). The child must lead
    /// its group (`detached(true)` or `process_group(0)`), else this is an error saying so.
    /// Like [`kill`](Self::kill) it cannot hit a stranger: the group is signalled only while
    /// the child is unreaped (until then its pid, the group's id, cannot be reused);
    /// afterwards it returns `Ok(false)`.
    pub fn kill_tree(&self, signal: Signal) -> Result<bool> {
        self.shared.signal_group(signal)
    }

    /// Sends an IPC message (`subprocess.send(message, callback)`): resolves once it is
    /// written — Node's callback. A closed channel (or none) is [`Error::Ipc`].
    ///
    /// `message` is a [`Value`](crate::ipc::Value) or anything that converts into one (`"hi"`,
    /// `42`, `true`), or a typed `Serialize` message wrapped in [`Json`](crate::ipc::Json):
    /// `child.send(Json(&request)).await?`. Decode typed replies with
    /// [`ipc::from_value`](crate::ipc::from_value).
    pub async fn send(&self, message: impl IntoMessage) -> Result<()> {
        let message = message.into_message()?;
        match &self.ipc {
            Some(ipc) => Ok(ipc.sender.send(message).await?),
            None => Err(Error::Ipc(IpcError::Closed)),
        }
    }

    /// Sends an IPC message with a handle (`subprocess.send(message, sendHandle, callback)`):
    /// a TCP or Unix listener (a `net.Server` for a Node child), a TCP or Unix stream (a
    /// `net.Socket`), a UDP socket (a `dgram.Socket`), or any fd ([`Handle::Fd`], for Rust
    /// children only: a Node child aborts on a non-socket fd). Anything `Into<Handle>`:
    /// `child.send_handle("server", listener).await?`. Resolves once the frame is written.
    ///
    /// The handle moves: our copy is closed once it is written (the child holds the same
    /// socket); send a `try_clone()` to keep using it here, as Node's `keepOpen`. As in Node,
    /// later sends wait until the child acknowledges the handle (the child must read its
    /// channel). See [`Sender::send_handle`].
    pub async fn send_handle(
        &self,
        message: impl IntoMessage,
        handle: impl Into<Handle>,
    ) -> Result<()> {
        let message = message.into_message()?;
        match &self.ipc {
            Some(ipc) => Ok(ipc.sender.send_handle(message, handle).await?),
            None => Err(Error::Ipc(IpcError::Closed)),
        }
    }

    /// `subprocess.send(message)` without a callback: queues the message and returns Node's
    /// boolean — `false` on a closed channel (with an `Error` event, as Node) or when more
    /// than 128 KiB wait to be written (queued anyway: slow down). A write that fails, during
    /// the call (then the result is `false`) or later, becomes an `Error` event. `Err` only for
    /// a message that cannot be encoded.
    pub fn send_nowait(&self, message: impl IntoMessage) -> Result<bool> {
        let message = message.into_message()?;
        match &self.ipc {
            Some(ipc) if ipc.sender.connected() => Ok(ipc.sender.send_nowait(message)?),
            _ => {
                self.shared
                    .hub
                    .emit(Event::Error(Arc::new(Error::Ipc(IpcError::Closed))));
                Ok(false)
            }
        }
    }

    /// Whether the IPC channel is open (`subprocess.connected`).
    pub fn connected(&self) -> bool {
        self.ipc.as_ref().is_some_and(|ipc| ipc.sender.connected())
    }

    /// Closes the IPC channel (`subprocess.disconnect()`): queued messages are still written,
    /// then the child reads EOF; `Disconnect` follows. Disconnecting a closed channel emits an
    /// `Error` event, as Node does.
    pub fn disconnect(&self) {
        match &self.ipc {
            Some(ipc) if ipc.sender.connected() => {
                ipc.sender.close();
                ipc.stop.cancel();
            }
            _ => self
                .shared
                .hub
                .emit(Event::Error(Arc::new(Error::Ipc(IpcError::Closed)))),
        }
    }

    /// The IPC channel's handle (`subprocess.channel`): its sender, to send from other tasks,
    /// and its [`ref_`](Sender::ref_) / [`unref`](Sender::unref) (Node's
    /// `subprocess.channel.ref()` / `.unref()`: whether [`wait_referenced`] waits for the
    /// channel while it is connected).
    pub fn channel(&self) -> Option<&Sender<AnyCodec>> {
        self.ipc.as_ref().map(|ipc| &ipc.sender)
    }

    /// Whether a wait delay ([`Command::wait_delay`](crate::Command::wait_delay)) expired: the
    /// child had exited but something (a grandchild) kept its stdout, stderr or an extra pipe
    /// open that long, so those pipes were cut (they read end-of-file from then on) and
    /// `Close` came without waiting for them. What was still in them is not read.
    pub fn pipes_closed_early(&self) -> bool {
        self.shared.pipes_cut.load(Ordering::SeqCst)
    }

    /// Whether escalation had to send SIGKILL after the grace period.
    pub fn escalated(&self) -> bool {
        self.shared.escalated.load(Ordering::SeqCst)
    }

    /// Sends `signal` (`subprocess.kill(signal)`). Returns whether it was delivered; `killed`
    /// becomes true if so. Signalling a child that has exited returns false; any other failure
    /// also emits an [`Event::Error`]. Signals go through the pidfd on Linux, so they can
    /// never reach another process that reused the PID.
    pub fn kill(&self, signal: Signal) -> bool {
        self.shared.kill(signal)
    }

    /// Whether a [`kill`](Self::kill) succeeded (`subprocess.killed`); not whether the child
    /// died of it.
    pub fn killed(&self) -> bool {
        self.shared.killed.load(Ordering::SeqCst)
    }

    /// The exit code once the child has exited on its own (`subprocess.exitCode`).
    pub fn exit_code(&self) -> Option<i32> {
        self.shared.current_status().and_then(|s| s.code())
    }

    /// The signal that ended the child, once it has (`subprocess.signalCode`).
    pub fn signal_code(&self) -> Option<Signal> {
        self.shared.current_status().and_then(|s| s.signal())
    }

    /// The file that was executed (`subprocess.spawnfile`): the command, or the shell.
    pub fn spawnfile(&self) -> &OsString {
        &self.spawnfile
    }

    /// The full argv, argv\[0\] included (`subprocess.spawnargs`).
    pub fn spawnargs(&self) -> &[OsString] {
        &self.spawnargs
    }

    /// A stream of this child's events; see [`Event`] for the order. Call it as often as you
    /// like: every stream replays the lifecycle so far.
    pub fn events(&self) -> Events {
        self.shared.ensure_watch();
        self.shared.hub.subscribe()
    }

    /// Waits for the child to exit (the `'exit'` event) and returns how it ended.
    ///
    /// The waiting task is woken by the child's exit itself (its pidfd), and reaps it if the
    /// watcher task has not: no hop through another task.
    ///
    /// If [`events`](Self::events) was never called, awaiting the exit stops holding the
    /// child's IPC messages back for a later stream: the history keeps the first ones (up to
    /// the [high-water mark](crate::Command::ipc_high_water)) and drops the rest, as Node drops
    /// messages that have no `'message'` listener; a child that floods its channel can then
    /// still exit.
    pub async fn wait(&self) -> Result<ExitStatus> {
        let shared = &*self.shared;
        shared.hub.exit_awaited(); // messages nobody reads must not hold the exit up
        if let Some(status) = *shared.status.borrow() {
            return Ok(status);
        }
        let pid = self.pid();
        let wait_error = |source| Error::Wait { pid, source };
        if !shared.watcher_reaps {
            // Whoever reaps, the exit wakes every waiter on the pidfd, and `reap_now` then
            // returns the published status (or the error that ended the watcher too).
            return shared.reap().await.map_err(wait_error);
        }
        // A group escalation is pending: only the watcher may reap.
        let mut status_rx = shared.status.subscribe();
        let mut closed_rx = shared.closed.subscribe();
        let published = async {
            status_rx
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|s| *s)
        };
        tokio::select! {
            Some(status) = published => Ok(status),
            _ = closed_rx.wait_for(|closed| *closed) => (*shared.status.borrow()).ok_or_else(|| {
                wait_error(std::io::Error::other(
                    "the task watching the child ended without an exit status",
                ))
            }),
        }
    }

    /// Waits for `Close`: the child has exited and all its stdio streams have closed.
    pub async fn closed(&self) -> Result<ExitStatus> {
        let status = self.wait().await?;
        self.shared.close_or_watch();
        let mut rx = self.shared.closed.subscribe();
        let _ = rx.wait_for(|c| *c).await;
        Ok(status)
    }

    /// The exit status if the child has exited, without waiting.
    pub fn try_status(&self) -> Option<ExitStatus> {
        self.shared.current_status()
    }

    /// Node's `subprocess.ref()`: the child counts again for [`wait_referenced`].
    pub fn ref_(&self) {
        self.shared.set_referenced(true);
    }

    /// Node's `subprocess.unref()`: [`wait_referenced`] no longer waits for this child. The
    /// child is still watched and reaped.
    pub fn unref(&self) {
        self.shared.set_referenced(false);
    }

    /// SIGKILLs the child and reaps it before returning, for a pipeline whose later stage
    /// failed to start. A child the signal cannot reach is left to its watcher.
    pub(crate) fn kill_and_reap(&self) {
        if self.shared.kill(Signal::SIGKILL) {
            let _ = self.shared.reap_blocking();
        }
    }

    /// Whether the child counts for [`wait_referenced`].
    pub fn is_referenced(&self) -> bool {
        let refs = self.shared.refs.lock().unwrap_or_else(|e| e.into_inner());
        refs.0 && !refs.1
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if self.kill_on_drop && self.try_status().is_none() {
            self.shared.policy_kill(self.kill_signal);
            self.shared.killed_by_policy.notify_one();
        }
        // Nobody can take its events any more: messages no stream reads are dropped.
        self.shared.hub.abandon();
        // Nobody can wait for it any more: finish now, or let the watcher reap and close it.
        self.shared.close_or_watch();
    }
}
