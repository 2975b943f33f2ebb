//! One blocking run: feed stdin, drain every pipe with poll(2), enforce the timeout, the
//! max buffer and the wait delay, and reap the child — Node's `SyncProcessRunner`.
//!
//! As in Node, a timeout or a `maxBuffer` overflow kills the child (if it is still running)
//! *and closes every stdio pipe* at once, so a grandchild that inherited them cannot keep the
//! call waiting: the run then waits for the child's own exit only.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::bulk::{self, Bulk, BULK_PIPE, FULL_READ};
use crate::command::Launched;
use crate::exec::StdStream;
use crate::signal::Signal;
use crate::stdio::ParentEnd;
use crate::sys::{self, PollSet, Process, RawStatus};

use super::SyncFailure;

/// One blocking run's raw outcome.
pub(super) struct Run {
    pub(super) pid: u32,
    pub(super) outputs: Vec<(i32, Vec<u8>)>,
    pub(super) status: RawStatus,
    /// What the child cost, gathered when it was reaped.
    pub(super) usage: Option<sys::RawUsage>,
    pub(super) failure: Option<SyncFailure>,
    /// Some pipe was closed before its end-of-file.
    pub(super) pipes_closed_early: bool,
}

/// What ends a run besides its pipes reaching end-of-file.
pub(super) struct Limits {
    pub(super) input: Option<Vec<u8>>,
    pub(super) max_buffer: usize,
    pub(super) timeout: Option<Duration>,
    pub(super) wait_delay: Option<Duration>,
    pub(super) policy: KillPolicy,
}

struct Reader {
    fd: i32,
    file: Option<File>,
    bytes: Vec<u8>,
    eof: bool,
    /// A bigger pipe and a faulted-in buffer, once a read finds the pipe full.
    bulk: Bulk,
}

/// Node's read size for the sync API, and ours near `max_buffer`. Elsewhere a read asks for
/// a grown pipe's size (it gets what the pipe holds).
const READ: usize = FULL_READ;

/// How often the exit is checked for the wait delay without a pidfd to poll.
const EXIT_POLL: Duration = Duration::from_millis(10);

