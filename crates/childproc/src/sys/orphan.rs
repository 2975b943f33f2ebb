//! Children nobody is left to reap: their [`Process`] was dropped before the exit was reaped
//! (the tokio runtime that watched them shut down, or dropped the watcher task). They are
//! handed to one reaper thread, started on the first orphan and gone once none is left, so a
//! child never stays a zombie for the rest of the process, whichever runtime (or none) is
//! left. tokio keeps such orphans in a queue that a later runtime reaps on SIGCHLD; a thread
//! needs no runtime at all.
//!
//! The thread waits in `poll(2)` on the orphans' pidfds and on a wake pipe (written when an
//! orphan arrives); orphans without a pidfd (old kernels, other Unixes) are checked every
//! [`NO_PIDFD_POLL`].

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::fd::PollSet;
use super::process::Process;

/// How often orphans without a pidfd are checked.
const NO_PIDFD_POLL: Duration = Duration::from_millis(50);

struct Orphans {
    list: Vec<Process>,
    /// A reaper thread runs (it clears this when it leaves, under the lock).
    running: bool,
}

static ORPHANS: Mutex<Orphans> = Mutex::new(Orphans {
    list: Vec::new(),
    running: false,
});

/// Both ends of the reaper's wake-up socket pair (non-blocking), made once.
fn wake_pair() -> Option<&'static (UnixStream, UnixStream)> {
    static PAIR: OnceLock<Option<(UnixStream, UnixStream)>> = OnceLock::new();
    PAIR.get_or_init(|| {
        let (a, b) = UnixStream::pair().ok()?;
        a.set_nonblocking(true).ok()?;
        b.set_nonblocking(true).ok()?;
        Some((a, b))
    })
    .as_ref()
}

fn lock() -> std::sync::MutexGuard<'static, Orphans> {
    ORPHANS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes an unreaped child whose owner is gone; it is reaped as soon as it exits.
pub(super) fn adopt(process: Process) {
    let mut orphans = lock();
    orphans.list.push(process);
    if orphans.running {
        if let Some((tx, _)) = wake_pair() {
            let _ = (&*tx).write(&[1]);
        }
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("childproc-reaper".into())
        .spawn(reap_orphans);
    // Without a thread (out of resources) the orphans wait for the next one.
    orphans.running = spawned.is_ok();
    tracing::debug!(count = orphans.list.len(), "orphaned child: reaper started");
}

/// The reaper thread: reaps what has exited, waits for the rest, leaves when none is left.
fn reap_orphans() {
    let mut poll = PollSet::default();
    loop {
        let (pidfds, without_pidfd) = {
            let mut orphans = lock();
            // Reaped (`Some`), or not ours to reap any more (an error such as ECHILD).
            orphans.list.retain(|p| matches!(p.try_wait(), Ok(None)));
            if orphans.list.is_empty() {
                orphans.running = false;
                return;
            }
            let pidfds: Vec<RawFd> = orphans
                .list
                .iter()
                .filter_map(|p| p.pidfd().map(|fd| fd.as_raw_fd()))
                .collect();
            let without = pidfds.len() < orphans.list.len();
            (pidfds, without)
        };
        poll.clear();
        let wake = wake_pair();
        if let Some((_, rx)) = wake {
            poll.add(rx.as_fd(), true);
        }
        for &fd in &pidfds {
            // SAFETY: only this thread removes (and so drops) orphans, so every pidfd listed
            // above stays open until the next turn of this loop.
            poll.add(unsafe { BorrowedFd::borrow_raw(fd) }, true);
        }
        let timeout = (without_pidfd || wake.is_none()).then_some(NO_PIDFD_POLL);
        if poll.wait(timeout).is_err() {
            std::thread::sleep(NO_PIDFD_POLL);
        }
        if let Some((_, rx)) = wake {
            drain(rx);
        }
    }
}

fn drain(mut rx: &UnixStream) {
    let mut buf = [0u8; 64];
    while matches!(rx.read(&mut buf), Ok(n) if n > 0) {}
}
