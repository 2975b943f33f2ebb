//! The spawn builder: every option of Node's `spawn`, std-style.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use childproc_ipc::{Channel, Serialization, CHANNEL_FD_ENV, SERIALIZATION_ENV};

use crate::backlog::Limits;
use crate::child::{start_ipc, start_watch, ChildProcess, Shared, Watch};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::signal::{Signal, SignalSpec};
use crate::stdio::{wrap_parent_ends, ParentEnd, Stdio, StdioSet, StdioShorthand};
use crate::sys::{self, EnvBlock, SpawnFailure, SpawnPlan, Stage};

/// The search path used when an explicit environment has no `PATH` (as `execvp` and Node).
const DEFAULT_PATH: &str = "/usr/bin:/bin";

/// Child fds from here up are refused by [`Command::fd`]: 2^20 is Linux's default `nr_open`,
/// the bound of every process's fd table (and of the engine's fd loops).
const MAX_CHILD_FD: i32 = 1 << 20;

/// Spawns hold this for reading from the moment they create the child's fds until the
/// child has exec'd (with `CLONE_VFORK`, until creation returns) and its fds are closed in
/// the parent; a spawn that creates an IPC socket holds it for writing. So no other child
/// of ours, in the moment between its creation and its fd cleanup, holds a copy of an IPC
/// child's end of the socket: the channel hangs up exactly when that child exits, which the
/// order of `Disconnect` before `Exit` relies on. (Go's runtime has the same lock for
/// `fork`.) Spawns by other libraries in the process do not take it.
static SPAWN_LOCK: RwLock<()> = RwLock::new(());

/// A command to spawn: Node's `spawn(command, args, options)` as a builder.
///
/// ```no_run
/// # async fn demo() -> Result<(), childproc::Error> {
/// use childproc::{Command, Stdio};
/// let child = Command::new("ls").args(["-lh", "/usr"]).stderr(Stdio::Inherit).spawn()?;
/// let status = child.wait().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    argv0: Option<OsString>,
    cwd: Option<PathBuf>,
    env_clear: bool,
    env: BTreeMap<OsString, Option<OsString>>,
    shell: Option<OsString>,
    /// exec/execSync: `shell(false)` keeps `/bin/sh`, as Node's `normalizeExecArgs`.
    shell_always: bool,
    detached: bool,
    uid: Option<u32>,
    gid: Option<u32>,
    timeout: Option<Duration>,
    kill_signal: SignalSpec,
    cancel: Option<CancellationToken>,
    stdio: BTreeMap<i32, Stdio>,
    stdio_errors: Vec<String>,
    kill_on_drop: bool,
    pgid: Option<i32>,
    kill_group: bool,
    escalate_after: Option<Duration>,
    wait_delay: Option<Duration>,
    kill_on_parent_death: bool,
    serialization: Serialization,
    ipc_limits: Limits,
}

