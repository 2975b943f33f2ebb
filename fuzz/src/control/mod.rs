//! `channel_control`: a real [`Channel`] over a socketpair, whose raw peer writes what the
//! input says (Node's handle protocol, wrapped and odd frames, garbage), with fds attached
//! (`SCM_RIGHTS`) to arbitrary bytes of the stream — one, a read's worth, more than a read
//! has room for (`MSG_CTRUNC`), more than may queue ([`__fuzz::MAX_QUEUED_FDS`]) — while our
//! side reads, answers and sends messages and handles of its own.
//!
//! Checked for every input, besides "no panic, no hang":
//! - after each read-until-idle, every received fd is either queued for a handle frame
//!   (at most `MAX_QUEUED_FDS`) or was handed out (the target then drops it) or closed:
//!   the copies of the peer's objects open in this process are exactly the queued ones;
//! - a handed-out handle is the variant its socket is;
//! - the messages delivered are the peer's user messages and handle frames' messages, in
//!   order, none lost, a handle only with a handle frame;
//! - every handle frame is answered once, in order: ACK if it was delivered, else NACK;
//! - our side's output is well formed, each of its handle frames carried one fd, and after
//!   a handle frame nothing but answers went out before the peer could have answered;
//! - at the end, with the channel dropped, this process has exactly the fds it had before.

mod check;
pub mod fds;
pub mod input;

use std::collections::VecDeque;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use childproc_ipc::{__fuzz, AnyCodec, Channel, IpcError, Sender};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_util::codec::Encoder;

use check::internal_cmd;
use fds::Tracked;
use input::{End, Op, Piece, Script};

/// How long the end of one input may take to settle before it counts as a hang.
const SETTLE: Duration = Duration::from_secs(20);

/// The runtime every input runs on: one thread, made once.
fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("a tokio runtime")
    })
}

/// One conversation.
struct Run {
    rt: &'static Runtime,
    ch: Option<Channel<AnyCodec>>,
    tx: Option<Sender<AnyCodec>>,
    /// The channel's stream ended (EOF, an error, or our disconnect).
    ended: bool,
    /// `{:?}` of each message delivered, and whether a handle came with it.
    delivered: Vec<(String, bool)>,
    /// The error that ended the stream, if any.
    error: Option<String>,
    /// Our awaited sends.
    tasks: Vec<JoinHandle<Result<(), IpcError>>>,
    /// The peer's socket (non-blocking); `None` once it closed it.
    raw: Option<UnixStream>,
    /// The peer's encoder.
    codec: AnyCodec,
    /// Bytes the peer has yet to write.
    pending: Vec<u8>,
    /// Bytes the kernel took from the peer, in order.
    written: Vec<u8>,
    /// What the peer read from our side, and the fds that came with it (closed at once).
    inbox: Vec<u8>,
    inbox_fds: usize,
    /// `inbox.len()` when the channel's stream ended: from there on, held frames may go out.
    released_at: Option<usize>,
    tracked: Tracked,
    reached: Reached,
}

/// What one input reached, for the harness's own tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reached {
    /// Handles delivered.
    pub handles: usize,
    /// Messages delivered (with or without a handle).
    pub messages: usize,
    /// Reads whose control data the kernel truncated.
    pub truncated_reads: u64,
    /// The most fds seen queued at once.
    pub max_queued: usize,
    /// ACKs and NACKs our side wrote.
    pub answers: (usize, usize),
    /// Handle frames our side wrote.
    pub handles_sent: usize,
}

