//! A created child: waiting for it and signalling it, through its pidfd where there is one
//! (Linux), else on SIGCHLD with `waitpid`/`kill(2)` under the reaping lock (every Unix).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
#[cfg(target_os = "linux")]
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
#[cfg(target_os = "linux")]
use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(target_os = "linux")]
use std::sync::Arc;
use std::sync::{Mutex, OnceLock};

#[cfg(target_os = "linux")]
use tokio::io::unix::AsyncFd;
#[cfg(target_os = "linux")]
use tokio::io::Interest;

/// Set to make every new child run without a pidfd (the fallback path), for tests.
#[cfg(target_os = "linux")]
pub(crate) static PIDFD_DISABLED: AtomicBool = AtomicBool::new(false);
/// See `childproc::__force_no_pidfd`. Other Unixes never have pidfds.
pub(crate) fn force_no_pidfd(on: bool) {
    #[cfg(target_os = "linux")]
    PIDFD_DISABLED.store(on, Ordering::Relaxed);
    #[cfg(not(target_os = "linux"))]
    let _ = on;
}

#[cfg(target_os = "linux")]
static PIDFD_OPEN_UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// How a child ended: exactly one of code or signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RawStatus {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal number.
    Signaled(i32),
}

/// One child process of ours.
#[derive(Debug)]
pub(crate) struct Process {
    /// The pidfd's registration with tokio's reactor, made by the first async waiter and
    /// shared by every later one (a fd can be registered with one epoll only once); made
    /// again by a waiter in another runtime once the reactor it was made with has shut down.
    /// Declared before `pidfd` so it is deregistered before the fd closes.
    #[cfg(target_os = "linux")]
    registered: Mutex<Option<Arc<AsyncFd<RawRef>>>>,
    pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
    /// True once reaped. Without a pidfd, `kill` holds this lock so it can never signal a PID
    /// that was reaped (and so may have been reused).
    reaped: Mutex<bool>,
    /// What the child cost, as the kernel counted it, gathered when it was reaped.
    usage: OnceLock<RawUsage>,
}

/// A reaped child's resource usage, from the `rusage` that `wait4` returns with its status
/// (the same syscall `waitpid` makes): the child's own, with its waited-for descendants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RawUsage {
    pub(crate) user_us: u64,
    pub(crate) system_us: u64,
    pub(crate) max_rss_bytes: u64,
    pub(crate) minor_faults: u64,
    pub(crate) major_faults: u64,
    pub(crate) voluntary_switches: u64,
    pub(crate) involuntary_switches: u64,
    pub(crate) block_inputs: u64,
    pub(crate) block_outputs: u64,
    pub(crate) signals: u64,
    pub(crate) swaps: u64,
}

impl RawUsage {
    fn from_rusage(r: &libc::rusage) -> RawUsage {
        let n = |v: libc::c_long| u64::try_from(v).unwrap_or(0);
        let us = |t: libc::timeval| {
            u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000 + u64::try_from(t.tv_usec).unwrap_or(0)
        };
        // Linux and the BSDs count ru_maxrss in KiB, Apple's systems in bytes.
        #[cfg(target_vendor = "apple")]
        let max_rss_bytes = n(r.ru_maxrss);
        #[cfg(not(target_vendor = "apple"))]
        let max_rss_bytes = n(r.ru_maxrss).saturating_mul(1024);
        RawUsage {
            user_us: us(r.ru_utime),
            system_us: us(r.ru_stime),
            max_rss_bytes,
            minor_faults: n(r.ru_minflt),
            major_faults: n(r.ru_majflt),
            voluntary_switches: n(r.ru_nvcsw),
            involuntary_switches: n(r.ru_nivcsw),
            block_inputs: n(r.ru_inblock),
            block_outputs: n(r.ru_oublock),
            signals: n(r.ru_nsignals),
            swaps: n(r.ru_nswap),
        }
    }
}

