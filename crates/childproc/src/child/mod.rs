//! Node's `ChildProcess`: a running child, its pipes, its state and its events.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::os::fd::BorrowedFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[cfg(feature = "ipc")]
use childproc_ipc::{AnyCodec, Handle, IntoMessage, IpcError, Sender};

use crate::error::{Error, Result};
#[cfg(feature = "ipc")]
use crate::events::Event;
use crate::events::Events;
use crate::exit::ExitStatus;
use crate::pipes::{ChildPipe, ChildStderr, ChildStdin, ChildStdout};
use crate::pty::Pty;
use crate::signal::Signal;

#[cfg(feature = "ipc")]
use ipc::Ipc;

#[cfg(feature = "ipc")]
mod ipc;
mod refs;
mod shared;
mod watch;

#[cfg(feature = "ipc")]
pub(crate) use ipc::start_ipc;
pub use refs::wait_referenced;
pub(crate) use shared::Shared;
pub(crate) use watch::{start_watch, Watch};

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
    /// The master side of the child's pseudo-terminal, if it has one ([`Stdio::Pty`](crate::Stdio::Pty),
    /// [`Command::pty`](crate::Command::pty)): read what it writes to the terminal, write
    /// what it reads, resize it. Beyond Node (node-pty's `IPty`).
    pub pty: Option<Pty>,
    pub(crate) extra: BTreeMap<i32, ChildPipe>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) spawnfile: OsString,
    pub(crate) spawnargs: Vec<OsString>,
    pub(crate) kill_on_drop: bool,
    pub(crate) kill_signal: Signal,
    #[cfg(feature = "ipc")]
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
    /// `child.send(Json(&request)).await?`; in the JSON serializations and MessagePack it is
    /// encoded straight to the wire bytes, with no `Value` built in between (the same bytes:
    /// see [`TypedCodec`](crate::ipc::TypedCodec)). Decode typed replies with
    /// [`ipc::from_value`](crate::ipc::from_value).
    #[cfg(feature = "ipc")]
    pub async fn send(&self, message: impl IntoMessage) -> Result<()> {
        // A typed message (`Json`) goes straight to the wire bytes: see `Sender::send_message`.
        match &self.ipc {
            Some(ipc) => Ok(ipc.sender.send_message(message).await?),
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
    #[cfg(feature = "ipc")]
    pub async fn send_handle(
        &self,
        message: impl IntoMessage,
        handle: impl Into<Handle>,
    ) -> Result<()> {
        let message = message.into_message()?;
        match &self.ipc {
            Some(ipc) if ipc.over_stdio => Err(Error::Ipc(IpcError::Unsupported {
                what: "a handle on a channel over stdio: an fd cannot cross a byte stream".into(),
            })),
            Some(ipc) => Ok(ipc.sender.send_handle(message, handle).await?),
            None => Err(Error::Ipc(IpcError::Closed)),
        }
    }

    /// `subprocess.send(message)` without a callback: queues the message and returns Node's
    /// boolean — `false` on a closed channel (with an `Error` event, as Node) or when more
    /// than 128 KiB wait to be written (queued anyway: slow down). A write that fails, during
    /// the call (then the result is `false`) or later, becomes an `Error` event. `Err` only for
    /// a message that cannot be encoded.
    #[cfg(feature = "ipc")]
    pub fn send_nowait(&self, message: impl IntoMessage) -> Result<bool> {
        match &self.ipc {
            Some(ipc) if ipc.sender.connected() => Ok(ipc.sender.send_message_nowait(message)?),
            _ => {
                self.shared
                    .hub
                    .emit(Event::Error(Arc::new(Error::Ipc(IpcError::Closed))));
                Ok(false)
            }
        }
    }

    /// Whether the IPC channel is open (`subprocess.connected`).
    #[cfg(feature = "ipc")]
    pub fn connected(&self) -> bool {
        self.ipc.as_ref().is_some_and(|ipc| ipc.sender.connected())
    }

    /// Closes the IPC channel (`subprocess.disconnect()`): queued messages are still written,
    /// then the child reads EOF; `Disconnect` follows. Disconnecting a closed channel emits an
    /// `Error` event, as Node does.
    #[cfg(feature = "ipc")]
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
    /// channel while it is connected). `None` without a channel, and once it is disconnected
    /// (by [`disconnect`](Self::disconnect) or by the child), as Node's `subprocess.channel`
    /// is `null` then; a `Sender` cloned before stays usable for its state.
    #[cfg(feature = "ipc")]
    pub fn channel(&self) -> Option<&Sender<AnyCodec>> {
        self.sender().filter(|sender| sender.connected())
    }

    /// The IPC channel's sender, connected or not.
    #[cfg(feature = "ipc")]
    pub(crate) fn sender(&self) -> Option<&Sender<AnyCodec>> {
        self.ipc.as_ref().map(|ipc| &ipc.sender)
    }

    /// Hands every message read from now on (without a handle) to `interceptor` in the
    /// channel's reader task, before it becomes an event; false if one is already set.
    #[cfg(feature = "ipc")]
    pub(crate) fn intercept_messages(&self, interceptor: crate::events::Interceptor) -> bool {
        self.shared.hub.set_interceptor(interceptor)
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
            Some(status) = published => return Ok(status),
            _ = closed_rx.wait_for(|closed| *closed) => {}
        }
        let status = *shared.status.borrow();
        match status {
            Some(status) => Ok(status),
            // Its runtime shut down mid-watch: nothing is left to order the exit after, so
            // this task reaps.
            None if shared.watcher_lost.load(Ordering::SeqCst) => {
                shared.reap().await.map_err(wait_error)
            }
            None => Err(wait_error(std::io::Error::other(
                "the task watching the child ended without an exit status",
            ))),
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
