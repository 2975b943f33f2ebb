//! A bare epoll loop for the bench's floor rows (the pool's dispatcher floor, the exec
//! section's reactor floor): what any reactor does, with nothing else.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// Puts `fd` in non-blocking mode, as a reactor's fds are.
#[allow(unsafe_code)]
pub(crate) fn set_nonblocking(fd: &impl AsRawFd) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl on an open fd with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An epoll instance.
pub(crate) struct Epoll(OwnedFd);

impl Epoll {
    #[allow(unsafe_code)]
    pub(crate) fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new fd that
        // nothing else owns.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nobody else.
        Ok(Epoll(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }))
    }

    /// Watches `fd` for reading, reported as `token`.
    #[allow(unsafe_code)]
    pub(crate) fn add(&self, fd: &impl AsRawFd, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: both fds are open for the call, and `event` is a valid epoll_event that
        // the kernel only reads.
        let rc = unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut event,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Blocks until some of the fds are readable; their tokens.
    #[allow(unsafe_code)]
    pub(crate) fn wait(&self) -> io::Result<Vec<usize>> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
        loop {
            // SAFETY: `events` is valid for 64 entries, which is the count passed; the
            // kernel writes at most that many.
            let n = unsafe { libc::epoll_wait(self.0.as_raw_fd(), events.as_mut_ptr(), 64, -1) };
            if n >= 0 {
                let n = usize::try_from(n).unwrap_or(0);
                return Ok(events[..n]
                    .iter()
                    .map(|e| usize::try_from(e.u64).unwrap_or(usize::MAX))
                    .collect());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}
