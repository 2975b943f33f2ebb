//! Node's IPC channel: messages over a Unix stream socket.
//!
//! A [`Channel`] owns one end of the socket. Incoming messages are a `futures::Stream`;
//! outgoing ones go through a cloneable [`Sender`], which writes frames in call order and
//! never blocks the caller (see its module for how writes are batched):
//!
//! - [`Sender::send`] resolves once the frame is written (Node's `send` callback);
//! - [`Sender::send_nowait`] queues and returns Node's boolean: `false` when the channel is
//!   closed or more than [`BACKLOG_LIMIT`] bytes are waiting to be written (backpressure
//!   advice: the message is still queued);
//! - [`Channel::disconnect`] flushes what is queued and closes the socket; the peer reads
//!   EOF, which is Node's only disconnect signal.
//!
//! Messages whose `cmd` is `NODE_` plus at least one character are Node's internal protocol
//! and are never delivered as user messages.
//!
//! Handles (sockets and fds, Node's `sendHandle`) travel with `SCM_RIGHTS` in Node's
//! `NODE_HANDLE` protocol: [`Sender::send_handle`] sends one; [`Channel::recv`] yields each
//! message with the [`Handle`] that came with it. The plain `Stream` yields the message
//! alone and keeps its handle for [`Channel::take_handle`], so none is lost or leaked.
//! Received fds wait for the next `NODE_HANDLE` frame, as in Node: an fd that comes with a
//! plain message goes to the next handle frame (at most 64 wait; more are closed).
//! A `NODE_HANDLE` frame is answered `NODE_HANDLE_ACK` when an fd was there for it, else
//! `NODE_HANDLE_NACK` and the message is dropped (a Node sender resends sockets on a NACK).
//!
//! Receiving is driven by the consumer: the socket is read only when the channel is polled
//! and no whole frame is buffered, one read at a time into the frame buffer (8 KiB, or one
//! frame if larger). So a channel never holds more than that beyond what its consumer took,
//! and a program that stops reading pushes back on its peer: the kernel makes the peer's
//! sends wait. (A `childproc` parent bounds its side the same way, see its `ipc_high_water`.)
//!
//! Node keeps a process alive while a channel is open and referenced (`channel.ref()` /
//! `channel.unref()`). A Rust program has no event loop to keep alive, so the reference has
//! one concrete meaning here: [`wait_referenced`] resolves once no channel of the process is
//! open and referenced. A channel is referenced from its creation; [`Sender::unref`] /
//! [`Channel::unref`] take it out, `ref_` puts it back, and it stops counting for good once
//! it closes (either side disconnects, a write fails, or every handle is dropped). Whether a
//! channel is referenced changes nothing else: messages flow either way.

#[cfg(test)]
mod handle_tests;
mod opened;
mod refs;
mod sender;
mod socket;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::net::UnixStream;
use tokio_util::codec::{Decoder, Encoder, FramedRead};

use crate::error::IpcError;
use crate::handle::{Handle, Incoming};
use crate::value::Value;
pub use opened::Received;
use sender::TxShared;
pub use sender::{Cork, Sender, BACKLOG_LIMIT};
pub(crate) use socket::MAX_QUEUED_FDS;
use socket::{Reader, Socket};

/// One end of an IPC channel: receive by polling it as a `Stream`, send through [`sender`].
///
/// [`sender`]: Channel::sender
pub struct Channel<C> {
    rx: Option<FramedRead<Reader, C>>,
    tx: Sender<C>,
    ended: bool,
    /// Handles that came with messages the `Stream` yielded, for `take_handle`.
    unclaimed: VecDeque<Handle>,
}

