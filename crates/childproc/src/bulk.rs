//! Reading a child's whole output fast: what the buffered runners (exec, exec_file, a
//! pipeline's output, the sync trio) do once a child proves to write in bulk, that is once a
//! read finds its pipe full.
//!
//! - **A bigger pipe.** A child writing faster than one 64 KiB pipe-full per wake-up keeps
//!   the reader and the writer taking turns on the pipe's lock. With a 1 MiB pipe both run
//!   at once.
//! - **The buffer faulted in ahead of the reads.** The reads go straight into the output's
//!   `Vec`, with no copy. But a read into fresh memory faults its pages in one by one inside
//!   `read(2)`, holding the pipe's lock while the writer waits for it. So the next
//!   [`AHEAD`] bytes of the buffer are faulted in before each read, outside the lock.
//! - **Only under a large limit.** The pipe is grown only while `maxBuffer` is at least
//!   [`GROW_ROOM`] (64 MiB) off, so a child writing a little more than a smaller limit is
//!   killed at it as in Node (it cannot finish into a big pipe first).
//!
//! Together: about 1.3× the throughput of exec_file and 2× of exec_file_sync on this
//! project's bench machine (docs/benchmarks.md).
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

/// How far past what has been read the buffer is kept faulted in: two grown pipe-fulls.
const AHEAD: usize = 2 * BULK_PIPE;

/// A pipe is grown only while the limit on what its reader keeps (`maxBuffer`) is at least
/// this far off. Node's 64 KiB pipe keeps a child that writes a little more than the limit
/// blocked until the limit kills it; with a 1 MiB pipe such a child could finish into the
/// pipe and exit by itself first. A grown pipe cannot be shrunk back reliably while a fast
/// writer keeps it full (`F_SETPIPE_SZ` refuses a size below what the pipe holds), so the
/// pipe is grown only for limits this large, where a child writing within 1 MiB of the limit
/// is the rare case (docs/node-mapping.md, `maxBuffer`).
const GROW_ROOM: usize = 64 * BULK_PIPE;

/// Grown pipes the process may hold at once: a quarter of the default per-user limit.
const MAX_GROWN: usize = 16;

static GROWN: AtomicUsize = AtomicUsize::new(0);

/// One reader of a child's whole output: whether the child writes in bulk (a read found
/// the pipe full), its claim on a bigger pipe, and how much of its buffer is faulted in.
#[derive(Debug, Default)]
pub(crate) struct Bulk {
    /// A read found the pipe full.
    bulk: bool,
    /// The pipe was grown once already (it is not grown twice).
    grew: bool,
    /// Holds one of the [`MAX_GROWN`] places: the pipe is `BULK_PIPE` now.
    holds: bool,
    /// The buffer's address when it was last faulted in, and up to which length.
    faulted: (usize, usize),
}

