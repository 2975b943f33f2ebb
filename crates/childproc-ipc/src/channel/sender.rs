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

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::{Buf, BytesMut};
use tokio::sync::{oneshot, Notify};
use tokio_util::codec::Encoder;

use super::refs;
use super::socket::{RoomWait, Socket};
use crate::error::IpcError;
use crate::handle::Handle;
use crate::value::Value;

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

/// What a channel's senders, its reader and its writer task share.
pub(super) struct TxShared<C> {
    state: Mutex<TxState<C>>,
    /// Whether the channel is open: cleared by `close`, a failed write, or the reader
    /// seeing the end of the stream. Changed only under `referenced`'s lock.
    open: AtomicBool,
    /// Whether the channel counts for [`wait_referenced`](super::wait_referenced) while open.
    referenced: Mutex<bool>,
    /// Wakes the writer task.
    wake: Arc<Notify>,
    /// A failure of a `send_nowait` write, kept for [`Sender::take_error`].
    error: Mutex<Option<IpcError>>,
    /// If set, receives those failures instead.
    hook: Mutex<Option<ErrorHook>>,
    /// Woken (all waiters) when sends start to wait for the peer: see [`Sender::stalled`].
    stall: Notify,
}

type ErrorHook = Box<dyn Fn(IpcError) + Send + Sync>;

struct TxState<C> {
    codec: C,
    /// The socket, to write to; `None` once the write side is shut down (the peer reads
    /// EOF) or failed.
    write: Option<Arc<Socket>>,
    /// Encoded frames not yet written, oldest first.
    queue: BytesMut,
    /// Bytes written, and bytes queued, since the channel opened (positions in the stream).
    written: u64,
    queued: u64,
    /// Frames still (partly) in `queue`: where each ends, and the sender awaiting it if any.
    pending: VecDeque<Pending>,
    /// The writer task waits for the socket to drain: nobody else writes meanwhile.
    flushing: bool,
    /// A `send_nowait` wrote straight away and woke the writer task; until the task has run,
    /// further `send_nowait`s only queue.
    burst: bool,
    /// `close()` was called: drop `write` once `queue` is empty.
    closing: bool,
    /// Fds to send with the frame that starts at each stream position, oldest first.
    fds: VecDeque<(u64, OwnedFd)>,
    /// A `NODE_HANDLE` frame was queued and its answer has not come: later frames wait in
    /// `held`.
    awaiting_answer: bool,
    /// Frames sent while awaiting an answer, encoded, oldest first; `held_frames` says
    /// where each ends and what goes with it.
    held: BytesMut,
    held_frames: VecDeque<Held>,
}

/// A frame held back until the peer answers a handle.
struct Held {
    len: usize,
    fd: Option<OwnedFd>,
    done: Option<oneshot::Sender<Result<(), IpcError>>>,
}

/// How a frame goes out.
pub(super) enum Kind {
    /// A user message.
    Plain,
    /// A `NODE_HANDLE` frame with its fd: later frames wait for the answer.
    Handle(OwnedFd),
    /// An answer to the peer's handle (`NODE_HANDLE_ACK`/`NACK`): never held back.
    Answer,
}

struct Pending {
    end: u64,
    done: Option<oneshot::Sender<Result<(), IpcError>>>,
}

/// How a frame fared when it was submitted.
enum Submitted {
    /// Written to the socket already.
    Written,
    /// Queued: `backlog` bytes wait to be written; `done` resolves when this frame is.
    /// `behind_handle`: held back until the peer answers a handle, with how many frames are
    /// held with it (this one included).
    Queued {
        backlog: usize,
        done: Option<oneshot::Receiver<Result<(), IpcError>>>,
        behind_handle: Option<usize>,
    },
}

/// What a write attempt left behind.
enum Flushed {
    /// The queue is empty.
    All,
    /// The socket would block with bytes still queued.
    Blocked,
    /// The write failed: every pending frame is failed and the channel closed.
    Failed(Failures),
}

/// The unawaited frames a failed write took down, to report outside the lock.
struct Failures {
    error: io::Error,
    unawaited: usize,
}