impl<C> Channel<C>
where
    C: Decoder<Item = Value, Error = IpcError>
        + Encoder<Value, Error = IpcError>
        + Clone
        + Send
        + 'static,
{
    /// A channel over `stream` speaking `codec`. Must be called inside a tokio runtime (a
    /// writer task is started); fails only if the socket cannot be registered with it.
    pub fn new(stream: UnixStream, codec: C) -> Result<Self, IpcError> {
        Self::from_std(stream.into_std()?, codec)
    }

    /// [`Channel::new`] for a standard library socket, which must be non-blocking.
    pub fn from_std(stream: std::os::unix::net::UnixStream, codec: C) -> Result<Self, IpcError> {
        let socket = Socket::new(stream)?;
        let shared = TxShared::new(socket.clone(), codec.clone());
        shared.start_writer();
        Ok(Channel {
            rx: Some(FramedRead::new(Reader::new(socket), codec)),
            tx: Sender { shared },
            ended: false,
            unclaimed: VecDeque::new(),
        })
    }

    /// A sender for this channel (clone it freely).
    pub fn sender(&self) -> Sender<C> {
        self.tx.clone()
    }

    /// Whether messages can still be sent and received (Node's `connected`).
    pub fn connected(&self) -> bool {
        self.tx.connected()
    }

    /// Node's `disconnect()`: stop receiving, write what is queued, close the socket.
    pub fn disconnect(&mut self) {
        self.rx = None;
        self.tx.close();
    }
}

/// Tells whether a channel's peer has hung up, without reading: see
/// [`Channel::hangup_probe`].
#[derive(Clone)]
pub struct HangupProbe(Arc<Socket>);

impl HangupProbe {
    /// Whether the peer has closed its end of the socket (or shut down its writing). The
    /// messages it sent before may still be unread: the channel's stream ends after them.
    pub fn peer_closed(&self) -> bool {
        self.0.peer_closed()
    }
}

impl std::fmt::Debug for HangupProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("HangupProbe").finish_non_exhaustive()
    }
}

impl<C> Channel<C> {
    /// A handle that tells whether the peer has hung up, to keep after the channel moved into
    /// a task (the core uses it to order a child's exit after its channel's end). `None` once
    /// the channel has ended. It keeps the socket's fd open but changes nothing else: the
    /// channel still closes when it is disconnected or its handles are dropped.
    pub fn hangup_probe(&self) -> Option<HangupProbe> {
        self.rx
            .as_ref()
            .map(|rx| HangupProbe(rx.get_ref().socket.clone()))
    }

    /// Node's `process.channel.ref()`: see [`Sender::ref_`].
    pub fn ref_(&self) {
        self.tx.ref_();
    }

    /// Node's `process.channel.unref()`: see [`Sender::unref`].
    pub fn unref(&self) {
        self.tx.unref();
    }

    /// Whether this channel counts for [`wait_referenced`]: open and not unref'd.
    pub fn is_referenced(&self) -> bool {
        self.tx.is_referenced()
    }

    /// The oldest handle that came with a message the `Stream` yielded and that was not
    /// taken yet (the `Stream` yields messages only; [`recv`](Self::recv) yields each with
    /// its handle). Handles left here are closed when the channel is dropped.
    pub fn take_handle(&mut self) -> Option<Handle> {
        self.unclaimed.pop_front()
    }

    /// How many reads brought more fds than the channel makes room for (16 per read), or
    /// a control message the kernel cut short: their fds were closed, and the
    /// `NODE_HANDLE` frames they were for are answered `NACK`. Zero with a sane peer.
    pub fn truncated_reads(&self) -> u64 {
        self.rx.as_ref().map_or(0, |rx| rx.get_ref().truncated)
    }

    /// How many received fds wait for a `NODE_HANDLE` frame: for the fuzz targets, which
    /// check that every received fd is queued, handed out or closed. Not part of the API.
    #[doc(hidden)]
    pub fn __fuzz_queued_fds(&self) -> usize {
        self.rx.as_ref().map_or(0, |rx| rx.get_ref().fds.len())
    }
}

