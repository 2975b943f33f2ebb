//! The IPC crate's only platform code: taking ownership of the inherited channel fd.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

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
