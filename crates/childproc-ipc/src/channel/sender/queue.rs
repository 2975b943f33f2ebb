//! The queue of a channel's sending side: encoded frames, the fds waiting beside them, the
//! frames held back until the peer answers a handle, and what a write leaves behind.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tokio::sync::oneshot;

use super::super::socket::Socket;
use crate::error::IpcError;

pub(super) struct TxState<C> {
    pub(super) codec: C,
    /// The socket, to write to; `None` once the write side is shut down (the peer reads
    /// EOF) or failed.
    pub(super) write: Option<Arc<Socket>>,
    /// Encoded frames not yet written, oldest first.
    pub(super) queue: BytesMut,
    /// Bytes written, and bytes queued, since the channel opened (positions in the stream).
    pub(super) written: u64,
    pub(super) queued: u64,
    /// Frames still (partly) in `queue`: where each ends, and the sender awaiting it if any.
    pub(super) pending: VecDeque<Pending>,
    /// The writer task waits for the socket to drain: nobody else writes meanwhile.
    pub(super) flushing: bool,
    /// A `send_nowait` wrote straight away and woke the writer task; until the task has run,
    /// further `send_nowait`s only queue.
    pub(super) burst: bool,
    /// Open [`Cork`](super::Cork)s: while any is, sends only queue.
    pub(super) corked: usize,
    /// `close()` was called: drop `write` once `queue` is empty.
    pub(super) closing: bool,
    /// Fds to send with the frame that starts at each stream position, oldest first.
    pub(super) fds: VecDeque<(u64, OwnedFd)>,
    /// A `NODE_HANDLE` frame was queued and its answer has not come: later frames wait in
    /// `held`.
    pub(super) awaiting_answer: bool,
    /// Frames sent while awaiting an answer, encoded, oldest first; `held_frames` says
    /// where each ends and what goes with it.
    pub(super) held: BytesMut,
    pub(super) held_frames: VecDeque<Held>,
}

/// A frame held back until the peer answers a handle.
pub(super) struct Held {
    pub(super) len: usize,
    pub(super) fd: Option<OwnedFd>,
    pub(super) done: Option<oneshot::Sender<Result<(), IpcError>>>,
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

pub(super) struct Pending {
    pub(super) end: u64,
    pub(super) done: Option<oneshot::Sender<Result<(), IpcError>>>,
}

/// How a frame fared when it was submitted.
pub(super) enum Submitted {
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
pub(super) enum Flushed {
    /// The queue is empty.
    All,
    /// The socket would block with bytes still queued.
    Blocked,
    /// The write failed: every pending frame is failed and the channel closed.
    Failed(Failures),
}

/// The unawaited frames a failed write took down, to report outside the lock.
pub(super) struct Failures {
    pub(super) error: io::Error,
    pub(super) unawaited: usize,
}

impl<C> TxState<C> {
    /// Writes as much of the queue as the socket takes, then settles the frames that are
    /// now fully written.
    pub(super) fn flush(&mut self) -> Flushed {
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
    pub(super) fn shut_write(&mut self) {
        if let Some(socket) = self.write.take() {
            socket.shutdown_write();
        }
    }

    /// Fails every frame not yet written with `error` and closes the write side.
    pub(super) fn fail(&mut self, error: io::Error) -> Failures {
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
    pub(super) fn release(&mut self, all: bool) -> bool {
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

impl<C> TxState<C> {
    /// Encodes a frame into `held`, to go out once the peer answered the handle before it.
    pub(super) fn hold(
        &mut self,
        encode: impl FnOnce(&mut C, &mut BytesMut) -> Result<(), IpcError>,
        awaited: bool,
        kind: Kind,
    ) -> Result<Submitted, IpcError> {
        let before = self.held.len();
        let TxState { codec, held, .. } = self;
        encode(codec, held)?; // a failed encode leaves `held` as it was
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
pub(super) fn copy_io_error(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}
