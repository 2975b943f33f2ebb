//! The spawn builder: every option of Node's `spawn`, std-style.

mod ipc;
mod prepare;
mod spawn;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

#[cfg(feature = "ipc")]
use childproc_ipc::Serialization;

#[cfg(feature = "ipc")]
use crate::backlog::Limits;
use crate::child::ChildProcess;
use crate::error::Result;
use crate::pty::PtySize;
use crate::signal::{Signal, SignalSpec};
use crate::stdio::{Stdio, StdioShorthand};

pub(crate) use spawn::Launched;

/// Child fds from here up are refused by [`Command::fd`]: 2^20 is Linux's default `nr_open`,
/// the bound of every process's fd table (and of the engine's fd loops).
const MAX_CHILD_FD: i32 = 1 << 20;

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
    pty_size: PtySize,
    #[cfg(feature = "ipc")]
    serialization: Serialization,
    /// The channel runs over stdin and stdout (`channel_over_stdio`).
    #[cfg(feature = "ipc")]
    stdio_channel: bool,
    #[cfg(feature = "ipc")]
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
            pty_size: PtySize::default(),
            #[cfg(feature = "ipc")]
            serialization: Serialization::Json,
            #[cfg(feature = "ipc")]
            stdio_channel: false,
            #[cfg(feature = "ipc")]
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
    /// signal and emits [`Event::Error`](crate::Event::Error) with
    /// [`Error::Aborted`](crate::Error::Aborted).
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
    /// Only meaningful with a [`Stdio::Ipc`] entry. With the `ipc` feature.
    #[cfg(feature = "ipc")]
    pub fn serialization(&mut self, mode: Serialization) -> &mut Command {
        self.serialization = mode;
        self
    }

    /// Runs the IPC channel over the child's stdin and stdout (both must be pipes, the
    /// default) instead of an `'ipc'` socket: see [`Fork::channel_over_stdio`](crate::Fork::channel_over_stdio).
    /// The child gets `CHILDPROC_CHANNEL_STDIO` set to the serialization. With the `ipc`
    /// feature.
    #[cfg(feature = "ipc")]
    pub fn channel_over_stdio(&mut self, on: bool) -> &mut Command {
        self.stdio_channel = on;
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

    /// Runs the child on a pseudo-terminal of `size` (beyond Node; node-pty's `spawn`): fds
    /// 0–2 are [`Stdio::Pty`], the terminal is the child's controlling terminal in a session
    /// of its own, and [`ChildProcess::pty`](crate::ChildProcess::pty) is the parent's side.
    ///
    /// ```no_run
    /// # async fn f() -> childproc::Result<()> {
    /// use childproc::{Command, PtySize};
    /// use tokio::io::AsyncReadExt;
    ///
    /// let mut child = Command::new("stty")
    ///     .arg("size")
    ///     .pty(PtySize { rows: 30, cols: 100 })
    ///     .spawn()?;
    /// let mut pty = child.pty.take().unwrap();
    /// let mut out = String::new();
    /// pty.read_to_string(&mut out).await?;
    /// assert_eq!(out.trim(), "30 100");
    /// # Ok(()) }
    /// ```
    pub fn pty(&mut self, size: PtySize) -> &mut Command {
        for fd in 0..3 {
            self.stdio.insert(fd, Stdio::Pty);
        }
        self.pty_size(size)
    }

    /// The window size of the pseudo-terminal, for fds set to [`Stdio::Pty`] (default 24 ×
    /// 80).
    pub fn pty_size(&mut self, size: PtySize) -> &mut Command {
        self.pty_size = size;
        self
    }

    pub(crate) fn has_pty(&self) -> bool {
        self.stdio.values().any(|s| matches!(s, Stdio::Pty))
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
    #[cfg(feature = "ipc")]
    pub(crate) fn set_program(&mut self, program: &OsStr) {
        self.program = program.to_owned();
    }

    /// The program as given.
    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    /// The IPC receive bound (no Node option: Node reads its channel without one). While an
    /// [`events()`](crate::ChildProcess::events) stream holds `messages` messages or about
    /// `bytes` bytes of them (or the history does, before the first stream), the parent stops
    /// reading the child's channel, so the kernel makes the child's sends wait; it reads on
    /// once every live stream is back to half of both. Nothing is lost and order is kept.
    /// Defaults: [`IPC_HIGH_WATER_MESSAGES`](crate::IPC_HIGH_WATER_MESSAGES) and
    /// [`IPC_HIGH_WATER_BYTES`](crate::IPC_HIGH_WATER_BYTES); each is at least 1. See
    /// docs/ipc.md for messages nobody reads. With the `ipc` feature.
    #[cfg(feature = "ipc")]
    pub fn ipc_high_water(&mut self, messages: usize, bytes: usize) -> &mut Command {
        self.ipc_limits = Limits::new(messages, bytes);
        self
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
}

/// A command for `program` with `args`: Node's `spawn(command, args)` with default options.
pub fn spawn<I, S>(program: impl AsRef<OsStr>, args: I) -> Result<ChildProcess>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(program).args(args).spawn()
}
