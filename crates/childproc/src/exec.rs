//! Node's `exec` and `execFile`, awaited as their promisified forms: the output of a child,
//! buffered, decoded, with typed failures.

use std::ffi::OsStr;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::Ordering;

use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::child::ChildProcess;
use crate::collect::{collect, Collected, Limits, Stop};
use crate::command::Command;
use crate::encoding::{Data, Encoding};
use crate::error::Error;
use crate::signal::Signal;
use crate::usage::ResourceUsage;

/// Node's default `maxBuffer`: 1 MiB per stream.
pub const DEFAULT_MAX_BUFFER: usize = 1024 * 1024;

/// Node's `exec(command)`: run `command` through `/bin/sh -c` (or [`Exec::shell_path`]) and
/// collect its output. Await it for `{stdout, stderr}`.
///
/// ```no_run
/// # async fn demo() -> Result<(), childproc::ExecError> {
/// let out = childproc::exec("ls -lh /usr | head -3").await?;
/// print!("{}", out.stdout);
/// # Ok(()) }
/// ```
///
/// Never pass unsanitised input: the shell interprets every metacharacter.
pub fn exec(command: impl AsRef<OsStr>) -> Exec {
    let (cmd, line) = shell_command(command.as_ref());
    Exec::new(cmd, line)
}

/// The command of `exec`/`execSync` and the command line Node reports for it.
pub(crate) fn shell_command(command: &OsStr) -> (Command, String) {
    let mut cmd = Command::new(command);
    cmd.always_shell();
    (cmd, command.to_string_lossy().into_owned())
}

/// The command of `execFile`/`execFileSync` and the command line Node reports for it
/// (`file` and the arguments joined with spaces).
pub(crate) fn file_command<I, S>(file: &OsStr, args: I) -> (Command, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(file);
    let mut line = file.to_string_lossy().into_owned();
    for a in args {
        line.push(' ');
        line.push_str(&a.as_ref().to_string_lossy());
        cmd.arg(a);
    }
    (cmd, line)
}

/// Node's `execFile(file, args)`: run `file` directly, no shell; arguments are passed as they
/// are, never interpreted. Await it for `{stdout, stderr}`.
pub fn exec_file<I, S>(file: impl AsRef<OsStr>, args: I) -> Exec
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let (cmd, line) = file_command(file.as_ref(), args);
    Exec::new(cmd, line)
}

/// A buffered run of a command: [`exec`] or [`exec_file`] plus options. Await it for an
/// [`ExecOutput`], or [`spawn`](Exec::spawn) it to reach the running child first.
#[derive(Debug)]
#[must_use = "an Exec does nothing until awaited or spawned"]
pub struct Exec {
    cmd: Command,
    cmdline: String,
    max_buffer: usize,
    encoding: Encoding,
    input: Option<Vec<u8>>,
}

impl Exec {
    fn new(cmd: Command, cmdline: String) -> Exec {
        Exec {
            cmd,
            cmdline,
            max_buffer: DEFAULT_MAX_BUFFER,
            encoding: Encoding::Utf8,
            input: None,
        }
    }

    runner_options!();

    fn command_mut(&mut self) -> &mut Command {
        &mut self.cmd
    }

    termination_options!();

    /// Kill the child with the kill signal (its group with `kill_group`) if the exec is
    /// dropped before it completes: a `tokio::time::timeout` or a `select!` that gives up on
    /// the call, or an [`ExecChild`] dropped unawaited. Off by default, as with Node's
    /// `exec` and tokio's `output()`, where an abandoned child runs on (it is still reaped
    /// when it ends); [`Command::kill_on_drop`] for exec.
    pub fn kill_on_drop(mut self, on: bool) -> Self {
        self.cmd.kill_on_drop(on);
        self
    }

    /// `signal`: cancel the token to kill the child; the call returns at once with
    /// [`ExecFailure::Aborted`] and the output so far (the child is still reaped). A child that
    /// had already exited is not aborted, as in Node: the call then stops reading and ends
    /// as its exit status says.
    pub fn abort_signal(mut self, token: CancellationToken) -> Self {
        self.cmd.abort_signal(token);
        self
    }

