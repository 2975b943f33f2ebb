//! Node's `spawnSync`, `execSync` and `execFileSync`: block the calling thread until the child
//! has exited and its pipes have closed. No tokio runtime is needed (nor used: calling them
//! from inside one blocks that worker thread, as Node's block the event loop).

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::command::{Command, Launched};
use crate::encoding::{Data, Encoding};
use crate::exec::{file_command, shell_command, StdStream, DEFAULT_MAX_BUFFER};
use crate::signal::Signal;
use crate::stdio::{ParentEnd, Stdio};
use crate::sys::{self, PollSet, Process, RawStatus};

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
    /// What went wrong: the spawn failed, the timeout fired, or `maxBuffer` was passed.
    pub error: Option<SyncFailure>,
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
}

impl fmt::Display for SyncFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncFailure::Spawn { message, .. } => f.write_str(message),
            SyncFailure::Timeout => f.write_str("ETIMEDOUT"),
            SyncFailure::MaxBuffer(s) => write!(f, "ENOBUFS: {s} maxBuffer length exceeded"),
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

    /// `maxBuffer` per stream (default 1 MiB); past it the child is killed with the kill
    /// signal and `error` is [`SyncFailure::MaxBuffer`].
    pub fn max_buffer(mut self, bytes: usize) -> Self {
        self.max_buffer = bytes;
        self
    }

    /// `encoding` of the outputs (default `Buffer`, as Node's sync API).
    pub fn encoding(mut self, encoding: impl Into<Encoding>) -> Self {
        self.encoding = encoding.into();
        self
    }

    /// Runs the child to completion: returns once it has exited and its pipes have closed
    /// (after a timeout too: a child that ignores the kill signal is waited for, as in Node,
    /// unless [`escalate_after`](Self::escalate_after) sends SIGKILL after a grace period).
    pub fn run(mut self) -> SpawnSyncResult {
        let echo = self.echo_stderr && !self.cmd.has_stdio(2);
        let timeout = self.cmd.get_timeout();
        let (group, grace) = self.cmd.get_kill_policy();
        let launched = match self.cmd.launch() {
            Ok(l) => l,
            Err(e) => {
                return SpawnSyncResult {
                    pid: 0,
                    output: Vec::new(),
                    stdout: None,
                    stderr: None,
                    status: None,
                    signal: None,
                    error: Some(SyncFailure::Spawn {
                        message: e.to_string(),
                        kind: e.kind(),
                    }),
                }
            }
        };
        let policy = KillPolicy {
            signal: launched.kill_signal,
            group,
            grace,
        };
        let run = Run::drive(
            launched,
            self.input.take(),
            self.max_buffer,
            timeout,
            policy,
        );
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
            stdout: output.get(1).cloned().flatten(),
            stderr: output.get(2).cloned().flatten(),
            output,
            status,
            signal,
            error: run.failure,
        }
    }
}

/// One blocking run's raw outcome.
struct Run {
    pid: u32,
    outputs: Vec<(i32, Vec<u8>)>,
    status: RawStatus,
    failure: Option<SyncFailure>,
}

struct Reader {
    fd: i32,
    file: Option<File>,
    bytes: Vec<u8>,
}

