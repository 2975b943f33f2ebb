//! The channel's socket, registered with tokio for reading only.
//!
//! tokio's `UnixStream` registers its fd for both reading and writing, edge-triggered. On a
//! Unix socket every message the peer reads frees buffer space on our side, which the kernel
//! reports as a new writable edge: in a request/response exchange each side's reactor then
//! wakes twice per message — once for the reply, once for nothing. Half of those wake-ups
//! are spurious, and on a busy machine each costs a context switch.
//!
//! So the channel registers its socket for readability only and writes to it directly (the
//! fd is non-blocking). Only when a write would block does the writer task register a
//! duplicate of the fd for writability, for as long as the socket stays full
//! ([`RoomWait`]).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::Shutdown;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, Interest, ReadBuf};

use crate::sys;

/// One end of the channel's socket, shared by its reader and its senders.
pub(super) struct Socket {
    fd: AsyncFd<UnixStream>,
}

impl Socket {
    /// Registers `stream`, which must be non-blocking. Must be called inside a runtime.
    pub(super) fn new(stream: UnixStream) -> io::Result<Arc<Socket>> {
        Ok(Arc::new(Socket {
            fd: sys::register(stream, Interest::READABLE)?,
        }))
    }

    /// One non-blocking write (`send` with `MSG_NOSIGNAL`: a closed peer is `EPIPE`, never a
    /// signal).
    pub(super) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut stream: &UnixStream = self.fd.get_ref(); // `Write` for `&UnixStream`
        stream.write(buf)
    }

    /// One non-blocking write of `buf` with `fd` attached (`SCM_RIGHTS`): any byte written
    /// means the fd went with the first of them.
    pub(super) fn try_write_with_fd(&self, buf: &[u8], fd: BorrowedFd<'_>) -> io::Result<usize> {
        sys::send_with_fds(self.fd.get_ref(), buf, &[fd])
    }

    /// Whether the peer has closed its end or shut down its writing (what it sent before may
    /// still be unread), without waiting or reading.
    pub(super) fn peer_closed(&self) -> bool {
        sys::peer_closed(self.fd.get_ref())
    }

    /// Shuts the write side down: the peer reads EOF, our reader is unaffected.
    pub(super) fn shutdown_write(&self) {
        let _ = self.fd.get_ref().shutdown(Shutdown::Write);
    }

    /// A registration for writability, to wait for room after a write would block.
    pub(super) fn room_wait(&self) -> io::Result<RoomWait> {
        let dup = self.fd.get_ref().try_clone()?;
        Ok(RoomWait {
            fd: sys::register(dup, Interest::WRITABLE)?,
        })
    }
}

/// Waits for room in a full socket (a duplicate of its fd, registered for writability only).
pub(super) struct RoomWait {
    fd: AsyncFd<UnixStream>,
}

impl RoomWait {
    /// Resolves when the socket may take more bytes; the caller must then write until the
    /// write would block (or the queue is empty) before waiting again.
    pub(super) async fn ready(&self) -> io::Result<()> {
        self.fd.writable().await?.clear_ready();
        Ok(())
    }
}

/// At most this many received fds wait for a `NODE_HANDLE` frame; more are closed at once.
/// A Node sender passes one fd per frame and waits for the answer, so only a broken or
/// hostile peer comes near it.
pub(crate) const MAX_QUEUED_FDS: usize = 64;

/// The reading side, as tokio's `AsyncRead` (for `FramedRead`). Fds that arrive with the
/// bytes (`SCM_RIGHTS`) queue in `fds`, oldest first, until a `NODE_HANDLE` frame takes one.
pub(super) struct Reader {
    pub(super) socket: Arc<Socket>,
    pub(super) fds: VecDeque<OwnedFd>,
    /// Reads whose control data the kernel truncated (their fds were closed).
    pub(super) truncated: u64,
}

impl Reader {
    pub(super) fn new(socket: Arc<Socket>) -> Reader {
        Reader {
            socket,
            fds: VecDeque::new(),
            truncated: 0,
        }
    }
}

impl AsyncRead for Reader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let mut guard = ready!(this.socket.fd.poll_read_ready(cx))?;
            let wanted = buf.remaining();
            match guard.try_io(|fd| sys::recv_into(fd.get_ref(), buf, &mut this.fds)) {
                // The peer closed its end with bytes of ours unread (it exited before reading
                // an answer or a message): Linux reports that once the rest of the stream
                // has been read. It is the peer's disconnect, as for Node, which ends the
                // channel on any failed read without an error: the end of the stream.
                Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Poll::Ready(Ok(()));
                }
                Ok(result) => {
                    let got = result?;
                    if got.truncated {
                        this.truncated += 1;
                    }
                    if this.fds.len() > MAX_QUEUED_FDS {
                        this.fds.truncate(MAX_QUEUED_FDS); // closes the newest extras
                    }
                    // A short read drained the socket: anything later arrives as a new edge,
                    // so skip the read that would only say "would block". Not so when fds
                    // came: the kernel ends a read after the bytes that carried them, however
                    // much more is waiting.
                    if got.n > 0 && got.n < wanted && !got.fds && !got.truncated {
                        guard.clear_ready();
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(_would_block) => continue,
            }
        }
    }
}
