//! childproc and raw `posix_spawn`, paired spawn by spawn in one process.
//!
//! The C columns of the engine tables run in a process of their own, at another moment than
//! childproc's round; on this machine a peer's speed drifts by up to 2× over seconds, so
//! their ratio mixes the two engines with the moment. Here one worker process alternates a
//! childproc spawn-and-wait with a glibc `posix_spawn` + blocking `waitpid` of the same child
//! (the same calls as `rawspawn.c`'s `posix_spawn` mode), swapping which goes first every
//! spawn, so both see the same machine.

use std::process::Command as StdCommand;
use std::time::{Duration, Instant};

use super::{childproc_once, output, Ctx, ExtraFd, Kind};
use crate::bench::doc::Table;
use crate::bench::rotation;
use crate::BoxError;

/// What one worker measured for one kind: the summed wall time of `spawns` of each.
#[derive(Debug, Clone, Copy)]
pub(super) struct Paired {
    pub(super) kind: Kind,
    pub(super) spawns: u64,
    pub(super) childproc: Duration,
    pub(super) posix_spawn: Duration,
}

impl Paired {
    /// childproc's rate ÷ posix_spawn's (above 1: childproc is faster).
    pub(super) fn ratio(&self) -> f64 {
        self.posix_spawn.as_secs_f64() / self.childproc.as_secs_f64()
    }
}

/// Measures every kind, `rounds` workers each (kinds in rotating order), `spawns` pairs per
/// worker after `warmup` untimed ones; the sums over the rounds.
pub(super) fn measure(
    ctx: &Ctx<'_>,
    rounds: usize,
    spawns: u64,
    warmup: u64,
) -> Result<Vec<Paired>, BoxError> {
    let mut sums: Vec<Paired> = Kind::ALL
        .map(|kind| Paired {
            kind,
            spawns: 0,
            childproc: Duration::ZERO,
            posix_spawn: Duration::ZERO,
        })
        .to_vec();
    for round in 0..rounds {
        for kind in rotation(&Kind::ALL, round) {
            let mut cmd = StdCommand::new(&ctx.xtask);
            cmd.args(["bench-worker", "engine-paired", kind.key()])
                .args([spawns, warmup].map(|v| v.to_string()));
            let out = output(&mut cmd, "the paired engine worker")?;
            let got = parse(out.trim())
                .ok_or_else(|| format!("the paired engine worker printed `{}`", out.trim()))?;
            let sum = sums
                .iter_mut()
                .find(|s| s.kind == kind)
                .ok_or("a kind without a row")?;
            sum.spawns += spawns;
            sum.childproc += got.0;
            sum.posix_spawn += got.1;
            println!(
                "  small parent, paired, round {}: {:<8} childproc {:>4.0} µs, posix_spawn \
                 {:>4.0} µs per spawn",
                round + 1,
                kind.key(),
                got.0.as_secs_f64() * 1e6 / spawns as f64,
                got.1.as_secs_f64() * 1e6 / spawns as f64,
            );
        }
    }
    Ok(sums)
}

