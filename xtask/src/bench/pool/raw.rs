//! The pool section's floor rows: a dispatcher with nothing in it but the OS. One thread
//! blocks in `epoll_wait` over the workers' sockets; each worker is `xtask bench-worker
//! ipc-raw`, which blocks in `read` for 16 bytes and writes them back. No framing, no
//! encoding, no runtime, no task: what is left is the syscalls and the wake-ups every
//! dispatcher on this machine pays, so no pool can run faster than this row.
//!
//! It is driven as the other peers are: `4 × workers` clients in a closed loop share one
//! queue; a worker with room (`depth` tasks at most) takes the queue's head; an answered
//! client queues its next task at once. What a reader's turn frees is refilled with one
//! `write` per worker.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::super::epoll::Epoll;
use super::{summary, Run, Setup, WARMUP};
use crate::BoxError;

/// The bytes of one task (and of its answer): the raw echo child's unit.
pub(super) const TASK: usize = 16;

/// One worker: its socket, the tasks it has (each with its client's submit time), and the
/// bytes of an answer read so far.
struct Worker {
    socket: UnixStream,
    child: Child,
    in_flight: VecDeque<Instant>,
    partial: usize,
}

/// [`Peer::RawFloor`](super::Peer::RawFloor): `tasks` echo tasks through `setup.workers` raw
/// echo children.
pub(super) fn raw_floor(
    setup: Setup,
    tasks: usize,
    pins: &[Option<usize>],
) -> Result<Run, BoxError> {
    let mut workers = Vec::with_capacity(setup.workers);
    for i in 0..setup.workers {
        let (ours, child) = echo_worker(pins.get(i).copied().flatten())?;
        workers.push(Worker {
            socket: ours,
            child,
            in_flight: VecDeque::new(),
            partial: 0,
        });
    }
    let epoll = Epoll::new()?;
    for (i, w) in workers.iter().enumerate() {
        epoll.add(&w.socket, i as u64)?;
    }
    let clients = setup.clients();
    dispatch(&epoll, &mut workers, setup.depth, clients, clients * WARMUP)?;
    let start = Instant::now();
    let mut latencies = dispatch(&epoll, &mut workers, setup.depth, clients, tasks)?;
    let elapsed = start.elapsed();
    for mut w in workers {
        drop(w.socket); // the child reads EOF and exits
        let status = w.child.wait()?;
        if !status.success() {
            return Err(format!("a raw echo worker ended with {status}").into());
        }
    }
    latencies.sort_unstable();
    Ok(summary(&latencies, elapsed))
}

/// A raw echo child (`xtask bench-worker ipc-raw`, pinned to `cpu` if given) and the
/// parent's end of its socket, non-blocking.
pub(super) fn echo_worker(cpu: Option<usize>) -> Result<(UnixStream, Child), BoxError> {
    let (ours, theirs) = UnixStream::pair()?;
    let exe = std::env::current_exe()?.into_os_string();
    let child = super::placement::command(cpu, exe, &["bench-worker", "ipc-raw"])
        .stdin(OwnedFd::from(theirs))
        .stdout(Stdio::null())
        .spawn()?;
    ours.set_nonblocking(true)?;
    Ok((ours, child))
}

/// Runs `tasks` tasks from `clients` clients through the workers (which start and end with
/// nothing in flight); the latency of each.
fn dispatch(
    epoll: &Epoll,
    workers: &mut [Worker],
    depth: usize,
    clients: usize,
    tasks: usize,
) -> Result<Vec<Duration>, BoxError> {
    let now = Instant::now();
    // The clients waiting for a worker, by the time each submitted its task.
    let mut queue: VecDeque<Instant> = (0..clients.min(tasks)).map(|_| now).collect();
    let mut submitted = queue.len();
    let mut latencies = Vec::with_capacity(tasks);
    for w in workers.iter_mut() {
        refill(w, depth, &mut queue)?;
    }
    let mut buf = vec![0u8; 64 * 1024];
    while latencies.len() < tasks {
        for i in epoll.wait()? {
            let w = workers.get_mut(i).ok_or("epoll named no worker")?;
            let n = match w.socket.read(&mut buf) {
                Ok(0) => return Err("a raw echo worker closed its socket".into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e.into()),
            };
            w.partial += n;
            let answered = Instant::now();
            for _ in 0..w.partial / TASK {
                let sent = w
                    .in_flight
                    .pop_front()
                    .ok_or("an answer nobody asked for")?;
                latencies.push(answered - sent);
                if submitted < tasks {
                    queue.push_back(answered);
                    submitted += 1;
                }
            }
            w.partial %= TASK;
        }
        for w in workers.iter_mut() {
            refill(w, depth, &mut queue)?;
        }
    }
    Ok(latencies)
}

/// Gives `w` tasks from the queue up to `depth`, in one write.
fn refill(w: &mut Worker, depth: usize, queue: &mut VecDeque<Instant>) -> io::Result<()> {
    let room = depth.saturating_sub(w.in_flight.len()).min(queue.len());
    if room == 0 {
        return Ok(());
    }
    w.in_flight.extend(queue.drain(..room));
    // At most `depth × 16` bytes: far below the socket's buffer, so it takes them at once.
    w.socket.write_all(&vec![b'x'; room * TASK])
}
