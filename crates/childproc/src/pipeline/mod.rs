//! OS-level pipelines: `ps ax | grep ssh` with each stage's stdout connected straight to the
//! next stage's stdin by a pipe the parent creates and lets go of, so no byte passes through
//! the parent — what a shell does, and what Node does with
//! `spawn('grep', ['ssh'], { stdio: [ps.stdout, 'pipe', 'pipe'] })`.

mod status;

use std::borrow::BorrowMut;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::child::ChildProcess;
use crate::collect::{collect, Collected, Limits, Stop};
use crate::command::Command;
use crate::encoding::Encoding;
use crate::error::{Error, Result};
use crate::exec::{ExecFailure, StdStream, DEFAULT_MAX_BUFFER};
use crate::pipes::{ChildStdin, ChildStdout};
use crate::signal::Signal;
use crate::stdio::Stdio;
use crate::sys;

pub use status::{PipelineError, PipelineOutput, PipelineStatus};

/// A pipeline of commands, each one's stdout feeding the next one's stdin at the OS level.
///
/// ```no_run
/// # async fn demo() -> Result<(), childproc::PipelineError> {
/// use childproc::{Command, Pipeline};
/// let out = Pipeline::new()
///     .pipe(Command::new("ps").arg("ax"))
///     .pipe(Command::new("grep").arg("ssh"))
///     .await?;
/// print!("{}", out.stdout);
/// # Ok(()) }
/// ```
///
/// [`pipe`](Self::pipe) takes a `Command` by value or, as in the example, the `&mut Command`
/// that `std`-style builder calls return (like `std::process::Command`, a command borrowed
/// from a temporary must be used within the same statement; a borrowed command is left as
/// it was, so it can be spawned again).
///
/// Each stage is a [`Command`] with all its options. The pipeline owns only what links the
/// stages: the first stage's stdin and the last stage's stdout follow those commands' stdio
/// options (a pipe to the parent by default, as in Node), while every stdin after the first
/// and every stdout before the last is the link — configuring one of those is an error. Each
/// stage's stderr is its own command's setting: by default a pipe to the parent, Node's
/// default, reachable as that stage's [`ChildProcess::stderr`] and collected by
/// [`output`](PipelineChild::output); `stderr(Stdio::Inherit)` gives a shell's behaviour and
/// `stderr(Stdio::SameAs(1))` a shell's `2>&1 |`.
///
/// Awaiting a `Pipeline` spawns it and awaits [`PipelineChild::output`]: the promisified
/// `exec` of a pipeline. [`spawn`](Self::spawn) returns the running stages first.
#[must_use = "a Pipeline does nothing until awaited or spawned"]
pub struct Pipeline<'a> {
    stages: Vec<Box<dyn BorrowMut<Command> + Send + 'a>>,
    options: OutputOptions,
}

/// What [`PipelineChild::output`] needs, set on the [`Pipeline`].
#[derive(Debug, Clone)]
struct OutputOptions {
    pipefail: bool,
    max_buffer: usize,
    encoding: Encoding,
    input: Option<Vec<u8>>,
    timeout: Option<Duration>,
    abort: Option<CancellationToken>,
    wait_delay: Option<Duration>,
}

impl fmt::Debug for Pipeline<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("cmd", &self.cmdline())
            .field("options", &self.options)
            .finish()
    }
}

impl Default for Pipeline<'_> {
    fn default() -> Self {
        Pipeline::new()
    }
}

impl<'a> Pipeline<'a> {
    /// An empty pipeline; add stages with [`pipe`](Self::pipe).
    pub fn new() -> Self {
        Pipeline {
            stages: Vec::new(),
            options: OutputOptions {
                pipefail: false,
                max_buffer: DEFAULT_MAX_BUFFER,
                encoding: Encoding::Utf8,
                input: None,
                timeout: None,
                abort: None,
                wait_delay: None,
            },
        }
    }

    /// Appends a stage: the previous stage's stdout becomes this command's stdin.
    pub fn pipe(mut self, command: impl BorrowMut<Command> + Send + 'a) -> Self {
        self.stages.push(Box::new(command));
        self
    }

    /// The shell's `set -o pipefail` for [`output`](PipelineChild::output): the pipeline fails
    /// when any stage fails (the rightmost failure decides), not only when the last one does.
    pub fn pipefail(mut self, on: bool) -> Self {
        self.options.pipefail = on;
        self
    }

    /// `maxBuffer` for [`output`](PipelineChild::output): the most bytes kept of the last
    /// stage's stdout and of each stage's stderr (default 1 MiB). More kills every stage with
    /// its kill signal.
    pub fn max_buffer(mut self, bytes: usize) -> Self {
        self.options.max_buffer = bytes;
        self
    }