impl<C> TxState<C> {
    /// Writes as much of the queue as the socket takes, then settles the frames that are
    /// now fully written.
    fn flush(&mut self) -> Flushed {
        let mut blocked = false;
        let mut failed = None;
        if let Some(write) = &self.write {
            while !self.queue.is_empty() {
                let written = self.written;
                let result = match self.fds.front() {
                    None => write.try_write(&self.queue),
                    // Stop short of the frame that carries an fd.
                    Some((start, _)) if *start > written => {
                        write.try_write(&self.queue[..(start - written) as usize])
                    }
                    Some((_, fd)) => {
                        // The frame's first bytes with the fd, up to the next fd's frame.
                        let end = self
                            .fds
                            .get(1)
                            .map_or(self.queue.len(), |(next, _)| (next - written) as usize);
                        let sent = write.try_write_with_fd(&self.queue[..end], fd.as_fd());
                        if matches!(sent, Ok(n) if n > 0) {
                            self.fds.pop_front(); // it went: close our copy
                        }
                        sent
                    }
                };
                match result {
                    Ok(0) => {
                        failed = Some(io::Error::from(io::ErrorKind::WriteZero));
                        break;
                    }
                    Ok(n) => {
                        self.queue.advance(n);
                        self.written += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        blocked = true;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
        }
        if let Some(e) = failed {
            return Flushed::Failed(self.fail(e));
        }
        while self.pending.front().is_some_and(|p| p.end <= self.written) {
            if let Some(Pending {
                done: Some(done), ..
            }) = self.pending.pop_front()
            {
                let _ = done.send(Ok(()));
            }
        }
        if blocked {
            Flushed::Blocked
        } else {
            // Nothing left: the next frames start at the front of the buffer again.
            self.queue.clear();
            Flushed::All
        }
    }

    /// Shuts the write side down once everything is written: the peer reads EOF.
    fn shut_write(&mut self) {
        if let Some(socket) = self.write.take() {
            socket.shutdown_write();
        }
    }

    /// Fails every frame not yet written with `error` and closes the write side.
    fn fail(&mut self, error: io::Error) -> Failures {
        self.write = None;
        self.queue.clear();
        self.fds.clear();
        self.flushing = false;
        self.release(true);
        self.queue.clear();
        self.fds.clear();
        let mut unawaited = 0;
        for pending in self.pending.drain(..) {
            match pending.done {
                Some(done) => drop(done.send(Err(IpcError::Io(copy_io_error(&error))))),
                None => unawaited += 1,
            }
        }
        Failures { error, unawaited }
    }

    /// Moves held frames to the queue: up to and including the next one with a handle
    /// (which is awaited in turn), or all of them if `all`. Whether any moved.
    fn release(&mut self, all: bool) -> bool {
        self.awaiting_answer = false;
        let moved = !self.held_frames.is_empty();
        while let Some(frame) = self.held_frames.pop_front() {
            let start = self.queued;
            let bytes = self.held.split_to(frame.len);
            self.queue.extend_from_slice(&bytes);
            self.queued += frame.len as u64;
            self.pending.push_back(Pending {
                end: self.queued,
                done: frame.done,
            });
            if let Some(fd) = frame.fd {
                self.fds.push_back((start, fd));
                if !all {
                    self.awaiting_answer = true;
                    break;
                }
            }
        }
        if self.held_frames.is_empty() {
            self.held.clear(); // the next held frames start at the front again
        }
        moved
    }
}

impl<C: Encoder<Value, Error = IpcError>> TxState<C> {
    /// Encodes a frame into `held`, to go out once the peer answered the handle before it.
    fn hold(&mut self, value: Value, awaited: bool, kind: Kind) -> Result<Submitted, IpcError> {
        let before = self.held.len();
        let TxState { codec, held, .. } = self;
        codec.encode(value, held)?; // a failed encode leaves `held` as it was
        let (tx, rx) = if awaited {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        self.held_frames.push_back(Held {
            len: self.held.len() - before,
            fd: match kind {
                Kind::Handle(fd) => Some(fd),
                Kind::Plain | Kind::Answer => None,
            },
            done: tx,
        });
        Ok(Submitted::Queued {
            backlog: self.queue.len() + self.held.len(),
            done: rx,
            behind_handle: Some(self.held_frames.len()),
        })
    }
}

/// The same error again (`io::Error` is not `Clone`): its kind and message.
fn copy_io_error(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}

impl<C> TxShared<C> {
    pub(super) fn new(socket: Arc<Socket>, codec: C) -> Arc<Self> {
        refs::add();
        Arc::new(TxShared {
            state: Mutex::new(TxState {
                codec,
                write: Some(socket),
                queue: BytesMut::new(),
                written: 0,
                queued: 0,
                pending: VecDeque::new(),
                flushing: false,
                burst: false,
                closing: false,
                fds: VecDeque::new(),
                awaiting_answer: false,
                held: BytesMut::new(),
                held_frames: VecDeque::new(),
            }),
            open: AtomicBool::new(true),
            referenced: Mutex::new(true),
            wake: Arc::new(Notify::new()),
            error: Mutex::new(None),
            hook: Mutex::new(None),
            stall: Notify::new(),
        })
    }

    /// Starts the writer task. Must be called inside a tokio runtime.
    pub(super) fn start_writer(self: &Arc<Self>)
    where
        C: Send + 'static,
    {
        tokio::spawn(write_loop(Arc::downgrade(self), self.wake.clone()));
    }

    fn lock(&self) -> MutexGuard<'_, TxState<C>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }

    /// Marks the channel closed (no more sends; it stops counting for `wait_referenced`).
    pub(super) fn shut(&self) {
        let referenced = self.referenced.lock().unwrap_or_else(|e| e.into_inner());
        if self.open.swap(false, Ordering::SeqCst) && *referenced {
            refs::remove();
        }
    }

    fn set_referenced(&self, want: bool) {
        let mut referenced = self.referenced.lock().unwrap_or_else(|e| e.into_inner());
        if *referenced == want {
            return;
        }
        *referenced = want;
        if self.open.load(Ordering::SeqCst) {
            if want {
                refs::add();
            } else {
                refs::remove();
            }
        }
    }

    fn is_referenced(&self) -> bool {
        let referenced = self.referenced.lock().unwrap_or_else(|e| e.into_inner());
        *referenced && self.open.load(Ordering::SeqCst)
    }

    /// The peer answered our handle (`NODE_HANDLE_ACK` or `NACK`): what was held back goes
    /// out, up to the next handle. An answer nobody waits for is ignored.
    pub(super) fn answered(&self) {
        let mut st = self.lock();
        if st.awaiting_answer && st.release(false) {
            drop(st);
            self.wake.notify_one();
        }
    }

    /// The channel ended (EOF or an error from the peer): no answer will come, so what was
    /// held back is written now (or fails with the write's error), and nothing waits forever.
    pub(super) fn release_all(&self) {
        let mut st = self.lock();
        if st.release(true) {
            drop(st);
            self.wake.notify_one();
        }
    }

    /// Hands the failures of unawaited frames to the hook (one call per frame), or keeps
    /// the last one for `take_error`. Called without the state lock.
    fn report(&self, failures: Failures) {
        self.shut();
        for _ in 0..failures.unawaited {
            let e = IpcError::Io(copy_io_error(&failures.error));
            match &*self.hook.lock().unwrap_or_else(|e| e.into_inner()) {
                Some(hook) => hook(e),
                None => *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e),
            }
        }
    }
}

impl<C> Drop for TxShared<C> {
    /// The last handle is gone: the channel stops counting for `wait_referenced`, and the
    /// writer task ends.
    fn drop(&mut self) {
        self.shut();
        self.wake.notify_one();
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
        let shared = &*self.shared;
        let mut st = shared.lock();
        if !shared.is_open() || st.write.is_none() || st.closing {
            return Err(IpcError::Closed);
        }
        if st.awaiting_answer && !matches!(kind, Kind::Answer) {
            let held = st.hold(value, awaited, kind);
            drop(st);
            shared.stall.notify_waiters();
            return held;
        }
        let before = st.queue.len();
        let TxState { codec, queue, .. } = &mut *st;
        codec.encode(value, queue)?; // a failed encode leaves the queue as it was
        let start = st.queued;
        st.queued += (st.queue.len() - before) as u64;
        let end = st.queued;
        if let Kind::Handle(fd) = kind {
            st.fds.push_back((start, fd));
            st.awaiting_answer = true;
        }
        let (mut wake, mut stalled) = (false, false);
        if !st.flushing && (awaited || !st.burst) {
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
        match self.submit(value, true, kind)? {
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
        match self.submit(value, false, Kind::Plain) {
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

impl<C> Sender<C> {
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

/// The writer task: writes what the senders queued but could not write, as the socket
/// drains; ends a `send_nowait` burst; shuts the write side down once a closed channel is
/// flushed. It holds the channel only weakly, so it ends when every handle is gone.
async fn write_loop<C>(shared: Weak<TxShared<C>>, wake: Arc<Notify>) {
    // While the socket is full: the registration that tells when it has room again.
    let mut room: Option<RoomWait> = None;
    loop {
        wake.notified().await;
        loop {
            let socket = match write_step(&shared) {
                Step::Done => break,
                Step::Stop => return,
                Step::Wait(socket) => socket,
            };
            if room.is_none() {
                // The socket just filled: sends now wait for the peer.
                if let Some(tx) = shared.upgrade() {
                    tx.stall.notify_waiters();
                }
                match socket.room_wait() {
                    Ok(wait) => room = Some(wait),
                    Err(e) => {
                        fail_now(&shared, e);
                        return;
                    }
                }
            }
            drop(socket);
            let Some(wait) = &room else { return };
            // Also wake when poked: the last handle may have gone meanwhile.
            tokio::select! {
                ready = wait.ready() => if ready.is_err() { return },
                () = wake.notified() => {}
            }
        }
        room = None;
    }
}

/// What the writer task does next.
enum Step {
    /// The queue is written: wait to be woken.
    Done,
    /// The channel is gone, closed or failed.
    Stop,
    /// The socket is full: wait for room in it, then write again.
    Wait(Arc<Socket>),
}

/// One turn of the writer task: write what the socket takes.
fn write_step<C>(shared: &Weak<TxShared<C>>) -> Step {
    let Some(tx) = shared.upgrade() else {
        return Step::Stop;
    };
    let mut st = tx.lock();
    st.burst = false;
    match st.flush() {
        Flushed::All => {
            st.flushing = false;
            if st.closing {
                st.shut_write();
                return Step::Stop;
            }
            Step::Done
        }
        Flushed::Blocked => {
            st.flushing = true;
            st.write.clone().map_or(Step::Stop, Step::Wait)
        }
        Flushed::Failed(failures) => {
            drop(st);
            tx.report(failures);
            Step::Stop
        }
    }
}

/// Fails the channel from the writer task (no registration for room could be made).
fn fail_now<C>(shared: &Weak<TxShared<C>>, error: io::Error) {
    if let Some(tx) = shared.upgrade() {
        let failures = tx.lock().fail(error);
        tx.report(failures);
    }
}
