//! Node's `spawnSync`, `execSync` and `execFileSync`: block the calling thread until the child
//! has exited and its pipes have closed. No tokio runtime is needed (nor used: calling them
//! from inside one blocks that worker thread, as Node's block the event loop).

mod drive;

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, Write};

use crate::command::Command;
use crate::encoding::{Data, Encoding};
use crate::exec::{file_command, shell_command, StdStream, DEFAULT_MAX_BUFFER};
use crate::signal::Signal;
use crate::stdio::Stdio;
use crate::sys::RawStatus;
use crate::usage::ResourceUsage;

use drive::{KillPolicy, Limits, Run};

/// Node's `spawnSync(command, args)`: configure, then [`run`](SpawnSync::run).
pub fn spawn_sync<I, S>(program: impl AsRef<OsStr>, args: I) -> SpawnSync
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args);
    SpawnSync::new(cmd, String::new())
}

/// Node's `execSync(command)`: through `/bin/sh -c`; returns stdout, or an error holding the
/// whole [`SpawnSyncResult`]. The child's stderr is echoed to the parent's unless stdio is set.
pub fn exec_sync(command: impl AsRef<OsStr>) -> ExecSync {
    let (cmd, line) = shell_command(command.as_ref());
    ExecSync::new(cmd, line)
}

/// Node's `execFileSync(file, args)`: no shell; returns stdout, or an error holding the whole
/// [`SpawnSyncResult`]. The child's stderr is echoed to the parent's unless stdio is set.
pub fn exec_file_sync<I, S>(file: impl AsRef<OsStr>, args: I) -> ExecSync
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let (cmd, line) = file_command(file.as_ref(), args);
    ExecSync::new(cmd, line)
}

/// A blocking run: [`spawn_sync`] plus options.
#[derive(Debug)]
#[must_use = "a SpawnSync does nothing until run"]
pub struct SpawnSync {
    cmd: Command,
    cmdline: String,
    input: Option<Vec<u8>>,
    max_buffer: usize,
    encoding: Encoding,
    echo_stderr: bool,
}

/// What [`SpawnSync::run`] returns: Node's `spawnSync` result object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnSyncResult {
    /// The child's pid (0 if it could not be spawned).
    pub pid: u32,
    /// Output per child fd: `output[1]` is stdout, `output[2]` stderr; `None` where the fd was
    /// not a pipe (and always for stdin).
    pub output: Vec<Option<Data>>,
    /// `output[1]`.
    pub stdout: Option<Data>,
    /// `output[2]`.
    pub stderr: Option<Data>,
    /// The exit code, or `None` if a signal ended the child (or it never ran).
    pub status: Option<i32>,
    /// The signal that ended the child, if one did.
    pub signal: Option<Signal>,
    /// What the child cost (CPU time, maximum RSS…), gathered when it was reaped; `None` if
    /// it never ran. Beyond Node.
    pub resource_usage: Option<ResourceUsage>,
    /// What went wrong: the spawn failed, the timeout fired, or `maxBuffer` was passed.
    pub error: Option<SyncFailure>,
    /// Some pipe was closed before it reached end-of-file: a timeout or an overflow ended
    /// the reading (Node closes every pipe then), or the wait delay passed after the exit
    /// while a grandchild held a pipe. More output may have followed.
    pub pipes_closed_early: bool,
}

/// Why a sync run failed (`result.error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncFailure {
    /// The child could not be started: the error's message and kind.
    Spawn {
        /// The message, naming the program/cwd/argument.
        message: String,
        /// Its `io::ErrorKind` (`NotFound` for a missing program).
        kind: io::ErrorKind,
    },
    /// The timeout fired (Node's `ETIMEDOUT`).
    Timeout,
    /// This stream passed `maxBuffer` (Node's `ENOBUFS`).
    MaxBuffer(StdStream),
    /// Writing `input` (or reading an output) failed, Node's pipe error: `BrokenPipe`
    /// (`EPIPE`) when the child exited or closed its stdin before reading all of `input`.
    /// The run went on to its end: the status, signal and output are the child's. A
    /// timeout or an overflow is reported instead, as Node gives them precedence.
    Pipe(io::ErrorKind),
}