/// Runs one input and checks it (see the module docs). Panics on a finding.
pub fn run(script: Script) -> Reached {
    let rt = runtime();
    let _enter = rt.enter();
    let baseline = fds::open_fds();
    let mode = script.mode.serialization();
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    ours.set_nonblocking(true).expect("non-blocking");
    theirs.set_nonblocking(true).expect("non-blocking");
    let ch = Channel::from_std(ours, mode.codec().expect("codec")).expect("channel");
    let mut run = Run {
        rt,
        tx: Some(ch.sender()),
        ch: Some(ch),
        ended: false,
        delivered: Vec::new(),
        error: None,
        tasks: Vec::new(),
        raw: Some(theirs),
        codec: mode.codec().expect("codec"),
        pending: Vec::new(),
        written: Vec::new(),
        inbox: Vec::new(),
        inbox_fds: 0,
        released_at: None,
        tracked: Tracked::default(),
        reached: Reached::default(),
    };
    for op in script.ops {
        run.step(op);
    }
    run.finish(script.end);
    run.check(script.end, &mode.codec().expect("codec"));
    run.check_closed(&baseline);
    run.reached.messages = run.delivered.len();
    run.reached.handles = run.delivered.iter().filter(|(_, h)| *h).count();
    run.reached
}

impl Run {
    fn step(&mut self, op: Op) {
        match op {
            Op::Push(frame) => {
                for piece in frame.pieces() {
                    match piece {
                        Piece::Value(v) => self.push_value(v),
                        Piece::Bytes(b) => self.pending.extend_from_slice(&b),
                        Piece::Cut(v, cut) => {
                            let before = self.pending.len();
                            self.push_value(v);
                            let len = self.pending.len() - before;
                            if len > 0 {
                                self.write(before + cut % len, 0, 0);
                            }
                        }
                    }
                }
            }
            Op::Write { len, fds, kind } => {
                self.write(usize::from(len), fds.count(), kind);
            }
            Op::WriteAll { fds, kind } => self.write(self.pending.len(), fds.count(), kind),
            Op::Drive => self.drive(),
            Op::Send(msg) => {
                if let Some(tx) = self.tx.clone() {
                    let v = msg.value();
                    self.tasks
                        .push(self.rt.spawn(async move { tx.send(v).await }));
                }
            }
            Op::SendNowait(msg) => {
                if let Some(tx) = &self.tx {
                    let _ = tx.send_nowait(msg.value());
                }
            }
            Op::SendHandle { kind, msg } => {
                if let Some(tx) = self.tx.clone() {
                    let kind = fds::Kind::pick(kind, 0);
                    let handle = fds::handle(kind, fds::make(kind).expect("an fd to send"));
                    let v = msg.value();
                    self.tasks.push(
                        self.rt
                            .spawn(async move { tx.send_handle(v, handle).await }),
                    );
                }
            }
        }
    }

    /// Appends `v`, encoded by the peer's codec, to what the peer has yet to write (nothing
    /// if the codec cannot encode it).
    fn push_value(&mut self, v: childproc_ipc::Value) {
        let mut buf = BytesMut::new();
        if self.codec.encode(v, &mut buf).is_ok() {
            self.pending.extend_from_slice(&buf);
        }
    }

