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
use std::ffi::{c_int, c_void, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::fd::{dup_at_least, is_open_raw};
use super::process::{pidfd_open, Process, PIDFD_DISABLED};

/// Child fd number → the parent's fd to install there (kept open by the caller during spawn).
pub(crate) type FdMap<'a> = Vec<(RawFd, BorrowedFd<'a>)>;

/// What to create. Built by `command.rs`; every allocation the child needs is in here.
pub(crate) struct SpawnPlan<'a> {
    /// The resolved executable path (PATH lookup already done).
    pub path: CString,
    /// argv, argv[0] included.
    pub argv: Vec<CString>,
    /// The complete environment, `KEY=VALUE`.
    pub envp: Vec<CString>,
    /// Directory to change to before exec.
    pub cwd: Option<CString>,
    /// The child's fds. Every fd not in here is closed in the child.
    pub fds: FdMap<'a>,
    /// Start a new session (`setsid`): Node's `detached`.
    pub setsid: bool,
    /// Join or create a process group (`setpgid(0, pgid)`; 0 = a new group led by the child).
    pub pgid: Option<i32>,
    /// Send SIGKILL to the child when the thread that created it dies (PR_SET_PDEATHSIG);
    /// `spawn_kept` runs creation on a thread that lives as long as the process.
    pub kill_on_parent_death: bool,
    /// User id to switch to.
    pub uid: Option<u32>,
    /// Group id to switch to.
    pub gid: Option<u32>,
}

/// Where creation failed, so the caller can name the right thing in the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Parent-side preparation (dup, stack, clone itself).
    Prepare,
    /// `setsid`.
    Setsid,
    /// `setpgid`.
    Pgid,
    /// `prctl(PR_SET_PDEATHSIG)`.
    ParentDeath,
    /// Installing the stdio fds.
    Fds,
    /// `setgid`.
    Gid,
    /// `setuid`.
    Uid,
    /// `chdir` to the cwd.
    Chdir,
    /// `execve`.
    Exec,
}

/// A failed spawn: the stage and the OS error.
#[derive(Debug)]
pub(crate) struct SpawnFailure {
    pub stage: Stage,
    pub error: io::Error,
}

impl SpawnFailure {
    fn prepare(error: io::Error) -> Self {
        SpawnFailure {
            stage: Stage::Prepare,
            error,
        }
    }
}

/// Everything the child reads, as raw pointers into the parent's allocations.
struct ChildCtx {
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    /// `(source, target)` pairs: `dup2(source, target)`, or clear CLOEXEC when equal.
    moves: *const (c_int, c_int),
    n_moves: usize,
    /// fds below `keep_below` that were not configured: closed.
    closes: *const c_int,
    n_closes: usize,
    /// Every fd at or above this is made close-on-exec.
    keep_below: c_int,
    /// Upper bound for the close-on-exec loop when `close_range` is unavailable.
    fd_limit: c_int,
    setsid: bool,
    pgid: Option<i32>,
    /// The parent's pid when `kill_on_parent_death` is set (0 otherwise).
    parent_pid: libc::pid_t,
    uid: Option<u32>,
    gid: Option<u32>,
    /// Written by the child on failure: `(stage, errno)`.
    failure: Option<(Stage, c_int)>,
}

static CLONE_PIDFD_UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// Children created through the vfork-class path (every child, on Linux): read by tests
/// through `childproc::__engine_stats`, to prove no option falls back to fork.
pub(crate) static VFORK_SPAWNS: AtomicU64 = AtomicU64::new(0);

/// The engine's name, for tracing and tests.
pub(crate) const ENGINE: &str = "clone-vfork";