    /// `maxBuffer`: the most bytes kept per stream (default 1 MiB; with a string encoding,
    /// Node's rule: the bytes are counted, but the last chunk is cut in characters, so
    /// `printf '中文测试\n'` with 10 keeps the whole line). More stops the reading of
    /// both streams, kills the child with the kill signal (its group with `kill_group`) and
    /// fails with the output up to the limit once the child has exited. `usize::MAX` means no
    /// limit; `0` allows no output at all.
    pub fn max_buffer(mut self, bytes: usize) -> Self {
        self.max_buffer = bytes;
        self
    }

    /// `encoding`: `Utf8` (default), `Buffer` for bytes, or `Latin1`, `Hex`, `Base64`,
    /// `Utf16Le`, `Ascii`… A name Node does not know means `Buffer`, as in Node.
    pub fn encoding(mut self, encoding: impl Into<Encoding>) -> Self {
        self.encoding = encoding.into();
        self
    }

    /// Bytes written to the child's stdin before it is closed (Node's `input`, which the sync
    /// API has; offered here too). Without it stdin is closed at once, so a child that reads
    /// stdin sees EOF instead of hanging.
    pub fn input(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.input = Some(input.into());
        self
    }

    /// The command line as Node reports it in errors (`error.cmd`).
    pub fn cmdline(&self) -> &str {
        &self.cmdline
    }

    /// Starts the child and returns it before completion (Node's `promise.child`): read its
    /// pid, write its stdin (take `child_mut().stdin`; if you leave it, it is closed or fed
    /// `input` when you await), then await the [`ExecChild`] for the output.
    // The error carries the captured output by design (Node's error object); it is made once
    // per run, so its size does not matter.
    #[allow(clippy::result_large_err)]
    pub fn spawn(mut self) -> Result<ExecChild, ExecError> {
        // The limits start before the child, so exec's deadline is never after the watcher's.
        let limits = Limits::new(
            self.cmd.get_timeout(),
            self.cmd.get_abort_signal().cloned(),
            None, // the wait delay is the watcher's: it cuts the pipes
        );
        match self.cmd.spawn() {
            Ok(child) => Ok(ExecChild {
                child,
                cmdline: self.cmdline,
                max_buffer: self.max_buffer,
                encoding: self.encoding,
                input: self.input,
                limits,
            }),
            Err(e) => Err(ExecError::new(
                ExecFailure::Spawn(e),
                self.cmdline,
                self.encoding,
            )),
        }
    }
}

impl IntoFuture for Exec {
    type Output = Result<ExecOutput, ExecError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.spawn()?.output().await })
    }
}

/// What a successful exec resolves to: Node's `{ stdout, stderr }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Everything the child wrote to stdout, decoded.
    pub stdout: Data,
    /// Everything the child wrote to stderr, decoded.
    pub stderr: Data,
    /// The pipes were closed before they reached end-of-file: the child exited with 0 but a
    /// grandchild kept them open past the timeout (Node resolves then too, with the output so
    /// far) or past the wait delay. What it wrote afterwards is not here.
    pub pipes_closed_early: bool,
    /// What the child cost (CPU time, maximum RSS…), gathered when it was reaped. Beyond
    /// Node.
    pub resource_usage: Option<ResourceUsage>,
}

/// A running exec: the child is reachable ([`child`](Self::child)); await for the output.
#[derive(Debug)]
pub struct ExecChild {
    child: ChildProcess,
    cmdline: String,
    max_buffer: usize,
    encoding: Encoding,
    input: Option<Vec<u8>>,
    limits: Limits,
}

impl ExecChild {
    /// The running child (pid, events, kill…).
    pub fn child(&self) -> &ChildProcess {
        &self.child
    }

    /// The running child, mutably (e.g. to take its stdin and write it yourself).
    pub fn child_mut(&mut self) -> &mut ChildProcess {
        &mut self.child
    }

