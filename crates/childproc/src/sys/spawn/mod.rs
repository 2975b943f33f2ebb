//! Process creation: the interface the rest of the crate calls, the choice of engine, and the
//! pieces both engines share.
//!
//! - `linux.rs` (Linux only): `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)`, no page tables
//!   copied however big the parent is, and a pidfd from the first instant.
//! - `child.rs`: the child side both engines run, from creation to `execve`.
//! - `env.rs`: the environment block `execve` takes.
//! - `portable.rs` (every Unix): `fork` + `execve` with a close-on-exec error pipe. The only
//!   engine on other Unixes; on Linux it runs only when a test forces it
//!   (`childproc::__force_portable_engine`), so the suite exercises it on the tested target.
//!
//! Both take a [`SpawnPlan`] and return a [`Process`] or a [`SpawnFailure`] naming the
//! [`Stage`] that failed, plan the child's fds with [`FdSetup`], and run the same child-side
//! steps in the same order: signals reset, session/group, parent-death signal, fds,
//! credentials, cwd, exec.

mod child;
mod env;
#[cfg(target_os = "linux")]
mod linux;
mod portable;

use std::ffi::{c_int, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use super::fd::dup_at_least;
use super::process::Process;

use child::run_child;
use child::BIN_SH;
pub(crate) use child::PARENT_DEATH_SUPPORTED;
pub(crate) use env::EnvBlock;
use env::Envp;

/// Child fd number → the parent's fd to install there (kept open by the caller during spawn).
pub(crate) type FdMap<'a> = Vec<(RawFd, BorrowedFd<'a>)>;

/// What to create. Built by `command.rs`; every allocation the child needs is in here.
pub(crate) struct SpawnPlan<'a> {
    /// The resolved executable path (PATH lookup already done).
    pub path: CString,
    /// argv, argv[0] included.
    pub argv: Vec<CString>,
    /// The complete environment, `KEY=VALUE`.
    pub envp: EnvBlock,
    /// Directory to change to before exec.
    pub cwd: Option<CString>,
    /// The child's fds. Every fd not in here is closed in the child.
    pub fds: FdMap<'a>,
    /// Start a new session (`setsid`): Node's `detached`, and every child with a pty.
    pub setsid: bool,
    /// The child fd (after the fds are installed) of a pty's slave side to make the new
    /// session's controlling terminal (`TIOCSCTTY`); needs `setsid`.
    pub controlling_tty: Option<RawFd>,
    /// Join or create a process group (`setpgid(0, pgid)`; 0 = a new group led by the child).
    pub pgid: Option<i32>,
    /// SIGKILL the child when its parent dies (Linux `PR_SET_PDEATHSIG`, FreeBSD
    /// `PROC_PDEATHSIG_CTL`; `Unsupported` elsewhere). Linux ties the signal to the creating
    /// *thread*, so `spawn_kept` runs creation on a thread that lives as long as the process.
    pub kill_on_parent_death: bool,
    /// User id to switch to.
    pub uid: Option<u32>,
    /// Group id to switch to.
    pub gid: Option<u32>,
}

/// Where creation failed, so the caller can name the right thing in the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Parent-side preparation (dup, pipe, stack, clone/fork itself).
    Prepare,
    /// `setsid`.
    Setsid,
    /// `setpgid`.
    Pgid,
    /// The parent-death signal (or the OS has none).
    ParentDeath,
    /// Installing the stdio fds.
    Fds,
    /// Making the pty the controlling terminal.
    Terminal,
    /// `setgid`.
    Gid,
    /// `setuid`.
    Uid,
    /// `chdir` to the cwd.
    Chdir,
    /// `execve`.
    Exec,
}

impl Stage {
    const ALL: [Stage; 10] = [
        Stage::Prepare,
        Stage::Setsid,
        Stage::Pgid,
        Stage::ParentDeath,
        Stage::Fds,
        Stage::Terminal,
        Stage::Gid,
        Stage::Uid,
        Stage::Chdir,
        Stage::Exec,
    ];

