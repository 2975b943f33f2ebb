//! The parent's side of a child's IPC channel: the task that turns frames into events, and
//! stops reading while the event streams are full (receive backpressure, see
//! [`crate::backlog`] and docs/ipc.md).

use std::sync::Arc;
use std::task::Poll;

use tokio_util::sync::CancellationToken;

use childproc_ipc::{AnyCodec, Channel, HangupProbe, Incoming, Received, Sender};

use crate::backlog::Limits;
use crate::child::Shared;
use crate::error::Error;
use crate::events::{Event, ReceivedHandle};
use crate::unfinished::Unfinished;

/// The parent's side of a child's IPC channel.
pub(crate) struct Ipc {
    pub(crate) sender: Sender<AnyCodec>,
    /// Cancelled by `disconnect()`: the reader stops and closes the socket.
    pub(crate) stop: CancellationToken,
    /// The channel runs over the child's stdin and stdout: no handle can cross it.
    pub(crate) over_stdio: bool,
}

/// What the watcher task holds of the IPC reader, for the order of `Disconnect` before
/// `Exit` and `Close`.
pub(crate) struct IpcDone {
    /// Cancelled when the reader has emitted `Disconnect`.
    done: CancellationToken,
    /// Tells whether the child's end of the channel is closed.
    probe: Option<HangupProbe>,
}

/// How many scheduler turns the watcher gives a momentary extra holder of an exited IPC
/// child's socket end before deciding a grandchild holds it (see
/// [`IpcDone::delivered_before_exit`]).
const HANGUP_TURNS: usize = 16;

impl IpcDone {
    /// The child has exited; if its end of the channel went with it (no grandchild holds
    /// it), what it sent is all readable now: waits until the reader delivered it and
    /// `Disconnect`, so they come before `Exit`, as in Node.
    pub(super) async fn delivered_before_exit(&self) {
        let Some(probe) = &self.probe else {
            return;
        };
        // Another thread's child, between its creation and its fd cleanup, can hold a copy
        // of the child's end for a moment: give it a few turns of the scheduler to let go.
        for _ in 0..HANGUP_TURNS {
            if probe.peer_closed() || self.done.is_cancelled() {
                break;
            }
            tokio::task::yield_now().await;
        }
        if probe.peer_closed() {
            self.done.cancelled().await;
        }
    }

    /// Waits until the reader has emitted `Disconnect` (which comes before `Close`).
    pub(super) async fn disconnected(&self) {
        self.done.cancelled().await;
    }
}