impl Bulk {
    /// After a read of `n` bytes from `fd`, with `room` bytes left before the reader's
    /// limit: grows the pipe once, the first time a read finds it full while the limit is
    /// at least [`GROW_ROOM`] off, if a place is free and the kernel agrees.
    pub(crate) fn after_read(&mut self, fd: BorrowedFd<'_>, n: usize, room: usize) {
        self.bulk |= n >= FULL_READ;
        if !self.bulk || self.grew || room < GROW_ROOM {
            return;
        }
        self.grew = true;
        let claimed = GROWN
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < MAX_GROWN).then_some(held + 1)
            })
            .is_ok();
        if !claimed {
            return;
        }
        self.holds = true;
        // Refused (not a pipe, over the user's limit, a lower pipe-max-size): the place goes
        // back and the pipe keeps its size.
        if !crate::sys::resize_pipe(fd, BULK_PIPE).is_ok_and(|size| size >= BULK_PIPE) {
            self.release();
        }
    }

    /// Gives the place back.
    fn release(&mut self) {
        if std::mem::take(&mut self.holds) {
            GROWN.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Before a read into the spare capacity of `bytes`: once the child has written in bulk,
    /// keeps the next [`AHEAD`] bytes of it faulted in (refreshed a pipe-full at a time).
    /// A small output never gets here: its first read did not fill the pipe.
    pub(crate) fn before_read(&mut self, bytes: &mut Vec<u8>) {
        if !self.bulk {
            return;
        }
        let (base, len) = (bytes.as_ptr() as usize, bytes.len());
        if self.faulted.0 != base || self.faulted.1 < len {
            // Moved (a reallocation need not carry spare pages over) or not yet begun.
            self.faulted = (base, len);
        }
        if self.faulted.1 - len >= BULK_PIPE {
            return;
        }
        let to = len.saturating_add(AHEAD).min(bytes.capacity());
        let from = self.faulted.1;
        if to > from {
            crate::sys::prefault(&mut bytes.spare_capacity_mut()[from - len..to - len]);
            self.faulted.1 = to;
        }
    }
}

impl Drop for Bulk {
    fn drop(&mut self) {
        self.release();
    }
}

/// Makes room in `bytes` for the next read when little is left: grows it by its current
/// length (64 KiB to 64 MiB at a time), never more than one [`FULL_READ`] past `max`, what
/// the limit lets a reader keep.
pub(crate) fn make_room(bytes: &mut Vec<u8>, max: usize) {
    if bytes.capacity() - bytes.len() >= 16 * 1024 {
        return;
    }
    let step = bytes.len().clamp(FULL_READ, 64 * 1024 * 1024);
    let room = max
        .saturating_add(FULL_READ)
        .saturating_sub(bytes.len())
        .max(1);
    bytes.reserve_exact(step.min(room));
}

/// At the end of the output: gives back what the last [`make_room`] reserved beyond it, so
/// a 1 GiB output is not kept in a 2 GiB buffer (large blocks shrink in place).
pub(crate) fn trim(bytes: &mut Vec<u8>) {
    if bytes.capacity() - bytes.len() > FULL_READ {
        bytes.shrink_to_fit();
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

    /// Far from any limit.
    const FAR: usize = usize::MAX;

    #[test]
    fn grows_once_when_a_read_finds_the_pipe_full() {
        let (r, w) = crate::sys::pipe().expect("pipe");
        let mut bulk = Bulk::default();
        bulk.after_read(r.as_fd(), FULL_READ - 1, FAR);
        assert!(!bulk.grew && !bulk.holds, "a short read asks nothing");
        bulk.after_read(r.as_fd(), FULL_READ, FAR);
        assert!(bulk.grew, "a full read asks once");
        if cfg!(target_os = "linux") {
            assert!(bulk.holds, "a full read grows the pipe on Linux");
            let took = capacity(w);
            assert!(took >= BULK_PIPE, "the pipe took only {took} bytes");
        }
    }

    #[test]
    fn under_a_smaller_limit_the_pipe_is_not_grown_but_is_faulted_in_ahead() {
        let (r, w) = crate::sys::pipe().expect("pipe");
        let mut bulk = Bulk::default();
        bulk.after_read(r.as_fd(), FULL_READ, GROW_ROOM - 1);
        assert!(!bulk.holds && !bulk.grew, "too near the limit to grow");
        assert!(bulk.bulk, "but it is a bulk output: faulted in ahead");
        assert!(capacity(w) <= FULL_READ, "the pipe kept its size");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_buffer_is_faulted_in_ahead_only_once_the_pipe_was_found_full() {
        let (r, _w) = crate::sys::pipe().expect("pipe");
        let mut bytes: Vec<u8> = Vec::with_capacity(16 << 20);
        bytes.extend_from_slice(&[1u8; 1000]);
        let mut bulk = Bulk::default();
        bulk.before_read(&mut bytes);
        let (resident, pages) = crate::sys::resident_pages(&bytes.spare_capacity_mut()[..AHEAD]);
        assert!(resident < pages, "a small output faults nothing in ahead");
        bulk.after_read(r.as_fd(), FULL_READ, FAR);
        bulk.before_read(&mut bytes);
        let (resident, pages) = crate::sys::resident_pages(&bytes.spare_capacity_mut()[..AHEAD]);
        assert_eq!(resident, pages, "the next {AHEAD} bytes are resident");
        let (beyond, pages) = crate::sys::resident_pages(&bytes.spare_capacity_mut()[2 * AHEAD..]);
        assert!(beyond < pages, "not further than that");
        // A pipe-full read later, the window moves on with the reads.
        bytes.extend_from_slice(&vec![2u8; BULK_PIPE + 4096]);
        bulk.before_read(&mut bytes);
        let (resident, pages) = crate::sys::resident_pages(&bytes.spare_capacity_mut()[..AHEAD]);
        assert_eq!(resident, pages, "the window follows the reads");
        assert_eq!(bytes[..1000], [1u8; 1000], "what was read is untouched");
    }

    #[test]
    fn room_is_never_more_than_one_read_past_the_limit() {
        let mut bytes = Vec::new();
        let max = 100_000;
        while bytes.len() < max + FULL_READ {
            make_room(&mut bytes, max);
            assert!(bytes.capacity() <= max + FULL_READ, "{}", bytes.capacity());
            let spare = bytes.capacity() - bytes.len();
            bytes.resize(bytes.len() + spare, 0);
        }
        make_room(&mut bytes, max);
        assert!(
            bytes.capacity() > bytes.len(),
            "always room for one more read"
        );
        let mut big = vec![0u8; 3 << 20];
        big.reserve_exact(8 << 20);
        trim(&mut big);
        assert_eq!(big.capacity(), 3 << 20, "the end gives the slack back");
    }

    #[test]
    fn a_socket_is_not_grown_and_holds_no_place() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let mut bulk = Bulk::default();
        bulk.after_read(a.as_fd(), FULL_READ, FAR);
        assert!(!bulk.holds);
    }
}