impl Command {
    /// A command running `program` (looked up in `PATH` unless it contains a `/`).
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            argv0: None,
            cwd: None,
            env_clear: false,
            env: BTreeMap::new(),
            shell: None,
            shell_always: false,
            detached: false,
            uid: None,
            gid: None,
            timeout: None,
            kill_signal: SignalSpec::Signal(Signal::SIGTERM),
            cancel: None,
            stdio: BTreeMap::new(),
            stdio_errors: Vec::new(),
            kill_on_drop: false,
            pgid: None,
            kill_group: false,
            escalate_after: None,
            wait_delay: None,
            kill_on_parent_death: false,
            serialization: Serialization::Json,
            ipc_limits: Limits::default(),
        }
    }

    /// Adds an argument. Arguments are passed as they are: never interpreted by a shell
    /// unless [`shell`](Self::shell) is set.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// `argv0`: what the child sees as `argv[0]` (default: the command as given).
    pub fn argv0(&mut self, argv0: impl AsRef<OsStr>) -> &mut Command {
        self.argv0 = Some(argv0.as_ref().to_owned());
        self
    }

    /// `cwd`: the child's working directory. A missing directory is an error naming it.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Sets one environment variable (on top of the inherited environment, unless
    /// [`env_clear`](Self::env_clear) was called).
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.env
            .insert(key.as_ref().to_owned(), Some(val.as_ref().to_owned()));
        self
    }

    /// Sets several environment variables. Node's `env: {...}` option, which replaces the
    /// whole environment, is `.env_clear().envs(map)`.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self.env(k, v);
        }
        self
    }

    /// Removes a variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.env.insert(key.as_ref().to_owned(), None);
        self
    }

    /// Starts from an empty environment instead of the parent's. `PATH` lookup then uses the
    /// `PATH` given with [`env`](Self::env), or `/usr/bin:/bin` if none is.
    pub fn env_clear(&mut self) -> &mut Command {
        self.env_clear = true;
        self.env.clear();
        self
    }

    /// `shell: true`: run through `/bin/sh -c "<command> <args…>"` (joined with spaces, as
    /// Node does). Never pass unsanitised input to a shell. For `exec` and `exec_sync`,
    /// `shell(false)` still means `/bin/sh`, as in Node (`exec(cmd, {shell: false})`).
    pub fn shell(&mut self, on: bool) -> &mut Command {
        self.shell = (on || self.shell_always).then(|| OsString::from("/bin/sh"));
        self
    }

    /// `shell: '<path>'`: run through this shell with `-c`. An empty path means no shell, as
    /// Node's `shell: ''` (a falsy value), in every entry point.
    pub fn shell_path(&mut self, shell: impl AsRef<OsStr>) -> &mut Command {
        let shell = shell.as_ref();
        self.shell = (!shell.is_empty()).then(|| shell.to_owned());
        self
    }

    /// exec/execSync's shell: `/bin/sh`, which `shell(false)` does not turn off.
    pub(crate) fn always_shell(&mut self) -> &mut Command {
        self.shell_always = true;
        self.shell(true)
    }

    /// `detached`: the child leads a new session and process group (`setsid`).
    pub fn detached(&mut self, on: bool) -> &mut Command {
        self.detached = on;
        self
    }

    /// `uid`: the user id the child runs as (supplementary groups are dropped, as Node).
    pub fn uid(&mut self, uid: u32) -> &mut Command {
        self.uid = Some(uid);
        self
    }

    /// `gid`: the group id the child runs as.
    pub fn gid(&mut self, gid: u32) -> &mut Command {
        self.gid = Some(gid);
        self
    }

    /// `timeout`: kill the child with the kill signal if it runs longer. Zero means none; a
    /// duration too long to represent (`Duration::MAX`) never fires.
    ///
    /// For a spawned child this is Node's `spawn` timeout: it signals the child and nothing
    /// else. `Close` still waits for the pipes, so a grandchild that holds stdout open keeps
    /// it waiting (as in Node); [`wait_delay`](Self::wait_delay) bounds that. The buffered
    /// runners (exec and the sync trio) stop reading at the timeout instead, as Node's do.
    pub fn timeout(&mut self, timeout: Duration) -> &mut Command {
        self.timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// `killSignal`: the signal for timeouts, aborts and kill-on-drop (default `SIGTERM`).
    /// A name is checked at spawn: an unknown one is an error naming it.
    pub fn kill_signal(&mut self, signal: impl Into<SignalSpec>) -> &mut Command {
        self.kill_signal = signal.into();
        self
    }

    /// `signal`: Node's `AbortSignal`. Cancelling the token kills the child with the kill
    /// signal and emits [`Event::Error`] with [`Error::Aborted`].
    pub fn abort_signal(&mut self, token: CancellationToken) -> &mut Command {
        self.cancel = Some(token);
        self
    }

    /// Kill the child with the kill signal when its [`ChildProcess`] is dropped (Node's
    /// `subprocess[Symbol.dispose]()`). Off by default.
    pub fn kill_on_drop(&mut self, on: bool) -> &mut Command {
        self.kill_on_drop = on;
        self
    }

    /// Puts the child in process group `pgid` (`setpgid`); `0` makes it the leader of a new
    /// group, so [`ChildProcess::kill_tree`] can signal it and everything it starts. (Node has
    /// only `detached`, which also starts a new session.) Cannot be combined with `detached`.
    pub fn process_group(&mut self, pgid: i32) -> &mut Command {
        self.pgid = Some(pgid);
        self
    }

    /// Timeouts, aborts, escalation and kill-on-drop signal the child's whole process group
    /// instead of the child alone. Needs `detached(true)` or `process_group(0)`.
    pub fn kill_group(&mut self, on: bool) -> &mut Command {
        self.kill_group = on;
        self
    }

    /// After a timeout, an abort or kill-on-drop sent the kill signal, send SIGKILL if the
    /// child is still running `grace` later (beyond Node, which signals once).
    pub fn escalate_after(&mut self, grace: Duration) -> &mut Command {
        self.escalate_after = Some(grace);
        self
    }

    /// Go's `WaitDelay`, beyond Node: once the child has exited, wait at most `delay` for
    /// its stdout, stderr and extra pipes to reach end-of-file (every writer gone); then cut
    /// them — the parent's ends read end-of-file from then on and their pipes close, so a
    /// grandchild still writing gets `EPIPE` — and emit `Close`.
    /// [`ChildProcess::pipes_closed_early`] tells that it happened. Without it, a grandchild
    /// that inherited stdout (a daemon, a language server started by a tool) keeps `Close`
    /// waiting as long as it lives, as in Node. The pipes are read as usual while the child
    /// runs; the delay counts from the exit (bound a child that ignores the kill signal with
    /// [`escalate_after`](Self::escalate_after)). Stdin and the IPC channel are not cut.
    pub fn wait_delay(&mut self, delay: Duration) -> &mut Command {
        self.wait_delay = Some(delay);
        self
    }

    /// SIGKILL the child when this process dies, however it dies (SIGKILL included), through
    /// `PR_SET_PDEATHSIG` on Linux (FreeBSD: `procctl(PROC_PDEATHSIG_CTL)`). Linux ties that
    /// signal to the *thread* that created the child, so such children are created on a
    /// thread that lives as long as the process; a child whose parent died before the setting
    /// took effect exits at once. Other systems have no such signal: there `spawn` fails with
    /// [`std::io::ErrorKind::Unsupported`], naming this option.
    pub fn kill_on_parent_death(&mut self, on: bool) -> &mut Command {
        self.kill_on_parent_death = on;
        self
    }

    /// `serialization`: how IPC messages are encoded (`Json`, Node's default, and `Advanced`,
    /// Node's V8 format, for Node or Rust peers; `MsgPack` and `LengthJson` for Rust peers).
    /// Only meaningful with a [`Stdio::Ipc`] entry.
    pub fn serialization(&mut self, mode: Serialization) -> &mut Command {
        self.serialization = mode;
        self
    }

    /// `stdio[0]`.
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.stdio.insert(0, cfg.into());
        self
    }

    /// `stdio[1]`.
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.stdio.insert(1, cfg.into());
        self
    }

    /// `stdio[2]`.
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.stdio.insert(2, cfg.into());
        self
    }

    /// Configures child fd `fd` (any number; ≥ 3 for extra fds). Configuring the same fd twice
    /// through `fd`, a negative fd, or one from 2^20 up is an error reported by `spawn`.
    pub fn fd(&mut self, fd: i32, cfg: impl Into<Stdio>) -> &mut Command {
        if fd < 0 {
            self.stdio_errors.push(format!("fd {fd} is negative"));
        } else if fd >= MAX_CHILD_FD {
            self.stdio_errors.push(format!(
                "fd {fd} is above the highest fd a child can have ({})",
                MAX_CHILD_FD - 1
            ));
        } else if fd > 2 && self.stdio.contains_key(&fd) {
            self.stdio_errors
                .push(format!("fd {fd} is configured twice"));
        }
        self.stdio.insert(fd, cfg.into());
        self
    }

    /// The `stdio` array: entry `i` configures child fd `i`, replacing any earlier setting.
    pub fn stdio<I, S>(&mut self, entries: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: Into<Stdio>,
    {
        self.stdio.clear();
        for (i, e) in entries.into_iter().enumerate() {
            self.stdio
                .insert(i32::try_from(i).unwrap_or(i32::MAX), e.into());
        }
        self
    }

    /// The `stdio` string shorthands: `'pipe'`, `'overlapped'`, `'ignore'`, `'inherit'`.
    pub fn stdio_all(&mut self, shorthand: StdioShorthand) -> &mut Command {
        self.stdio.clear();
        for fd in 0..3 {
            self.stdio.insert(fd, shorthand.expand());
        }
        self
    }

    /// `windowsHide`: accepted and ignored (Windows only).
    pub fn windows_hide(&mut self, _on: bool) -> &mut Command {
        self
    }

    /// `windowsVerbatimArguments`: accepted and ignored (Windows only).
    pub fn windows_verbatim_arguments(&mut self, _on: bool) -> &mut Command {
        self
    }

    /// Replaces the program (for `fork`, which learns `execPath` last).
    pub(crate) fn set_program(&mut self, program: &OsStr) {
        self.program = program.to_owned();
    }

    /// The program as given.
    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    /// Spawns the child (Node's `spawn`). Must be called inside a tokio runtime (the child is
    /// watched and reaped by a task). The command can be spawned again.
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
        let leads_group = self.detached || self.pgid == Some(0);
        let serialization = self.serialization;
        let wrapped =
            wrap_parent_ends(ends).and_then(|(stdin, stdout, stderr, extra, streams, ipc)| {
                let channel = match ipc {
                    Some(stream) => Some(
                        serialization
                            .codec()
                            .and_then(|codec| Channel::from_std(stream, codec))
                            .map_err(std::io::Error::other)?,
                    ),
                    None => None,
                };
                Ok((stdin, stdout, stderr, extra, streams, channel))
            });
        let (stdin, stdout, stderr, extra, streams, channel) = match wrapped {
            Ok(wrapped) => wrapped,
            Err(e) => {
                // Registering the pipes or the channel failed: do not leave the child running
                // unwatched.
                let _ = process.signal(libc::SIGKILL);
                let _ = process.wait_blocking();
                return Err(Error::Io(e));
            }
        };
        let shared = Shared::new(
            process,
            leads_group,
            self.kill_group,
            self.escalate_after.is_some(),
            channel.is_some(),
        );
        shared.hub.emit(Event::Spawn);
        let pid = shared.process.pid();
        let command = file.to_string_lossy();
        let span = tracing::debug_span!("child", %command, pid, engine = sys::engine_name());
        span.in_scope(|| tracing::debug!("spawn"));
        let watch = Watch {
            streams,
            timeout: self.timeout,
            cancel: self.cancel.clone(),
            kill_signal,
            escalate_after: self.escalate_after,
            wait_delay: self.wait_delay,
            ipc_done: None,
        };
        let probe = channel.as_ref().and_then(Channel::hangup_probe);
        let ipc = channel.map(|c| start_ipc(&shared, c, self.ipc_limits));
        let mut watch = watch;
        watch.ipc_done = ipc.as_ref().map(|i| (i.done.clone(), probe));
        let eager = watch.timeout.is_some()
            || watch.cancel.is_some()
            || watch.escalate_after.is_some()
            || watch.wait_delay.is_some()
            || ipc.is_some();
        start_watch(&shared, watch, span, eager);
        Ok(ChildProcess {
            stdin,
            stdout,
            stderr,
            extra,
            shared,
            spawnfile: file,
            spawnargs: argv,
            kill_on_drop: self.kill_on_drop,
            kill_signal,
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
        if self.kill_group && !(self.detached || self.pgid == Some(0)) {
            let reason = "the child must lead its group: add detached(true) or process_group(0)";
            return Err(Error::InvalidOption {
                option: "kill_group",
                reason: reason.into(),
            });
        }
        let ipc_fds: Vec<i32> = self
            .stdio
            .iter()
            .filter(|(_, s)| matches!(s, Stdio::Ipc))
            .map(|(fd, _)| *fd)
            .collect();
        if ipc_fds.len() > 1 {
            return Err(Error::Stdio(format!(
                "more than one 'ipc' entry (fds {ipc_fds:?}); a child has at most one"
            )));
        }
        if !ipc_fds.is_empty() {
            self.serialization.codec()?;
        }
        let mut prepared = self.prepare()?;
        if let Some(fd) = ipc_fds.first() {
            // Node's child side finds the channel through these two variables.
            let mode = self.serialization.env_value();
            prepared
                .envp
                .push(CHANNEL_FD_ENV.as_bytes(), fd.to_string().as_bytes());
            prepared
                .envp
                .push(SERIALIZATION_ENV.as_bytes(), mode.as_bytes());
        }
        // Held until the child ends are closed below (declared first, dropped last).
        let (_spawning, _creating_ipc) = if ipc_fds.is_empty() {
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
        let io = StdioSet::open(&self.stdio)?;
        let plan = SpawnPlan {
            path: prepared.path,
            argv: prepared.argv,
            envp: prepared.envp,
            cwd: prepared.cwd,
            fds: io.child_fds(),
            setsid: self.detached,
            pgid: self.pgid,
            kill_on_parent_death: self.kill_on_parent_death,
            uid: self.uid,
            gid: self.gid,
        };
        // The environment must not change while the child reads it (see `EnvBlock`).
        let environment = childproc_ipc::serialization::ENVIRONMENT.read();
        let environment = environment.unwrap_or_else(|e| e.into_inner());
        let created = match self.kill_on_parent_death {
            true => sys::spawn_kept(&plan),
            false => sys::spawn(&plan),
        };
        drop(environment);
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

    /// The `timeout` option.
    pub(crate) fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The `wait_delay` option.
    pub(crate) fn get_wait_delay(&self) -> Option<Duration> {
        self.wait_delay
    }

    /// The `signal` option's token.
    pub(crate) fn get_abort_signal(&self) -> Option<&CancellationToken> {
        self.cancel.as_ref()
    }

    /// Whether policy kills go to the whole group, and the escalation grace period.
    pub(crate) fn get_kill_policy(&self) -> (bool, Option<Duration>) {
        (self.kill_group, self.escalate_after)
    }

    /// Whether `fd` was configured explicitly (the sync exec variants echo stderr only when
    /// it was not).
    pub(crate) fn has_stdio(&self, fd: i32) -> bool {
        self.stdio.contains_key(&fd)
    }

    /// Whether `fd` was given anything but the default (a pipeline links stages through the
    /// fds the user left at the default).
    pub(crate) fn configures_stdio(&self, fd: i32) -> bool {
        self.stdio
            .get(&fd)
            .is_some_and(|s| !matches!(s, Stdio::Default))
    }

    /// Forgets the entry for `fd`, closing the fd it may own (a pipeline's link, once the
    /// stage holds its own copy).
    pub(crate) fn unset_stdio(&mut self, fd: i32) {
        self.stdio.remove(&fd);
    }

    /// The program and its arguments joined with spaces, as Node's `error.cmd` shows a
    /// command line.
    pub(crate) fn cmdline(&self) -> String {
        let mut line = self.program.to_string_lossy().into_owned();
        for a in &self.args {
            line.push(' ');
            line.push_str(&a.to_string_lossy());
        }
        line
    }

    /// The file that is executed (Node's `spawnfile` and `error.path`): the shell for a
    /// shell command, else the program.
    pub(crate) fn spawnfile(&self) -> &OsStr {
        self.shell.as_deref().unwrap_or(&self.program)
    }

    /// Whether an fd is Node's `'ipc'`.
    pub(crate) fn has_ipc(&self) -> bool {
        self.stdio.values().any(|s| matches!(s, Stdio::Ipc))
    }

    fn spawn_error(&self, f: SpawnFailure) -> Error {
        // Named by the file that was executed, as Node's `spawn bad_shell ENOENT`.
        let program = self.spawnfile().to_owned();
        match f.stage {
            Stage::Chdir => Error::Cwd {
                program,
                cwd: self.cwd.clone().unwrap_or_default(),
                source: f.error,
            },
            Stage::Uid => Error::Identity {
                program,
                what: "uid",
                id: self.uid.unwrap_or_default(),
                source: f.error,
            },
            Stage::Gid => Error::Identity {
                program,
                what: "gid",
                id: self.gid.unwrap_or_default(),
                source: f.error,
            },
            Stage::Prepare
            | Stage::Setsid
            | Stage::Pgid
            | Stage::ParentDeath
            | Stage::Fds
            | Stage::Exec => Error::Spawn {
                program,
                source: f.error,
            },
        }
    }

    /// Checks every input and builds what the engine needs (all allocation happens here).
    fn prepare(&self) -> Result<Prepared> {
        if self.program.is_empty() {
            return Err(Error::InvalidOption {
                option: "program",
                reason: "the command cannot be empty".into(),
            });
        }
        for (what, id) in [("uid", self.uid), ("gid", self.gid)] {
            if id == Some(u32::MAX) {
                return Err(Error::InvalidOption {
                    option: what,
                    reason: format!("{what} {} is not a valid id", u32::MAX),
                });
            }
        }
        let (file, argv_os) = match &self.shell {
            Some(shell) => {
                let mut line = self.program.clone();
                for a in &self.args {
                    line.push(" ");
                    line.push(a);
                }
                let argv0 = self.argv0.clone().unwrap_or_else(|| shell.clone());
                (shell.clone(), vec![argv0, "-c".into(), line])
            }
            None => {
                let argv0 = self.argv0.clone().unwrap_or_else(|| self.program.clone());
                let argv = std::iter::once(argv0)
                    .chain(self.args.iter().cloned())
                    .collect();
                (self.program.clone(), argv)
            }
        };
        cstring("program", &self.program)?;
        cstring("program", &file)?;
        let mut argv = Vec::with_capacity(argv_os.len());
        for (i, a) in argv_os.iter().enumerate() {
            let what = if i == 0 {
                "argv0".to_owned()
            } else {
                format!("argument {i}")
            };
            argv.push(cstring(&what, a)?);
        }
        let envp = self.envp()?;
        let cwd = match &self.cwd {
            Some(dir) => Some(self.check_cwd(dir)?),
            None => None,
        };
        let path =
            resolve_program(&file, || self.path_var(), self.cwd.as_deref()).map_err(|source| {
                Error::Spawn {
                    program: file.clone(),
                    source,
                }
            })?;
        Ok(Prepared {
            file,
            argv_os,
            path,
            argv,
            envp,
            cwd,
        })
    }

    fn check_cwd(&self, dir: &Path) -> Result<CString> {
        let c = cstring("cwd", dir.as_os_str())?;
        let err = |source| Error::Cwd {
            program: self.spawnfile().to_owned(),
            cwd: dir.to_owned(),
            source,
        };
        let meta = std::fs::metadata(dir).map_err(err)?;
        if !meta.is_dir() {
            return Err(err(io::Error::from_raw_os_error(libc::ENOTDIR)));
        }
        Ok(c)
    }

    /// The PATH to search, by Node's rules.
    fn path_var(&self) -> OsString {
        match self.env.get(OsStr::new("PATH")) {
            Some(Some(p)) => p.clone(),
            Some(None) => DEFAULT_PATH.into(),
            None if self.env_clear => DEFAULT_PATH.into(),
            None => std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
        }
    }

    fn envp(&self) -> Result<EnvBlock> {
        if !self.env_clear && self.env.is_empty() {
            // The common case: the parent's environment as it is. Entries from the OS cannot
            // hold a NUL, and their keys no '='.
            return Ok(EnvBlock::inherited(&[CHANNEL_FD_ENV, SERIALIZATION_ENV]));
        }
        let mut vars: BTreeMap<OsString, OsString> = if self.env_clear {
            BTreeMap::new()
        } else {
            std::env::vars_os()
                .filter(|(k, _)| !is_channel_var(k))
                .collect()
        };
        for (k, v) in &self.env {
            match v {
                Some(v) => vars.insert(k.clone(), v.clone()),
                None => vars.remove(k),
            };
        }
        let mut envp = EnvBlock::with_capacity(vars.len());
        for (k, v) in vars {
            if k.is_empty() || k.as_bytes().contains(&b'=') {
                return Err(Error::InvalidOption {
                    option: "env",
                    reason: format!("key {:?} is empty or contains '='", k.to_string_lossy()),
                });
            }
            cstring("environment key", &k)?;
            cstring(&format!("environment value of {}", k.to_string_lossy()), &v)?;
            envp.push(k.as_bytes(), v.as_bytes());
        }
        Ok(envp)
    }

    /// The IPC receive bound (no Node option: Node reads its channel without one). While an
    /// [`events()`](crate::ChildProcess::events) stream holds `messages` messages or about
    /// `bytes` bytes of them (or the history does, before the first stream), the parent stops
    /// reading the child's channel, so the kernel makes the child's sends wait; it reads on
    /// once every live stream is back to half of both. Nothing is lost and order is kept.
    /// Defaults: [`IPC_HIGH_WATER_MESSAGES`](crate::IPC_HIGH_WATER_MESSAGES) and
    /// [`IPC_HIGH_WATER_BYTES`](crate::IPC_HIGH_WATER_BYTES); each is at least 1. See
    /// docs/ipc.md for messages nobody reads.
    pub fn ipc_high_water(&mut self, messages: usize, bytes: usize) -> &mut Command {
        self.ipc_limits = Limits::new(messages, bytes);
        self
    }
}

/// A command for `program` with `args`: Node's `spawn(command, args)` with default options.
pub fn spawn<I, S>(program: impl AsRef<OsStr>, args: I) -> Result<ChildProcess>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(program).args(args).spawn()
}

/// `NODE_CHANNEL_FD` / `NODE_CHANNEL_SERIALIZATION_MODE` describe *this* process's channel:
/// never passed on by inheritance (Node deletes them from `process.env` at startup).
fn is_channel_var(key: &OsStr) -> bool {
    key == CHANNEL_FD_ENV || key == SERIALIZATION_ENV
}

struct Prepared {
    file: OsString,
    argv_os: Vec<OsString>,
    path: CString,
    argv: Vec<CString>,
    envp: EnvBlock,
    cwd: Option<CString>,
}

fn cstring(what: &str, s: &OsStr) -> Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| Error::Nul {
        what: what.to_owned(),
        value: s.to_owned(),
    })
}

