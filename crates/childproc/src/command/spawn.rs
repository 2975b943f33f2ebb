//! `Command::spawn`: from the validated options to a running, watched [`ChildProcess`], and
//! `launch`, the part the synchronous API shares (checks, stdio, process creation).

use std::ffi::OsString;
use std::io;
use std::sync::RwLock;

#[cfg(feature = "ipc")]
use crate::child::start_ipc;
use crate::child::{start_watch, ChildProcess, Shared, Watch};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::signal::Signal;
use crate::stdio::{wrap_parent_ends, ParentEnd, ParentEnds, StdioSet};
use crate::sys::{self, SpawnPlan};

use super::ipc::environment_held;
use super::Command;

/// Spawns hold this for reading from the moment they create the child's fds until the
/// child has exec'd (with `CLONE_VFORK`, until creation returns) and its fds are closed in
/// the parent; a spawn that creates an IPC socket holds it for writing. So no other child
/// of ours, in the moment between its creation and its fd cleanup, holds a copy of an IPC
/// child's end of the socket: the channel hangs up exactly when that child exits, which the
/// order of `Disconnect` before `Exit` relies on. (Go's runtime has the same lock for
/// `fork`.) Spawns by other libraries in the process do not take it.
static SPAWN_LOCK: RwLock<()> = RwLock::new(());

