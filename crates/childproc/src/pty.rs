//! A pseudo-terminal for the child ([`Stdio::Pty`](crate::Stdio::Pty)): the parent's side,
//! the master, as one async byte stream that reads what the child writes to its terminal and
//! writes what it reads, and can be resized.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::pipes::{watched, CloseToken, StreamWatch};
use crate::sys;

/// A terminal's window size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PtySize {
    /// Rows (lines).
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

impl Default for PtySize {
    /// 24 × 80, the classic terminal.
    fn default() -> Self {
        PtySize { rows: 24, cols: 80 }
    }
}

/// The master side of a child's pseudo-terminal ([`ChildProcess::pty`](crate::ChildProcess::pty)).
///
/// Reading gives what the child (and anything else on its terminal) writes, echo included,
/// with the terminal's own processing (`\n` written as `\r\n` in the default mode); writing
/// types into it. Once every process has closed the terminal's slave side, reading gives
/// what is still buffered and then end-of-file. Dropping the master hangs the terminal up:
/// the child's session gets SIGHUP, as when a terminal window closes.
///
/// `&Pty` reads and writes too, so one task can read while another writes (share it in an
/// `Arc`), and [`resize`](Self::resize) works at any time.
#[derive(Debug)]
pub struct Pty {
    inner: Arc<Master>,
    _close: CloseToken,
}

/// The master fd, registered with tokio.
#[derive(Debug)]
pub(crate) struct Master(AsyncFd<File>);

impl AsFd for Master {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.get_ref().as_fd()
    }
}

impl Pty {
    /// Wraps a non-blocking master fd, with the watch that tells `Close` when it is done.
    pub(crate) fn new(master: OwnedFd) -> io::Result<(Pty, StreamWatch)> {
        let (inner, close, watch) = watched(Master(sys::async_master(master)?));
        Ok((
            Pty {
                inner,
                _close: close,
            },
            watch,
        ))
    }

    /// Sets the window size; the child's foreground process group gets `SIGWINCH`
    /// (node-pty's `resize(cols, rows)`).
    pub fn resize(&self, size: PtySize) -> io::Result<()> {
        sys::set_window_size(self.inner.as_fd(), size.rows, size.cols)
    }

    /// The window size now.
    pub fn size(&self) -> io::Result<PtySize> {
        let (rows, cols) = sys::window_size(self.inner.as_fd())?;
        Ok(PtySize { rows, cols })
    }

    fn read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.inner.0.poll_read_ready(cx))?;
            match guard.try_io(|fd| sys::read_into(fd.get_ref().as_fd(), buf)) {
                Ok(Ok(_)) => return Poll::Ready(Ok(())),
                // Linux answers EIO once no process has the slave side open: end-of-file.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Poll::Ready(Ok(())),
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }

    fn write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.inner.0.poll_write_ready(cx))?;
            match guard.try_io(|fd| fd.get_ref().write(data)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncRead for Pty {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().read(cx, buf)
    }
}

impl AsyncRead for &Pty {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        (**self).read(cx, buf)
    }
}

impl AsyncWrite for Pty {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A terminal has no half-close: send the EOF character (^D) to end the child's input.
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for &Pty {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        (**self).write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
