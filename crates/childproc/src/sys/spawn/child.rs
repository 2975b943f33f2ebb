//! The child side that both engines share, from creation to `execve`: run in a new child with
//! every signal blocked, async-signal-safe, allocating nothing.

use std::ffi::CStr;
use std::ptr;

use super::{errno, ChildError, ChildPlan, Stage};

/// The shell of `execvp`'s `ENOEXEC` fallback.
pub(super) const BIN_SH: &CStr = c"/bin/sh";

/// Every signal disposition back to the default, so no parent handler can run in the child
/// and no signal the parent ignores (Rust programs ignore SIGPIPE; a parent may have inherited
/// more) stays ignored after exec.
///
/// # Safety
/// Only in a new child between creation and exec, with every signal blocked.
unsafe fn reset_signal_dispositions() {
    // Raw rt_sigaction, because glibc's wrapper refuses its reserved signals 32 and 33, which
    // a parent can still have inherited as ignored. An all-zero kernel sigaction is SIG_DFL
    // with no flags and an empty mask, whatever the struct's layout.
    #[cfg(target_os = "linux")]
    for sig in 1..=64 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            let dfl = [0u64; 4];
            // SAFETY: rt_sigaction reads a live, zeroed kernel sigaction (the caller's
            // contract makes changing dispositions safe).
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    dfl.as_ptr(),
                    ptr::null_mut::<u64>(),
                    8usize,
                )
            };
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        // sigaction refuses the numbers that name no signal; FreeBSD has up to 128.
        const LAST_SIGNAL: libc::c_int = 128;
        // SAFETY: sigaction is plain data; an all-zero one with SIG_DFL and an empty mask is
        // the default disposition; sigaction only reads it (the caller's contract as above).
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&mut dfl.sa_mask);
            for sig in 1..=LAST_SIGNAL {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    libc::sigaction(sig, &dfl, ptr::null_mut());
                }
            }
        }
    }
}

/// Whether this OS can signal a child when its parent dies.
pub(crate) const PARENT_DEATH_SUPPORTED: bool =
    cfg!(any(target_os = "linux", target_os = "freebsd"));

/// Asks for SIGKILL when the parent dies, then checks the parent is still `parent_pid`: one
/// that died before the request took effect would never signal, so the child gives up now.
///
/// # Safety
/// Only in a new child between creation and exec.
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
unsafe fn parent_death_signal(parent_pid: libc::pid_t) -> Result<(), ChildError> {
    // SAFETY: prctl/procctl on the calling process with a pointer to a live int; getppid and
    // _exit are async-signal-safe.
    unsafe {
        #[cfg(target_os = "linux")]
        let r = libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        #[cfg(target_os = "freebsd")]
        let r = {
            let mut sig: libc::c_int = libc::SIGKILL;
            libc::procctl(
                libc::P_PID,
                libc::getpid() as libc::id_t,
                libc::PROC_PDEATHSIG_CTL,
                (&mut sig as *mut libc::c_int).cast(),
            )
        };
        if r < 0 {
            return Err((Stage::ParentDeath, errno()));
        }
        if libc::getppid() != parent_pid {
            libc::_exit(127);
        }
    }
    Ok(())
}

/// Where the OS has no parent-death signal: the parent refuses such a plan before creating a
/// child (with a message naming the option), so this is never reached.
///
/// # Safety
/// None needed; `unsafe` only to match the other platforms' signature.
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
unsafe fn parent_death_signal(_parent_pid: libc::pid_t) -> Result<(), ChildError> {
    Err((Stage::ParentDeath, libc::ENOTSUP))
}

/// The child side of either engine, from creation to `execve`: signal dispositions reset,
/// `setsid`/`setpgid`, the parent-death signal, the fds installed (moves, gaps closed), then
/// `close_rest` for every fd above the highest target, the controlling terminal, `set_ids` (supplementary groups
/// dropped, gid, uid) when ids are asked for, `chdir`, every signal unblocked, `execve`.
/// Returns only on failure, with the stage and errno.
///
/// # Safety
/// Only in a new child between creation and exec, with every signal blocked; `close_rest` and
/// `set_ids` must be async-signal-safe and allocate nothing, as everything here.
pub(super) unsafe fn run_child(
    c: &ChildPlan<'_>,
    close_rest: impl Fn(),
    set_ids: impl Fn(Option<u32>, Option<u32>) -> Result<(), ChildError>,
) -> ChildError {
    let p = c.plan;
    // SAFETY: async-signal-safe calls on data the parent prepared (the caller's contract);
    // dup2/fcntl/close on the numbers the fd plan holds; the strings are NUL-terminated and
    // the arrays NULL-terminated.
    let prepare = || unsafe {
        reset_signal_dispositions();
        if p.setsid && libc::setsid() < 0 {
            return Err((Stage::Setsid, errno()));
        }
        if let Some(pgid) = p.pgid {
            if libc::setpgid(0, pgid) < 0 {
                return Err((Stage::Pgid, errno()));
            }
        }
        if c.parent_pid != 0 {
            parent_death_signal(c.parent_pid)?;
        }
        for &(src, target) in &c.fds.moves {
            let r = if src == target {
                libc::fcntl(target, libc::F_SETFD, 0)
            } else {
                libc::dup2(src, target)
            };
            if r < 0 {
                return Err((Stage::Fds, errno()));
            }
        }
        for &fd in &c.fds.closes {
            libc::close(fd);
        }
        close_rest();
        if let Some(tty) = p.controlling_tty {
            // The session is new (setsid above) and has no terminal yet: this one becomes it.
            if libc::ioctl(tty, libc::TIOCSCTTY as _, 0) < 0 {
                return Err((Stage::Terminal, errno()));
            }
        }
        if p.uid.is_some() || p.gid.is_some() {
            set_ids(p.uid, p.gid)?;
        }
        if let Some(cwd) = &p.cwd {
            if libc::chdir(cwd.as_ptr()) != 0 {
                return Err((Stage::Chdir, errno()));
            }
        }
        Ok(())
    };
    if let Err(failure) = prepare() {
        return failure;
    }
    // SAFETY: as above; the dispositions are the defaults by now.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, ptr::null_mut());
        libc::execve(p.path.as_ptr(), c.argv.as_ptr(), c.envp.array);
        let err = errno();
        if err != libc::ENOEXEC {
            return (Stage::Exec, err);
        }
        // A file the kernel cannot execute (a script without `#!`): `/bin/sh` runs it, as
        // `execvp` does. Its own failure reports the original ENOEXEC.
        libc::execve(BIN_SH.as_ptr(), c.sh_argv.as_ptr(), c.envp.array);
    }
    (Stage::Exec, libc::ENOEXEC)
}
