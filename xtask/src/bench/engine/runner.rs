//! The engine section's Rust side, run as `xtask bench-worker engine`: a parent of the chosen size spawning with childproc, tokio::process and std::process.

#[allow(unused_imports)]
use super::*;

/// `xtask bench-worker engine BIG_GIB CONCURRENCY ITEMS`: the Rust peers' side of a round,
/// in a process of its own. ITEMS is a comma-separated list of `peer:kind:spawns:warmup`
/// (peer: `childproc`, `tokio` or `std`); with BIG_GIB > 0 the worker first makes that many
/// GiB resident. Prints one JSON line per item, in order.
pub(crate) fn worker(args: &[String]) -> Result<(), BoxError> {
    let usage = "usage: xtask bench-worker engine BIG_GIB CONCURRENCY peer:kind:spawns:warmup,..";
    let [section, gib, concurrency, items] = args else {
        return Err(usage.into());
    };
    if section != "engine" {
        return Err(usage.into());
    }
    let gib: u64 = gib.parse().map_err(|_| usage)?;
    let concurrency: usize = concurrency.parse().map_err(|_| usage)?;
    let mut items_parsed = Vec::new();
    for item in items.split(',') {
        let parts: Vec<&str> = item.split(':').collect();
        let [peer, kind, n, warmup] = parts[..] else {
            return Err(format!("{usage}: bad item `{item}`").into());
        };
        let peer = Peer::RUST
            .into_iter()
            .find(|p| p.key() == peer)
            .ok_or_else(|| format!("bench-worker: unknown peer `{peer}`"))?;
        let kind =
            Kind::parse(kind).ok_or_else(|| format!("bench-worker: unknown kind `{kind}`"))?;
        items_parsed.push((peer, kind, n.parse::<u64>()?, warmup.parse::<u64>()?));
    }

    let memory = resident(gib)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    for (peer, kind, n, warmup) in items_parsed {
        spawn_n(&rt, peer, kind, warmup, concurrency)?;
        let rate = spawn_n(&rt, peer, kind, n, concurrency)?;
        println!(
            "{{\"peer\":\"{}\",\"kind\":\"{}\",\"spawns\":{n},\"elapsed_ns\":{},\"vmhwm_kb\":{}}}",
            peer.key(),
            kind.key(),
            rate.elapsed.as_nanos(),
            vmhwm_kb().unwrap_or(0)
        );
    }
    // The memory stays resident until every item is measured.
    std::hint::black_box(&memory);
    Ok(())
}

/// `gib` GiB with one byte written per 4 KiB page, so all of it is resident.
pub(super) fn resident(gib: u64) -> Result<Vec<u8>, BoxError> {
    let len = usize::try_from(gib << 30)?;
    let mut memory = vec![0u8; len];
    for i in (0..len).step_by(4096) {
        memory[i] = 1;
    }
    Ok(std::hint::black_box(memory))
}

/// The VmHWM (peak resident set) of this process, in kB.
pub(super) fn vmhwm_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Spawns and waits `n` times with `peer` from `concurrency` loops.
pub(super) fn spawn_n(
    rt: &Runtime,
    peer: Peer,
    kind: Kind,
    n: u64,
    concurrency: usize,
) -> Result<Rate, BoxError> {
    match peer {
        Peer::Childproc => time_async(rt, n, concurrency, move || {
            childproc_once(kind, ExtraFd::Pipe)
        }),
        Peer::Tokio => time_async(rt, n, concurrency, move || tokio_once(kind)),
        Peer::Std => time_threads(n, concurrency, kind),
        other => Err(format!("bench-worker: {} is not a Rust peer", other.name()).into()),
    }
}

/// How childproc's extra-fd child gets its fd 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ExtraFd {
    /// `.fd(3, Stdio::Pipe)`: what a user writes (a socketpair whose parent end is set up
    /// for async reads). The engine tables use this.
    Pipe,
    /// The very fd the raw peers get: a fresh pipe end through `Stdio::from(fd)`. The paired
    /// comparison with `posix_spawn` uses this.
    SameAsRaw,
}

/// One spawn-and-wait with childproc.
pub(super) async fn childproc_once(kind: Kind, extra_fd: ExtraFd) -> Result<(), BoxError> {
    let mut cmd = childproc::Command::new(PROGRAM);
    cmd.stdio_all(childproc::StdioShorthand::Ignore);
    if kind == Kind::Detached {
        cmd.detached(true);
    }
    // The parent's end of a pipe or socketpair, kept until the child is reaped.
    let mut ours = None;
    if kind == Kind::Fd && extra_fd == ExtraFd::Pipe {
        cmd.fd(3, childproc::Stdio::Pipe);
    } else if let Some(Extra { theirs, _ours }) = Extra::new(kind)? {
        cmd.fd(3, childproc::Stdio::from(theirs));
        ours = Some(_ours);
    }
    let child = cmd.spawn()?;
    drop(cmd);
    let status = child.wait().await?;
    drop(ours);
    check(status.success(), "childproc", &status)
}

/// The fds of an extra-fd or IPC-like child: the end the child gets at fd 3, and ours.
pub(super) struct Extra {
    /// Installed at fd 3 in the child; closed in the parent once the child is spawned.
    pub(super) theirs: OwnedFd,
    /// The parent's end, held only to be closed once the child is reaped.
    pub(super) _ours: OwnedFd,
}