    /// The peer writes up to `len` pending bytes (at least one, if any) in one `sendmsg`
    /// with `n_fds` fresh fds attached, then closes its copies of them. A full socket is
    /// given a few chances to drain (our side reads meanwhile); then the write is dropped.
    fn write(&mut self, len: usize, n_fds: usize, kind: u8) {
        if self.raw.is_none() || (self.pending.is_empty() && n_fds == 0) {
            return;
        }
        let len = len
            .clamp(1, self.pending.len().max(1))
            .min(self.pending.len());
        let fds = self.tracked.make_many(n_fds, kind);
        for _ in 0..8 {
            let Some(raw) = &self.raw else { return };
            let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
            let result = if borrowed.is_empty() {
                (&*raw).write(&self.pending[..len])
            } else {
                __fuzz::send_many_fds(raw, &self.pending[..len], &borrowed)
            };
            match result {
                Ok(n) => {
                    self.written.extend(self.pending.drain(..n));
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.drive(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A closed channel (EPIPE), or too many fds in flight (ETOOMANYREFS).
                Err(_) => return,
            }
        }
    }

    /// Our side reads until it would block (or its stream ends), dropping each handle it
    /// is given after checking its kind; then checks that every received fd is accounted
    /// for.
    fn drive(&mut self) {
        let rt = self.rt;
        rt.block_on(async {
            let mut idle = 0;
            loop {
                let polled = match (&mut self.ch, self.ended) {
                    (Some(ch), false) => {
                        std::future::poll_fn(|cx| Poll::Ready(ch.poll_recv(cx))).await
                    }
                    _ => Poll::Pending,
                };
                match polled {
                    Poll::Ready(Some(Ok(incoming))) => {
                        idle = 0;
                        let with_handle = incoming.handle.is_some();
                        if let Some(handle) = incoming.handle {
                            match self.tracked.kind_of(handle.as_fd()) {
                                Some(kind) => assert!(
                                    kind.matches(&handle),
                                    "a {kind:?} arrived as {handle:?}"
                                ),
                                None => panic!("a handle the peer never sent: {handle:?}"),
                            }
                        }
                        self.delivered
                            .push((format!("{:?}", incoming.message), with_handle));
                    }
                    Poll::Ready(Some(Err(e))) => {
                        self.error = Some(format!("{e:?}"));
                        self.stream_ended();
                    }
                    Poll::Ready(None) => self.stream_ended(),
                    Poll::Pending => {
                        let _ = self.drain();
                        if idle == 2 {
                            break;
                        }
                        idle += 1;
                        // Lets the I/O driver and the writer task run before polling again.
                        tokio::task::yield_now().await;
                    }
                }
            }
        });
        self.check_queued();
    }

    fn stream_ended(&mut self) {
        if !self.ended {
            self.ended = true;
            self.released_at = Some(self.inbox.len());
        }
    }

    /// The copies of the peer's objects open here are exactly the fds queued for handle
    /// frames, and no more may queue than the channel allows.
    fn check_queued(&mut self) {
        let queued = self.ch.as_ref().map_or(0, Channel::__fuzz_queued_fds);
        self.reached.max_queued = self.reached.max_queued.max(queued);
        if let Some(ch) = &self.ch {
            self.reached.truncated_reads = ch.truncated_reads();
        }
        if self.tracked.is_empty() {
            assert_eq!(queued, 0, "fds queued, but the peer sent none");
            return;
        }
        assert!(
            queued <= __fuzz::MAX_QUEUED_FDS,
            "{queued} fds queued, more than {}",
            __fuzz::MAX_QUEUED_FDS
        );
        let open = self.tracked.open_copies();
        assert_eq!(
            open, queued,
            "{open} received fds are open here but {queued} are queued: fds leaked or lost"
        );
    }

    /// The peer reads what our side wrote, closing the fds that came with it. Whether it
    /// read EOF.
    fn drain(&mut self) -> bool {
        let Some(raw) = &self.raw else { return false };
        let mut buf = [0u8; 16 * 1024];
        let mut fds: VecDeque<OwnedFd> = VecDeque::new();
        loop {
            match __fuzz::recv_with_fds(raw, &mut buf, &mut fds) {
                Ok((0, _)) => return true,
                // Our side closed with bytes of the peer's unread: its EOF too.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
                Ok((n, truncated)) => {
                    assert!(!truncated, "our side sent more fds than one read holds");
                    self.inbox.extend_from_slice(&buf[..n]);
                    self.inbox_fds += fds.len();
                    fds.clear();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("the peer cannot read: {e}"),
            }
        }
    }

    /// Ends the conversation as the input says and waits until everything settled: the
    /// stream ended, every send resolved.
    fn finish(&mut self, end: End) {
        self.write(self.pending.len(), 0, 0);
        match end {
            End::PeerEof => {
                if let Some(raw) = &self.raw {
                    let _ = raw.shutdown(std::net::Shutdown::Write);
                }
            }
            End::PeerClose => {
                let _ = self.drain();
                self.raw = None;
            }
            End::PeerCloseUnread => self.raw = None,
            End::Disconnect => {
                if let Some(ch) = &mut self.ch {
                    ch.disconnect();
                }
                self.stream_ended();
            }
        }
        let start = Instant::now();
        loop {
            self.drive();
            if self.ended && self.tasks.iter().all(JoinHandle::is_finished) {
                break;
            }
            assert!(
                start.elapsed() < SETTLE,
                "hang: stream ended {}, {} of {} sends resolved, {} bytes queued",
                self.ended,
                self.tasks.iter().filter(|t| t.is_finished()).count(),
                self.tasks.len(),
                self.tx.as_ref().map_or(0, Sender::backlog)
            );
        }
        for task in std::mem::take(&mut self.tasks) {
            if let Err(e) = self.rt.block_on(task) {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        // Dropping the channel closes its socket: the peer reads to EOF.
        self.ch = None;
        self.tx = None;
        let start = Instant::now();
        while self.raw.is_some() {
            self.rt.block_on(tokio::task::yield_now());
            let before = self.inbox.len();
            self.drain_to_eof();
            if self.raw.is_none() {
                break;
            }
            assert!(
                start.elapsed() < SETTLE,
                "hang: the peer never read EOF ({before} bytes read)"
            );
        }
    }

    /// One drain; drops the peer's socket once it reads EOF.
    fn drain_to_eof(&mut self) {
        if self.drain() {
            self.raw = None;
        }
    }

    /// The end-of-input checks on messages, answers and our side's output.
    fn check(&mut self, end: End, codec: &AnyCodec) {
        let (frames, error) = check::decode_all(codec.clone(), &self.written);
        let answers_frames = frames
            .iter()
            .filter(|(v, _)| {
                matches!(
                    internal_cmd(v),
                    Some("NODE_HANDLE_ACK" | "NODE_HANDLE_NACK")
                )
            })
            .count();
        let complete = !matches!(end, End::Disconnect);
        if complete {
            assert_eq!(
                self.error.is_some(),
                error.is_some(),
                "the channel's error {:?}, the peer's bytes decode to error {error:?}",
                self.error
            );
        }
        let items = check::items(frames);

        // What our side wrote: well formed, whatever happened.
        let (out, out_error) = check::decode_all(codec.clone(), &self.inbox);
        assert!(
            out_error.is_none(),
            "our side wrote a malformed stream: {out_error:?}"
        );
        let mut answers = Vec::new();
        let mut handles_out = 0;
        let mut start = 0;
        for (v, end_at) in &out {
            match internal_cmd(v) {
                Some("NODE_HANDLE_ACK") => answers.push(true),
                Some("NODE_HANDLE_NACK") => answers.push(false),
                other => {
                    let held = handles_out > answers_frames
                        && self.released_at.is_none_or(|at| start < at);
                    assert!(
                        !held,
                        "{v:?} went out after our handle frame #{handles_out}, but the peer sent only {answers_frames} answers"
                    );
                    if other == Some("NODE_HANDLE") {
                        handles_out += 1;
                    }
                }
            }
            start = *end_at;
        }
        self.reached.answers = (
            answers.iter().filter(|a| **a).count(),
            answers.iter().filter(|a| !**a).count(),
        );
        self.reached.handles_sent = handles_out;
        let all_answers = matches!(end, End::PeerEof);
        check::check_delivery(&items, &self.delivered, &answers, complete, all_answers);
        if !matches!(end, End::PeerClose | End::PeerCloseUnread) {
            assert_eq!(
                self.inbox_fds, handles_out,
                "our side wrote {handles_out} handle frames with {} fds",
                self.inbox_fds
            );
        }
    }

    /// With the channel gone, the process has the fds it had before the input.
    fn check_closed(&self, baseline: &[i32]) {
        if !self.tracked.is_empty() {
            assert_eq!(
                self.tracked.open_copies(),
                0,
                "received fds outlived the channel"
            );
        }
        let start = Instant::now();
        loop {
            // The writer task ends when it next runs.
            self.rt.block_on(tokio::task::yield_now());
            let now = fds::open_fds();
            if now.len() == baseline.len() {
                return;
            }
            if start.elapsed() > SETTLE {
                let links: Vec<String> = now
                    .iter()
                    .filter(|fd| !baseline.contains(fd))
                    .map(|fd| {
                        let link = std::fs::read_link(format!("/proc/self/fd/{fd}"));
                        format!("{fd} -> {link:?}")
                    })
                    .collect();
                panic!("fds leaked: {links:?}");
            }
        }
    }
}

// `FdCount::Few` fits one read of the channel, `Overflow` does not.
const _: () = assert!(__fuzz::FDS_PER_READ == 16);

#[cfg(test)]
mod tests;
