//! The IPC crate's only platform code: taking ownership of the inherited channel fd, the
//! channel socket's registration with tokio, its reads (with the fds `SCM_RIGHTS` brings),
//! writes that carry an fd, and telling what kind of socket a received fd is.

#![allow(unsafe_code)]

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use tokio::io::unix::AsyncFd;
use tokio::io::{Interest, ReadBuf};

/// Takes ownership of `fd`, which must be an open socket this process inherited, and makes it
/// close-on-exec and non-blocking (as Node does), so grandchildren never inherit it.
pub(crate) fn take_inherited_socket(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: a zeroed stat is valid plain data; fstat fills it or fails with EBADF.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat only reads the fd table and writes `st`.
    if fd < 0 || unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("NODE_CHANNEL_FD {fd} is not an open fd"),
        ));
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("NODE_CHANNEL_FD {fd} is not a socket"),
        ));
    }
    // SAFETY: the fd is open (fstat succeeded) and, by the NODE_CHANNEL_FD contract, was
    // handed to this process to own; nothing else in this process claims it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: fcntl on an fd we own.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
    Ok(owned)
}

/// Registers `socket` with the current tokio runtime for `interest` only.
pub(crate) fn register(socket: UnixStream, interest: Interest) -> io::Result<AsyncFd<UnixStream>> {
    // SAFETY: a `UnixStream` owns its fd, keeps it open until it is dropped (which the
    // `AsyncFd` does only after deregistering) and always returns that same fd from
    // `as_raw_fd`.
    unsafe { AsyncFd::register_with_interest(socket, interest) }.map_err(|e| e.into_parts().1)
}

/// Room for this many fds in one read. Node sends one fd per `sendmsg`, and a Unix stream
/// socket never merges two `sendmsg`s that carry fds into one read; more is a hostile peer.
pub const FDS_PER_READ: usize = 16;

/// `MSG_CMSG_CLOEXEC` where the platform has it: received fds are close-on-exec atomically.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
const RECV_FLAGS: libc::c_int = libc::MSG_CMSG_CLOEXEC;
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
const RECV_FLAGS: libc::c_int = 0;

/// `MSG_NOSIGNAL` where the platform has it (a closed peer is `EPIPE`, never a signal).
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
const SEND_FLAGS: libc::c_int = 0;

/// A control buffer for `FDS_PER_READ` fds, aligned for `cmsghdr`.
#[repr(C, align(8))]
struct Control([u8; 128]);

/// What one [`recv_into`] read.
pub(crate) struct Received {
    /// Bytes read (0 at end of stream).
    pub(crate) n: usize,
    /// The kernel cut the control data (`MSG_CTRUNC`): fds were lost; those that came were
    /// closed, not queued.
    pub(crate) truncated: bool,
    /// Control data came (fds, or a truncated part): the read may have ended early.
    pub(crate) fds: bool,
}

