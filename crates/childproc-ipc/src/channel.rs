//! Node's IPC channel: messages over a Unix stream socket.
//!
//! A [`Channel`] owns one end of the socket. Incoming messages are a `futures::Stream`;
//! outgoing ones go through a cloneable [`Sender`] whose writes are queued to one writer task,
//! so sends never interleave and a slow peer never blocks the caller:
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

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_core::Stream;
use tokio::io::AsyncWriteExt;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{Decoder, Encoder, FramedRead};

use crate::error::IpcError;
use crate::value::Value;

/// Node's backpressure threshold: `send` returns `false` once this many bytes are queued.
pub const BACKLOG_LIMIT: usize = 128 * 1024;

/// One end of an IPC channel: receive by polling it as a `Stream`, send through [`sender`].
///
/// [`sender`]: Channel::sender
pub struct Channel<C> {
    rx: Option<FramedRead<OwnedReadHalf, C>>,
    tx: Sender<C>,
    ended: bool,
}

/// The sending side of a [`Channel`]; cheap to clone.
pub struct Sender<C> {
    shared: Arc<TxShared<C>>,
}

impl<C> Clone for Sender<C> {
    fn clone(&self) -> Self {
        Sender {
            shared: self.shared.clone(),
        }
    }
}

struct TxShared<C> {
    codec: Mutex<C>,
    jobs: mpsc::UnboundedSender<Job>,
    backlog: AtomicUsize,
    open: AtomicBool,
    /// A failure of a `send_nowait` write, kept for [`Sender::take_error`].
    error: Mutex<Option<IpcError>>,
    /// If set, receives those failures instead.
    hook: Mutex<Option<ErrorHook>>,
}

type ErrorHook = Box<dyn Fn(IpcError) + Send + Sync>;