impl Extra {
    /// A fresh pipe (extra fd) or socketpair (IPC-like); `None` for the other kinds.
    pub(super) fn new(kind: Kind) -> Result<Option<Extra>, BoxError> {
        Ok(match kind {
            Kind::Plain | Kind::Detached => None,
            Kind::Fd => {
                let (read, write) = raw::pipe()?;
                Some(Extra {
                    theirs: write,
                    _ours: read,
                })
            }
            Kind::Ipc => {
                let (ours, theirs) = UnixStream::pair()?;
                Some(Extra {
                    theirs: theirs.into(),
                    _ours: ours.into(),
                })
            }
        })
    }

    /// The raw fd the child's `pre_exec` hook puts at fd 3.
    pub(super) fn theirs_raw(extra: Option<&Extra>) -> Option<RawFd> {
        extra.map(|e| e.theirs.as_raw_fd())
    }
}

/// One spawn-and-wait with tokio::process.
pub(super) async fn tokio_once(kind: Kind) -> Result<(), BoxError> {
    use std::process::Stdio;
    let extra = Extra::new(kind)?;
    let mut cmd = tokio::process::Command::new(PROGRAM);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if kind != Kind::Plain {
        raw::tokio_pre_exec(&mut cmd, kind, Extra::theirs_raw(extra.as_ref()));
    }
    let status = cmd.status().await?;
    drop(extra);
    check(status.success(), "tokio::process", &status)
}

/// One spawn-and-wait with std::process.
pub(super) fn std_once(kind: Kind) -> Result<(), BoxError> {
    use std::process::Stdio;
    let extra = Extra::new(kind)?;
    let mut cmd = StdCommand::new(PROGRAM);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if kind != Kind::Plain {
        raw::std_pre_exec(&mut cmd, kind, Extra::theirs_raw(extra.as_ref()));
    }
    let status = cmd.status()?;
    drop(extra);
    check(status.success(), "std::process", &status)
}

/// An error unless the child succeeded: a failed spawn must not pass for a fast one.
pub(super) fn check(ok: bool, peer: &str, status: &dyn std::fmt::Display) -> Result<(), BoxError> {
    if ok {
        Ok(())
    } else {
        Err(format!("{peer}: {PROGRAM} ended with {status}").into())
    }
}

/// Runs [`std_once`] `n` times from `concurrency` OS threads pulling from one counter.
pub(super) fn time_threads(n: u64, concurrency: usize, kind: Kind) -> Result<Rate, BoxError> {
    let next = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..concurrency)
            .map(|_| {
                s.spawn(|| {
                    while next.fetch_add(1, Ordering::Relaxed) < n {
                        std_once(kind)?;
                    }
                    Ok::<(), BoxError>(())
                })
            })
            .collect();
        for t in threads {
            t.join().map_err(|_| "a std::process thread panicked")??;
        }
        Ok::<(), BoxError>(())
    })?;
    Ok(Rate {
        count: n,
        elapsed: start.elapsed(),
    })
}

/// The `pre_exec` hooks tokio::process and std::process need for a detached child or an
/// fd at 3 — the reason they fork — and the raw calls behind them. The only unsafe code
/// in the bench.
#[allow(unsafe_code)]
pub(super) mod raw {
    use std::ffi::c_int;
    use std::io;
    use std::os::fd::{FromRawFd, OwnedFd, RawFd};
    use std::os::unix::process::CommandExt;

    use super::Kind;

    /// `O_CLOEXEC` on Linux.
    const O_CLOEXEC: c_int = 0o2_000_000;
    /// `F_SETFD`.
    const F_SETFD: c_int = 2;

    extern "C" {
        fn setsid() -> c_int;
        fn dup2(old: c_int, new: c_int) -> c_int;
        fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
        fn pipe2(fds: *mut c_int, flags: c_int) -> c_int;
    }

    /// A pipe, both ends close-on-exec: (read end, write end).
    pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
        let mut fds: [c_int; 2] = [-1, -1];
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        if unsafe { pipe2(fds.as_mut_ptr(), O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both are new fds that nothing else owns.
        Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
    }

    /// What the child runs between `fork` and `exec`: `setsid` for a detached child, and
    /// `fd` put at fd 3 (without close-on-exec) for the others. Only async-signal-safe calls.
    pub(super) fn hook(
        kind: Kind,
        fd: Option<RawFd>,
    ) -> impl FnMut() -> io::Result<()> + Send + Sync {
        move || {
            // SAFETY: setsid, dup2 and fcntl are async-signal-safe and touch no memory.
            unsafe {
                if kind == Kind::Detached && setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                if let Some(fd) = fd {
                    // dup2 onto itself would keep close-on-exec: clear it instead.
                    let ok = if fd == 3 {
                        fcntl(3, F_SETFD, 0) >= 0
                    } else {
                        dup2(fd, 3) >= 0
                    };
                    if !ok {
                        return Err(io::Error::last_os_error());
                    }
                }
            }
            Ok(())
        }
    }

    /// Installs [`hook`] on a std command (which makes it fork).
    pub(crate) fn std_pre_exec(cmd: &mut std::process::Command, kind: Kind, fd: Option<RawFd>) {
        // SAFETY: the hook only makes async-signal-safe calls and allocates nothing; `fd`
        // stays open until the command has spawned (the caller keeps it).
        unsafe {
            cmd.pre_exec(hook(kind, fd));
        }
    }

    /// Installs [`hook`] on a tokio command (which makes it fork).
    pub(crate) fn tokio_pre_exec(cmd: &mut tokio::process::Command, kind: Kind, fd: Option<RawFd>) {
        // SAFETY: as in `std_pre_exec`.
        unsafe {
            cmd.pre_exec(hook(kind, fd));
        }
    }
}