impl SpawnSyncResult {
    /// The result of a run that never started.
    fn not_started(error: SyncFailure) -> Self {
        SpawnSyncResult {
            pid: 0,
            output: Vec::new(),
            stdout: None,
            stderr: None,
            status: None,
            signal: None,
            resource_usage: None,
            error: Some(error),
            pipes_closed_early: false,
        }
    }

    /// `stdout` and `stderr` as copies of `output[1]` and `output[2]` (Node's are the same
    /// objects; owned values here are copies).
    fn fill_std_streams(&mut self) {
        self.stdout = self.output.get(1).cloned().flatten();
        self.stderr = self.output.get(2).cloned().flatten();
    }
}

impl fmt::Display for SyncFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncFailure::Spawn { message, .. } => f.write_str(message),
            SyncFailure::Timeout => f.write_str("ETIMEDOUT"),
            SyncFailure::MaxBuffer(s) => write!(f, "ENOBUFS: {s} maxBuffer length exceeded"),
            SyncFailure::Pipe(io::ErrorKind::BrokenPipe) => f.write_str("EPIPE"),
            SyncFailure::Pipe(kind) => write!(f, "{}", io::Error::from(*kind)),
        }
    }
}

impl SpawnSync {
    fn new(cmd: Command, cmdline: String) -> SpawnSync {
        SpawnSync {
            cmd,
            cmdline,
            input: None,
            max_buffer: DEFAULT_MAX_BUFFER,
            encoding: Encoding::Buffer,
            echo_stderr: false,
        }
    }

    runner_options!();
    termination_options!();

    fn command_mut(&mut self) -> &mut Command {
        &mut self.cmd
    }

    /// `stdio[n]` for any fd (a file, `Stdio::Inherit`…). `input` overrides a piped stdin.
    pub fn fd(mut self, fd: i32, cfg: impl Into<Stdio>) -> Self {
        self.cmd.fd(fd, cfg);
        self
    }

    /// `input`: written to the child's stdin, which is then closed (closed at once without).
    pub fn input(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.input = Some(input.into());
        self
    }

    /// `maxBuffer` per stream (default 1 MiB); past it every pipe closes, the child is killed
    /// with the kill signal and `error` is [`SyncFailure::MaxBuffer`]. As in Node's
    /// `spawnSync`, the output keeps everything up to and including the read that passed the
    /// limit (that read is at most 64 KiB), not exactly `bytes`: `maxBuffer: 1` with
    /// `echo this is stdout` keeps `"this is stdout\n"`. (exec and execFile keep exactly
    /// `bytes`, as Node's do.) `0` means no limit, as in Node's `spawnSync` (exec's `0`
    /// allows no output).
    pub fn max_buffer(mut self, bytes: usize) -> Self {
        self.max_buffer = if bytes == 0 { usize::MAX } else { bytes };
        self
    }

    /// `encoding` of the outputs (default `Buffer`, as Node's sync API).
    pub fn encoding(mut self, encoding: impl Into<Encoding>) -> Self {
        self.encoding = encoding.into();
        self
    }

    /// Runs the child to completion: returns once it has exited and its pipes have closed.
    ///
    /// A timeout or a `maxBuffer` overflow closes every pipe at once and kills the child if
    /// it is still running (Node's `spawnSync` does both), so a grandchild holding a pipe
    /// cannot keep the call waiting; the output read so far is kept. The call then waits for
    /// the child's exit: one that ignores the kill signal is waited for, as in Node, unless
    /// [`escalate_after`](Self::escalate_after) sends SIGKILL after a grace period. As in
    /// Node, a timeout that fires after the child exited with 0, while a grandchild still
    /// held a pipe, is still `error: Timeout` with `status: Some(0)`.
    pub fn run(self) -> SpawnSyncResult {
        let mut result = self.run_unshared();
        result.fill_std_streams();
        result
    }

