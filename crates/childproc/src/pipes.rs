//! The parent's ends of the child's stdio pipes: `subprocess.stdin`, `.stdout`, `.stderr` and
//! `.stdio[n]`, as tokio `AsyncWrite` / `AsyncRead`.
//!
//! Every readable end is watched for the `Close` event: once the child has exited, `Close`
//! waits until each of them has been closed by the child side (every writer gone: a
//! grandchild that holds stdout delays it) or dropped by the user — without consuming any
//! data, so output left unread stays readable after `Close`, as in Node.
//!
//! With a wait delay ([`Command::wait_delay`](crate::Command::wait_delay)) the watcher can
//! also *cut* a readable end that a grandchild keeps open: from then on the parent's end
//! reads end-of-file (a task waiting in `read` is woken) and its fd is closed.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{ready, Context, Poll};

use futures_util::task::AtomicWaker;

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::unix::pipe;
use tokio::net::UnixStream;
use tokio::sync::oneshot;

/// Held by a readable end; dropping it tells the close watcher the user closed the stream.
#[derive(Debug)]
pub(crate) struct CloseToken(#[allow(dead_code)] oneshot::Sender<()>);

/// The watcher's view of one readable end.
pub(crate) struct StreamWatch {
    fd: FdSource,
    dropped: oneshot::Receiver<()>,
}

/// Where the watcher finds the fd to duplicate once the child has exited.
#[derive(Clone)]
enum FdSource {
    /// A stream shared through an `Arc` (extra pipes: sockets, cut by `shutdown(SHUT_RD)`).
    Weak(Weak<dyn AsFd + Send + Sync>),
    /// A stream the user owns outright (stdout, stderr).
    Slot(Arc<ReaderState>),
}

/// What a stdout/stderr reader shares with its watcher.
#[derive(Debug)]
struct ReaderState {
    /// The fd number, cleared under the lock before the reader closes it, so it is open
    /// whenever the lock shows it.
    fd: Mutex<Option<RawFd>>,
    /// Set by [`Cut::cut`]: the reader reads end-of-file from now on.
    cut: AtomicBool,
    /// The task waiting in `poll_read`, woken by a cut.
    waker: AtomicWaker,
}

/// Cuts one readable end of the parent's (see the module docs); made by
/// [`StreamWatch::cutter`].
#[derive(Clone)]
pub(crate) struct Cut(FdSource);

impl Cut {
    /// Makes the parent's end read end-of-file from now on and wakes its reader. Data still
    /// in the pipe is not read any more. A stream already closed is left as it is.
    pub(crate) fn cut(&self) {
        match &self.0 {
            FdSource::Slot(state) => {
                let fd = state.fd.lock().unwrap_or_else(|e| e.into_inner());
                // The owner clears the slot under this lock before closing the fd, so `fd`
                // is still the reader's own fd here.
                if let Some(fd) = *fd {
                    state.cut.store(true, Ordering::Release);
                    // The pipe closes now (a grandchild writing to it gets EPIPE) while the fd
                    // number stays valid for the reader, reading end-of-file.
                    let _ = crate::sys::replace_with_dev_null(fd);
                }
                drop(fd);
                state.waker.wake();
            }
            FdSource::Weak(weak) => {
                if let Some(stream) = weak.upgrade() {
                    let _ = crate::sys::shutdown_read(stream.as_fd());
                }
            }
        }
    }
}

pub(crate) fn watched<T: AsFd + Send + Sync + 'static>(
    inner: T,
) -> (Arc<T>, CloseToken, StreamWatch) {
    let inner = Arc::new(inner);
    let (tx, rx) = oneshot::channel();
    let weak: Weak<T> = Arc::downgrade(&inner);
    (
        inner,
        CloseToken(tx),
        StreamWatch {
            fd: FdSource::Weak(weak),
            dropped: rx,
        },
    )
}

impl StreamWatch {
    /// What cuts this stream later, once the watch itself is consumed by [`closed`](Self::closed).
    pub(crate) fn cutter(&self) -> Cut {
        Cut(self.fd.clone())
    }