    /// The stage as a number, for the portable engine's error pipe.
    fn code(self) -> c_int {
        self as c_int
    }

    /// The stage a number from [`Stage::code`] names.
    fn from_code(code: c_int) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.code() == code)
    }
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

/// A child-side failure: the stage and its errno.
type ChildError = (Stage, c_int);

/// The two engines. Which one creates the next child: [`Engine::current`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    /// `linux.rs`.
    #[cfg(target_os = "linux")]
    CloneVfork,
    /// `portable.rs`.
    Fork,
}

#[cfg(target_os = "linux")]
static PORTABLE_FORCED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
#[cfg(target_os = "linux")]
static CLONE_VFORK_SPAWNS: AtomicU64 = AtomicU64::new(0);
static FORK_SPAWNS: AtomicU64 = AtomicU64::new(0);

impl Engine {
    fn current() -> Engine {
        #[cfg(target_os = "linux")]
        if !PORTABLE_FORCED.load(Ordering::Relaxed) {
            return Engine::CloneVfork;
        }
        Engine::Fork
    }

    fn name(self) -> &'static str {
        match self {
            #[cfg(target_os = "linux")]
            Engine::CloneVfork => "clone-vfork",
            Engine::Fork => "fork",
        }
    }

    /// Children this engine has created (successful spawns only).
    fn spawns(self) -> &'static AtomicU64 {
        match self {
            #[cfg(target_os = "linux")]
            Engine::CloneVfork => &CLONE_VFORK_SPAWNS,
            Engine::Fork => &FORK_SPAWNS,
        }
    }
}

/// See `childproc::__force_portable_engine`. Other Unixes only have the portable engine.
pub(crate) fn force_portable_engine(on: bool) {
    #[cfg(target_os = "linux")]
    PORTABLE_FORCED.store(on, Ordering::Relaxed);
    #[cfg(not(target_os = "linux"))]
    let _ = on;
}

/// The name of the engine that creates children now, for tracing.
pub(crate) fn engine_name() -> &'static str {
    Engine::current().name()
}

/// The engine that creates children now and how many children it has created: tests use it
/// to prove which path every option takes.
pub(crate) fn engine_stats() -> (&'static str, u64) {
    let engine = Engine::current();
    (engine.name(), engine.spawns().load(Ordering::Relaxed))
}

/// Creates a child as `plan` says, with the current engine. On success the child has exec'd
/// the program.
pub(crate) fn spawn(plan: &SpawnPlan<'_>) -> Result<Process, SpawnFailure> {
    let engine = Engine::current();
    let process = match engine {
        #[cfg(target_os = "linux")]
        Engine::CloneVfork => linux::spawn(plan),
        Engine::Fork => portable::spawn(plan),
    }?;
    engine.spawns().fetch_add(1, Ordering::Relaxed);
    Ok(process)
}

/// Runs [`spawn`] on a thread that lives as long as the process, so a parent-death signal
/// (tied by Linux to the creating *thread*) fires only when the whole parent dies, not when a
/// tokio worker or blocking thread exits.
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

/// The child's fd table, planned in the parent: every dup and allocation happens before the
/// child exists, so the child side only calls `dup2`, `fcntl` and `close`.
struct FdSetup {
    /// Sources duplicated out of the way, open until the child has its copies.
    _moved: Vec<OwnedFd>,
    /// `(source, target)`: `dup2(source, target)`, or clear close-on-exec when equal.
    moves: Vec<(c_int, c_int)>,
    /// Every fd below `keep_below` that is no target: closed in the child.
    closes: Vec<c_int>,
    /// One above the highest target (at least 3): no fd from here up belongs to the child.
    keep_below: c_int,
}

