//! Process creation: the interface the rest of the crate calls, the choice of engine, and the
//! pieces both engines share.
//!
//! - `linux.rs` (Linux only): `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)`, no page tables
//!   copied however big the parent is, and a pidfd from the first instant.
//! - `portable.rs` (every Unix): `fork` + `execve` with a close-on-exec error pipe. The only
//!   engine on other Unixes; on Linux it runs only when a test forces it
//!   (`childproc::__force_portable_engine`), so the suite exercises it on the tested target.
//!
//! Both take a [`SpawnPlan`] and return a [`Process`] or a [`SpawnFailure`] naming the
//! [`Stage`] that failed, plan the child's fds with [`FdSetup`], and run the same child-side
//! steps in the same order: signals reset, session/group, parent-death signal, fds,
//! credentials, cwd, exec.

#[cfg(target_os = "linux")]
mod linux;
mod portable;

use std::ffi::{c_int, CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use super::fd::dup_at_least;
use super::process::Process;

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
    /// Start a new session (`setsid`): Node's `detached`.
    pub setsid: bool,
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
    const ALL: [Stage; 9] = [
        Stage::Prepare,
        Stage::Setsid,
        Stage::Pgid,
        Stage::ParentDeath,
        Stage::Fds,
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
        let high = max_target + 1;
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

/// The shell of `execvp`'s `ENOEXEC` fallback.
const BIN_SH: &CStr = c"/bin/sh";

/// An environment for `execve`: every `KEY=VALUE` string, NUL-terminated, in one buffer — or
/// the parent's own environment, passed as it is.
///
/// One allocation for the whole environment instead of one per variable. And when the child
/// inherits the environment unchanged (the common case), nothing is copied at all on Linux:
/// `execve` gets the process's own `environ` array, as std does. Like every read of the
/// environment outside `std::env`, that is raced only by a `set_var`/`remove_var` on another
/// thread, which Rust requires its (unsafe) caller to rule out.
#[derive(Debug, Default)]
pub(crate) struct EnvBlock {
    bytes: Vec<u8>,
    starts: Vec<usize>,
    /// `Some`: the parent's environment as it is when the child is created, without these
    /// variables; `bytes` and `starts` are unused.
    inherit: Option<&'static [&'static str]>,
}

impl EnvBlock {
    /// An empty block with room for about `vars` variables.
    pub(crate) fn with_capacity(vars: usize) -> EnvBlock {
        EnvBlock {
            bytes: Vec::with_capacity(vars * 48),
            starts: Vec::with_capacity(vars + 2),
            inherit: None,
        }
    }

    /// The parent's environment as it is when the child is created, without the variables
    /// named in `skip`.
    pub(crate) fn inherited(skip: &'static [&'static str]) -> EnvBlock {
        let block = EnvBlock {
            inherit: Some(skip),
            ..EnvBlock::default()
        };
        if cfg!(target_os = "linux") {
            block
        } else {
            // Elsewhere `environ` is not always reachable from a library (macOS): copy it.
            block.into_copy()
        }
    }

    /// A copy of the parent's environment now, without the variables in `skip`.
    fn copy_of_parent(skip: &[&str]) -> EnvBlock {
        let vars = std::env::vars_os();
        let mut block = EnvBlock::with_capacity(vars.size_hint().0);
        for (k, v) in vars.filter(|(k, _)| !skip.iter().any(|s| k == *s)) {
            block.push(k.as_bytes(), v.as_bytes());
        }
        block
    }

    /// An inherited block turned into a copy of the parent's environment; others unchanged.
    fn into_copy(self) -> EnvBlock {
        match self.inherit {
            Some(skip) => EnvBlock::copy_of_parent(skip),
            None => self,
        }
    }

    /// Appends `key=value` (to a copy of the parent's environment if the block inherits it).
    /// The caller has checked that neither holds a NUL and that the key holds no `=`.
    pub(crate) fn push(&mut self, key: &[u8], value: &[u8]) {
        debug_assert!(!key.contains(&0) && !value.contains(&0) && !key.contains(&b'='));
        if self.inherit.is_some() {
            *self = std::mem::take(self).into_copy();
        }
        self.starts.push(self.bytes.len());
        self.bytes.reserve(key.len() + value.len() + 2);
        self.bytes.extend_from_slice(key);
        self.bytes.push(b'=');
        self.bytes.extend_from_slice(value);
        self.bytes.push(0);
    }

    /// The variables as `KEY=VALUE` byte strings (without their NUL), in order.
    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.starts.iter().enumerate().map(|(i, &start)| {
            let end = self
                .starts
                .get(i + 1)
                .map_or(self.bytes.len(), |&next| next);
            &self.bytes[start..end - 1]
        })
    }

    /// `execve`'s envp: a pointer to each string, then NULL. Valid while `self` is neither
    /// changed nor dropped.
    fn pointers(&self) -> Vec<*const libc::c_char> {
        self.starts
            .iter()
            .map(|&start| self.bytes[start..].as_ptr().cast())
            .chain(std::iter::once(ptr::null()))
            .collect()
    }
}

/// What `execve` gets as its environment, prepared before the child exists.
struct Envp {
    /// The copy `pointers` points into, when the plan's block could not be used as it is.
    _copy: Option<EnvBlock>,
    /// Pointers into a block, then NULL (empty when `array` is the parent's `environ`).
    _pointers: Vec<*const libc::c_char>,
    /// The array `execve` receives.
    array: *const *const libc::c_char,
}

impl Envp {
    fn new(block: &EnvBlock) -> Envp {
        let Some(skip) = block.inherit else {
            return Envp::of(None, block);
        };
        #[cfg(target_os = "linux")]
        if let Some(array) = parent_environ(skip) {
            return Envp {
                _copy: None,
                _pointers: Vec::new(),
                array,
            };
        }
        let copy = EnvBlock::copy_of_parent(skip);
        Envp::of(Some(copy), block)
    }

