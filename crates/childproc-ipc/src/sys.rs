//! The IPC crate's only platform code: taking ownership of the inherited channel fd, and
//! the channel socket's registration with tokio and its reads.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
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

/// One `recv` from `socket` into the unfilled part of `buf`, without initializing it first.
/// Returns the bytes read (0 at end of stream).
pub(crate) fn recv_into(socket: &UnixStream, buf: &mut ReadBuf<'_>) -> io::Result<usize> {
    // SAFETY: we only write into these bytes (recv does) and never read them; `assume_init`
    // below covers exactly the bytes recv reported writing.
    let unfilled = unsafe { buf.unfilled_mut() };
    // SAFETY: the pointer and length describe writable memory owned by `buf`; recv writes at
    // most that many bytes and does not keep the pointer.
    let n = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            unfilled.as_mut_ptr().cast(),
            unfilled.len(),
            0,
        )
    };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    // SAFETY: recv initialized the first `n` unfilled bytes.
    unsafe { buf.assume_init(n) };
    buf.advance(n);
    Ok(n)
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