    /// Whether the stream is already closed (as [`closed`](Self::closed) would resolve at
    /// once), checked without waiting.
    pub(crate) fn closed_now(&mut self) -> bool {
        if !matches!(
            self.dropped.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        ) {
            return true;
        }
        match &self.fd {
            FdSource::Weak(weak) => weak
                .upgrade()
                .is_none_or(|s| crate::sys::hung_up(s.as_fd().as_raw_fd())),
            FdSource::Slot(state) => {
                let fd = state.fd.lock().unwrap_or_else(|e| e.into_inner());
                // The owner clears the slot under this lock before closing the fd.
                fd.is_none_or(crate::sys::hung_up)
            }
        }
    }

    /// Resolves once every writer of the stream has closed it, or the user dropped it.
    pub(crate) async fn closed(self) {
        let dup = match &self.fd {
            FdSource::Weak(weak) => weak
                .upgrade()
                .and_then(|s| s.as_fd().try_clone_to_owned().ok()),
            FdSource::Slot(state) => {
                let fd = state.fd.lock().unwrap_or_else(|e| e.into_inner());
                // The owner clears the slot under this lock before closing the fd.
                fd.and_then(|raw| crate::sys::dup_parent_fd(raw).ok())
            }
        };
        let Some(dup) = dup else { return };
        let Ok(afd) = crate::sys::async_fd(dup, Interest::READABLE) else {
            return;
        };
        let hung_up = async {
            loop {
                let Ok(mut guard) = afd.readable().await else {
                    return;
                };
                if guard.ready().is_read_closed() {
                    return;
                }
                guard.clear_ready();
            }
        };
        tokio::select! {
            _ = self.dropped => {}
            () = hung_up => {}
        }
    }
}

/// The child's stdin (Node's `subprocess.stdin`). Drop it or call `shutdown` to send EOF.
#[derive(Debug)]
pub struct ChildStdin {
    inner: pipe::Sender,
}

impl ChildStdin {
    pub(crate) fn new(fd: OwnedFd) -> io::Result<Self> {
        Ok(ChildStdin {
            inner: pipe::Sender::from_owned_fd(fd)?,
        })
    }

    /// The fd, in blocking mode, e.g. to hand to another child.
    pub fn into_owned_fd(self) -> OwnedFd {
        self.inner
            .into_blocking_fd()
            .expect("clearing O_NONBLOCK on a pipe cannot fail")
    }
}

impl AsyncWrite for ChildStdin {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl AsFd for ChildStdin {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

macro_rules! reader {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// It owns its pipe outright and reads through tokio's own `AsyncRead` for pipes.
        #[derive(Debug)]
        pub struct $name {
            /// `None` only once handed out by `into_owned_fd`.
            inner: Option<pipe::Receiver>,
            state: Arc<ReaderState>,
            _close: CloseToken,
        }

        impl $name {
            pub(crate) fn new(fd: OwnedFd) -> io::Result<(Self, StreamWatch)> {
                let inner = pipe::Receiver::from_owned_fd(fd)?;
                let state = Arc::new(ReaderState {
                    fd: Mutex::new(Some(inner.as_raw_fd())),
                    cut: AtomicBool::new(false),
                    waker: AtomicWaker::new(),
                });
                let (tx, rx) = oneshot::channel();
                let watch = StreamWatch { fd: FdSource::Slot(state.clone()), dropped: rx };
                Ok(($name { inner: Some(inner), state, _close: CloseToken(tx) }, watch))
            }

            /// Closes the fd now (clearing the slot first, so the watcher never duplicates a
            /// closed or reused fd number).
            fn close_fd(&mut self) {
                let mut slot = self.state.fd.lock().unwrap_or_else(|e| e.into_inner());
                *slot = None;
                drop(self.inner.take());
            }

            /// After a cut every read is end-of-file (the fd is `/dev/null` by then).
            fn is_cut(&self) -> bool {
                self.state.cut.load(Ordering::Acquire)
            }

            /// Its lines, as a `Stream` of `String`s: see [`Lines`](crate::Lines).
            pub fn lines(self) -> crate::Lines<Self> {
                crate::Lines::new(self)
            }

            /// Its lines as raw bytes: see [`ByteLines`](crate::ByteLines).
            pub fn byte_lines(self) -> crate::ByteLines<Self> {
                crate::ByteLines::new(self)
            }

            fn pipe(&self) -> &pipe::Receiver {
                self.inner.as_ref().expect("present until into_owned_fd")
            }

            /// The fd, in blocking mode, e.g. to become another child's stdin (`/dev/null`
            /// once a wait delay cut the stream).
            pub fn into_owned_fd(mut self) -> OwnedFd {
                let mut slot = self.state.fd.lock().unwrap_or_else(|e| e.into_inner());
                *slot = None;
                let rx = self.inner.take().expect("present until into_owned_fd");
                drop(slot);
                rx.into_blocking_fd().expect("clearing O_NONBLOCK on a pipe cannot fail")
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                self.close_fd();
            }
        }

        impl AsyncRead for $name {
            fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
                let this = self.get_mut();
                if this.is_cut() {
                    return Poll::Ready(Ok(()));
                }
                let Some(rx) = this.inner.as_ref() else {
                    return Poll::Ready(Ok(()));
                };
                let read = |buf: &mut ReadBuf<'_>| rx.try_io(|| crate::sys::read_into(rx.as_fd(), buf));
                match poll_read_until_empty(cx, buf, |cx| rx.poll_read_ready(cx), read) {
                    Poll::Pending => {
                        // Registered after the read, then checked again: a cut between the
                        // two is seen here, one after is woken.
                        this.state.waker.register(cx.waker());
                        if this.is_cut() {
                            return Poll::Ready(Ok(()));
                        }
                        Poll::Pending
                    }
                    ready => ready,
                }
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.pipe().as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.pipe().as_raw_fd()
            }
        }
    };
}