impl<C> Channel<C>
where
    C: Decoder<Item = Value, Error = IpcError> + Encoder<Value, Error = IpcError> + Unpin,
{
    /// The next user message with the handle sent with it, if any (Node's `'message'`
    /// event with its `sendHandle`); `None` once the peer disconnected or after an error,
    /// as for the `Stream`. Cancel-safe: a message is taken only when it is returned.
    pub async fn recv(&mut self) -> Option<Result<Incoming, IpcError>> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`recv`](Self::recv) as a poll function.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Incoming, IpcError>>> {
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            let Some(rx) = self.rx.as_mut() else {
                return Poll::Ready(None);
            };
            match futures_core::ready!(Pin::new(&mut *rx).poll_next(cx)) {
                Some(Ok(v)) if is_internal(&v) => {
                    if let Some(incoming) = self.internal(v) {
                        return Poll::Ready(Some(Ok(incoming)));
                    }
                }
                Some(Ok(message)) => {
                    return Poll::Ready(Some(Ok(Incoming {
                        message,
                        handle: None,
                    })))
                }
                Some(Err(e)) => {
                    self.end();
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    self.end();
                    return Poll::Ready(None);
                }
            }
        }
    }

    /// The stream ended: the channel is closed, and no answer to our handles will come.
    fn end(&mut self) {
        self.ended = true;
        self.tx.shared.shut();
        self.tx.shared.release_all();
    }

    /// Acts on one of Node's internal messages; a handle with its message is for the user.
    fn internal(&mut self, value: Value) -> Option<Incoming> {
        match value.get("cmd").and_then(Value::as_str) {
            Some("NODE_HANDLE") => {
                let fd = self.rx.as_mut()?.get_mut().fds.pop_front();
                let answer = if fd.is_some() {
                    "NODE_HANDLE_ACK"
                } else {
                    "NODE_HANDLE_NACK"
                };
                self.tx
                    .answer(Value::object([("cmd", Value::from(answer))]));
                let fd = fd?;
                Some(Incoming {
                    message: handle_message(value),
                    handle: Some(Handle::from_received(fd)),
                })
            }
            Some("NODE_HANDLE_ACK" | "NODE_HANDLE_NACK") => {
                self.tx.shared.answered();
                None
            }
            // NODE_SOCKET_* (keyed sockets) and NODE_CLUSTER are not supported; unknown
            // internal messages are ignored, as Node ignores them.
            _ => None,
        }
    }
}

/// The user's message in a `NODE_HANDLE` frame: its `msg`, unwrapped again when Node's
/// retransmission wrapped an already wrapped message (`msg` is itself a `NODE_HANDLE`).
fn handle_message(mut frame: Value) -> Value {
    loop {
        let msg = match frame {
            Value::Object(pairs) => pairs.into_iter().find(|(k, _)| k == "msg").map(|(_, v)| v),
            _ => None,
        };
        let msg = msg.unwrap_or(Value::Undefined);
        if is_internal(&msg) && msg.get("cmd") == Some(&Value::from("NODE_HANDLE")) {
            frame = msg;
        } else {
            return msg;
        }
    }
}

/// Resolves once no IPC channel of this process is open and referenced: what Node's event
/// loop waits for on account of its channels (`channel.ref()` / `unref()`).
///
/// In a child program this is "until the parent disconnects, unless the channel was
/// unref'd": `childproc_ipc::wait_referenced().await` at the end of `main` keeps the
/// program running as long as a Node child with a `'message'` listener would. In a parent,
/// `childproc::wait_referenced()` waits for this as well as for its referenced children.
pub async fn wait_referenced() {
    refs::wait().await;
}

/// True for Node's internal messages: an object whose `cmd` is a string `NODE_` + ≥ 1 char.
pub fn is_internal(value: &Value) -> bool {
    matches!(value.get("cmd"), Some(Value::String(cmd)) if cmd.len() > 5 && cmd.starts_with("NODE_"))
}