    /// Feeds stdin, drains stdout and stderr concurrently, waits for `Close`, and returns the
    /// output or a typed error.
    ///
    /// A timeout, an abort or a `maxBuffer` overflow ends the reading at once, as Node's
    /// `kill()` does: the parent's pipe ends are closed, so a grandchild that holds them open
    /// cannot keep the call waiting, and the result holds what was read so far. After a
    /// timeout or an overflow the call waits for the child's own exit (which the kill signal
    /// brings; [`Exec::escalate_after`] bounds a child that ignores it); after an abort it
    /// returns at once.
    pub async fn output(mut self) -> Result<ExecOutput, ExecError> {
        let stdin = self.child.stdin.take();
        let input = self.input.take();
        let feed = async move {
            if let Some(mut w) = stdin {
                if let Some(input) = input {
                    // A child that exits without reading its input is not an error (EPIPE).
                    let _ = w.write_all(&input).await;
                }
                let _ = w.shutdown().await;
            }
        };
        let (stdout, stderr) = (self.child.stdout.take(), self.child.stderr.take());
        let (mut out, mut err) = (Collected::default(), Collected::default());
        let limits = &self.limits;
        let child = &self.child;
        let stop = {
            // Waiting for the exit alongside the reads registers the pidfd now, so the exit is
            // seen in the same reactor turn as the pipes' end-of-file, not one turn later.
            let io = async {
                tokio::join!(
                    feed,
                    collect(stdout, self.max_buffer, &mut out, &limits.overflowed),
                    collect(stderr, self.max_buffer, &mut err, &limits.overflowed),
                    child.wait()
                )
            };
            // Dropping `io` drops the readers and stdin: the parent's ends close.
            tokio::select! {
                biased;
                _ = io => None,
                stop = limits.reached(std::future::pending()) => Some(stop),
            }
        };
        let shared = &self.child.shared;
        let kill_signal = self.child.kill_signal;
        match stop {
            Some(Stop::Overflow) => {
                shared.kill_by_policy(kill_signal);
            }
            Some(Stop::Abort) if shared.abort(kill_signal) => {
                // Node's AbortError comes at once, without waiting for the exit.
                let status = self.child.try_status();
                return Err(ExecError {
                    reason: ExecFailure::Aborted,
                    cmd: self.cmdline,
                    code: status.and_then(|s| s.code()),
                    signal: status.and_then(|s| s.signal()),
                    resource_usage: status.and_then(|s| s.resource_usage()),
                    killed: true,
                    escalated: self.child.escalated(),
                    pipes_closed_early: !(out.eof && err.eof),
                    stdout: out.decode(self.encoding, self.max_buffer),
                    stderr: err.decode(self.encoding, self.max_buffer),
                });
            }
            // The watcher kills a child that is still running at its own, same deadline.
            _ => {}
        }
        let overflowed = if out.overflow {
            Some(StdStream::Stdout)
        } else if err.overflow {
            Some(StdStream::Stderr)
        } else {
            None
        };
        let status = self.child.closed().await;
        let pipes_closed_early = !(out.eof && err.eof) || self.child.pipes_closed_early();
        let stdout = out.decode(self.encoding, self.max_buffer);
        let stderr = err.decode(self.encoding, self.max_buffer);
        let reason = match status {
            Err(e) => ExecFailure::Spawn(e),
            Ok(_) if shared.aborted.load(Ordering::SeqCst) => ExecFailure::Aborted,
            Ok(_) if overflowed.is_some() => {
                ExecFailure::MaxBuffer(overflowed.unwrap_or(StdStream::Stdout))
            }
            Ok(s) if s.success() => {
                return Ok(ExecOutput {
                    stdout,
                    stderr,
                    pipes_closed_early,
                    resource_usage: s.resource_usage(),
                })
            }
            Ok(_) if shared.timed_out.load(Ordering::SeqCst) => ExecFailure::Timeout,
            Ok(s) => match s.signal() {
                Some(_) => ExecFailure::Signal,
                None => ExecFailure::Exit,
            },
        };
        let status = self.child.try_status();
        Err(ExecError {
            reason,
            cmd: self.cmdline,
            code: status.and_then(|s| s.code()),
            signal: status.and_then(|s| s.signal()),
            resource_usage: status.and_then(|s| s.resource_usage()),
            // Node's kill() sets `killed` even when the child had already exited.
            killed: self.child.killed() || matches!(stop, Some(Stop::Timeout | Stop::Overflow)),
            escalated: self.child.escalated(),
            stdout,
            stderr,
            pipes_closed_early,
        })
    }
}

impl IntoFuture for ExecChild {
    type Output = Result<ExecOutput, ExecError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.output())
    }
}

/// Which standard stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdStream {
    /// stdout.
    Stdout,
    /// stderr.
    Stderr,
}

impl fmt::Display for StdStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StdStream::Stdout => "stdout",
            StdStream::Stderr => "stderr",
        })
    }
}