impl Run {
    /// Feeds stdin, drains every pipe with poll(2), enforces the timeout and max buffer, and
    /// reaps the child.
    fn drive(
        launched: Launched,
        input: Option<Vec<u8>>,
        max: usize,
        timeout: Option<Duration>,
        policy: KillPolicy,
    ) -> Run {
        let Launched { process, ends, .. } = launched;
        let mut killer = Killer::new(&process, policy);
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut stdin: Option<File> = None;
        let mut readers = Vec::new();
        for (fd, end) in ends {
            let owned: OwnedFd = match end {
                ParentEnd::Stdin(w) if input.is_some() => w,
                ParentEnd::Stdin(_) => continue, // closed now: the child reads EOF
                ParentEnd::Reader(r) => r,
                ParentEnd::Duplex(s) => s.into(),
                // No IPC in the sync API (Node refuses it there too): the channel just closes.
                ParentEnd::Ipc(_) => continue,
            };
            let _ = sys::set_nonblocking(owned.as_fd());
            if fd == 0 {
                stdin = Some(File::from(owned));
            } else {
                readers.push(Reader {
                    fd,
                    file: Some(File::from(owned)),
                    bytes: Vec::new(),
                });
            }
        }
        let input = input.unwrap_or_default();
        let mut written = 0;
        let (mut timed_out, mut overflow) = (false, None);
        let mut poll = PollSet::default();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            poll.clear();
            let idx: Vec<Option<usize>> = readers
                .iter()
                .map(|r| r.file.as_ref().map(|f| poll.add(f.as_fd(), true)))
                .collect();
            let stdin_idx = stdin.as_ref().map(|f| poll.add(f.as_fd(), false));
            if idx.iter().all(Option::is_none) && stdin_idx.is_none() {
                break;
            }
            let now = Instant::now();
            let wake = earliest(deadline.filter(|_| !timed_out), killer.escalate_if_due(now));
            if poll
                .wait(wake.map(|w| w.saturating_duration_since(now)))
                .is_err()
            {
                break;
            }
            if !timed_out && deadline.is_some_and(|d| Instant::now() >= d) {
                timed_out = true;
                killer.kill();
            }
            killer.escalate_if_due(Instant::now());
            if let (Some(i), Some(w)) = (stdin_idx, stdin.as_mut()) {
                if poll.ready(i) {
                    match w.write(&input[written..]) {
                        Ok(n) => written += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => written = input.len(), // EPIPE: the child stopped reading
                    }
                    if written >= input.len() {
                        stdin = None;
                    }
                }
            }
            for (r, i) in readers.iter_mut().zip(idx) {
                let (Some(i), Some(file)) = (i, r.file.as_mut()) else {
                    continue;
                };
                if !poll.ready(i) {
                    continue;
                }
                loop {
                    match file.read(&mut chunk) {
                        Ok(0) => {
                            r.file = None;
                            break;
                        }
                        Ok(n) => {
                            r.bytes.extend_from_slice(&chunk[..n]);
                            if r.bytes.len() > max {
                                r.bytes.truncate(max);
                                r.file = None;
                                if overflow.is_none() {
                                    overflow = Some(if r.fd == 2 {
                                        StdStream::Stderr
                                    } else {
                                        StdStream::Stdout
                                    });
                                    killer.kill();
                                }
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            r.file = None;
                            break;
                        }
                    }
                }
            }
        }
        drop(stdin);
        let status = reap(&mut killer, deadline.filter(|_| !timed_out), &mut timed_out);
        let failure = match (overflow, timed_out) {
            (Some(s), _) => Some(SyncFailure::MaxBuffer(s)),
            (None, true) => Some(SyncFailure::Timeout),
            (None, false) => None,
        };
        Run {
            pid: process.pid(),
            outputs: readers.into_iter().map(|r| (r.fd, r.bytes)).collect(),
            status,
            failure,
        }
    }
}

/// How a blocking run ends a child: the kill signal (on timeout or overflow), to the child
/// or its whole group, then SIGKILL after a grace period if one is set.
#[derive(Debug, Clone, Copy)]
struct KillPolicy {
    signal: Signal,
    group: bool,
    grace: Option<Duration>,
}

/// The kills of one blocking run, and the escalation timer.
struct Killer<'a> {
    process: &'a Process,
    policy: KillPolicy,
    escalate_at: Option<Instant>,
    escalated: bool,
}

impl<'a> Killer<'a> {
    fn new(process: &'a Process, policy: KillPolicy) -> Self {
        Killer {
            process,
            policy,
            escalate_at: None,
            escalated: false,
        }
    }

    fn send(&self, signal: i32) {
        // Undeliverable (the child is gone) is fine here: it is what we wanted.
        let _ = if self.policy.group {
            self.process.signal_group(signal)
        } else {
            self.process.signal(signal)
        };
    }

    /// The policy kill; arms the escalation timer the first time.
    fn kill(&mut self) {
        self.send(self.policy.signal.as_raw());
        if self.escalate_at.is_none() {
            self.escalate_at = self.policy.grace.map(|g| Instant::now() + g);
        }
    }