/// One `recvmsg` from `socket` into the unfilled part of `buf`, without initializing it
/// first; fds passed with `SCM_RIGHTS` are appended to `fds` (close-on-exec), unless the
/// control data was truncated, in which case every fd that came is closed.
pub(crate) fn recv_into(
    socket: &UnixStream,
    buf: &mut ReadBuf<'_>,
    fds: &mut VecDeque<OwnedFd>,
) -> io::Result<Received> {
    // SAFETY: we only write into these bytes (recvmsg does) and never read them;
    // `assume_init` below covers exactly the bytes recvmsg reported writing.
    let unfilled = unsafe { buf.unfilled_mut() };
    let mut iov = libc::iovec {
        iov_base: unfilled.as_mut_ptr().cast(),
        iov_len: unfilled.len(),
    };
    let mut control = Control([0; 128]);
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    let space = unsafe { libc::CMSG_SPACE((FDS_PER_READ * size_of::<RawFd>()) as _) } as usize;
    debug_assert!(space <= control.0.len());
    // SAFETY: a zeroed msghdr is valid plain data (null name, no iov, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = space.min(control.0.len()) as _;
    // SAFETY: `msg` points at one iovec describing writable memory owned by `buf` and at a
    // control buffer of `msg_controllen` bytes on our stack; recvmsg writes within them and
    // keeps no pointer.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, RECV_FLAGS) };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    // SAFETY: recvmsg initialized the first `n` unfilled bytes.
    unsafe { buf.assume_init(n) };
    buf.advance(n);
    let truncated = msg.msg_flags & libc::MSG_CTRUNC != 0;
    let before = fds.len();
    // SAFETY: `msg` was filled by recvmsg: its control pointer and length describe the
    // control messages it wrote into `control`, which outlives this loop.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR return null or a header inside `control`.
        let hdr = unsafe { std::ptr::read_unaligned(cmsg) };
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN is arithmetic on its argument.
            let header = unsafe { libc::CMSG_LEN(0) } as usize;
            let count = (hdr.cmsg_len as usize).saturating_sub(header) / size_of::<RawFd>();
            // SAFETY: the data of this header lies inside `control`.
            let data = unsafe { libc::CMSG_DATA(cmsg) }.cast::<RawFd>();
            for i in 0..count {
                // SAFETY: `count` fds fit in this header's data (cmsg_len says so), read
                // unaligned as the data need not be aligned for an int.
                let fd = unsafe { std::ptr::read_unaligned(data.add(i)) };
                if fd >= 0 {
                    // SAFETY: SCM_RIGHTS installed this fd in our table for us to own;
                    // nothing else knows of it.
                    fds.push_back(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        // SAFETY: `cmsg` is a header of `msg`'s control data (see above).
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    if RECV_FLAGS == 0 {
        for fd in fds.range(before..) {
            set_cloexec(fd.as_raw_fd());
        }
    }
    let fds_came = fds.len() > before;
    if truncated {
        fds.truncate(before); // closes what came
    }
    Ok(Received {
        n,
        truncated,
        fds: fds_came,
    })
}

/// Makes `fd` close-on-exec (the fallback where `MSG_CMSG_CLOEXEC` does not exist).
fn set_cloexec(fd: RawFd) {
    // SAFETY: fcntl on an fd the caller owns.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
}

/// One non-blocking `sendmsg` of `buf` with `fds` attached (`SCM_RIGHTS`; the channel sends
/// one, tests send more). Any byte written means the fds went with the first of them.
pub(crate) fn send_with_fds(
    socket: &UnixStream,
    buf: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    let mut control = Control([0; 128]);
    send_with_control(socket, buf, fds, &mut control.0)
}

/// The most fds one `SCM_RIGHTS` message may carry (Linux's `SCM_MAX_FD`).
pub const MAX_FDS_PER_SEND: usize = 253;

/// `send_with_fds` for up to `MAX_FDS_PER_SEND` fds, with a control buffer on the heap:
/// for the fuzz targets, which play a hostile peer. Not part of the API.
pub fn send_many_fds(socket: &UnixStream, buf: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
    if fds.len() > MAX_FDS_PER_SEND {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "more fds than SCM_MAX_FD",
        ));
    }
    // u64 words: aligned for `cmsghdr`.
    let mut words = vec![0u64; 4 + fds.len().div_ceil(2)];
    // SAFETY: the bytes of a `Vec<u64>` are plain initialized data, valid as `u8`, borrowed
    // exclusively for the lifetime of the slice.
    let control =
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 8) };
    send_with_control(socket, buf, fds, control)
}

/// One `recvmsg` into `buf` with room for as many fds as the channel's reads (16): what the
/// fuzz targets' raw peer reads the channel's frames with. `(bytes read, truncated)`. Not
/// part of the API.
pub fn recv_with_fds(
    socket: &UnixStream,
    buf: &mut [u8],
    fds: &mut VecDeque<OwnedFd>,
) -> io::Result<(usize, bool)> {
    let mut buf = ReadBuf::new(buf);
    recv_into(socket, &mut buf, fds).map(|got| (got.n, got.truncated))
}

/// One `sendmsg` of `buf` with `fds` in one `SCM_RIGHTS` message built in `control`, which
/// must be aligned for `cmsghdr` (both callers' buffers are 8-aligned).
fn send_with_control(
    socket: &UnixStream,
    buf: &[u8],
    fds: &[BorrowedFd<'_>],
    control: &mut [u8],
) -> io::Result<usize> {
    let data_len = size_of_val(fds);
    // SAFETY: CMSG_SPACE and CMSG_LEN are arithmetic on their argument.
    let (space, len) = unsafe {
        (
            libc::CMSG_SPACE(data_len as _) as usize,
            libc::CMSG_LEN(data_len as _) as usize,
        )
    };
    if fds.is_empty() || space > control.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "between 1 and {} fds",
                (control.len() - size_of::<libc::cmsghdr>()) / size_of::<RawFd>()
            ),
        ));
    }
    let mut iov = libc::iovec {
        iov_base: buf.as_ptr().cast_mut().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: a zeroed msghdr is valid plain data.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer holds `space` bytes (checked above) and is aligned for
    // `cmsghdr` (the callers' contract), so its first header and that header's data
    // (`fds.len()` ints) are inside it; sendmsg only reads `buf` (never written through the
    // iovec) and the control buffer.
    let sent = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = len as _;
        let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
        for (i, fd) in fds.iter().enumerate() {
            std::ptr::write_unaligned(data.add(i), fd.as_raw_fd());
        }
        libc::sendmsg(socket.as_raw_fd(), &msg, SEND_FLAGS)
    };
    usize::try_from(sent).map_err(|_| io::Error::last_os_error())
}