impl Drop for Process {
    /// A child dropped before it was reaped (its runtime shut down, say) goes to the orphan
    /// reaper, so it never stays a zombie.
    fn drop(&mut self) {
        let reaped = *self.reaped.get_mut().unwrap_or_else(|e| e.into_inner());
        if !reaped {
            super::orphan::adopt(Process::new(self.pid, self.pidfd.take()));
        }
    }
}

/// `pidfd_open(pid)`, or `None` where the kernel lacks it (or pidfds are disabled).
#[cfg(target_os = "linux")]
pub(crate) fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    if PIDFD_DISABLED.load(Ordering::Relaxed) || PIDFD_OPEN_UNSUPPORTED.load(Ordering::Relaxed) {
        return None;
    }
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        if io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
            PIDFD_OPEN_UNSUPPORTED.store(true, Ordering::Relaxed);
        }
        return None;
    }
    // SAFETY: the syscall returned a new fd that nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[cfg(target_os = "linux")]
#[derive(Debug)]
struct RawRef(RawFd);
#[cfg(target_os = "linux")]
impl AsRawFd for RawRef {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

impl Process {
    pub(super) fn new(pid: libc::pid_t, pidfd: Option<OwnedFd>) -> Self {
        Process {
            #[cfg(target_os = "linux")]
            registered: Mutex::new(None),
            pid,
            pidfd,
            reaped: Mutex::new(false),
            usage: OnceLock::new(),
        }
    }

    /// What the child cost, once it has been reaped.
    pub(crate) fn usage(&self) -> Option<RawUsage> {
        self.usage.get().copied()
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid.unsigned_abs()
    }

    /// The pidfd, if the child has one.
    pub(crate) fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(AsFd::as_fd)
    }