/// Why an exec failed — branch on this rather than on the message.
#[derive(Debug)]
#[non_exhaustive]
pub enum ExecFailure {
    /// The child could not be started (missing program, bad cwd…); Node's `spawn … ENOENT`.
    Spawn(Error),
    /// It exited with a non-zero code ([`ExecError::code`]).
    Exit,
    /// A signal from elsewhere ended it ([`ExecError::signal`]).
    Signal,
    /// The `timeout` passed and the kill signal ended it (Node: `killed` and `signal` set).
    Timeout,
    /// This stream passed `maxBuffer`; the child was killed and the output kept up to it.
    MaxBuffer(StdStream),
    /// The cancellation token was cancelled (Node's `AbortError`).
    Aborted,
}

/// A failed exec: Node's error object, with the output so far (as the promisified form's
/// `error.stdout` / `error.stderr`).
#[derive(Debug)]
pub struct ExecError {
    /// Why it failed.
    pub reason: ExecFailure,
    /// The command line (`error.cmd`).
    pub cmd: String,
    /// The exit code, if it exited on its own (`error.code`).
    pub code: Option<i32>,
    /// The signal that ended it, if one did (`error.signal`).
    pub signal: Option<Signal>,
    /// What the child cost, if it was reaped (an abort returns before the exit, so usually
    /// `None` then). Beyond Node.
    pub resource_usage: Option<ResourceUsage>,
    /// Whether childproc signalled it (`error.killed`).
    pub killed: bool,
    /// Whether it had to be forcefully terminated: the kill signal did not end it and
    /// escalation sent SIGKILL (see [`Exec::escalate_after`]).
    pub escalated: bool,
    /// Its stdout, decoded (up to `maxBuffer`).
    pub stdout: Data,
    /// Its stderr, decoded (up to `maxBuffer`).
    pub stderr: Data,
    /// The pipes were closed before they reached end-of-file (a timeout, an abort, an
    /// overflow or the wait delay ended the reading): more output may have followed.
    pub pipes_closed_early: bool,
}

impl ExecError {
    fn new(reason: ExecFailure, cmd: String, encoding: Encoding) -> Self {
        let empty = encoding.decode(Vec::new());
        ExecError {
            reason,
            cmd,
            code: None,
            signal: None,
            resource_usage: None,
            killed: false,
            escalated: false,
            stdout: empty.clone(),
            stderr: empty,
            pipes_closed_early: false,
        }
    }

    /// `std::io::ErrorKind` for it: the spawn error's kind (NotFound…), `TimedOut`,
    /// `Interrupted` for an abort, `OutOfMemory` for max-buffer, `Other` for exit/signal.
    pub fn kind(&self) -> std::io::ErrorKind {
        match &self.reason {
            ExecFailure::Spawn(e) => e.kind(),
            ExecFailure::Timeout => std::io::ErrorKind::TimedOut,
            ExecFailure::Aborted => std::io::ErrorKind::Interrupted,
            ExecFailure::MaxBuffer(_) => std::io::ErrorKind::OutOfMemory,
            ExecFailure::Exit | ExecFailure::Signal => std::io::ErrorKind::Other,
        }
    }

    /// True if the timeout ended the child.
    pub fn is_timeout(&self) -> bool {
        matches!(self.reason, ExecFailure::Timeout)
    }

    /// True if the cancellation token ended the child.
    pub fn is_abort(&self) -> bool {
        matches!(self.reason, ExecFailure::Aborted)
    }
}

impl fmt::Display for ExecError {
    /// Node's messages: `Command failed: <cmd>` then stderr; `stdout maxBuffer length
    /// exceeded`; `The operation was aborted`; `spawn <file>: <reason>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            ExecFailure::Spawn(e) => write!(f, "{e}"),
            ExecFailure::MaxBuffer(s) => write!(f, "{s} maxBuffer length exceeded"),
            ExecFailure::Aborted => f.write_str("The operation was aborted"),
            ExecFailure::Exit | ExecFailure::Signal | ExecFailure::Timeout => {
                write!(f, "Command failed: {}\n{}", self.cmd, self.stderr)
            }
        }
    }
}

impl std::error::Error for ExecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.reason {
            ExecFailure::Spawn(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ExecError> for std::io::Error {
    fn from(e: ExecError) -> Self {
        std::io::Error::new(e.kind(), e)
    }
}