reader!(
    /// The child's stdout (Node's `subprocess.stdout`).
    ChildStdout
);
reader!(
    /// The child's stderr (Node's `subprocess.stderr`).
    ChildStderr
);

/// An extra stdio pipe (Node's `subprocess.stdio[n]` for n ≥ 3): a duplex Unix socket, so the
/// child may read it, write it, or both.
#[derive(Debug)]
pub struct ChildPipe {
    inner: Arc<UnixStream>,
    _close: CloseToken,
}

impl ChildPipe {
    pub(crate) fn new(sock: std::os::unix::net::UnixStream) -> io::Result<(Self, StreamWatch)> {
        sock.set_nonblocking(true)?;
        let (inner, close, watch) = watched(UnixStream::from_std(sock)?);
        Ok((
            ChildPipe {
                inner,
                _close: close,
            },
            watch,
        ))
    }
}

impl ChildPipe {
    /// What the child writes to it, line by line: see [`Lines`](crate::Lines).
    pub fn lines(self) -> crate::Lines<Self> {
        crate::Lines::new(self)
    }

    /// The same as raw bytes: see [`ByteLines`](crate::ByteLines).
    pub fn byte_lines(self) -> crate::ByteLines<Self> {
        crate::ByteLines::new(self)
    }
}

impl AsyncRead for ChildPipe {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let inner = &*self.inner;
        let read = |buf: &mut ReadBuf<'_>| {
            inner.try_io(Interest::READABLE, || {
                crate::sys::read_into(inner.as_fd(), buf)
            })
        };
        poll_read_until_empty(cx, buf, |cx| inner.poll_read_ready(cx), read)
    }
}

/// One read of a non-blocking stream registered with tokio: waits with `ready`, reads with
/// `read`, which gives the readiness back only when a read finds the stream empty. Not after
/// every short read, as tokio's own `poll_read` does: a child writing fast (4 KiB at a time,
/// say) has usually written more by the next read, which then costs one syscall instead of
/// a trip through the reactor.
fn poll_read_until_empty(
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
    mut ready: impl FnMut(&mut Context<'_>) -> Poll<io::Result<()>>,
    mut read: impl FnMut(&mut ReadBuf<'_>) -> io::Result<usize>,
) -> Poll<io::Result<()>> {
    loop {
        ready!(ready(cx))?;
        match read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return Poll::Ready(other.map(drop)),
        }
    }
}

impl AsyncWrite for ChildPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.inner.poll_write_ready(cx))?;
            match self.inner.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(crate::sys::shutdown_write(self.inner.as_fd()))
    }
}

impl AsFd for ChildPipe {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}