    /// Sends `sig`. `ESRCH` once the child has exited and been reaped.
    pub(crate) fn signal(&self, sig: i32) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.pidfd {
            // SAFETY: pidfd_send_signal on our own pidfd with no siginfo.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    sig,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            return if r == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            };
        }
        let reaped = self.reaped.lock().unwrap_or_else(|e| e.into_inner());
        if *reaped {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        // SAFETY: `pid` is our child and, with the lock held, not yet reaped: it cannot have
        // been reused.
        if unsafe { libc::kill(self.pid, sig) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Sends `sig` to the child's process group (the child must lead it). Only while the
    /// child is unreaped: until then its pid, which is the group's id, cannot be reused, so
    /// the signal cannot reach a stranger's group. `ESRCH` afterwards.
    pub(crate) fn signal_group(&self, sig: i32) -> io::Result<()> {
        let reaped = self.reaped.lock().unwrap_or_else(|e| e.into_inner());
        if *reaped {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        // SAFETY: kill(2) with a negative pid signals that process group; the group id is our
        // unreaped child's pid (see above).
        if unsafe { libc::kill(-self.pid, sig) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Reaps the child if it has exited.
    pub(crate) fn try_wait(&self) -> io::Result<Option<RawStatus>> {
        self.wait_with(libc::WNOHANG)
    }

    /// Blocks the thread until the child exits, then reaps it.
    pub(crate) fn wait_blocking(&self) -> io::Result<RawStatus> {
        loop {
            match self.wait_with(0) {
                Ok(Some(s)) => return Ok(s),
                Err(e) if e.kind() != io::ErrorKind::Interrupted => return Err(e),
                _ => continue,
            }
        }
    }

    fn wait_with(&self, flags: libc::c_int) -> io::Result<Option<RawStatus>> {
        let mut reaped = self.reaped.lock().unwrap_or_else(|e| e.into_inner());
        if *reaped {
            return Err(io::Error::other("child already reaped"));
        }
        let mut status: libc::c_int = 0;
        // SAFETY: a plain C struct, all zeros is a valid value.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 on our own unreaped child, writing into `status` and `usage` (waitpid
        // is wait4 without the rusage: no extra syscall).
        let r = unsafe { libc::wait4(self.pid, &mut status, flags, &mut usage) };
        if r < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ECHILD) {
                // Someone else reaped it (a stray `waitpid(-1)`): it is no longer ours, and
                // its pid may be reused, so never signal it by pid again.
                *reaped = true;
            }
            return Err(err);
        }
        if r == 0 {
            return Ok(None);
        }
        *reaped = true;
        let _ = self.usage.set(RawUsage::from_rusage(&usage));
        Ok(Some(if libc::WIFSIGNALED(status) {
            RawStatus::Signaled(libc::WTERMSIG(status))
        } else {
            RawStatus::Exited(libc::WEXITSTATUS(status))
        }))
    }

    /// Whether the child has exited, without reaping it (`waitid(WNOWAIT)`): the zombie keeps
    /// its pid, and so its process group id, reserved.
    pub(crate) fn has_exited(&self) -> io::Result<bool> {
        // SAFETY: siginfo_t is plain data; waitid fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOWAIT | libc::WNOHANG;
        // SAFETY: waitid on our own child, writing into `info`.
        if unsafe { libc::waitid(libc::P_PID, self.pid as libc::id_t, &mut info, flags) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: after a successful waitid, si_pid is the field it sets (0: still running).
        Ok(unsafe { info.si_pid() } != 0)
    }

    /// The pidfd's registration with a reactor: the one made first, unless that is `stale`
    /// (its reactor has shut down), in which case it is made again with the current runtime's.
    #[cfg(target_os = "linux")]
    fn registration(
        &self,
        fd: &OwnedFd,
        stale: Option<&Arc<AsyncFd<RawRef>>>,
    ) -> io::Result<Arc<AsyncFd<RawRef>>> {
        let mut registered = self.registered.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(afd) = &*registered {
            if !stale.is_some_and(|stale| Arc::ptr_eq(stale, afd)) {
                return Ok(afd.clone());
            }
        }
        // SAFETY: the pidfd is owned by `self` and declared after `registered`, so it stays
        // open and unchanged until the registration is dropped: every clone of the `Arc` is
        // held by a `wait_until` borrowing `self`, or by `registered` itself.
        let afd =
            unsafe { AsyncFd::register_with_interest(RawRef(fd.as_raw_fd()), Interest::READABLE) }
                .map_err(|e| {
                    let (_, cause) = e.into_parts();
                    io::Error::new(
                        cause.kind(),
                        format!("could not register the pidfd with the runtime: {cause}"),
                    )
                })?;
        let afd = Arc::new(afd);
        *registered = Some(afd.clone());
        Ok(afd)
    }

    /// Waits on tokio's reactor until `check` gives an answer: `check` runs each time the
    /// child may have exited (its pidfd became readable, or a SIGCHLD arrived without one).
    /// Several tasks may wait on one child at once; each runs its own `check`.
    pub(crate) async fn wait_until<R>(
        &self,
        mut check: impl FnMut() -> io::Result<Option<R>>,
    ) -> io::Result<R> {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.pidfd {
            let mut afd = self.registration(fd, None)?;
            let mut renewed = false;
            // No check before the first readiness: a pidfd that was already readable when
            // registered is reported at once, so a child that exited early is still seen.
            loop {
                let mut ready = match afd.readable().await {
                    Ok(ready) => ready,
                    // The reactor it was registered with has shut down (the child was spawned,
                    // or first waited for, in a runtime that is gone): register it with this
                    // one, once.
                    Err(_) if !renewed => {
                        renewed = true;
                        afd = self.registration(fd, Some(&afd))?;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                if let Some(r) = check()? {
                    return Ok(r);
                }
                ready.clear_ready();
            }
        }
        let mut sigchld = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())?;
        loop {
            if let Some(r) = check()? {
                return Ok(r);
            }
            sigchld.recv().await;
        }
    }
}