/// Starts the task that turns the channel's frames into `Message` events, then one
/// `Disconnect`; failed unawaited sends become `Error` events.
///
/// While a stream (or the history before the first one) is at the high-water mark of
/// `limits`, the task does not read the socket, so the child's sends wait — except while our
/// own sends wait for the child ([`Sender::is_stalled`]): the child may be waiting for us to
/// read before it reads again (an echo server), and pausing would leave both waiting. Once the child
/// has exited with its end of the channel closed, what it left in the socket (at most the
/// socket's buffer) is all that can come, and the task reads it without waiting: `Exit` and
/// `Close` wait for `Disconnect`, and so never for a reader nobody serves.
pub(crate) fn start_ipc(
    shared: &Arc<Shared>,
    mut channel: Channel<AnyCodec>,
    limits: Limits,
) -> (Ipc, IpcDone) {
    shared.hub.set_limits(limits);
    let sender = channel.sender();
    let weak = Arc::downgrade(shared);
    sender.set_error_hook(move |e| {
        if let Some(shared) = weak.upgrade() {
            shared.hub.emit(Event::Error(Arc::new(Error::Ipc(e))));
        }
    });
    let probe = channel.hangup_probe();
    let watch_probe = channel.hangup_probe();
    let task_sender = sender.clone();
    let (stop, done) = (CancellationToken::new(), CancellationToken::new());
    let (task_stop, task_done, shared) = (stop.clone(), done.clone(), shared.clone());
    // Made before the task, so a task dropped before it ever ran counts as lost too.
    // Nobody reads the child's messages any more: the channel is closed as by `disconnect()`
    // (the child reads its end; `connected()` is false, later sends fail), and what waits
    // for the reader's end stops waiting.
    let lost = {
        let (sender, done) = (task_sender.clone(), task_done.clone());
        Unfinished::new(move || {
            sender.close();
            done.cancel();
        })
    };
    tokio::spawn(async move {
        let sender = task_sender;
        // One stop future for the whole loop, not one per message.
        let stopped = task_stop.cancelled_owned();
        tokio::pin!(stopped);
        // The child's exit was seen while waiting for room; `unbounded` once its end of the
        // channel was closed too.
        let (mut exit_seen, mut unbounded) = (false, false);
        // Held while the interceptor takes the messages already read: what it sends in
        // answer goes out together once the socket has no more for now.
        let mut cork = None;
        // The interceptor had the turn it asked for since the last message it took.
        let mut turned = false;
        // The channel opens the envelopes the interceptor asked for (once there is one).
        let mut opening = false;
        loop {
            if !opening && shared.hub.intercepts() {
                channel.open_envelopes(shared.hub.intercept_envelopes());
                opening = true;
            }
            let next = std::future::poll_fn(|cx| {
                let next = channel.poll_recv_opened(cx);
                if next.is_pending() {
                    // The messages it took wake tasks that may send (a pool's callers queue
                    // their next tasks): let them run, then the interceptor, before the
                    // cork goes.
                    if cork.is_some() && !turned && shared.hub.intercept_drained() {
                        return Poll::Ready(Read::Turn);
                    }
                    cork = None;
                }
                next.map(Read::Next)
            });
            let event = tokio::select! {
                biased;
                () = &mut stopped => break,
                next = next => match next {
                    Read::Turn => {
                        turned = true;
                        behind_the_woken().await;
                        shared.hub.intercept_after_turn();
                        continue;
                    }
                    Read::Next(Some(Ok(Received::Whole(Incoming {
                        message,
                        handle: Some(handle),
                        ..
                    })))) => {
                        Event::MessageWithHandle(message, ReceivedHandle::new(handle))
                    }
                    Read::Next(Some(Ok(received))) => {
                        if cork.is_none() && shared.hub.intercepts() {
                            cork = Some(sender.cork());
                        }
                        turned = false;
                        let message = match received {
                            Received::Opened { id, key, value } => {
                                shared.hub.intercept_opened(id, key, value)
                            }
                            Received::Whole(incoming) => shared.hub.intercept(incoming.message),
                        };
                        match message {
                            Some(message) => Event::Message(message),
                            None => continue, // taken: nothing to emit or to wait for
                        }
                    }
                    Read::Next(Some(Err(e))) => {
                        shared.hub.emit(Event::Error(Arc::new(Error::Ipc(e))));
                        break;
                    }
                    Read::Next(None) => break,
                },
            };
            if !shared.hub.emit_message(event) || unbounded {
                continue;
            }
            cork = None; // nothing waits behind it while the reader waits for room
            let exited = async {
                if exit_seen {
                    std::future::pending::<()>().await;
                }
                child_exited(&shared).await;
            };
            tokio::select! {
                biased;
                () = &mut stopped => break,
                () = shared.hub.wait_for_room() => {}
                // Our own sends wait for the child to read, and it may wait for us to read
                // first: read on, or both would wait forever.
                () = sender.stalled() => {}
                () = exited => {
                    exit_seen = true;
                    // A grandchild that still holds the channel may send on: keep the bound.
                    unbounded = probe.as_ref().is_none_or(HangupProbe::peer_closed);
                }
            }
        }
        drop(cork);
        lost.finish();
        channel.disconnect();
        shared.hub.emit(Event::Disconnect);
        task_done.cancel();
    });
    (
        Ipc {
            sender,
            stop,
            over_stdio: false,
        },
        IpcDone {
            done,
            probe: watch_probe,
        },
    )
}

/// Lets the tasks this one woke run first: it wakes itself and is pending once, which puts
/// it behind them in the runtime's queue (tokio runs a task that woke itself while it was
/// polled after the tasks already queued). Unlike `yield_now` it does not wait for the
/// runtime to poll its I/O driver first: no `epoll_wait` for each turn.
async fn behind_the_woken() {
    let mut woke = false;
    std::future::poll_fn(|cx| {
        if woke {
            return Poll::Ready(());
        }
        woke = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}

/// What the reader's poll of the channel found.
enum Read<T> {
    Next(Option<T>),
    /// Nothing for now, and the interceptor asked for a turn first.
    Turn,
}

/// Resolves once the child has exited (without reaping it), or once that cannot be told.
async fn child_exited(shared: &Shared) {
    let process = &shared.process;
    // An error (the child was reaped already) counts as an exit.
    let _ = process
        .wait_until(|| Ok(process.has_exited().unwrap_or(true).then_some(())))
        .await;
}
