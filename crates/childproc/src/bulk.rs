//! A bigger pipe for a child that fills its pipe: the buffered runners (exec, exec_file,
//! a pipeline's output, the sync trio) read everything a child writes, and a child writing
//! faster than one 64 KiB pipe-full per wake-up keeps the reader and the writer taking
//! turns on the pipe's lock. With a 1 MiB pipe both run at once: about 1.3× the throughput
//! of exec_file and 1.1× of exec_file_sync on this project's bench machine.
//!
//! Pipe buffers are counted per user (`/proc/sys/fs/pipe-user-pages-soft`, 64 MiB by
//! default). A user over that limit gets small pipes everywhere, in other programs too. So
//! the process holds at most [`MAX_GROWN`] grown pipes at once, 16 MiB, and a grown pipe
//! gives its place back when its reader ends (the pipe's read end closes with it). Past that
//! number, pipes keep their size; nothing else changes.

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A read of this many bytes found the pipe full (Linux's default pipe size).
pub(crate) const FULL_READ: usize = 64 * 1024;

/// The size asked for (Linux's default `/proc/sys/fs/pipe-max-size`).
pub(crate) const BULK_PIPE: usize = 1024 * 1024;

/// Grown pipes the process may hold at once: a quarter of the default per-user limit.
const MAX_GROWN: usize = 16;

static GROWN: AtomicUsize = AtomicUsize::new(0);

/// One reader's claim on a bigger pipe: asked for once, after a read found the pipe full.
#[derive(Debug, Default)]
pub(crate) struct Growth {
    asked: bool,
    holds: bool,
}

impl Growth {
    /// After a read of `n` bytes from `fd`: grows the pipe the first time a read finds it
    /// full, if a place is free and the kernel agrees. True if the pipe is now `BULK_PIPE`.
    pub(crate) fn after_read(&mut self, fd: BorrowedFd<'_>, n: usize) -> bool {
        if self.asked || n < FULL_READ {
            return false;
        }
        self.asked = true;
        let claimed = GROWN
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < MAX_GROWN).then_some(held + 1)
            })
            .is_ok();
        if !claimed {
            return false;
        }
        // Refused (not a pipe, over the user's limit, a lower pipe-max-size): the place goes
        // back and the pipe keeps its size.
        self.holds = crate::sys::grow_pipe(fd, BULK_PIPE).is_ok_and(|size| size >= BULK_PIPE);
        if !self.holds {
            GROWN.fetch_sub(1, Ordering::AcqRel);
        }
        self.holds
    }
}

impl Drop for Growth {
    fn drop(&mut self) {
        if self.holds {
            GROWN.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// How many bytes a non-blocking write end takes before the pipe is full.
    fn capacity(w: std::os::fd::OwnedFd) -> usize {
        use std::io::Write;
        crate::sys::set_nonblocking(w.as_fd()).expect("O_NONBLOCK");
        let mut w = std::fs::File::from(w);
        let block = [0u8; 4096];
        let mut total = 0;
        loop {
            match w.write(&block) {
                Ok(n) => total += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return total,
                Err(e) => panic!("write: {e}"),
            }
        }
    }

    #[test]
    fn grows_once_when_a_read_finds_the_pipe_full() {
        let (r, w) = crate::sys::pipe().expect("pipe");
        let mut growth = Growth::default();
        assert!(
            !growth.after_read(r.as_fd(), FULL_READ - 1),
            "a short read asks nothing"
        );
        let grew = growth.after_read(r.as_fd(), FULL_READ);
        if cfg!(target_os = "linux") {
            assert!(grew, "a full read grows the pipe on Linux");
            assert!(growth.holds);
            let took = capacity(w);
            assert!(took >= BULK_PIPE, "the pipe took only {took} bytes");
        }
        assert!(!growth.after_read(r.as_fd(), FULL_READ), "asked once only");
    }

    #[test]
    fn a_socket_is_not_grown_and_holds_no_place() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let mut growth = Growth::default();
        assert!(!growth.after_read(a.as_fd(), FULL_READ));
        assert!(!growth.holds);
    }
}