/// Runs [`spawn`] on a thread that lives as long as the process, so a parent-death signal
/// (tied by the kernel to the creating *thread*) fires only when the whole parent dies, not
/// when a tokio worker or blocking thread exits.
pub(crate) fn spawn_kept(plan: &SpawnPlan<'_>) -> Result<Process, SpawnFailure> {
    type Job = (
        usize,
        std::sync::mpsc::SyncSender<Result<Process, SpawnFailure>>,
    );
    static KEEPER: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("childproc-keeper".into())
            .spawn(move || {
                for (plan, reply) in rx {
                    // SAFETY: the sender blocks on `reply` until we answer, so the plan it
                    // points to is alive and unchanged for the whole call.
                    let plan = unsafe { &*(plan as *const SpawnPlan<'_>) };
                    let _ = reply.send(spawn(plan));
                }
            })
            .expect("start the childproc keeper thread");
        std::sync::Mutex::new(tx)
    });
    let (reply, answer) = std::sync::mpsc::sync_channel(1);
    let sent = keeper
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((plan as *const SpawnPlan<'_> as usize, reply));
    match sent.ok().and_then(|()| answer.recv().ok()) {
        Some(result) => result,
        None => Err(SpawnFailure::prepare(io::Error::other(
            "the childproc keeper thread is gone",
        ))),
    }
}
const STACK_WORDS: usize = 64 * 1024 / 16;

thread_local! {
    /// The child's stack. One per thread: a thread is suspended while its child uses it.
    static STACK: RefCell<Vec<u128>> = const { RefCell::new(Vec::new()) };
}

/// Creates a child as `plan` says. On success the child has exec'd the program.
pub(crate) fn spawn(plan: &SpawnPlan<'_>) -> Result<Process, SpawnFailure> {
    let max_target = plan.fds.iter().map(|(t, _)| *t).max().unwrap_or(2).max(2);
    let high = max_target + 1;

    // Sources that sit where a target will go are moved out of the way first, so no dup2 in
    // the child can overwrite a source it still needs.
    let mut moved: Vec<OwnedFd> = Vec::new();
    let mut moves: Vec<(c_int, c_int)> = Vec::with_capacity(plan.fds.len());
    for (target, fd) in &plan.fds {
        let raw = fd.as_raw_fd();
        let src = if raw == *target || raw >= high {
            raw
        } else {
            let d = dup_at_least(raw, high).map_err(SpawnFailure::prepare)?;
            let r = d.as_raw_fd();
            moved.push(d);
            r
        };
        moves.push((src, *target));
    }
    let closes: Vec<c_int> = (0..high)
        .filter(|fd| !plan.fds.iter().any(|(t, _)| t == fd))
        .filter(|fd| is_open_raw(*fd))
        .collect();

    let argv = null_terminated(&plan.argv);
    let envp = null_terminated(&plan.envp);
    let mut ctx = ChildCtx {
        path: plan.path.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: plan.cwd.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
        moves: moves.as_ptr(),
        n_moves: moves.len(),
        closes: closes.as_ptr(),
        n_closes: closes.len(),
        keep_below: high,
        fd_limit: fd_limit(),
        setsid: plan.setsid,
        pgid: plan.pgid,
        parent_pid: if plan.kill_on_parent_death {
            std::process::id() as libc::pid_t
        } else {
            0
        },
        uid: plan.uid,
        gid: plan.gid,
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
    VFORK_SPAWNS.fetch_add(1, Ordering::Relaxed);
    Ok(Process::new(pid, pidfd))
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(ptr::null()))
        .collect()
}

/// The fd limit for the close-on-exec loop, read once (only kernels without `close_range`
/// use it).
fn fd_limit() -> c_int {
    static LIMIT: std::sync::OnceLock<c_int> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return 1024;
        }
        c_int::try_from(lim.rlim_cur)
            .unwrap_or(c_int::MAX)
            .min(1 << 20)
    })
}

/// Runs `clone` with all signals blocked; returns the pid and the pidfd if the kernel gave one.
fn clone_child(
    ctx: &mut ChildCtx,
    stack_top: *mut c_void,
) -> Result<(libc::pid_t, Option<OwnedFd>), SpawnFailure> {
    let want_pidfd =
        !CLONE_PIDFD_UNSUPPORTED.load(Ordering::Relaxed) && !PIDFD_DISABLED.load(Ordering::Relaxed);
    // SAFETY: sigset_t is plain data; sigfillset initialises it.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to sigset_t values we own.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    let mut result = clone_raw(ctx, stack_top, want_pidfd);
    if want_pidfd && matches!(&result, Err(e) if e.raw_os_error() == Some(libc::EINVAL)) {
        // Kernels before 5.2 reject CLONE_PIDFD; remember and use pidfd_open instead.
        CLONE_PIDFD_UNSUPPORTED.store(true, Ordering::Relaxed);
        result = clone_raw(ctx, stack_top, false);
    }
    // SAFETY: restores the mask saved above.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut());
    }
    result.map_err(SpawnFailure::prepare)
}