    /// [`run`](Self::run) with `stdout` and `stderr` left `None`, their bytes only in
    /// `output`: exec_sync takes stdout out of it instead of copying it.
    fn run_unshared(mut self) -> SpawnSyncResult {
        let echo = self.echo_stderr && !self.cmd.has_stdio(2);
        if self.cmd.has_pty() {
            return SpawnSyncResult::not_started(SyncFailure::Spawn {
                message: "a pty (Stdio::Pty) needs spawn: the synchronous calls read pipes".into(),
                kind: io::ErrorKind::InvalidInput,
            });
        }
        if self.cmd.has_ipc() {
            // Node throws ERR_IPC_SYNC_FORK before anything starts.
            return SpawnSyncResult::not_started(SyncFailure::Spawn {
                message: "IPC cannot be used with synchronous forks".into(),
                kind: io::ErrorKind::InvalidInput,
            });
        }
        let timeout = self.cmd.get_timeout();
        let (group, grace) = self.cmd.get_kill_policy();
        let launched = match self.cmd.launch() {
            Ok(l) => l,
            Err(e) => {
                return SpawnSyncResult::not_started(SyncFailure::Spawn {
                    message: e.to_string(),
                    kind: e.kind(),
                })
            }
        };
        let policy = KillPolicy {
            signal: launched.kill_signal,
            group,
            grace,
        };
        let limits = Limits {
            input: self.input.take(),
            max_buffer: self.max_buffer,
            timeout,
            wait_delay: self.cmd.get_wait_delay(),
            policy,
        };
        let run = Run::drive(launched, limits);
        if echo {
            if let Some((_, bytes)) = run.outputs.iter().find(|(fd, _)| *fd == 2) {
                let _ = io::stderr().write_all(bytes);
            }
        }
        let max_fd = run
            .outputs
            .iter()
            .map(|(fd, _)| *fd)
            .max()
            .unwrap_or(2)
            .max(2);
        let mut output: Vec<Option<Data>> = vec![None; usize::try_from(max_fd).unwrap_or(2) + 1];
        for (fd, bytes) in run.outputs {
            if let Some(slot) = usize::try_from(fd).ok().and_then(|i| output.get_mut(i)) {
                *slot = Some(self.encoding.decode(bytes));
            }
        }
        let (status, signal) = match run.status {
            RawStatus::Exited(c) => (Some(c), None),
            RawStatus::Signaled(s) => (None, Signal::from_raw(s).ok()),
        };
        SpawnSyncResult {
            pid: run.pid,
            stdout: None,
            stderr: None,
            output,
            status,
            signal,
            resource_usage: run.usage.map(ResourceUsage::from_raw),
            error: run.failure,
            pipes_closed_early: run.pipes_closed_early,
        }
    }
}

/// A blocking exec: [`exec_sync`] / [`exec_file_sync`] plus options.
#[derive(Debug)]
#[must_use = "an ExecSync does nothing until run"]
pub struct ExecSync(SpawnSync);

impl ExecSync {
    fn new(cmd: Command, cmdline: String) -> ExecSync {
        let mut inner = SpawnSync::new(cmd, cmdline);
        inner.echo_stderr = true;
        ExecSync(inner)
    }

    runner_options!();
    termination_options!();

    fn command_mut(&mut self) -> &mut Command {
        &mut self.0.cmd
    }

    /// `stdio[n]`. Setting fd 2 stops the echo of the child's stderr.
    pub fn fd(self, fd: i32, cfg: impl Into<Stdio>) -> Self {
        ExecSync(self.0.fd(fd, cfg))
    }

    /// `input` for the child's stdin.
    pub fn input(self, input: impl Into<Vec<u8>>) -> Self {
        ExecSync(self.0.input(input))
    }

