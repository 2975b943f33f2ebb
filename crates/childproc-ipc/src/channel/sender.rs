//! The sending side of a [`Channel`](super::Channel): one queue of encoded frames, written
//! straight from the sender's call when the socket takes them, else by a writer task.
//!
//! Why not always hand frames to the writer task: a round trip would then cost two task
//! wake-ups (to the writer and back to the awaiting sender) plus a channel allocation per
//! message, which on a current-thread runtime also means an extra `epoll_wait` each time.
//! Why not always write straight away: a burst of `send_nowait`s would be one `write` per
//! message, where queueing them gives one `write` per burst. So:
//!
//! - an awaited [`Sender::send`] writes the whole queue itself unless the writer task is
//!   already waiting for the socket to drain; when everything went out it resolves at once;
//! - a [`Sender::send_nowait`] writes straight away only as the first of a burst: it then
//!   wakes the writer task, and until that task has run, further `send_nowait`s just queue
//!   (the task writes them out together);
//! - whatever the socket does not take is written by the writer task as the socket drains.
//!
//! Frames are encoded into the queue under one lock, so they never interleave and are written
//! in the order of the calls; there is no allocation per message.
//!
//! Handles (Node's `send(message, sendHandle)`): the fd waits beside the queue with the
//! position of its frame's first byte. Writes stop short of that position, and the write that
//! starts the frame is a `sendmsg` carrying the fd; if the socket takes only part of the frame,
//! the rest goes out as plain bytes. Then, as Node does, every later send is held back (in
//! `held`) until the peer answers `NODE_HANDLE_ACK` or `NACK`, except those answers
//! themselves. Plain messages on a channel that never sent a handle take the same path as
//! before: one empty-queue check more per write.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::sync::oneshot;
use tokio_util::codec::Encoder;

use crate::error::IpcError;
use crate::handle::Handle;
use crate::message::IntoMessage;
use crate::typed::TypedCodec;
use crate::value::Value;

mod queue;
mod shared;
mod writer;

use queue::{copy_io_error, Failures, Flushed, Kind, Pending, Submitted, TxState};
pub(super) use shared::TxShared;

/// Node's backpressure threshold: `send` returns `false` once this many bytes are queued.
pub const BACKLOG_LIMIT: usize = 128 * 1024;

/// The sending side of a [`Channel`](super::Channel); cheap to clone. It is also the
/// channel's handle for [`ref_`](Self::ref_) / [`unref`](Self::unref) (Node's
/// `channel.ref()` / `channel.unref()`).
pub struct Sender<C> {
    pub(super) shared: Arc<TxShared<C>>,
}