/// `{"childproc_ns":A,"posix_spawn_ns":B}` → the two durations.
fn parse(line: &str) -> Option<(Duration, Duration)> {
    let field = |name: &str| -> Option<u64> {
        let start = line.find(&format!("\"{name}\":"))? + name.len() + 3;
        let digits: String = line[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    Some((
        Duration::from_nanos(field("childproc_ns")?),
        Duration::from_nanos(field("posix_spawn_ns")?),
    ))
}

/// The table: one row per kind.
pub(super) fn table(rows: &[Paired]) -> Table {
    let micros = |d: Duration, n: u64| format!("{:.0} µs", d.as_secs_f64() * 1e6 / n as f64);
    Table {
        header: [
            "Child",
            "childproc (mean per spawn)",
            "C posix_spawn, same process",
            "childproc ÷ posix_spawn",
        ]
        .map(String::from)
        .to_vec(),
        rows: rows
            .iter()
            .map(|p| {
                vec![
                    p.kind.label().to_string(),
                    micros(p.childproc, p.spawns),
                    micros(p.posix_spawn, p.spawns),
                    format!("{:.2}×", p.ratio()),
                ]
            })
            .collect(),
    }
}

/// `xtask bench-worker engine-paired KIND SPAWNS WARMUP`: alternates childproc and raw
/// `posix_spawn` for KIND and prints `{"childproc_ns":A,"posix_spawn_ns":B}`, the summed
/// wall times of SPAWNS each (after WARMUP untimed pairs).
pub(crate) fn worker(args: &[String]) -> Result<(), BoxError> {
    let usage = "usage: xtask bench-worker engine-paired KIND SPAWNS WARMUP";
    let [_, kind, spawns, warmup] = args else {
        return Err(usage.into());
    };
    let kind = Kind::parse(kind).ok_or(usage)?;
    let spawns: u64 = spawns.parse().map_err(|_| usage)?;
    let warmup: u64 = warmup.parse().map_err(|_| usage)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The loop runs as a task on a worker thread, as every other async measurement here
    // (`time_async`): the worker that sees the child's exit runs the waiting task itself.
    // The blocking `posix_spawn` + `waitpid` holds that worker meanwhile; with one spawn
    // at a time, nothing else needs it.
    let (ours, theirs) = rt.block_on(async move {
        tokio::spawn(async move {
            let (mut ours, mut theirs) = (Duration::ZERO, Duration::ZERO);
            for i in 0..warmup + spawns {
                let mut times = [Duration::ZERO; 2];
                for which in [i % 2, 1 - i % 2] {
                    let t = Instant::now();
                    if which == 0 {
                        childproc_once(kind, ExtraFd::SameAsRaw).await?;
                    } else {
                        raw::posix_spawn_once(kind)?;
                    }
                    times[usize::from(which == 1)] = t.elapsed();
                }
                if i >= warmup {
                    ours += times[0];
                    theirs += times[1];
                }
            }
            Ok::<_, BoxError>((ours, theirs))
        })
        .await?
    })?;
    println!(
        "{{\"childproc_ns\":{},\"posix_spawn_ns\":{}}}",
        ours.as_nanos(),
        theirs.as_nanos()
    );
    Ok(())
}

/// glibc's `posix_spawn` and a blocking `waitpid`, as `rawspawn.c` calls them.
#[allow(unsafe_code)]
mod raw {
    use std::ffi::CString;
    use std::fs::File;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::sync::OnceLock;

    use super::super::{Extra, Kind, PROGRAM};
    use crate::BoxError;

    /// `/dev/null`, opened once, as `rawspawn.c` does.
    fn devnull() -> Result<&'static File, BoxError> {
        static DEVNULL: OnceLock<File> = OnceLock::new();
        if let Some(f) = DEVNULL.get() {
            return Ok(f);
        }
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?;
        Ok(DEVNULL.get_or_init(|| f))
    }

    /// A non-zero return of a posix_spawn call as an error.
    fn check(what: &str, rc: libc::c_int) -> Result<(), BoxError> {
        if rc == 0 {
            Ok(())
        } else {
            Err(format!("{what}: {}", std::io::Error::from_raw_os_error(rc)).into())
        }
    }

    /// One spawn-and-wait of `kind` through `posix_spawn`.
    pub(super) fn posix_spawn_once(kind: Kind) -> Result<(), BoxError> {
        let null = devnull()?.as_raw_fd();
        let extra = Extra::new(kind)?;
        let path = CString::new(PROGRAM)?;
        let argv = [path.as_ptr().cast_mut(), std::ptr::null_mut()];
        let mut pid: libc::pid_t = 0;
        // SAFETY: the file actions and attributes are initialized before use and destroyed
        // after; every pointer handed to posix_spawn (path, argv, environ, the two objects)
        // stays valid for the call; `environ` is not changed by this process while it runs.
        let rc = unsafe {
            let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
            let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
            check(
                "posix_spawn_file_actions_init",
                libc::posix_spawn_file_actions_init(&mut actions),
            )?;
            check(
                "posix_spawnattr_init",
                libc::posix_spawnattr_init(&mut attr),
            )?;
            for fd in 0..3 {
                libc::posix_spawn_file_actions_adddup2(&mut actions, null, fd);
            }
            if let Some(e) = &extra {
                libc::posix_spawn_file_actions_adddup2(&mut actions, e.theirs.as_raw_fd(), 3);
            }
            if kind == Kind::Detached {
                libc::posix_spawnattr_setflags(&mut attr, libc::POSIX_SPAWN_SETSID as _);
            }
            let rc = libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                &actions,
                &attr,
                argv.as_ptr(),
                libc::environ.cast_const(),
            );
            libc::posix_spawn_file_actions_destroy(&mut actions);
            libc::posix_spawnattr_destroy(&mut attr);
            rc
        };
        check("posix_spawn", rc)?;
        // The child has its copy of fd 3; ours closes now, as childproc's does.
        let _ours: Option<OwnedFd> = extra.map(
            |Extra {
                 theirs,
                 _ours: ours,
             }| {
                drop(theirs);
                ours
            },
        );
        let mut status: libc::c_int = 0;
        loop {
            // SAFETY: waits for our own child; `status` is a valid int to write.
            let r = unsafe { libc::waitpid(pid, &mut status, 0) };
            if r == pid {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(format!("waitpid: {e}").into());
            }
        }
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            Ok(())
        } else {
            Err(format!("posix_spawn: the child ended with wait status {status:#x}").into())
        }
    }
}
