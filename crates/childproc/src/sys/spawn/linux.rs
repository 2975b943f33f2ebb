//! The Linux process-creation engine.
//!
//! Every child is created with `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)`: the child runs on
//! a small stack of its own inside the parent's address space until it calls `execve`, so no
//! page tables are copied however big the parent is, and the pidfd exists from the first
//! instant (no window in which the PID could be reaped and reused).
//!
//! Rules for the child side (between `clone` and `execve`), which shares the parent's memory:
//! - everything it touches was allocated by the parent before `clone`; it allocates nothing;
//! - it calls only async-signal-safe functions, and raw syscalls for the credential changes
//!   (glibc's `setuid` would try to signal the *parent's* threads);
//! - all signals are blocked in the parent across `clone`, and the child resets every
//!   disposition to the default before unblocking, so no parent handler ever runs in it;
//! - it reports a failure by writing `(stage, errno)` into the parent's [`ChildCtx`] and
//!   calling `_exit(127)`; the parent reads it once `clone` returns (`CLONE_VFORK` suspends
//!   the calling thread until the child has exec'd or exited).

use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{
    errno, reap_failed, run_child, AllSignalsBlocked, ChildError, ChildPlan, SpawnFailure,
    SpawnPlan, Stage,
};
use crate::sys::process::{pidfd_open, Process, PIDFD_DISABLED};

/// What the child reads and where it reports, in the parent's frame (alive until `clone`
/// returns, and `clone` returns only once the child has exec'd or exited).
struct ChildCtx<'a> {
    child: ChildPlan<'a>,
    /// Written by the child on failure: `(stage, errno)`.
    failure: Option<ChildError>,
}

static CLONE_PIDFD_UNSUPPORTED: AtomicBool = AtomicBool::new(false);

const STACK_WORDS: usize = 64 * 1024 / 16;

thread_local! {
    /// The child's stack. One per thread: a thread is suspended while its child uses it.
    static STACK: RefCell<Vec<u128>> = const { RefCell::new(Vec::new()) };
}

/// Creates a child as `plan` says. On success the child has exec'd the program.
pub(super) fn spawn(plan: &SpawnPlan<'_>) -> Result<Process, SpawnFailure> {
    let mut ctx = ChildCtx {
        child: ChildPlan::new(plan)?,
        failure: None,
    };

    let (pid, pidfd) = STACK.with(|stack| {
        let mut stack = stack.borrow_mut();
        if stack.is_empty() {
            stack.resize(STACK_WORDS, 0);
        }
        clone_child(&mut ctx, stack.as_mut_ptr_range().end.cast())
    })?;

    // SAFETY: `clone` with CLONE_VFORK returned, so the child has exec'd or exited and no
    // longer touches `ctx`; the volatile read keeps the compiler from assuming it unchanged.
    let failure = unsafe { ptr::read_volatile(&ctx.failure) };
    if let Some((stage, errno)) = failure {
        reap_failed(pid);
        drop(pidfd);
        return Err(SpawnFailure {
            stage,
            error: io::Error::from_raw_os_error(errno),
        });
    }
    let pidfd = pidfd.or_else(|| pidfd_open(pid));
    Ok(Process::new(pid, pidfd))
}

/// Runs `clone` with all signals blocked; returns the pid and the pidfd if the kernel gave one.
fn clone_child(
    ctx: &mut ChildCtx<'_>,
    stack_top: *mut c_void,
) -> Result<(libc::pid_t, Option<OwnedFd>), SpawnFailure> {
    let want_pidfd =
        !CLONE_PIDFD_UNSUPPORTED.load(Ordering::Relaxed) && !PIDFD_DISABLED.load(Ordering::Relaxed);
    let blocked = AllSignalsBlocked::new();
    let mut result = clone_raw(ctx, stack_top, want_pidfd);
    if want_pidfd && matches!(&result, Err(e) if e.raw_os_error() == Some(libc::EINVAL)) {
        // Kernels before 5.2 reject CLONE_PIDFD; remember and use pidfd_open instead.
        CLONE_PIDFD_UNSUPPORTED.store(true, Ordering::Relaxed);
        result = clone_raw(ctx, stack_top, false);
    }
    drop(blocked);
    result.map_err(SpawnFailure::prepare)
}