    /// `maxBuffer` per stream (default 1 MiB, `0` no limit; see [`SpawnSync::max_buffer`] for
    /// what is kept).
    pub fn max_buffer(self, bytes: usize) -> Self {
        ExecSync(self.0.max_buffer(bytes))
    }

    /// `encoding` (default `Buffer`).
    pub fn encoding(self, encoding: impl Into<Encoding>) -> Self {
        ExecSync(self.0.encoding(encoding))
    }

    /// Runs it: stdout on success (exit code 0, no timeout, no overflow, all of `input`
    /// written), else an error that holds the whole [`SpawnSyncResult`].
    // The error carries the whole result by design (as Node's thrown error does).
    #[allow(clippy::result_large_err)]
    pub fn run(self) -> Result<Data, ExecSyncError> {
        let cmd = self.0.cmdline.clone();
        let path = self.0.cmd.spawnfile().to_string_lossy().into_owned();
        let mut result = self.0.run_unshared();
        let reason = match &result.error {
            Some(SyncFailure::Spawn { .. }) => ExecSyncFailure::Spawn,
            Some(SyncFailure::Timeout) => ExecSyncFailure::Timeout,
            Some(SyncFailure::MaxBuffer(s)) => ExecSyncFailure::MaxBuffer(*s),
            // Node throws it whatever the exit status.
            Some(SyncFailure::Pipe(_)) => ExecSyncFailure::Pipe,
            None if result.status == Some(0) => {
                // Moved, not copied: the success value is stdout alone.
                let stdout = result.output.get_mut(1).and_then(Option::take);
                return Ok(stdout.unwrap_or_default());
            }
            None if result.signal.is_some() => ExecSyncFailure::Signal,
            None => ExecSyncFailure::Exit,
        };
        result.fill_std_streams();
        Err(ExecSyncError {
            reason,
            cmd,
            path,
            result,
        })
    }
}

/// Why an exec_sync failed: the same cases as [`ExecFailure`](crate::ExecFailure), minus abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecSyncFailure {
    /// Could not start (see `result.error`).
    Spawn,
    /// Non-zero exit code (`result.status`).
    Exit,
    /// Ended by a signal (`result.signal`).
    Signal,
    /// The timeout fired.
    Timeout,
    /// This stream passed `maxBuffer`.
    MaxBuffer(StdStream),
    /// Writing `input` failed, whatever the exit status (see [`SyncFailure::Pipe`]).
    Pipe,
}

/// A failed exec_sync / exec_file_sync: Node's thrown error, with the full spawnSync result.
#[derive(Debug, Clone)]
pub struct ExecSyncError {
    /// Why.
    pub reason: ExecSyncFailure,
    /// The command line.
    pub cmd: String,
    /// The file that was executed (Node's `error.path`): the shell for `exec_sync`.
    pub path: String,
    /// Everything `spawn_sync` returned (pid, output, stdout, stderr, status, signal, error).
    pub result: SpawnSyncResult,
}

impl fmt::Display for ExecSyncError {
    /// Node's: `Command failed: <cmd>` then stderr; the spawn error itself; or
    /// `spawnSync <file> ETIMEDOUT` / `ENOBUFS` / `EPIPE` (the executed file: `/bin/sh` for
    /// exec_sync).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.reason, &self.result.error) {
            (ExecSyncFailure::Spawn, Some(e)) => write!(f, "{e}"),
            (ExecSyncFailure::Pipe, Some(e)) => write!(f, "spawnSync {} {e}", self.path),
            (ExecSyncFailure::Timeout, _) => write!(f, "spawnSync {} ETIMEDOUT", self.path),
            (ExecSyncFailure::MaxBuffer(_), _) => write!(f, "spawnSync {} ENOBUFS", self.path),
            _ => {
                write!(f, "Command failed: {}", self.cmd)?;
                match &self.result.stderr {
                    Some(e) if !e.is_empty() => write!(f, "\n{e}"),
                    _ => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for ExecSyncError {}