    /// Pointers into `copy` if there is one, else into `block`.
    fn of(copy: Option<EnvBlock>, block: &EnvBlock) -> Envp {
        let pointers = copy.as_ref().unwrap_or(block).pointers();
        Envp {
            array: pointers.as_ptr(),
            _copy: copy,
            _pointers: pointers,
        }
    }
}

/// The process's own `environ`, if it is set and holds none of the variables in `skip`.
#[cfg(target_os = "linux")]
fn parent_environ(skip: &[&str]) -> Option<*const *const libc::c_char> {
    extern "C" {
        static environ: *const *const libc::c_char;
    }
    // SAFETY: reads the C library's environment pointer. The array and its strings stay valid
    // until the environment is changed: childproc's own change (`from_env`) waits for the
    // lock the spawning caller holds until the child has exec'd, and any other `set_var` or
    // `remove_var` must by Rust's rules keep other threads from reading the environment.
    let array = unsafe { environ };
    if array.is_null() {
        return None;
    }
    let mut at = array;
    // SAFETY: `environ` is a NULL-terminated array of NUL-terminated strings (see above).
    unsafe {
        while !(*at).is_null() {
            let entry = *at;
            if skip
                .iter()
                .any(|key| starts_with_key(entry, key.as_bytes()))
            {
                return None;
            }
            at = at.add(1);
        }
    }
    Some(array)
}

/// Whether the C string at `entry` starts with `key=`.
///
/// # Safety
/// `entry` points at a NUL-terminated string.
#[cfg(target_os = "linux")]
unsafe fn starts_with_key(entry: *const libc::c_char, key: &[u8]) -> bool {
    for (i, &want) in key.iter().chain(b"=").enumerate() {
        // SAFETY: every byte before this one matched `key=`, which holds no NUL, so the string
        // has not ended before index `i`.
        if unsafe { *entry.add(i) } as u8 != want {
            return false;
        }
    }
    true
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
        const LAST_SIGNAL: c_int = 128;
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
const PARENT_DEATH_SUPPORTED: bool = cfg!(any(target_os = "linux", target_os = "freebsd"));

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
            let mut sig: c_int = libc::SIGKILL;
            libc::procctl(
                libc::P_PID,
                libc::getpid() as libc::id_t,
                libc::PROC_PDEATHSIG_CTL,
                (&mut sig as *mut c_int).cast(),
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
/// `close_rest` for every fd above the highest target, `set_ids` (supplementary groups
/// dropped, gid, uid) when ids are asked for, `chdir`, every signal unblocked, `execve`.
/// Returns only on failure, with the stage and errno.
///
/// # Safety
/// Only in a new child between creation and exec, with every signal blocked; `close_rest` and
/// `set_ids` must be async-signal-safe and allocate nothing, as everything here.
unsafe fn run_child(
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

#[cfg(test)]
mod tests {
    use super::{EnvBlock, Envp};
    use std::ffi::CStr;

    /// The strings an `Envp` hands to `execve`.
    fn strings(envp: &Envp) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = envp.array;
        // SAFETY: `array` is a NULL-terminated array of C strings, alive with `envp` (or the
        // process's environment, which this test does not change).
        unsafe {
            while !(*at).is_null() {
                out.push(CStr::from_ptr(*at).to_bytes().to_vec());
                at = at.add(1);
            }
        }
        out
    }

    #[test]
    fn an_inherited_block_is_the_parents_environment_minus_the_skipped_keys() {
        let parent: Vec<Vec<u8>> = std::env::vars_os()
            .map(|(k, v)| [k.as_encoded_bytes(), b"=", v.as_encoded_bytes()].concat())
            .collect();
        assert!(parent.iter().any(|e| e.starts_with(b"PATH=")));
        // Nothing skipped that the parent holds: the parent's variables, all of them.
        let all = Envp::new(&EnvBlock::inherited(&["CHILDPROC_NOT_SET_ANYWHERE"]));
        assert_eq!(strings(&all), parent);
        // A key the parent holds is left out.
        let without_path = Envp::new(&EnvBlock::inherited(&["PATH"]));
        let want: Vec<Vec<u8>> = parent
            .iter()
            .filter(|e| !e.starts_with(b"PATH="))
            .cloned()
            .collect();
        assert_eq!(strings(&without_path), want);
        // A pushed variable turns the block into a copy, skipped keys still left out.
        let mut pushed = EnvBlock::inherited(&["PATH"]);
        pushed.push(b"CHILDPROC_PUSHED", b"1");
        let mut want = want;
        want.push(b"CHILDPROC_PUSHED=1".to_vec());
        assert_eq!(strings(&Envp::new(&pushed)), want);
    }

    #[test]
    fn an_env_block_points_execve_at_each_variable_then_null() {
        let mut env = EnvBlock::with_capacity(0);
        env.push(b"A", b"1");
        env.push(b"EMPTY", b"");
        env.push(b"PATH", b"/usr/bin:/bin=x");
        let listed: Vec<&[u8]> = env.iter().collect();
        assert_eq!(listed, [&b"A=1"[..], b"EMPTY=", b"PATH=/usr/bin:/bin=x"]);
        let pointers = env.pointers();
        assert_eq!(pointers.len(), 4);
        assert!(pointers[3].is_null());
        for (p, want) in pointers.iter().zip(listed) {
            // SAFETY: each pointer is the start of a NUL-terminated string inside `env`, which
            // is alive and unchanged here.
            let got = unsafe { CStr::from_ptr(*p) };
            assert_eq!(got.to_bytes(), want);
        }
    }
}