/// What a received fd is, told from the kernel's view of it (as Node does), not from the
/// `type` the sender named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FdKind {
    /// A listening TCP socket.
    TcpListener,
    /// Any other TCP socket.
    TcpStream,
    /// A listening Unix stream socket.
    UnixListener,
    /// Any other Unix stream socket.
    UnixStream,
    /// An IPv4 or IPv6 datagram socket.
    Udp,
    /// Anything else: not a socket, or a socket of another kind.
    Other,
}

/// Tells what kind of socket `fd` is (`SO_TYPE`, `SO_ACCEPTCONN`, the `getsockname` family).
pub(crate) fn classify(fd: BorrowedFd<'_>) -> FdKind {
    let int_opt = |opt| {
        let mut v: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `v`; a non-socket is ENOTSOCK.
        let r = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        (r == 0).then_some(v)
    };
    let Some(ty) = int_opt(libc::SO_TYPE) else {
        return FdKind::Other;
    };
    let listening = int_opt(libc::SO_ACCEPTCONN).unwrap_or(0) != 0;
    // SAFETY: a zeroed sockaddr_storage is valid plain data.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getsockname writes at most `len` bytes into `addr`, which is that large.
    let r = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return FdKind::Other;
    }
    let family = libc::c_int::from(addr.ss_family);
    let inet = family == libc::AF_INET || family == libc::AF_INET6;
    match (ty, inet, family == libc::AF_UNIX, listening) {
        (libc::SOCK_STREAM, true, _, true) => FdKind::TcpListener,
        (libc::SOCK_STREAM, true, _, false) => FdKind::TcpStream,
        (libc::SOCK_STREAM, _, true, true) => FdKind::UnixListener,
        (libc::SOCK_STREAM, _, true, false) => FdKind::UnixStream,
        (libc::SOCK_DGRAM, true, _, _) => FdKind::Udp,
        _ => FdKind::Other,
    }
}

/// Whether the peer of `socket` has closed or shut down its writing (`POLLHUP`, or on Linux
/// `POLLRDHUP`), without waiting and without reading.
pub(crate) fn peer_closed(socket: &UnixStream) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let hangup = libc::POLLHUP | libc::POLLRDHUP;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let hangup = libc::POLLHUP;
    let mut p = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN | hangup,
        revents: 0,
    };
    // SAFETY: one valid pollfd for an fd `socket` keeps open; no timeout.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    r > 0 && p.revents & hangup != 0
}

/// A byte stream on `fd` (a pipe, socket or terminal), non-blocking and registered with
/// tokio, readable and writable as a file.
pub(crate) fn async_stream(fd: OwnedFd) -> io::Result<AsyncStream> {
    // SAFETY: F_GETFL/F_SETFL on an fd we own.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let file = std::fs::File::from(fd);
    let interest = Interest::READABLE | Interest::WRITABLE;
    // SAFETY: the AsyncFd takes ownership of the file, so its fd stays open and refers to the
    // same open file description for as long as it is registered.
    let fd = unsafe { AsyncFd::register_with_interest(file, interest) }.map_err(|e| {
        let e = io::Error::from(e);
        io::Error::new(
            e.kind(),
            format!("a channel over a byte stream needs a pipe, socket or terminal: {e}"),
        )
    })?;
    Ok(AsyncStream(fd))
}

/// See [`async_stream`].
pub(crate) struct AsyncStream(AsyncFd<std::fs::File>);

impl tokio::io::AsyncRead for AsyncStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        use std::io::Read;
        loop {
            let mut guard = std::task::ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|f| f.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return std::task::Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return std::task::Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl tokio::io::AsyncWrite for AsyncStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        use std::io::Write;
        loop {
            let mut guard = std::task::ready!(self.0.poll_write_ready(cx))?;
            match guard.try_io(|f| f.get_ref().write(data)) {
                Ok(result) => return std::task::Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