impl FdSetup {
    fn new(fds: &FdMap<'_>) -> Result<FdSetup, SpawnFailure> {
        let max_target = fds.iter().map(|(t, _)| *t).max().unwrap_or(2).max(2);
        // `Command::fd` refuses fds from 2^20 up, so this cannot overflow; if it ever could,
        // the spawn fails instead.
        let high = max_target
            .checked_add(1)
            .ok_or_else(|| SpawnFailure::prepare(io::Error::from_raw_os_error(libc::EBADF)))?;
        // Sources that sit where a target will go are moved out of the way first, so no dup2
        // in the child can overwrite a source it still needs.
        let mut moved = Vec::new();
        let mut moves = Vec::with_capacity(fds.len());
        for (target, fd) in fds {
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
        // Gaps are closed whether or not they are open now: closing a free fd is harmless, and
        // an fd another thread opens in a gap after this plan is still kept from the child.
        let closes = (0..high)
            .filter(|fd| !fds.iter().any(|(t, _)| t == fd))
            .collect();
        Ok(FdSetup {
            _moved: moved,
            moves,
            closes,
            keep_below: high,
        })
    }
}

/// Everything the child side reads, prepared in the parent by either engine: the plan's C
/// strings, the pointer arrays `execve` takes, the fd plan, and the bounds of the fd loops.
/// The child only reads it.
struct ChildPlan<'a> {
    plan: &'a SpawnPlan<'a>,
    argv: Vec<*const libc::c_char>,
    /// `execvp`'s fallback for a file without a `#!` line (`ENOEXEC`): `/bin/sh`, the path,
    /// then the arguments after argv\[0\] — what glibc and Node (libuv's `execvp`) run.
    sh_argv: Vec<*const libc::c_char>,
    envp: Envp,
    fds: FdSetup,
    /// Bound of the child's fd loops where the OS has no `close_range`/`closefrom`.
    fd_limit: c_int,
    /// The parent's pid when `kill_on_parent_death` is set (0 otherwise).
    parent_pid: libc::pid_t,
}

impl<'a> ChildPlan<'a> {
    fn new(plan: &'a SpawnPlan<'a>) -> Result<ChildPlan<'a>, SpawnFailure> {
        let mut sh_argv = Vec::with_capacity(plan.argv.len() + 2);
        sh_argv.push(BIN_SH.as_ptr());
        sh_argv.push(plan.path.as_ptr());
        sh_argv.extend(plan.argv.iter().skip(1).map(|a| a.as_ptr()));
        sh_argv.push(ptr::null());
        Ok(ChildPlan {
            plan,
            argv: null_terminated(&plan.argv),
            sh_argv,
            envp: Envp::new(&plan.envp),
            fds: FdSetup::new(&plan.fds)?,
            fd_limit: fd_limit(),
            parent_pid: if plan.kill_on_parent_death {
                std::process::id() as libc::pid_t
            } else {
                0
            },
        })
    }
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(ptr::null()))
        .collect()
}

/// The fd limit (RLIMIT_NOFILE, at most 2^20), read once: the bound of the child's fd loops
/// where the OS has no `close_range`/`closefrom`.
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

/// Blocks every signal in the calling thread until dropped, so a child created meanwhile
/// starts with all signals blocked and no parent handler can run in it before it resets them.
struct AllSignalsBlocked(libc::sigset_t);

impl AllSignalsBlocked {
    fn new() -> AllSignalsBlocked {
        // SAFETY: sigset_t is plain data; sigfillset initialises it.
        let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above; pthread_sigmask fills it with the old mask.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers to sigset_t values we own.
        unsafe {
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        }
        AllSignalsBlocked(old)
    }
}

impl Drop for AllSignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `new`.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, ptr::null_mut());
        }
    }
}

/// Reaps a child that reported a failure (it has exited or is about to).
fn reap_failed(pid: libc::pid_t) {
    let mut status = 0;
    loop {
        // SAFETY: `pid` is our unreaped child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
}

// The child-side steps both engines share. Each is async-signal-safe and allocates nothing.

/// The calling thread's errno, read without allocating.
fn errno() -> c_int {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}
