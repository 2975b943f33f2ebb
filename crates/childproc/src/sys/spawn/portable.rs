//! The portable process-creation engine: `fork` + `execve`, for every Unix.
//!
//! The only engine on Unixes other than Linux; on Linux it runs when a test forces it, so the
//! suite proves it on the tested target. `fork` rather than `posix_spawn`: no `posix_spawn`
//! covers every option on every Unix (uid/gid and supplementary groups nowhere, the
//! parent-death signal nowhere, `chdir` and "close every other fd" only as recent
//! extensions), and one path for every option is one path to test (docs/design.md).
//!
//! Rules for the child side (between `fork` and `execve`). The child is a copy of a possibly
//! multi-threaded parent in which only the forking thread survives, so a lock another thread
//! held (malloc's, stdio's) may be held forever:
//! - everything it reads was prepared by the parent before `fork` (C strings, pointer
//!   arrays, the fd plan, the fd limit); it allocates nothing and never panics;
//! - it calls only async-signal-safe functions;
//! - all signals are blocked in the parent across `fork`; the child resets every
//!   disposition to the default before unblocking, right before `execve`, so no parent handler
//!   ever runs in it and no ignored signal stays ignored in the program;
//! - it reports a failure by writing `(stage, errno)` as two native-endian `c_int`s to the
//!   write end of a close-on-exec pipe and calling `_exit(127)`. The parent reads the pipe to
//!   its end: nothing means `execve` succeeded (and closed the pipe), 8 bytes name the failure.

use std::ffi::c_int;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr;

use super::{
    errno, reap_failed, run_child, AllSignalsBlocked, ChildError, ChildPlan, SpawnFailure,
    SpawnPlan, Stage, PARENT_DEATH_SUPPORTED,
};
use crate::sys::fd::{dup_at_least, pipe};
use crate::sys::process::Process;

/// Creates a child as `plan` says. On success the child has exec'd the program.
pub(super) fn spawn(plan: &SpawnPlan<'_>) -> Result<Process, SpawnFailure> {
    if plan.kill_on_parent_death && !PARENT_DEATH_SUPPORTED {
        return Err(SpawnFailure {
            stage: Stage::ParentDeath,
            error: io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "kill_on_parent_death is not supported on {}: it has no parent-death signal",
                    std::env::consts::OS
                ),
            ),
        });
    }
    let child = ChildPlan::new(plan)?;
    let (report_read, piped_write) = pipe().map_err(SpawnFailure::prepare)?;
    // Above every target, so no dup2 in the child can overwrite it and the close loop can
    // step over it. Close-on-exec, so a successful exec closes it. Only this copy may stay
    // open: the read below ends when every write end is closed.
    let report_write = dup_at_least(piped_write.as_raw_fd(), child.fds.keep_below)
        .map_err(SpawnFailure::prepare)?;
    drop(piped_write);
    let report_fd = report_write.as_raw_fd();

    let blocked = AllSignalsBlocked::new();
    // SAFETY: the child branch runs only `child_main` (async-signal-safe, no allocation, on
    // data prepared above) and ends in `_exit` or a successful `execve`: it never returns into
    // Rust code that could touch state another thread of the parent owned.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: we are the new child, exactly what `child_main` is for.
        let failure = unsafe { child_main(&child, report_fd) };
        report(report_fd, failure);
    }
    drop(blocked);
    if pid < 0 {
        return Err(SpawnFailure::prepare(io::Error::last_os_error()));
    }
    // Our copy of the write end must go, or the read below would never see the end.
    drop(report_write);
    match read_report(report_read) {
        Ok(None) => Ok(Process::new(pid, None)),
        Ok(Some((stage, errno))) => {
            reap_failed(pid);
            Err(SpawnFailure {
                stage,
                error: io::Error::from_raw_os_error(errno),
            })
        }
        Err(e) => {
            // The child's state is unknown: do not leave it running unwatched.
            // SAFETY: `pid` is our unreaped child, so the PID cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            reap_failed(pid);
            Err(SpawnFailure::prepare(e))
        }
    }
}

/// Child side: writes `(stage, errno)` to the error pipe and exits.
fn report(fd: c_int, (stage, errno): ChildError) -> ! {
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&stage.code().to_ne_bytes());
    bytes[4..].copy_from_slice(&errno.to_ne_bytes());
    // SAFETY: write(2) from a live stack buffer (8 bytes, below PIPE_BUF: one atomic write),
    // then _exit, which runs no destructor or atexit handler of the parent's copy.
    unsafe {
        libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(127)
    }
}

/// Parent side: reads the error pipe to its end. `None`: the child exec'd.
fn read_report(fd: OwnedFd) -> io::Result<Option<ChildError>> {
    let mut bytes = Vec::with_capacity(8);
    std::fs::File::from(fd).read_to_end(&mut bytes)?;
    match bytes.len() {
        0 => Ok(None),
        8 => {
            let word = |at: usize| c_int::from_ne_bytes([0, 1, 2, 3].map(|i| bytes[at + i]));
            let stage = Stage::from_code(word(0))
                .ok_or_else(|| io::Error::other("the child reported an unknown spawn stage"))?;
            Ok(Some((stage, word(4))))
        }
        n => Err(io::Error::other(format!(
            "the child wrote a {n}-byte spawn report (8 expected)"
        ))),
    }
}

/// Prepares the child and execs. Returns only on failure, with the stage and errno.
///
/// # Safety
/// Must only run in a freshly forked child as described in the module docs.
unsafe fn child_main(c: &ChildPlan<'_>, report_fd: c_int) -> ChildError {
    // SAFETY: closes fds of the child's own table (see `close_from`).
    let close_rest = || unsafe { close_from(c.fds.keep_below, report_fd, c.fd_limit) };
    // libc's wrappers are fine here: the forked child has one thread and memory of its own.
    let set_ids = |uid: Option<u32>, gid: Option<u32>| {
        // SAFETY: credential calls on the calling process; a null list with size 0.
        unsafe {
            // Drop supplementary groups as Node does; EPERM (not root) is not fatal.
            libc::setgroups(0, ptr::null());
            if let Some(gid) = gid {
                if libc::setgid(gid) != 0 {
                    return Err((Stage::Gid, errno()));
                }
            }
            if let Some(uid) = uid {
                if libc::setuid(uid) != 0 {
                    return Err((Stage::Uid, errno()));
                }
            }
        }
        Ok(())
    };
    // SAFETY: we are the child between fork and exec with every signal blocked, and both
    // closures make only async-signal-safe calls.
    unsafe { run_child(c, close_rest, set_ids) }
}

/// Closes every fd from `low` up except `keep` (the error pipe, which exec closes): a loop up
/// to `keep`, then `closefrom` where libc has it, else a loop up to `limit`.
///
/// # Safety
/// Only in a new child between creation and exec.
unsafe fn close_from(low: c_int, keep: c_int, limit: c_int) {
    // SAFETY: close(2) on numbers in our own (the child's) fd table (the caller's contract).
    unsafe {
        for fd in low..keep {
            libc::close(fd);
        }
        #[cfg(any(
            target_os = "freebsd",
            target_os = "dragonfly",
            target_os = "netbsd",
            target_os = "openbsd"
        ))]
        {
            let _ = limit;
            libc::closefrom(keep + 1);
        }
        #[cfg(not(any(
            target_os = "freebsd",
            target_os = "dragonfly",
            target_os = "netbsd",
            target_os = "openbsd"
        )))]
        for fd in keep + 1..limit {
            libc::close(fd);
        }
    }
}