enum Job {
    Frame {
        bytes: BytesMut,
        done: Option<oneshot::Sender<Result<(), IpcError>>>,
    },
    Close,
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
    /// writer task is started).
    pub fn new(stream: UnixStream, codec: C) -> Self {
        let (read, write) = stream.into_split();
        let (jobs, queue) = mpsc::unbounded_channel();
        let shared = Arc::new(TxShared {
            codec: Mutex::new(codec.clone()),
            jobs,
            backlog: AtomicUsize::new(0),
            open: AtomicBool::new(true),
            error: Mutex::new(None),
            hook: Mutex::new(None),
        });
        tokio::spawn(write_loop(write, queue, Arc::downgrade(&shared)));
        Channel {
            rx: Some(FramedRead::new(read, codec)),
            tx: Sender { shared },
            ended: false,
        }
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

impl<C> Sender<C>
where
    C: Encoder<Value, Error = IpcError>,
{
    /// Whether the channel is open for sending.
    pub fn connected(&self) -> bool {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Bytes queued but not yet written.
    pub fn backlog(&self) -> usize {
        self.shared.backlog.load(Ordering::SeqCst)
    }

    fn encode(&self, value: Value) -> Result<BytesMut, IpcError> {
        let mut bytes = BytesMut::new();
        let mut codec = self.shared.codec.lock().unwrap_or_else(|e| e.into_inner());
        codec.encode(value, &mut bytes)?;
        Ok(bytes)
    }

    fn enqueue(
        &self,
        bytes: BytesMut,
        done: Option<oneshot::Sender<Result<(), IpcError>>>,
    ) -> Result<usize, IpcError> {
        if !self.connected() {
            return Err(IpcError::Closed);
        }
        let len = bytes.len();
        let backlog = self.shared.backlog.fetch_add(len, Ordering::SeqCst) + len;
        if self.shared.jobs.send(Job::Frame { bytes, done }).is_err() {
            self.shared.backlog.fetch_sub(len, Ordering::SeqCst);
            return Err(IpcError::Closed);
        }
        Ok(backlog)
    }

    /// Sends `value`; resolves once it is written to the socket (Node's `send` callback).
    /// Fails with [`IpcError::Closed`] on a closed channel, or the write's error.
    pub async fn send(&self, value: Value) -> Result<(), IpcError> {
        let bytes = self.encode(value)?;
        let (done, written) = oneshot::channel();
        self.enqueue(bytes, Some(done))?;
        written.await.unwrap_or(Err(IpcError::Closed))
    }

    /// Queues `value` without waiting: Node's `send()` return value. `Ok(false)` when the
    /// channel is closed (nothing queued) or the backlog passed [`BACKLOG_LIMIT`] (queued
    /// anyway). `Err` only when the value cannot be encoded (Node throws there). A later write
    /// failure is kept for [`take_error`](Self::take_error).
    pub fn send_nowait(&self, value: Value) -> Result<bool, IpcError> {
        let bytes = self.encode(value)?;
        match self.enqueue(bytes, None) {
            Ok(backlog) => Ok(backlog < BACKLOG_LIMIT),
            Err(_) => Ok(false),
        }
    }

    /// Routes the failures of `send_nowait` writes (which nobody awaits) to `hook` instead of
    /// keeping them for [`take_error`](Self::take_error): Node's `'error'` event.
    pub fn set_error_hook(&self, hook: impl Fn(IpcError) + Send + Sync + 'static) {
        *self.shared.hook.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(hook));
    }

    /// The error of a `send_nowait` whose write failed, if any (taken once).
    pub fn take_error(&self) -> Option<IpcError> {
        self.shared
            .error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Stops accepting sends; what is queued is still written, then the write side closes.
    pub fn close(&self) {
        if self.shared.open.swap(false, Ordering::SeqCst) {
            let _ = self.shared.jobs.send(Job::Close);
        }
    }
}

async fn write_loop<C>(
    mut write: OwnedWriteHalf,
    mut queue: mpsc::UnboundedReceiver<Job>,
    shared: std::sync::Weak<TxShared<C>>,
) {
    // Frames queued while a write is in progress go out together in one write (up to
    // BATCH bytes): far fewer syscalls for many small messages, same bytes on the wire.
    const BATCH: usize = 64 * 1024;
    let mut batch = BytesMut::new();
    let mut waiters = Vec::new();
    let mut closing = false;
    while let Some(job) = queue.recv().await {
        let Job::Frame { bytes, done } = job else {
            break;
        };
        batch.unsplit(bytes);
        waiters.push(done);
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(Job::Frame { bytes, done }) => {
                    batch.unsplit(bytes);
                    waiters.push(done);
                }
                Ok(Job::Close) => {
                    closing = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let result = write.write_all(&batch).await.map_err(IpcError::from);
        let Some(shared) = shared.upgrade() else {
            break;
        };
        shared.backlog.fetch_sub(batch.len(), Ordering::SeqCst);
        batch.clear();
        let failed = result.as_ref().err().map(ToString::to_string);
        for done in waiters.drain(..) {
            let outcome = match &failed {
                None => Ok(()),
                Some(msg) => Err(IpcError::Io(std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    msg.clone(),
                ))),
            };
            match done {
                Some(done) => drop(done.send(outcome)),
                None => {
                    if let Err(e) = outcome {
                        match &*shared.hook.lock().unwrap_or_else(|e| e.into_inner()) {
                            Some(hook) => hook(e),
                            None => {
                                *shared.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e)
                            }
                        }
                    }
                }
            }
        }
        if failed.is_some() {
            // The peer is gone: fail everything still queued.
            shared.open.store(false, Ordering::SeqCst);
            queue.close();
            while let Some(job) = queue.recv().await {
                if let Job::Frame {
                    bytes,
                    done: Some(done),
                } = job
                {
                    shared.backlog.fetch_sub(bytes.len(), Ordering::SeqCst);
                    let _ = done.send(Err(IpcError::Closed));
                }
            }
            return;
        }
        if closing {
            break;
        }
    }
    let _ = write.shutdown().await;
}

/// True for Node's internal messages: an object whose `cmd` is a string `NODE_` + ≥ 1 char.
pub fn is_internal(value: &Value) -> bool {
    matches!(value.get("cmd"), Some(Value::String(cmd)) if cmd.len() > 5 && cmd.starts_with("NODE_"))
}

impl<C> Stream for Channel<C>
where
    C: Decoder<Item = Value, Error = IpcError> + Unpin,
{
    type Item = Result<Value, IpcError>;

    /// The next user message; `None` once the peer disconnected (EOF) or after an error, which
    /// is yielded once and ends the channel (messages before it were all delivered).
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            let Some(rx) = this.rx.as_mut() else {
                return Poll::Ready(None);
            };
            match futures_core::ready!(Pin::new(&mut *rx).poll_next(cx)) {
                Some(Ok(v)) if is_internal(&v) => continue,
                Some(Ok(v)) => return Poll::Ready(Some(Ok(v))),
                Some(Err(e)) => {
                    this.ended = true;
                    this.tx.shared.open.store(false, Ordering::SeqCst);
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    this.ended = true;
                    this.tx.shared.open.store(false, Ordering::SeqCst);
                    return Poll::Ready(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    fn pair() -> (Channel<Lines>, Channel<Lines>) {
        let (a, b) = UnixStream::pair().unwrap();
        (Channel::new(a, Lines), Channel::new(b, Lines))
    }

    #[tokio::test]
    async fn messages_arrive_in_order_and_send_resolves_when_written() {
        let (a, mut b) = pair();
        // Read concurrently: an unread socket fills after a few hundred small frames (the
        // kernel accounts a whole buffer per write), and then awaited sends wait, as they must.
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < 1000 {
                got.push(b.next().await.unwrap().unwrap());
            }
            got
        });
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