fn clone_raw(
    ctx: &mut ChildCtx,
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
            (ctx as *mut ChildCtx).cast(),
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

fn reap_failed(pid: libc::pid_t) {
    let mut status = 0;
    loop {
        // SAFETY: `pid` is our unreaped child, which has already exited (CLONE_VFORK).
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
}

/// The child side. Runs on the borrowed stack in the parent's memory until `execve`.
extern "C" fn child_entry(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `ChildCtx` the parent passed to clone; it outlives this call.
    let ctx = unsafe { &mut *arg.cast::<ChildCtx>() };
    // SAFETY: we are the child between clone and exec, exactly what `child_main` is for.
    let (stage, errno) = unsafe { child_main(ctx) };
    // SAFETY: a volatile write to the parent's ctx, read by the parent after we exit.
    unsafe { ptr::write_volatile(&mut ctx.failure, Some((stage, errno))) };
    // SAFETY: _exit ends this process without running any parent-owned destructors.
    unsafe { libc::_exit(127) }
}

/// Prepares the child and execs. Returns only on failure, with the stage and errno.
///
/// # Safety
/// Must only run in a freshly cloned child as described in the module docs.
unsafe fn child_main(ctx: &ChildCtx) -> (Stage, c_int) {
    // SAFETY: only async-signal-safe libc calls and raw syscalls on data the parent prepared;
    // the pointer/length pairs come from live Vecs in the parent's frame (see module docs).
    unsafe {
        let errno = || *libc::__errno_location();

        // Every disposition back to the default, so no parent handler can run in here and no
        // ignored signal stays ignored after exec. Raw rt_sigaction, because glibc's wrapper
        // refuses its reserved signals 32 and 33. An all-zero kernel sigaction is SIG_DFL with
        // no flags and an empty mask, whatever the struct's layout.
        let dfl = [0u64; 4];
        for sig in 1..=64 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    dfl.as_ptr(),
                    ptr::null_mut::<u64>(),
                    8usize,
                );
            }
        }

        if ctx.setsid && libc::setsid() < 0 {
            return (Stage::Setsid, errno());
        }
        if let Some(pgid) = ctx.pgid {
            if libc::setpgid(0, pgid) < 0 {
                return (Stage::Pgid, errno());
            }
        }
        if ctx.parent_pid != 0 {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
                return (Stage::ParentDeath, errno());
            }
            // The parent may have died before the prctl took effect: then nobody would
            // signal us, so give up now (as if the signal had come).
            if libc::getppid() != ctx.parent_pid {
                libc::_exit(127);
            }
        }

        for i in 0..ctx.n_moves {
            let (src, target) = *ctx.moves.add(i);
            let r = if src == target {
                libc::fcntl(target, libc::F_SETFD, 0)
            } else {
                libc::dup2(src, target)
            };
            if r < 0 {
                return (Stage::Fds, errno());
            }
        }
        for i in 0..ctx.n_closes {
            libc::close(*ctx.closes.add(i));
        }
        const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
        let r = libc::syscall(
            libc::SYS_close_range,
            ctx.keep_below as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        );
        if r != 0 {
            for fd in ctx.keep_below..ctx.fd_limit {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }

        if ctx.uid.is_some() || ctx.gid.is_some() {
            // Drop supplementary groups as Node does; EPERM (not root) is not fatal.
            libc::syscall(libc::SYS_setgroups, 0, ptr::null::<libc::gid_t>());
        }
        if let Some(gid) = ctx.gid {
            if libc::syscall(libc::SYS_setgid, gid) != 0 {
                return (Stage::Gid, errno());
            }
        }
        if let Some(uid) = ctx.uid {
            if libc::syscall(libc::SYS_setuid, uid) != 0 {
                return (Stage::Uid, errno());
            }
        }
        if !ctx.cwd.is_null() && libc::chdir(ctx.cwd) != 0 {
            return (Stage::Chdir, errno());
        }

        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, ptr::null_mut());

        libc::execve(ctx.path, ctx.argv, ctx.envp);
        (Stage::Exec, errno())
    }
}