    /// Sends SIGKILL once the grace period is over; otherwise returns when it will be.
    fn escalate_if_due(&mut self, now: Instant) -> Option<Instant> {
        match self.escalate_at {
            Some(at) if !self.escalated && now >= at => {
                self.send(libc::SIGKILL);
                self.escalated = true;
                None
            }
            Some(at) if !self.escalated => Some(at),
            _ => None,
        }
    }

    /// A group SIGKILL is still ahead: the leader must stay unreaped until then, since its pid
    /// is the group's id and must not be reused before the group is signalled.
    fn holds_group(&self) -> bool {
        self.policy.group && self.escalate_at.is_some() && !self.escalated
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Reaps the child. At `deadline` (the timeout, if it has not fired yet) it sets `timed_out`
/// and kills; an armed escalation sends SIGKILL when due, the group's leader staying unreaped
/// until then.
fn reap(killer: &mut Killer<'_>, mut deadline: Option<Instant>, timed_out: &mut bool) -> RawStatus {
    let process = killer.process;
    loop {
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            deadline = None;
            *timed_out = true;
            killer.kill();
        }
        let escalation = killer.escalate_if_due(now);
        let exited = if killer.holds_group() {
            process.has_exited().unwrap_or(true)
        } else {
            match process.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) => false,
                Err(_) => break,
            }
        };
        let Some(wake) = earliest(deadline, escalation) else {
            break;
        };
        let left = wake.saturating_duration_since(now);
        match process.pidfd() {
            // The leader is gone but its group's SIGKILL is not due: just wait for it.
            _ if exited => std::thread::sleep(left),
            Some(fd) => {
                let mut poll = PollSet::default();
                poll.add(fd, true);
                let _ = poll.wait(Some(left));
            }
            None => std::thread::sleep(left.min(Duration::from_millis(5))),
        }
    }
    process.wait_blocking().unwrap_or(RawStatus::Exited(-1))
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

    /// `maxBuffer` per stream (default 1 MiB).
    pub fn max_buffer(self, bytes: usize) -> Self {
        ExecSync(self.0.max_buffer(bytes))
    }

    /// `encoding` (default `Buffer`).
    pub fn encoding(self, encoding: impl Into<Encoding>) -> Self {
        ExecSync(self.0.encoding(encoding))
    }

    /// Runs it: stdout on success (exit code 0, no timeout, no overflow), else an error that
    /// holds the whole [`SpawnSyncResult`].
    // The error carries the whole result by design (as Node's thrown error does).
    #[allow(clippy::result_large_err)]
    pub fn run(self) -> Result<Data, ExecSyncError> {
        let cmd = self.0.cmdline.clone();
        let result = self.0.run();
        let reason = match &result.error {
            Some(SyncFailure::Spawn { .. }) => ExecSyncFailure::Spawn,
            Some(SyncFailure::Timeout) => ExecSyncFailure::Timeout,
            Some(SyncFailure::MaxBuffer(s)) => ExecSyncFailure::MaxBuffer(*s),
            None if result.status == Some(0) => return Ok(result.stdout.unwrap_or_default()),
            None if result.signal.is_some() => ExecSyncFailure::Signal,
            None => ExecSyncFailure::Exit,
        };
        Err(ExecSyncError {
            reason,
            cmd,
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
}

/// A failed exec_sync / exec_file_sync: Node's thrown error, with the full spawnSync result.
#[derive(Debug, Clone)]
pub struct ExecSyncError {
    /// Why.
    pub reason: ExecSyncFailure,
    /// The command line.
    pub cmd: String,
    /// Everything `spawn_sync` returned (pid, output, stdout, stderr, status, signal, error).
    pub result: SpawnSyncResult,
}

impl fmt::Display for ExecSyncError {
    /// Node's: `Command failed: <cmd>` then stderr; the spawn error itself; or
    /// `spawnSync <cmd> ETIMEDOUT` / `ENOBUFS`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.reason, &self.result.error) {
            (ExecSyncFailure::Spawn, Some(e)) => write!(f, "{e}"),
            (ExecSyncFailure::Timeout, _) => write!(f, "spawnSync {} ETIMEDOUT", self.cmd),
            (ExecSyncFailure::MaxBuffer(_), _) => write!(f, "spawnSync {} ENOBUFS", self.cmd),
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