    /// `encoding` of [`output`](PipelineChild::output)'s data (default UTF-8), as for exec.
    pub fn encoding(mut self, encoding: impl Into<Encoding>) -> Self {
        self.options.encoding = encoding.into();
        self
    }

    /// Bytes written to the first stage's stdin by [`output`](PipelineChild::output) before
    /// it is closed (without it, stdin is closed at once).
    pub fn input(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.options.input = Some(input.into());
        self
    }

    /// A pipeline-wide `timeout` for [`output`](PipelineChild::output), counted from the
    /// spawn: when it passes, every stage still running is killed with its own kill signal
    /// (its whole group if its command has `kill_group`, escalating as its `escalate_after`
    /// says), the reading stops at once (a grandchild holding a pipe cannot keep the call
    /// waiting) and, once the stages have exited, the pipeline fails with
    /// [`ExecFailure::Timeout`] and the output so far. If every stage had already exited, it
    /// ends as their statuses say. Zero means none.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// A pipeline-wide `signal` for [`output`](PipelineChild::output): cancelling the token
    /// kills every stage still running as the timeout does, and the call returns at once
    /// with [`ExecFailure::Aborted`] and the output so far.
    pub fn abort_signal(mut self, token: CancellationToken) -> Self {
        self.options.abort = Some(token);
        self
    }

    /// Go's `WaitDelay` for [`output`](PipelineChild::output): once every stage has exited,
    /// read the pipes at most `delay` longer, then close them and finish with what was read
    /// (the result's `pipes_closed_early` says so). See
    /// [`Command::wait_delay`](crate::Command::wait_delay).
    pub fn wait_delay(mut self, delay: Duration) -> Self {
        self.options.wait_delay = Some(delay);
        self
    }

    /// The command lines joined with ` | `, as errors report it.
    pub fn cmdline(&self) -> String {
        let lines: Vec<String> = self
            .stages
            .iter()
            .map(|c| (**c).borrow().cmdline())
            .collect();
        lines.join(" | ")
    }

    /// Spawns every stage, left to right, linked by pipes whose parent copies are closed as
    /// soon as the stages on both sides hold theirs: the reader sees EOF when the writer
    /// exits, and the writer gets `SIGPIPE`/`EPIPE` when the reader exits, as in a shell.
    ///
    /// If a stage cannot be started, the stages already running are killed (SIGKILL) and
    /// reaped before this returns [`Error::Pipeline`] with the stage's index and its own
    /// error (which names its program). Must be called inside a tokio runtime.
    pub fn spawn(&mut self) -> Result<PipelineChild> {
        let count = self.stages.len();
        if count == 0 {
            return Err(Error::InvalidOption {
                option: "pipeline",
                reason: "a pipeline needs at least one command".into(),
            });
        }
        let last = count - 1;
        for (stage, command) in self.stages.iter().enumerate() {
            let command: &Command = (**command).borrow();
            let linked = [
                (stage > 0, 0, "stdin", "previous stage's stdout"),
                (stage < last, 1, "stdout", "next stage's stdin"),
            ];
            for (is_link, fd, option, what) in linked {
                if is_link && command.configures_stdio(fd) {
                    let reason = format!(
                        "{option} of {} is the {what} in a pipeline; leave it unset",
                        command.get_program().to_string_lossy()
                    );
                    return Err(Error::Pipeline {
                        stage,
                        source: Box::new(Error::InvalidOption { option, reason }),
                    });
                }
            }
        }
        let limits = Limits::new(
            self.options.timeout,
            self.options.abort.clone(),
            self.options.wait_delay,
        );
        let mut children: Vec<ChildProcess> = Vec::with_capacity(count);
        let mut link_in: Option<OwnedFd> = None;
        for stage in 0..count {
            let command: &mut Command = (*self.stages[stage]).borrow_mut();
            let link_out = if stage < last {
                match sys::pipe() {
                    Ok(ends) => Some(ends),
                    Err(e) => {
                        abandon(&children);
                        return Err(Error::Pipeline {
                            stage,
                            source: Box::new(Error::Io(e)),
                        });
                    }
                }
            } else {
                None
            };
            if let Some(read) = link_in.take() {
                command.stdin(Stdio::Fd(read));
            }
            let next_in = link_out.map(|(read, write)| {
                command.stdout(Stdio::Fd(write));
                read
            });
            let spawned = command.spawn();
            // The stage has its copies now (or never will): close the parent's at once, or
            // the next stage would never see EOF and this one never SIGPIPE. The command is
            // left as the user configured it.
            if stage > 0 {
                command.unset_stdio(0);
            }
            if stage < last {
                command.unset_stdio(1);
            }
            match spawned {
                Ok(child) => children.push(child),
                Err(e) => {
                    drop(next_in);
                    abandon(&children);
                    return Err(Error::Pipeline {
                        stage,
                        source: Box::new(e),
                    });
                }
            }
            link_in = next_in;
        }
        let stdin = children.first_mut().and_then(|c| c.stdin.take());
        let stdout = children.last_mut().and_then(|c| c.stdout.take());
        Ok(PipelineChild {
            stdin,
            stdout,
            stages: children,
            cmdline: self.cmdline(),
            options: self.options.clone(),
            limits,
        })
    }
}

