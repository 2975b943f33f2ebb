//! File descriptor helpers.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A pipe, both ends close-on-exec: `(read, write)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // Atomic where the OS has pipe2; Apple's systems lack it, so there the flag is set right
    // after (a fork+exec by another thread in between could inherit the ends, as with std).
    #[cfg(not(target_vendor = "apple"))]
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    #[cfg(target_vendor = "apple")]
    // SAFETY: `fds` is a valid array of two ints for pipe to fill.
    let r = unsafe { libc::pipe(fds.as_mut_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call succeeded, so both are open fds that nothing else owns.
    let ends = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    #[cfg(target_vendor = "apple")]
    for fd in [&ends.0, &ends.1] {
        // SAFETY: F_SETFD on an fd we own.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(ends)
}

/// `/dev/null`, opened once for reading and writing and shared by every spawn (children get a
/// dup of it; the parent's copy is close-on-exec and lives for the whole process).
pub(crate) fn dev_null() -> io::Result<BorrowedFd<'static>> {
    static NULL: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = NULL.get() {
        return Ok(fd.as_fd_static());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    let fd = NULL.get_or_init(|| file.into());
    Ok(fd.as_fd_static())
}

trait StaticFd {
    fn as_fd_static(&'static self) -> BorrowedFd<'static>;
}
impl StaticFd for OwnedFd {
    fn as_fd_static(&'static self) -> BorrowedFd<'static> {
        std::os::fd::AsFd::as_fd(self)
    }
}

/// Duplicates the parent's fd `fd` (Node's integer stdio entry), close-on-exec. `EBADF` if it
/// is not open.
pub(crate) fn dup_parent_fd(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: F_DUPFD_CLOEXEC only reads `fd`; an fd that is not open gives EBADF.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fcntl returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Duplicates `fd` to the lowest free number at or above `min`, close-on-exec.
pub(super) fn dup_at_least(fd: RawFd, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC only reads `fd`, which the caller keeps open during the call.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fcntl returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Makes `fd` refer to `/dev/null` (read end-of-file) instead of what it was, closing that
/// (`dup2`, atomic): the fd number stays valid for whoever owns it.
pub(crate) fn replace_with_dev_null(fd: RawFd) -> io::Result<()> {
    // The caller guarantees `fd` is open and owned by this process (a reader's fd, under the
    // lock its owner takes before closing it); the source is our own long-lived /dev/null.
    let null = dev_null()?.as_raw_fd();
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    // SAFETY: dup3 onto that fd, as above; no other fd number is touched.
    let r = unsafe { libc::dup3(null, fd, libc::O_CLOEXEC) };
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    // SAFETY: dup2 onto that fd, as above; F_SETFD then restores close-on-exec, which dup2
    // clears.
    let r = unsafe {
        match libc::dup2(null, fd) {
            r if r < 0 => r,
            _ => libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC),
        }
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A blocking view of `fd` for a child's stdio, if `fd` is `O_NONBLOCK` and can have one:
/// `fd` opened again through `/proc/self/fd` (a new open file description of the same pipe,
/// FIFO or tty, with its own flags), so the child reads and writes it blocking, as a program
/// expects of its fds 0–2, while the parent's description (a tokio pipe, say) stays as it is.
/// `None` when `fd` is blocking already, or cannot be opened again (a socket; no `/proc`; a
/// pipe whose other end is gone): the child then gets `fd` itself.
pub(crate) fn blocking_view(fd: BorrowedFd<'_>) -> Option<OwnedFd> {
    // SAFETY: F_GETFL on a borrowed, open fd.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 || flags & libc::O_NONBLOCK == 0 {
        return None;
    }
    reopen(fd.as_raw_fd(), flags & libc::O_ACCMODE)
}

#[cfg(target_os = "linux")]
fn reopen(fd: RawFd, access: libc::c_int) -> Option<OwnedFd> {
    let path = std::ffi::CString::new(format!("/proc/self/fd/{fd}")).ok()?;
    // O_NONBLOCK for the open itself: opening a pipe's read end with no writer left would
    // otherwise wait for one. Sockets fail here (ENXIO), as wanted.
    let flags = access | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    // SAFETY: open(2) with a NUL-terminated path; the result is a new fd or -1.
    let new = unsafe { libc::open(path.as_ptr(), flags) };
    if new < 0 {
        return None;
    }
    // SAFETY: open returned a fresh fd that nothing else owns.
    let new = unsafe { OwnedFd::from_raw_fd(new) };
    // SAFETY: F_SETFL on the fd just opened: clears O_NONBLOCK on its own description only.
    (unsafe { libc::fcntl(new.as_raw_fd(), libc::F_SETFL, access) } == 0).then_some(new)
}

#[cfg(not(target_os = "linux"))]
fn reopen(_fd: RawFd, _access: libc::c_int) -> Option<OwnedFd> {
    None
}

/// Whether `fd` is open in this process.
pub(crate) fn is_open_raw(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Shuts down the writing half of a socket.
pub(crate) fn shutdown_write(fd: BorrowedFd<'_>) -> io::Result<()> {
    shutdown(fd, libc::SHUT_WR)
}

/// Shuts down the reading half of a socket: reads return end-of-file from now on, and a
/// task waiting to read is woken.
pub(crate) fn shutdown_read(fd: BorrowedFd<'_>) -> io::Result<()> {
    shutdown(fd, libc::SHUT_RD)
}

fn shutdown(fd: BorrowedFd<'_>, how: libc::c_int) -> io::Result<()> {
    // SAFETY: shutdown on a borrowed, open fd; no memory is passed.
    if unsafe { libc::shutdown(fd.as_raw_fd(), how) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `access(path, X_OK)` for a regular file: what `execvp` would accept.
pub(crate) fn is_executable(path: &CStr) -> io::Result<bool> {
    // SAFETY: `path` is a valid NUL-terminated string.
    if unsafe { libc::access(path.as_ptr(), libc::X_OK) } == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EACCES) => Ok(false),
        _ => Err(err),
    }
}

/// Registers an owned fd with tokio's reactor for `interest`.
pub(crate) fn async_fd(fd: OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd takes ownership of `fd`, so it stays open and refers to the same
    // file description for as long as it is registered.
    unsafe { AsyncFd::register_with_interest(fd, interest) }.map_err(io::Error::from)
}

/// The parent's fd 0, 1 or 2 for `'inherit'`, if it is open.
pub(crate) fn own_stdio(fd: RawFd) -> Option<BorrowedFd<'static>> {
    if !(0..=2).contains(&fd) || !is_open_raw(fd) {
        return None;
    }
    // SAFETY: fds 0-2 are the process's standard streams, which stay open for the life of the
    // process (we checked this one is open); the borrow only lasts for one spawn.
    Some(unsafe { BorrowedFd::borrow_raw(fd) })
}

/// `read(2)` straight into the unfilled part of `buf` (no zeroing first), advancing it.
pub(crate) fn read_into(fd: BorrowedFd<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> io::Result<usize> {
    // SAFETY: `unfilled_mut` is only written to by read(2), which initialises exactly `n`
    // bytes at its start; we then mark those `n` bytes initialised and filled.
    unsafe {
        let dst = buf.unfilled_mut();
        let n = libc::read(fd.as_raw_fd(), dst.as_mut_ptr().cast(), dst.len());
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        buf.assume_init(n);
        buf.advance(n);
        Ok(n)
    }
}

/// `read(2)` of at most `most` bytes into the spare capacity of `bytes`, appending them.
pub(crate) fn read_append(
    fd: BorrowedFd<'_>,
    bytes: &mut Vec<u8>,
    most: usize,
) -> io::Result<usize> {
    let len = bytes.len();
    let spare = bytes.spare_capacity_mut();
    let take = spare.len().min(most);
    let mut buf = tokio::io::ReadBuf::uninit(&mut spare[..take]);
    let n = read_into(fd, &mut buf)?;
    // SAFETY: `read_into` initialised the first `n` bytes of the spare capacity.
    unsafe { bytes.set_len(len + n) };
    Ok(n)
}

/// Sets `O_NONBLOCK`.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a borrowed, open fd.
    unsafe {
        let flags = libc::fcntl(raw, libc::F_GETFL);
        if flags < 0 || libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Asks the kernel to give the pipe behind `fd` a buffer of `bytes` (`F_SETPIPE_SZ`).
/// Returns the size it has now. It fails where the size is above the system's limit or the
/// user's pipe pages are used up, or (smaller) while the pipe holds more than that; the pipe
/// keeps the size it had then.
#[cfg(target_os = "linux")]
pub(crate) fn resize_pipe(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<usize> {
    let want = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: F_SETPIPE_SZ on a borrowed, open fd; the kernel checks that it is a pipe.
    let got = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, want) };
    usize::try_from(got).map_err(|_| io::Error::last_os_error())
}

/// Pipes keep their size where there is no `F_SETPIPE_SZ`.
#[cfg(not(target_os = "linux"))]
pub(crate) fn resize_pipe(_fd: BorrowedFd<'_>, _bytes: usize) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

/// A set of fds to wait on with `poll(2)`, for the synchronous API.
#[derive(Default)]
pub(crate) struct PollSet {
    fds: Vec<libc::pollfd>,
}

impl PollSet {
    /// Empties the set.
    pub(crate) fn clear(&mut self) {
        self.fds.clear();
    }

    /// Adds `fd` (for reading, else writing); returns its index.
    pub(crate) fn add(&mut self, fd: BorrowedFd<'_>, read: bool) -> usize {
        let events = if read { libc::POLLIN } else { libc::POLLOUT };
        self.fds.push(libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        });
        self.fds.len() - 1
    }

    /// Waits until some fd is ready or `timeout` passes (`None`: no limit). EINTR is retried by
    /// the caller's loop (returns Ok).
    pub(crate) fn wait(&mut self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        let ms = timeout.map_or(-1, |t| {
            libc::c_int::try_from(t.as_millis().saturating_add(1)).unwrap_or(libc::c_int::MAX)
        });
        // SAFETY: `fds` is a valid array of pollfd of the given length.
        let r = unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Whether the fd at `idx` is ready (readable, writable, hung up or in error).
    pub(crate) fn ready(&self, idx: usize) -> bool {
        self.fds.get(idx).is_some_and(|p| p.revents != 0)
    }
}

/// Whether every writer of the pipe or socket `fd` reads from is gone (`POLLHUP`), without
/// waiting and without reading. (`poll` only looks at the fd: a number that is not open
/// reports `POLLNVAL`, not a hang-up.)
pub(crate) fn hung_up(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no timeout.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    r > 0 && p.revents & libc::POLLHUP != 0
}