impl<C> Stream for Channel<C>
where
    C: Decoder<Item = Value, Error = IpcError> + Encoder<Value, Error = IpcError> + Unpin,
{
    type Item = Result<Value, IpcError>;

    /// The next user message; `None` once the peer disconnected (EOF) or after an error, which
    /// is yielded once and ends the channel (messages before it were all delivered). A handle
    /// that came with the message is kept for [`Channel::take_handle`].
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        Poll::Ready(futures_core::ready!(this.poll_recv(cx)).map(|next| {
            next.map(|incoming| {
                if let Some(handle) = incoming.handle {
                    this.unclaimed.push_back(handle);
                }
                incoming.message
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use futures_util::StreamExt;

    /// A line codec for strings only: enough to test the channel's mechanics.
    #[derive(Clone, Default)]
    struct Lines;
    impl Decoder for Lines {
        type Item = Value;
        type Error = IpcError;
        fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Value>, IpcError> {
            let Some(i) = src.iter().position(|&b| b == b'\n') else {
                return Ok(None);
            };
            let line = src.split_to(i + 1);
            let text = std::str::from_utf8(&line[..i]).map_err(|_| IpcError::Malformed {
                reason: "utf8".into(),
            })?;
            if text == "BAD" {
                return Err(IpcError::Malformed {
                    reason: "BAD line".into(),
                });
            }
            if let Some(cmd) = text.strip_prefix("cmd:") {
                return Ok(Some(Value::object([("cmd", Value::from(cmd))])));
            }
            Ok(Some(Value::from(text)))
        }
    }
    impl Encoder<Value> for Lines {
        type Error = IpcError;
        fn encode(&mut self, v: Value, dst: &mut BytesMut) -> Result<(), IpcError> {
            let Value::String(s) = v else {
                return Err(IpcError::Unsupported {
                    what: "non-string".into(),
                });
            };
            dst.extend_from_slice(s.as_bytes());
            dst.extend_from_slice(b"\n");
            Ok(())
        }
    }

    /// Reads `n` messages from `rx` in a task of its own.
    fn read_n(mut rx: Channel<Lines>, n: usize) -> tokio::task::JoinHandle<Vec<Value>> {
        tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < n {
                got.push(rx.next().await.unwrap().unwrap());
            }
            got
        })
    }

    fn pair() -> (Channel<Lines>, Channel<Lines>) {
        let (a, b) = UnixStream::pair().unwrap();
        (
            Channel::new(a, Lines).unwrap(),
            Channel::new(b, Lines).unwrap(),
        )
    }

    #[tokio::test]
    async fn messages_arrive_in_order_and_send_resolves_when_written() {
        let (a, b) = pair();
        // Read concurrently: an unread socket fills after a few hundred small frames (the
        // kernel accounts a whole buffer per write), and then awaited sends wait, as they must.
        let reader = read_n(b, 1000);
        let tx = a.sender();
        for i in 0..1000 {
            if i % 2 == 0 {
                tx.send(Value::from(i.to_string())).await.unwrap();
            } else {
                tx.send_nowait(Value::from(i.to_string())).unwrap();
            }
        }
        let got = reader.await.unwrap();
        let want: Vec<Value> = (0..1000).map(|i| Value::from(i.to_string())).collect();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn disconnect_flushes_then_the_peer_sees_eof_and_sends_fail() {
        let (mut a, mut b) = pair();
        let tx = a.sender();
        assert!(tx.send_nowait(Value::from("last words")).unwrap());
        a.disconnect();
        assert!(!a.connected());
        assert!(a.next().await.is_none());
        assert!(matches!(
            tx.send(Value::from("x")).await,
            Err(IpcError::Closed)
        ));
        assert!(
            !tx.send_nowait(Value::from("x")).unwrap(),
            "false on a closed channel, as Node"
        );
        assert_eq!(b.next().await.unwrap().unwrap(), Value::from("last words"));
        assert!(b.next().await.is_none(), "EOF is the disconnect");
        assert!(!b.connected());
    }

    #[tokio::test]
    async fn backpressure_turns_send_nowait_false_past_the_limit() {
        let (a, b) = pair();
        let tx = a.sender();
        let big = "y".repeat(1000);
        let mut first_false = None;
        for i in 0..1000 {
            if !tx.send_nowait(Value::from(big.as_str())).unwrap() {
                first_false = Some(i);
                break;
            }
        }
        // The peer reads nothing, so the kernel buffer fills and the queue grows past 128 KiB.
        let i = first_false.expect("send_nowait never reported backpressure");
        assert!(i >= BACKLOG_LIMIT / 1001, "false too early, at {i}");
        assert!(tx.backlog() >= BACKLOG_LIMIT);
        drop(b);
    }

    #[tokio::test]
    async fn a_full_socket_stalls_the_sender_until_the_peer_reads() {
        let (a, b) = pair();
        let tx = a.sender();
        assert!(!tx.is_stalled());
        let waiter = tokio::spawn({
            let tx = tx.clone();
            async move { tx.stalled().await }
        });
        // The peer reads nothing: once the socket is full the writer task waits for room.
        let big = "s".repeat(1000);
        let mut sent = 0;
        while !tx.is_stalled() {
            assert!(sent < 100_000, "never stalled");
            tx.send_nowait(Value::from(big.as_str())).unwrap();
            sent += 1;
            tokio::task::yield_now().await; // let the writer task write
        }
        let guard = std::time::Duration::from_secs(30);
        tokio::time::timeout(guard, waiter).await.unwrap().unwrap();
        let reader = read_n(b, sent + 1);
        tokio::time::timeout(guard, tx.send(Value::from("last")))
            .await
            .unwrap()
            .unwrap();
        assert!(!tx.is_stalled(), "everything is written");
        assert_eq!(reader.await.unwrap().len(), sent + 1);
    }

    #[tokio::test]
    async fn internal_messages_are_never_delivered_and_errors_end_the_stream() {
        let (a, mut b) = pair();
        let tx = a.sender();
        for line in [
            "one",
            "cmd:NODE_HANDLE_ACK",
            "cmd:NODE_",
            "two",
            "BAD",
            "never",
        ] {
            tx.send(Value::from(line)).await.unwrap();
        }
        assert_eq!(b.next().await.unwrap().unwrap(), Value::from("one"));
        // "NODE_" alone is not internal (Node delivers it too).
        assert_eq!(
            b.next().await.unwrap().unwrap().get("cmd"),
            Some(&Value::from("NODE_"))
        );
        assert_eq!(b.next().await.unwrap().unwrap(), Value::from("two"));
        let err = b.next().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("BAD line"), "{err}");
        assert!(b.next().await.is_none(), "an error ends the channel");
    }

    #[tokio::test]
    async fn unencodable_values_are_an_error_and_nothing_is_sent() {
        let (a, _b) = pair();
        let err = a.sender().send_nowait(Value::Null).unwrap_err();
        assert!(matches!(err, IpcError::Unsupported { .. }));
        assert_eq!(a.sender().backlog(), 0);
    }

    #[tokio::test]
    async fn big_frames_that_fill_the_socket_arrive_whole_and_in_order() {
        // Frames far larger than the socket buffer: written partly by the sender's call,
        // the rest by the writer task as the peer drains the socket.
        let (a, b) = pair();
        let frames: Vec<String> = (0..40)
            .map(|i| {
                char::from(b'a' + i % 26)
                    .to_string()
                    .repeat(100_000 + i as usize)
            })
            .collect();
        let want = frames.clone();
        let reader = read_n(b, 40);
        let tx = a.sender();
        for (i, frame) in frames.into_iter().enumerate() {
            if i % 3 == 0 {
                tx.send(Value::from(frame)).await.unwrap();
            } else {
                tx.send_nowait(Value::from(frame)).unwrap();
            }
        }
        let got = reader.await.unwrap();
        assert!(got == want.into_iter().map(Value::from).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn disconnect_writes_a_full_queue_before_the_eof() {
        let (mut a, mut b) = pair();
        let tx = a.sender();
        let big = "z".repeat(300_000); // more than the socket holds: the rest waits in the queue
        for _ in 0..4 {
            tx.send_nowait(Value::from(big.as_str())).unwrap();
        }
        a.disconnect();
        assert!(!tx.send_nowait(Value::from("late")).unwrap());
        for _ in 0..4 {
            assert_eq!(b.next().await.unwrap().unwrap(), Value::from(big.as_str()));
        }
        assert!(b.next().await.is_none());
    }

    #[tokio::test]
    async fn writes_to_a_vanished_peer_fail_with_the_error() {
        let (a, b) = pair();
        drop(b);
        let tx = a.sender();
        // The first write finds the peer gone: an unawaited send reports it (Node's 'error').
        assert!(!tx.send_nowait(Value::from("x")).unwrap());
        assert!(matches!(tx.take_error(), Some(IpcError::Io(_))));
        assert!(!tx.connected());
        assert!(matches!(
            tx.send(Value::from("y")).await,
            Err(IpcError::Closed)
        ));
        // An awaited send gets the write's own error.
        let (c, d) = pair();
        drop(d);
        let err = c.sender().send(Value::from("z")).await.unwrap_err();
        assert!(
            matches!(err, IpcError::Io(ref e) if e.kind() == std::io::ErrorKind::BrokenPipe),
            "{err}"
        );
    }

    #[test]
    fn internal_is_node_prefix_plus_one_char() {
        assert!(is_internal(&Value::object([(
            "cmd",
            Value::from("NODE_X")
        )])));
        assert!(!is_internal(&Value::object([(
            "cmd",
            Value::from("NODE_")
        )])));
        assert!(!is_internal(&Value::object([(
            "cmd",
            Value::from("node_x")
        )])));
        assert!(!is_internal(&Value::from("NODE_X")));
    }
}