/// Kills and reaps the stages started before one that failed.
fn abandon(children: &[ChildProcess]) {
    for child in children {
        child.kill_and_reap();
    }
}

impl<'a> IntoFuture for Pipeline<'a> {
    type Output = std::result::Result<PipelineOutput, PipelineError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(mut self) -> Self::IntoFuture {
        Box::pin(async move {
            match self.spawn() {
                Ok(child) => child.output().await,
                Err(e) => Err(PipelineError::spawn(e, self.cmdline(), &self.options)),
            }
        })
    }
}

/// A running pipeline: every stage's [`ChildProcess`], the first stage's stdin and the last
/// stage's stdout.
#[derive(Debug)]
pub struct PipelineChild {
    /// The first stage's stdin, if it is a pipe (tokio `AsyncWrite`). Drop it or call
    /// `shutdown` to send EOF.
    pub stdin: Option<ChildStdin>,
    /// The last stage's stdout, if it is a pipe (tokio `AsyncRead`).
    pub stdout: Option<ChildStdout>,
    stages: Vec<ChildProcess>,
    cmdline: String,
    options: OutputOptions,
    limits: Limits,
}

impl PipelineChild {
    /// Every stage, left to right: pids, stderr pipes, events, kills. (The first stage's
    /// `stdin` and the last stage's `stdout` have moved to this struct's fields.)
    pub fn stages(&self) -> &[ChildProcess] {
        &self.stages
    }

    /// Every stage, mutably (to take a stage's `stderr`).
    pub fn stages_mut(&mut self) -> &mut [ChildProcess] {
        &mut self.stages
    }

    /// The stages' process ids, left to right.
    pub fn pids(&self) -> Vec<u32> {
        self.stages.iter().map(ChildProcess::pid).collect()
    }

    /// Sends `signal` to every stage; true if at least one received it (false once every
    /// stage has exited). As for [`ChildProcess::kill`], it can never reach a recycled PID.
    pub fn kill(&self, signal: Signal) -> bool {
        self.stages
            .iter()
            .fold(false, |any, stage| stage.kill(signal) | any)
    }