/// `execvp`'s search, done in the parent: the first executable regular file in `path_var`.
fn resolve_program(
    file: &OsStr,
    path_var: impl FnOnce() -> OsString,
    cwd: Option<&Path>,
) -> io::Result<CString> {
    if file.as_bytes().contains(&b'/') {
        return Ok(CString::new(file.as_bytes())?);
    }
    let mut denied = false;
    for dir in std::env::split_paths(&path_var()) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let dir = match cwd {
            Some(cwd) if dir.is_relative() => cwd.join(dir),
            _ => dir,
        };
        let candidate = dir.join(file);
        let Ok(c) = CString::new(candidate.into_os_string().into_vec()) else {
            continue;
        };
        match std::fs::metadata(OsStr::from_bytes(c.as_bytes())) {
            Ok(m) if m.is_file() => match sys::is_executable(&c) {
                Ok(true) => return Ok(c),
                Ok(false) => denied = true,
                Err(_) => {}
            },
            _ => {}
        }
    }
    Err(io::Error::from_raw_os_error(if denied {
        libc::EACCES
    } else {
        libc::ENOENT
    }))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_lookup_follows_nodes_rules() {
        let mut c = Command::new("x");
        if let Some(p) = std::env::var_os("PATH") {
            assert_eq!(c.path_var(), p);
        }
        c.env_clear();
        assert_eq!(c.path_var(), DEFAULT_PATH);
        c.env("PATH", "/opt/bin");
        assert_eq!(c.path_var(), "/opt/bin");
        let mut d = Command::new("x");
        d.env_remove("PATH");
        assert_eq!(d.path_var(), DEFAULT_PATH);
    }

    #[test]
    fn resolve_finds_executables_and_reports_missing_ones() {
        let sh = resolve_program(OsStr::new("sh"), || "/nonexistent:/bin".into(), None).unwrap();
        assert_eq!(sh.to_bytes(), b"/bin/sh");
        let e =
            resolve_program(OsStr::new("no-such-program-x"), || "/bin".into(), None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        // A directory named like the program is skipped, as execvp would.
        let e = resolve_program(OsStr::new("bin"), || "/".into(), None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
