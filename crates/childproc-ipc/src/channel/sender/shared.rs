//! What a channel's senders, its reader and its writer task share: the queue under its
//! lock, whether the channel is open and referenced, and where send failures go.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::BytesMut;
use tokio::sync::Notify;

use super::super::refs;
use super::super::socket::Socket;
use super::queue::{copy_io_error, Failures, TxState};
use super::writer::write_loop;
use crate::error::IpcError;

/// What a channel's senders, its reader and its writer task share.
pub(crate) struct TxShared<C> {
    pub(super) state: Mutex<TxState<C>>,
    /// Whether the channel is open: cleared by `close`, a failed write, or the reader
    /// seeing the end of the stream. Changed only under `referenced`'s lock.
    pub(super) open: AtomicBool,
    /// Whether the channel counts for [`wait_referenced`](super::wait_referenced) while open.
    pub(super) referenced: Mutex<bool>,
    /// Wakes the writer task.
    pub(super) wake: Arc<Notify>,
    /// A failure of a `send_nowait` write, kept for [`Sender::take_error`].
    pub(super) error: Mutex<Option<IpcError>>,
    /// If set, receives those failures instead.
    pub(super) hook: Mutex<Option<ErrorHook>>,
    /// Woken (all waiters) when sends start to wait for the peer: see [`Sender::stalled`].
    pub(super) stall: Notify,
}

pub(super) type ErrorHook = Box<dyn Fn(IpcError) + Send + Sync>;

impl<C> TxShared<C> {
    pub(crate) fn new(socket: Arc<Socket>, codec: C) -> Arc<Self> {
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
                corked: 0,
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
    pub(crate) fn start_writer(self: &Arc<Self>)
    where
        C: Send + 'static,
    {
        tokio::spawn(write_loop(Arc::downgrade(self), self.wake.clone()));
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, TxState<C>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }

    /// Marks the channel closed (no more sends; it stops counting for `wait_referenced`).
    pub(crate) fn shut(&self) {
        let referenced = self.referenced.lock().unwrap_or_else(|e| e.into_inner());
        if self.open.swap(false, Ordering::SeqCst) && *referenced {
            refs::remove();
        }
    }

    pub(super) fn set_referenced(&self, want: bool) {
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

    pub(super) fn is_referenced(&self) -> bool {
        let referenced = self.referenced.lock().unwrap_or_else(|e| e.into_inner());
        *referenced && self.open.load(Ordering::SeqCst)
    }

    /// The peer answered our handle (`NODE_HANDLE_ACK` or `NACK`): what was held back goes
    /// out, up to the next handle. An answer nobody waits for is ignored.
    pub(crate) fn answered(&self) {
        let mut st = self.lock();
        if st.awaiting_answer && st.release(false) {
            drop(st);
            self.wake.notify_one();
        }
    }

    /// The channel ended (EOF or an error from the peer): no answer will come, so what was
    /// held back is written now (or fails with the write's error), and nothing waits forever.
    pub(crate) fn release_all(&self) {
        let mut st = self.lock();
        if st.release(true) {
            drop(st);
            self.wake.notify_one();
        }
    }

    /// Hands the failures of unawaited frames to the hook (one call per frame), or keeps
    /// the last one for `take_error`. Called without the state lock.
    pub(super) fn report(&self, failures: Failures) {
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