impl Run {
    /// Feeds stdin, drains every pipe with poll(2), enforces the limits, and reaps the child.
    pub(super) fn drive(launched: Launched, limits: Limits) -> Run {
        let Launched { process, ends, .. } = launched;
        let Limits {
            input,
            max_buffer: max,
            timeout,
            wait_delay,
            policy,
        } = limits;
        let mut killer = Killer::new(&process, policy);
        // A timeout too long to represent is no timeout.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut stdin: Option<File> = None;
        let mut readers = Vec::new();
        for (fd, end) in ends {
            let owned: OwnedFd = match end {
                ParentEnd::Stdin(w) if input.is_some() => w,
                ParentEnd::Stdin(_) => continue, // closed now: the child reads EOF
                ParentEnd::Reader(r) => r,
                ParentEnd::Duplex(s) => s.into(),
                // No IPC in the sync API (Node refuses it there too): the channel just closes.
                #[cfg(feature = "ipc")]
                ParentEnd::Ipc(_) => continue,
                // Refused before the sync API launches anything.
                ParentEnd::Pty(_) => continue,
            };
            let _ = sys::set_nonblocking(owned.as_fd());
            if fd == 0 {
                stdin = Some(File::from(owned));
            } else {
                readers.push(Reader {
                    fd,
                    file: Some(File::from(owned)),
                    bytes: Vec::new(),
                    eof: false,
                    bulk: Bulk::default(),
                });
            }
        }
        let input = input.unwrap_or_default();
        let mut written = 0;
        let (mut timed_out, mut overflow) = (false, None);
        // The first failed write or read (Node's pipe error): EPIPE from a child that stopped
        // reading its stdin.
        let mut pipe_error = None;
        // When the child was seen to have exited (only looked for with a wait delay).
        let mut exited_at: Option<Instant> = None;
        let mut poll = PollSet::default();
        'run: loop {
            poll.clear();
            let idx: Vec<Option<usize>> = readers
                .iter()
                .map(|r| r.file.as_ref().map(|f| poll.add(f.as_fd(), true)))
                .collect();
            let stdin_idx = stdin.as_ref().map(|f| poll.add(f.as_fd(), false));
            if idx.iter().all(Option::is_none) && stdin_idx.is_none() {
                break;
            }
            let watch_exit = wait_delay.is_some() && exited_at.is_none();
            let pidfd_idx = match process.pidfd() {
                Some(fd) if watch_exit => Some(poll.add(fd, true)),
                _ => None,
            };
            let delay_end = exited_at
                .zip(wait_delay)
                .and_then(|(at, delay)| at.checked_add(delay));
            let now = Instant::now();
            let mut wake = earliest(deadline.filter(|_| !timed_out), killer.escalate_if_due(now));
            wake = earliest(wake, delay_end);
            if watch_exit && pidfd_idx.is_none() {
                wake = earliest(wake, now.checked_add(EXIT_POLL));
            }
            if poll
                .wait(wake.map(|w| w.saturating_duration_since(now)))
                .is_err()
            {
                break;
            }
            let now = Instant::now();
            if watch_exit
                && pidfd_idx.is_none_or(|i| poll.ready(i))
                && process.has_exited().unwrap_or(false)
            {
                exited_at = Some(now);
            }
            if deadline.is_some_and(|d| now >= d) {
                // Node's `Kill()`: signal the child if it runs, close every pipe.
                timed_out = true;
                killer.kill();
                break;
            }
            if delay_end.is_some_and(|d| now >= d) {
                break;
            }
            killer.escalate_if_due(now);
            if let (Some(i), Some(w)) = (stdin_idx, stdin.as_mut()) {
                if poll.ready(i) {
                    match w.write(&input[written..]) {
                        Ok(n) => written += n,
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                            ) => {}
                        Err(e) => {
                            // EPIPE: the child stopped reading. The rest is not written.
                            pipe_error.get_or_insert(e.kind());
                            written = input.len();
                        }
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
                    bulk::make_room(&mut r.bytes, max);
                    r.bulk.before_read(&mut r.bytes);
                    // Near the limit, reads are Node's 64 KiB, so an overflowing output keeps
                    // at most one such read past `max_buffer`.
                    let room = max.saturating_sub(r.bytes.len());
                    let most = if room < BULK_PIPE { READ } else { BULK_PIPE };
                    match sys::read_append(file.as_fd(), &mut r.bytes, most) {
                        Ok(0) => {
                            r.file = None;
                            r.eof = true;
                            break;
                        }
                        Ok(n) => {
                            let room = max.saturating_sub(r.bytes.len());
                            r.bulk.after_read(file.as_fd(), n, room);
                            if r.bytes.len() > max {
                                // Node's spawnSync keeps the whole read that passed the
                                // limit (its reads are 64 KiB, as ours).
                                overflow = Some(if r.fd == 2 {
                                    StdStream::Stderr
                                } else {
                                    StdStream::Stdout
                                });
                                // Node's `Kill()` again: every pipe closes below.
                                killer.kill();
                                break 'run;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            pipe_error.get_or_insert(e.kind());
                            r.file = None;
                            r.eof = true;
                            break;
                        }
                    }
                }
            }
        }
        drop(stdin);
        let pipes_closed_early = readers.iter().any(|r| !r.eof);
        for r in &mut readers {
            r.file = None;
            bulk::trim(&mut r.bytes);
        }
        let status = reap(&mut killer, deadline.filter(|_| !timed_out), &mut timed_out);
        // Node's precedence: the overflow or the timeout, else the pipe error.
        let failure = match (overflow, timed_out) {
            (Some(s), _) => Some(SyncFailure::MaxBuffer(s)),
            (None, true) => Some(SyncFailure::Timeout),
            (None, false) => pipe_error.map(SyncFailure::Pipe),
        };
        Run {
            pid: process.pid(),
            outputs: readers.into_iter().map(|r| (r.fd, r.bytes)).collect(),
            status,
            usage: process.usage(),
            failure,
            pipes_closed_early,
        }
    }
}

/// How a blocking run ends a child: the kill signal (on timeout or overflow), to the child
/// or its whole group, then SIGKILL after a grace period if one is set.
#[derive(Debug, Clone, Copy)]
pub(super) struct KillPolicy {
    pub(super) signal: Signal,
    pub(super) group: bool,
    pub(super) grace: Option<Duration>,
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

    /// The policy kill; arms the escalation timer the first time (a grace period too long
    /// to represent never escalates).
    fn kill(&mut self) {
        self.send(self.policy.signal.as_raw());
        if self.escalate_at.is_none() {
            self.escalate_at = self
                .policy
                .grace
                .and_then(|g| Instant::now().checked_add(g));
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