impl Command {
    /// Spawns the child (Node's `spawn`). Must be called inside a tokio runtime (the child is
    /// watched and reaped by a task); the child can still be waited for, closed and followed
    /// from another runtime, also once this one has shut down. The command can be spawned
    /// again.
    ///
    /// Errors name the offending input: a missing program ([`std::io::ErrorKind::NotFound`]),
    /// a bad cwd, a NUL byte, an unknown kill signal, a bad stdio entry, a uid/gid that cannot
    /// be set.
    pub fn spawn(&mut self) -> Result<ChildProcess> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Io(io::Error::other(
                "childproc::Command::spawn must be called inside a tokio runtime",
            )));
        }
        let Launched {
            process,
            ends,
            file,
            argv,
            kill_signal,
        } = self.launch()?;
        let leads_group = self.detached || self.pgid == Some(0) || self.has_pty();
        // Registering the pipes or the channel can fail: then do not leave the child running
        // unwatched.
        let unwatched = |e| {
            let _ = process.signal(libc::SIGKILL);
            let _ = process.wait_blocking();
            Error::Io(e)
        };
        let ParentEnds {
            stdin,
            stdout,
            stderr,
            extra,
            watches,
            #[cfg(feature = "ipc")]
            ipc,
            pty,
        } = wrap_parent_ends(ends).map_err(unwatched)?;
        // A channel over stdin and stdout: a socketpair between them and the channel.
        #[cfg(feature = "ipc")]
        let (stdin, stdout, ipc) = match (self.channel_over_stdio_on(), stdin, stdout) {
            (true, Some(stdin), Some(stdout)) => {
                let end = childproc_ipc::stdio::relay(stdout, stdin).map_err(unwatched)?;
                (None, None, Some(end))
            }
            (_, stdin, stdout) => (stdin, stdout, ipc),
        };
        #[cfg(feature = "ipc")]
        let channel = self.open_channel(ipc).map_err(unwatched)?;
        let shared = Shared::new(
            process,
            leads_group,
            self.kill_group,
            self.escalate_after.is_some(),
            self.has_ipc(),
        );
        shared.hub.emit(Event::Spawn);
        let pid = shared.process.pid();
        // Fields are evaluated only when the span is enabled: no lossy copy per spawn else.
        let span = tracing::debug_span!(
            "child",
            command = %file.to_string_lossy(),
            pid,
            engine = sys::engine_name()
        );
        span.in_scope(|| tracing::debug!("spawn"));
        #[cfg(feature = "ipc")]
        let (ipc, ipc_done) = channel
            .map(|c| start_ipc(&shared, c, self.ipc_limits))
            .map(|(mut ipc, done)| {
                ipc.over_stdio = self.channel_over_stdio_on();
                (ipc, done)
            })
            .unzip();
        let watch = Watch {
            streams: watches,
            timeout: self.timeout,
            cancel: self.cancel.clone(),
            kill_signal,
            escalate_after: self.escalate_after,
            wait_delay: self.wait_delay,
            #[cfg(feature = "ipc")]
            ipc_done,
        };
        let eager = watch.timeout.is_some()
            || watch.cancel.is_some()
            || watch.escalate_after.is_some()
            || watch.wait_delay.is_some()
            || self.has_ipc();
        start_watch(&shared, watch, span, eager);
        Ok(ChildProcess {
            stdin,
            stdout,
            stderr,
            pty,
            extra,
            shared,
            spawnfile: file,
            spawnargs: argv,
            kill_on_drop: self.kill_on_drop,
            kill_signal,
            #[cfg(feature = "ipc")]
            ipc,
        })
    }

    /// Checks the inputs, opens the stdio and creates the process — everything but the
    /// tokio side, so the synchronous API shares it.
    pub(crate) fn launch(&mut self) -> Result<Launched> {
        // (See `SPAWN_LOCK` for the lock taken below.)
        let kill_signal = self.kill_signal.resolve()?;
        if let Some(e) = self.stdio_errors.first() {
            return Err(Error::Stdio(e.clone()));
        }
        if self.detached && self.pgid.is_some() {
            let reason = "detached already makes the child lead a new session and group";
            return Err(Error::InvalidOption {
                option: "process_group",
                reason: reason.into(),
            });
        }
        if self.has_pty() && self.pgid.is_some() {
            let reason = "a child on a pty leads a session of its own (and its group)";
            return Err(Error::InvalidOption {
                option: "process_group",
                reason: reason.into(),
            });
        }
        if self.kill_group && !(self.detached || self.pgid == Some(0) || self.has_pty()) {
            let reason = "the child must lead its group: add detached(true) or process_group(0)";
            return Err(Error::InvalidOption {
                option: "kill_group",
                reason: reason.into(),
            });
        }
        let ipc_fd = self.ipc_fd()?;
        let mut prepared = self.prepare()?;
        if let Some(fd) = ipc_fd {
            self.channel_env(&mut prepared.envp, fd);
        }
        self.stdio_channel_env(&mut prepared.envp)?;
        // Held until the child ends are closed below (declared first, dropped last).
        let (_spawning, _creating_ipc) = if ipc_fd.is_none() {
            (
                Some(SPAWN_LOCK.read().unwrap_or_else(|e| e.into_inner())),
                None,
            )
        } else {
            (
                None,
                Some(SPAWN_LOCK.write().unwrap_or_else(|e| e.into_inner())),
            )
        };
        let io = StdioSet::open(&self.stdio, self.pty_size)?;
        let controlling_tty = io.controlling_tty();
        let plan = SpawnPlan {
            path: prepared.path,
            argv: prepared.argv,
            envp: prepared.envp,
            cwd: prepared.cwd,
            fds: io.child_fds(),
            // A terminal needs a session of its own to be its controlling terminal.
            setsid: self.detached || controlling_tty.is_some(),
            controlling_tty,
            pgid: self.pgid,
            kill_on_parent_death: self.kill_on_parent_death,
            uid: self.uid,
            gid: self.gid,
        };
        // The environment must not change while the child reads it (see `EnvBlock`).
        let created = environment_held(|| match self.kill_on_parent_death {
            true => sys::spawn_kept(&plan),
            false => sys::spawn(&plan),
        });
        let process = created.map_err(|f| self.spawn_error(f))?;
        drop(plan);
        Ok(Launched {
            process,
            ends: io.into_parent_ends(),
            file: prepared.file,
            argv: prepared.argv_os,
            kill_signal,
        })
    }
}

/// A created child before the tokio side is attached.
pub(crate) struct Launched {
    pub(crate) process: sys::Process,
    /// The parent's ends of the pipes, by child fd.
    pub(crate) ends: Vec<(i32, ParentEnd)>,
    pub(crate) file: OsString,
    pub(crate) argv: Vec<OsString>,
    pub(crate) kill_signal: Signal,
}