fn clone_raw(
    ctx: &mut ChildCtx<'_>,
    stack_top: *mut c_void,
    pidfd: bool,
) -> io::Result<(libc::pid_t, Option<OwnedFd>)> {
    let mut flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
    if pidfd {
        flags |= libc::CLONE_PIDFD;
    }
    let mut fd: c_int = -1;
    // SAFETY: `child_entry` only reads `ctx` (alive: this frame waits for the child thanks
    // to CLONE_VFORK) and writes `ctx.failure`; `stack_top` is the 16-byte-aligned end of a
    // 64 KiB buffer owned by this thread and unused until clone returns; with CLONE_PIDFD the
    // kernel stores the pidfd through the parent_tid pointer, which points at `fd`.
    let pid = unsafe {
        libc::clone(
            child_entry,
            stack_top,
            flags,
            (ctx as *mut ChildCtx<'_>).cast(),
            &mut fd as *mut c_int,
        )
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: with CLONE_PIDFD the kernel returned a new fd in `fd` that nothing else owns.
    let pidfd = (pidfd && fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) });
    Ok((pid, pidfd))
}

/// The child side. Runs on the borrowed stack in the parent's memory until `execve`.
extern "C" fn child_entry(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `ChildCtx` the parent passed to clone; it outlives this call.
    let ctx = unsafe { &mut *arg.cast::<ChildCtx<'_>>() };
    // SAFETY: we are the child between clone and exec, exactly what `child_main` is for.
    let failure = unsafe { child_main(ctx) };
    // SAFETY: a volatile write to the parent's ctx, read by the parent after we exit.
    unsafe { ptr::write_volatile(&mut ctx.failure, Some(failure)) };
    // SAFETY: _exit ends this process without running any parent-owned destructors.
    unsafe { libc::_exit(127) }
}

/// Prepares the child and execs. Returns only on failure, with the stage and errno.
///
/// # Safety
/// Must only run in a freshly cloned child as described in the module docs.
unsafe fn child_main(ctx: &ChildCtx<'_>) -> ChildError {
    let c = &ctx.child;
    // Everything above the highest target is closed now, not at exec: one `close_range`
    // call, or a `close` loop on kernels before 5.9. Closing early matters: until it closes
    // them, this child holds copies of every fd the parent has open, including the child
    // ends of pipes and IPC sockets another thread is handing to *its* child, and would
    // delay the EOF those show when that other child exits (and, for a channel, the order
    // of its `Disconnect` and `Exit`) for as long as this child takes to reach exec.
    let close_rest = || {
        // SAFETY: close_range and close only touch the child's own fd table (no
        // CLONE_FILES), which holds nothing the rest of this function needs above the
        // targets.
        unsafe {
            let r = libc::syscall(
                libc::SYS_close_range,
                c.fds.keep_below as libc::c_uint,
                libc::c_uint::MAX,
                0 as libc::c_uint,
            );
            if r != 0 {
                for fd in c.fds.keep_below..c.fd_limit {
                    libc::close(fd);
                }
            }
        }
    };
    // Raw syscalls: glibc's wrappers would try to signal the parent's threads, whose memory
    // this child shares.
    let set_ids = |uid: Option<u32>, gid: Option<u32>| {
        // SAFETY: credential syscalls on the calling process; a null list with size 0.
        unsafe {
            // Drop supplementary groups as Node does; EPERM (not root) is not fatal.
            libc::syscall(libc::SYS_setgroups, 0, ptr::null::<libc::gid_t>());
            if let Some(gid) = gid {
                if libc::syscall(libc::SYS_setgid, gid) != 0 {
                    return Err((Stage::Gid, errno()));
                }
            }
            if let Some(uid) = uid {
                if libc::syscall(libc::SYS_setuid, uid) != 0 {
                    return Err((Stage::Uid, errno()));
                }
            }
        }
        Ok(())
    };
    // SAFETY: we are the child between clone and exec with every signal blocked, and both
    // closures make only async-signal-safe syscalls.
    unsafe { run_child(c, close_rest, set_ids) }
}