impl<C> Clone for Sender<C> {
    fn clone(&self) -> Self {
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<C> Sender<C>
where
    C: Encoder<Value, Error = IpcError>,
{
    /// Whether the channel is open for sending (Node's `connected`).
    pub fn connected(&self) -> bool {
        self.shared.is_open()
    }

    /// Bytes queued but not yet written.
    pub fn backlog(&self) -> usize {
        let st = self.shared.lock();
        st.queue.len() + st.held.len()
    }

    /// Encodes `value` into the queue and writes what it may (see the module docs).
    fn submit(&self, value: Value, awaited: bool, kind: Kind) -> Result<Submitted, IpcError> {
        self.submit_with(|codec, dst| codec.encode(value, dst), awaited, kind)
    }

    /// [`submit`](Self::submit) with the frame encoded by `encode` (which leaves `dst` as it
    /// was when it fails).
    fn submit_with(
        &self,
        encode: impl FnOnce(&mut C, &mut BytesMut) -> Result<(), IpcError>,
        awaited: bool,
        kind: Kind,
    ) -> Result<Submitted, IpcError> {
        let shared = &*self.shared;
        let mut st = shared.lock();
        if !shared.is_open() || st.write.is_none() || st.closing {
            return Err(IpcError::Closed);
        }
        if st.awaiting_answer && !matches!(kind, Kind::Answer) {
            let held = st.hold(encode, awaited, kind);
            drop(st);
            shared.stall.notify_waiters();
            return held;
        }
        let before = st.queue.len();
        let TxState { codec, queue, .. } = &mut *st;
        encode(codec, queue)?; // a failed encode leaves the queue as it was
        let start = st.queued;
        st.queued += (st.queue.len() - before) as u64;
        let end = st.queued;
        if let Kind::Handle(fd) = kind {
            st.fds.push_back((start, fd));
            st.awaiting_answer = true;
        }
        let (mut wake, mut stalled) = (false, false);
        if !st.flushing && st.corked == 0 && (awaited || !st.burst) {
            match st.flush() {
                Flushed::All if !awaited => {
                    st.burst = true;
                    wake = true;
                }
                Flushed::All => {}
                Flushed::Blocked => {
                    st.flushing = true;
                    wake = true;
                    stalled = true;
                }
                Flushed::Failed(failures) => {
                    drop(st);
                    let error = copy_io_error(&failures.error);
                    shared.report(failures);
                    return Err(IpcError::Io(error));
                }
            }
        }
        let submitted = if st.written >= end {
            Submitted::Written
        } else {
            let (tx, rx) = if awaited {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            } else {
                (None, None)
            };
            st.pending.push_back(Pending { end, done: tx });
            Submitted::Queued {
                backlog: st.queue.len() + st.held.len(),
                done: rx,
                behind_handle: None,
            }
        };
        drop(st);
        if wake {
            shared.wake.notify_one();
        }
        if stalled {
            shared.stall.notify_waiters();
        }
        Ok(submitted)
    }

    /// Sends `value`; resolves once it is written to the socket (Node's `send` callback).
    /// Fails with [`IpcError::Closed`] on a closed channel, or the write's error.
    pub async fn send(&self, value: Value) -> Result<(), IpcError> {
        self.send_kind(value, Kind::Plain).await
    }

    /// Sends `message` with `handle` (Node's `send(message, sendHandle)`): one
    /// `NODE_HANDLE` frame in the channel's serialization, the handle's fd going with its
    /// first bytes. Resolves once the frame is written (Node's callback; the peer's
    /// acknowledgement is not awaited). Our copy of the fd is closed once it is written (see
    /// [`Handle`]). Until the peer answers, later sends on this channel are held back, as
    /// Node holds them: the channel must be read for the answer to arrive (a `ChildProcess`
    /// always reads its channel). Fails like [`send`](Self::send); a handle that was not
    /// written is closed.
    pub async fn send_handle(
        &self,
        message: Value,
        handle: impl Into<Handle>,
    ) -> Result<(), IpcError> {
        let handle = handle.into();
        let frame = handle.wrap(message);
        self.send_kind(frame, Kind::Handle(handle.into_fd())).await
    }

    /// Queues an answer to the peer's handle, ahead of anything held back.
    pub(super) fn answer(&self, value: Value) {
        if let Err(IpcError::Io(e)) = self.submit(value, false, Kind::Answer) {
            self.shared.report(Failures {
                error: e,
                unawaited: 1,
            });
        }
    }

    async fn send_kind(&self, value: Value, kind: Kind) -> Result<(), IpcError> {
        let submitted = self.submit(value, true, kind)?;
        Self::settled(submitted).await
    }

    /// Waits for a submitted frame to be written.
    async fn settled(submitted: Submitted) -> Result<(), IpcError> {
        match submitted {
            Submitted::Written | Submitted::Queued { done: None, .. } => Ok(()),
            Submitted::Queued {
                done: Some(done), ..
            } => done.await.unwrap_or(Err(IpcError::Closed)),
        }
    }

    /// Queues `value` without waiting: Node's `send()` return value. `Ok(false)` when the
    /// channel is closed (nothing queued) or the backlog passed [`BACKLOG_LIMIT`] (queued
    /// anyway), or when writing it failed at once; while a sent handle waits for the peer's
    /// answer, `Ok(true)` for the first message held behind it and `Ok(false)` for the ones
    /// after (queued anyway), as Node's `send()` answers from its handle queue. `Err` only when the value cannot be encoded
    /// (Node throws there). A failed write, at once or later, is kept for
    /// [`take_error`](Self::take_error), or goes to the [error hook](Self::set_error_hook).
    pub fn send_nowait(&self, value: Value) -> Result<bool, IpcError> {
        self.nowait(self.submit(value, false, Kind::Plain))
    }

    /// `send_nowait`'s answer for a submitted frame.
    fn nowait(&self, submitted: Result<Submitted, IpcError>) -> Result<bool, IpcError> {
        match submitted {
            Ok(Submitted::Written) => Ok(true),
            // Behind a handle's answer, as Node's `send()`: true for the first message held,
            // false for the ones after it (they wait in its queue).
            Ok(Submitted::Queued {
                behind_handle: Some(held),
                ..
            }) => Ok(held == 1),
            Ok(Submitted::Queued { backlog, .. }) => Ok(backlog < BACKLOG_LIMIT),
            Err(IpcError::Closed) => Ok(false),
            Err(IpcError::Io(e)) => {
                self.shared.report(Failures {
                    error: e,
                    unawaited: 1,
                });
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// [`send`](Self::send) of a value that stays the caller's: it is encoded where it is,
    /// so the same value can go to many channels, or be sent again, without a clone.
    pub async fn send_ref(&self, value: &Value) -> Result<(), IpcError>
    where
        C: for<'v> Encoder<&'v Value, Error = IpcError>,
    {
        let submitted =
            self.submit_with(|codec, dst| codec.encode(value, dst), true, Kind::Plain)?;
        Self::settled(submitted).await
    }

    /// [`send_nowait`](Self::send_nowait) of a value that stays the caller's (see
    /// [`send_ref`](Self::send_ref)); the same answers.
    pub fn send_ref_nowait(&self, value: &Value) -> Result<bool, IpcError>
    where
        C: for<'v> Encoder<&'v Value, Error = IpcError>,
    {
        self.nowait(self.submit_with(|codec, dst| codec.encode(value, dst), false, Kind::Plain))
    }

    /// Routes the failures of `send_nowait` writes (which nobody awaits) to `hook` instead of
    /// keeping them for [`take_error`](Self::take_error): Node's `'error'` event.
    pub fn set_error_hook(&self, hook: impl Fn(IpcError) + Send + Sync + 'static) {
        *self.shared.hook.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(hook));
    }

    /// The error of a `send_nowait` whose write failed, if any (taken once).
    pub fn take_error(&self) -> Option<IpcError> {
        self.shared
            .error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Stops accepting sends; what is queued is still written, then the write side closes.
    pub fn close(&self) {
        self.shared.shut();
        let mut st = self.shared.lock();
        if st.closing {
            return;
        }
        st.closing = true;
        // Nothing is held back any more: Node postpones its disconnect until the answer
        // came, we write what waits now (the peer reads it all the same).
        st.release(true);
        if st.queue.is_empty() {
            st.shut_write();
        } else {
            drop(st);
            self.shared.wake.notify_one();
        }
    }
}

impl<C> Sender<C>
where
    C: Encoder<Value, Error = IpcError> + TypedCodec,
{
    /// Sends any message [`send`](Self::send) takes or a typed one in
    /// [`Json`](crate::Json): a typed message goes straight to the wire bytes where the
    /// codec allows ([`TypedCodec`]: JSON and MessagePack; the same bytes as through a
    /// `Value`), with no `Value` built in between.
    pub async fn send_message(&self, message: impl IntoMessage) -> Result<(), IpcError> {
        let submitted = self.submit_with(
            |codec, dst| message.encode_with(codec, dst),
            true,
            Kind::Plain,
        )?;
        Self::settled(submitted).await
    }

    /// [`send_nowait`](Self::send_nowait) for any message, typed ones encoded straight to the
    /// wire as in [`send_message`](Self::send_message).
    pub fn send_message_nowait(&self, message: impl IntoMessage) -> Result<bool, IpcError> {
        self.nowait(self.submit_with(
            |codec, dst| message.encode_with(codec, dst),
            false,
            Kind::Plain,
        ))
    }
}

impl<C> Sender<C> {
    /// Holds writes back until the returned [`Cork`] is dropped, as Node's
    /// `writable.cork()`: sends made meanwhile (from any clone) only queue, and then go out
    /// together, in one `write` where the socket takes them. For a burst of sends made in
    /// one go, such as answers to several messages read at once: one wake-up of the peer
    /// instead of one per message. An awaited [`send`](Self::send) resolves once its frame
    /// is written, so it waits for the cork to go; corks nest.
    pub fn cork(&self) -> Cork<C> {
        self.shared.lock().corked += 1;
        Cork {
            shared: self.shared.clone(),
        }
    }

    /// Node's `channel.ref()`: the channel counts again for
    /// [`wait_referenced`](super::wait_referenced) while it is open.
    pub fn ref_(&self) {
        self.shared.set_referenced(true);
    }

    /// Node's `channel.unref()`: [`wait_referenced`](super::wait_referenced) no longer waits
    /// for this channel. Messages still flow both ways.
    pub fn unref(&self) {
        self.shared.set_referenced(false);
    }

    /// Whether the channel counts for [`wait_referenced`](super::wait_referenced): it is
    /// open and not unref'd.
    pub fn is_referenced(&self) -> bool {
        self.shared.is_referenced()
    }

    /// Whether sends wait for the peer: the socket would not take the queued bytes (the peer
    /// does not read), or frames are held until the peer answers a handle (it must be read
    /// for that). A reader that stops reading its channel to push back on the peer must not
    /// stop while this holds, or both sides may wait for each other.
    pub fn is_stalled(&self) -> bool {
        let st = self.shared.lock();
        st.write.is_some() && (st.flushing || !st.held_frames.is_empty())
    }

    /// Resolves once [`is_stalled`](Self::is_stalled) holds (at once if it does).
    pub async fn stalled(&self) {
        loop {
            let notified = self.shared.stall.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_stalled() {
                return;
            }
            notified.await;
        }
    }
}

/// Writes held back by [`Sender::cork`]; dropping it writes them (once no other cork is
/// open). A write the socket does not take at once is finished by the writer task.
#[must_use = "the writes are held back only while the Cork lives"]
pub struct Cork<C> {
    shared: Arc<TxShared<C>>,
}

impl<C> Drop for Cork<C> {
    fn drop(&mut self) {
        let shared = &*self.shared;
        let mut st = shared.lock();
        st.corked = st.corked.saturating_sub(1);
        if st.corked > 0 || st.flushing || st.queue.is_empty() {
            return;
        }
        match st.flush() {
            Flushed::All => {}
            Flushed::Blocked => {
                st.flushing = true;
                drop(st);
                shared.wake.notify_one();
                shared.stall.notify_waiters();
            }
            Flushed::Failed(failures) => {
                drop(st);
                shared.report(failures);
            }
        }
    }
}

impl<C> std::fmt::Debug for Cork<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cork")
    }
}