    /// Waits for every stage to exit. Like Node's children, a stage blocks once its stderr
    /// pipe is full if nobody reads it: take the stages' `stderr`, or use
    /// [`output`](Self::output), which reads everything.
    pub async fn wait(&self) -> Result<PipelineStatus> {
        let mut statuses = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            statuses.push(stage.wait().await?);
        }
        Ok(PipelineStatus(statuses))
    }

    /// Waits for every stage's `Close`: exited, and its stdio streams closed.
    pub async fn closed(&self) -> Result<PipelineStatus> {
        let mut statuses = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            statuses.push(stage.closed().await?);
        }
        Ok(PipelineStatus(statuses))
    }

    /// Feeds the first stdin (the pipeline's `input`, then EOF), reads the last stdout and
    /// every stage's stderr concurrently up to `maxBuffer` each, waits for every stage's
    /// `Close`, and returns the output — or, as exec does, an error when the pipeline failed:
    /// the last stage, or with [`Pipeline::pipefail`] any stage, did not exit with 0.
    /// [`Pipeline::timeout`], [`Pipeline::abort_signal`], an overflow and
    /// [`Pipeline::wait_delay`] end the reading early, as they do for exec.
    pub async fn output(mut self) -> std::result::Result<PipelineOutput, PipelineError> {
        let (stdin, input) = (self.stdin.take(), self.options.input.take());
        let feed = async move {
            if let Some(mut w) = stdin {
                if let Some(input) = input {
                    // A first stage that exits without reading its input is not an error.
                    let _ = w.write_all(&input).await;
                }
                let _ = w.shutdown().await;
            }
        };
        let stdout = self.stdout.take();
        let stderrs: Vec<_> = self.stages.iter_mut().map(|s| s.stderr.take()).collect();
        let (stages, max, limits) = (&self.stages, self.options.max_buffer, &self.limits);
        let mut out = Collected::default();
        let mut errs: Vec<Collected> = stderrs.iter().map(|_| Collected::default()).collect();
        let stop = {
            let err_reads = stderrs
                .into_iter()
                .zip(errs.iter_mut())
                .map(|(s, into)| collect(s, max, into, &limits.overflowed));
            let io = async {
                tokio::join!(
                    feed,
                    collect(stdout, max, &mut out, &limits.overflowed),
                    futures_util::future::join_all(err_reads)
                )
            };
            let exited = async {
                for stage in stages {
                    let _ = stage.wait().await;
                }
            };
            // Dropping `io` drops every reader and the first stdin: the parent's ends close.
            tokio::select! {
                biased;
                _ = io => None,
                stop = limits.reached(exited) => Some(stop),
            }
        };
        // A stop by timeout, abort or overflow kills every stage still running.
        let killed = match stop {
            Some(Stop::WaitDelay) | None => false,
            Some(_) => stages
                .iter()
                .fold(false, |any, s| s.shared.kill_by_policy(s.kill_signal) | any),
        };
        let pipes_closed_early = !(out.eof && errs.iter().all(|e| e.eof));
        let encoding = self.options.encoding;
        let output = |status, out: Collected, errs: Vec<Collected>| PipelineOutput {
            stdout: out.decode(encoding, max),
            stderr: errs.into_iter().map(|e| e.decode(encoding, max)).collect(),
            status,
            pipes_closed_early,
        };
        let overflow = if out.overflow {
            Some((stages.len() - 1, StdStream::Stdout))
        } else {
            let i = errs.iter().position(|e| e.overflow);
            i.map(|i| (i, StdStream::Stderr))
        };
        if let (Some(Stop::Abort), true) = (stop, killed) {
            // As for exec: the abort comes at once; the stages are still reaped.
            let statuses = stages.iter().filter_map(ChildProcess::try_status).collect();
            return Err(PipelineError {
                reason: ExecFailure::Aborted,
                stage: None,
                cmd: self.cmdline,
                output: output(PipelineStatus(statuses), out, errs),
            });
        }
        let closed = self.closed().await;
        let status = match closed {
            Ok(status) => status,
            Err(e) => {
                let mut err = PipelineError::spawn(e, self.cmdline, &self.options);
                err.output = output(PipelineStatus(Vec::new()), out, errs);
                return Err(err);
            }
        };
        let deciding = if self.options.pipefail {
            status.pipefail_index()
        } else {
            status.0.len() - 1
        };
        let shared = &self.stages[deciding].shared;
        let (stage, reason) = match overflow {
            Some((i, stream)) => (i, ExecFailure::MaxBuffer(stream)),
            None if shared.aborted.load(Ordering::SeqCst) => (deciding, ExecFailure::Aborted),
            None if status.0[deciding].success() => return Ok(output(status, out, errs)),
            None if killed || shared.timed_out.load(Ordering::SeqCst) => {
                (deciding, ExecFailure::Timeout)
            }
            None if status.0[deciding].signal().is_some() => (deciding, ExecFailure::Signal),
            None => (deciding, ExecFailure::Exit),
        };
        Err(PipelineError {
            reason,
            stage: Some(stage),
            cmd: self.cmdline,
            output: output(status, out, errs),
        })
    }
}

impl IntoFuture for PipelineChild {
    type Output = std::result::Result<PipelineOutput, PipelineError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.output())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::ExitStatus;

    fn status(codes: &[i32]) -> PipelineStatus {
        PipelineStatus(codes.iter().map(|&c| ExitStatus::from_code(c)).collect())
    }

    #[test]
    fn pipefail_is_the_rightmost_failure_else_the_last_status() {
        assert_eq!(status(&[0, 0]).pipefail(), Some(ExitStatus::from_code(0)));
        assert_eq!(
            status(&[3, 0, 0]).pipefail(),
            Some(ExitStatus::from_code(3))
        );
        assert_eq!(
            status(&[3, 4, 0]).pipefail(),
            Some(ExitStatus::from_code(4))
        );
        assert_eq!(status(&[3, 4, 0]).last(), Some(ExitStatus::from_code(0)));
        assert_eq!(status(&[]).pipefail(), None);
    }

    #[test]
    fn a_pipeline_needs_a_command_and_leaves_the_links_alone() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _in = rt.enter();
        let e = Pipeline::new().spawn().unwrap_err();
        assert!(e.to_string().contains("at least one command"), "{e}");
        let e = Pipeline::new()
            .pipe(Command::new("true"))
            .pipe(Command::new("cat").stdin(Stdio::Inherit))
            .spawn()
            .unwrap_err();
        assert!(matches!(e, Error::Pipeline { stage: 1, .. }), "{e:?}");
        assert!(e.to_string().contains("stdin of cat"), "{e}");
        let e = Pipeline::new()
            .pipe(Command::new("true").stdout(Stdio::Ignore))
            .pipe(Command::new("cat"))
            .spawn()
            .unwrap_err();
        assert!(matches!(e, Error::Pipeline { stage: 0, .. }), "{e}");
    }
}
