//! Node's ChildProcess events as a `futures::Stream`.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

#[cfg(feature = "ipc")]
use childproc_ipc::{Envelope, Handle, Value};
use futures_core::Stream;
use tokio::sync::mpsc;

use crate::backlog::{Backlog, Flow, Limits};
use crate::error::Error;
use crate::exit::ExitStatus;

/// One event in a child's life, in Node's order:
/// `Spawn` first; `Message`s in order, then `Disconnect` once; `Exit` (exactly one of code or
/// signal); `Close` last, once every stdio stream has closed, with the same status. `Error`
/// can come at any point after `Spawn` (an undeliverable kill, an abort, a failed send).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The child was created (Node's `'spawn'`). Always the first event.
    Spawn,
    /// The child ended (Node's `'exit'`); its stdio may still be open.
    Exit(ExitStatus),
    /// The child ended and all its stdio streams closed (Node's `'close'`). The last event.
    Close(ExitStatus),
    /// Something went wrong (Node's `'error'`): a kill that could not be delivered, an abort
    /// through the cancellation token ([`Error::Aborted`]), a failed send.
    Error(Arc<Error>),
    /// An IPC message from the child (Node's `'message'`).
    #[cfg(feature = "ipc")]
    Message(Value),
    /// An IPC message that came with a handle (Node's `'message'` with its `sendHandle`
    /// argument): a socket or fd the child sent with
    /// [`Sender::send_handle`](childproc_ipc::Sender::send_handle) or Node's
    /// `process.send(message, handle)`. Events are cloned to every subscriber, so the
    /// handle is shared: the first to [`take`](ReceivedHandle::take) it owns it.
    #[cfg(feature = "ipc")]
    MessageWithHandle(Value, ReceivedHandle),
    /// The IPC channel closed (Node's `'disconnect'`), after the last message.
    #[cfg(feature = "ipc")]
    Disconnect,
}

/// The handle of an [`Event::MessageWithHandle`]: a cheap clone shared by every copy of the
/// event; [`take`](Self::take) it once to own the socket or fd. A handle nobody takes is
/// closed when the last copy is dropped.
#[cfg(feature = "ipc")]
#[derive(Debug, Clone)]
pub struct ReceivedHandle(Arc<Mutex<Option<Handle>>>);

#[cfg(feature = "ipc")]
impl ReceivedHandle {
    pub(crate) fn new(handle: Handle) -> Self {
        ReceivedHandle(Arc::new(Mutex::new(Some(handle))))
    }

    /// The handle, the first time; `None` once any copy of the event took it.
    pub fn take(&self) -> Option<Handle> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// The event log of one child, fanned out to every [`Events`] stream.
///
/// Every subscriber first receives the lifecycle history so far (`Spawn`, `Exit`, `Error`,
/// `Disconnect`, `Close`), then each event as it happens. `Message`s are kept in the history
/// only until the first subscriber arrives, which takes them over (moved, not copied), so an
/// early message is never lost but a long-running channel does not grow memory.
///
/// Messages are bounded (see [`crate::backlog`]): each stream and the history count what
/// they hold, and [`EventHub::emit_message`] tells the IPC reader when to wait for room.
#[derive(Debug, Default)]
pub(crate) struct EventHub {
    inner: Mutex<HubInner>,
    flow: Arc<Flow>,
    /// Takes the channel's messages before they become events (see
    /// [`EventHub::intercept`]); set once, by the crate's own users (a pool worker).
    #[cfg(feature = "ipc")]
    interceptor: std::sync::OnceLock<Interceptor>,
}

/// What the IPC reader hands each message to, in its own task, before the message becomes
/// an [`Event::Message`]. None of its calls may block.
#[cfg(feature = "ipc")]
pub(crate) trait Intercept: Send + Sync {
    /// Returns the message to emit it, or `None` when it took it.
    fn message(&self, message: Value) -> Option<Value>;

    /// The envelopes `{ id, <key>: value }` the reader should open for it, by key: those
    /// come to [`opened`](Self::opened) without the object around the value.
    fn envelopes(&self) -> &'static [&'static str] {
        &[]
    }

    /// An envelope opened (see [`envelopes`](Self::envelopes)): as [`message`](Self::message).
    fn opened(&self, id: Value, key: &'static str, value: Value) -> Option<Value> {
        self.message(Envelope::whole(id, key, value))
    }

    /// The reader has handed over every message read so far, and would now wait for the
    /// socket: whether it should first give the scheduler one turn, then call
    /// [`after_turn`](Self::after_turn). Its sends since the first of those messages are
    /// still corked, and go out together after that call.
    fn drained(&self) -> bool {
        false
    }

    /// Called once that turn has passed (the tasks woken by the messages have run).
    fn after_turn(&self) {}
}

/// The interceptor the hub holds (see [`Intercept`]).
#[cfg(feature = "ipc")]
pub(crate) struct Interceptor(pub(crate) Box<dyn Intercept>);

#[cfg(feature = "ipc")]
impl std::fmt::Debug for Interceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Interceptor")
    }
}

#[derive(Debug, Default)]
struct HubInner {
    /// Events with their weights (0 for lifecycle events).
    history: Vec<(Event, u64)>,
    /// What the history's messages weigh together.
    history_backlog: u64,
    subscribers: Vec<Subscriber>,
    subscribed_once: bool,
    /// Nobody will take the history's messages soon (see [`EventHub::exit_awaited`]): it
    /// keeps what it holds and drops what comes beyond the mark, instead of pausing the reader.
    discard: bool,
    /// Messages dropped under `discard`, for the trace.
    dropped: u64,
    limits: Limits,
    closed: bool,
}

#[derive(Debug)]
struct Subscriber {
    tx: mpsc::UnboundedSender<(Event, u64)>,
    backlog: Arc<Backlog>,
}

impl EventHub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HubInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the child's marks (before the first subscriber).
    #[cfg(feature = "ipc")]
    pub(crate) fn set_limits(&self, limits: Limits) {
        self.lock().limits = limits;
    }

    /// Installs the interceptor of the messages read from now on; false if one was already.
    #[cfg(feature = "ipc")]
    pub(crate) fn set_interceptor(&self, interceptor: Interceptor) -> bool {
        self.interceptor.set(interceptor).is_ok()
    }

    /// Whether an interceptor is set.
    #[cfg(feature = "ipc")]
    pub(crate) fn intercepts(&self) -> bool {
        self.interceptor.get().is_some()
    }

    /// A message read from the channel, through the interceptor if there is one: `None` when
    /// it took the message.
    #[cfg(feature = "ipc")]
    pub(crate) fn intercept(&self, message: Value) -> Option<Value> {
        match self.interceptor.get() {
            Some(Interceptor(take)) => take.message(message),
            None => Some(message),
        }
    }

    /// [`Intercept::envelopes`] of the interceptor, if one is set.
    #[cfg(feature = "ipc")]
    pub(crate) fn intercept_envelopes(&self) -> &'static [&'static str] {
        self.interceptor.get().map_or(&[], |i| i.0.envelopes())
    }

    /// [`Intercept::opened`]: an opened envelope, through the interceptor (which asked for
    /// it to be opened): `None` when it took it.
    #[cfg(feature = "ipc")]
    pub(crate) fn intercept_opened(
        &self,
        id: Value,
        key: &'static str,
        value: Value,
    ) -> Option<Value> {
        match self.interceptor.get() {
            Some(Interceptor(take)) => take.opened(id, key, value),
            None => Some(Envelope::whole(id, key, value)),
        }
    }

    /// [`Intercept::drained`] of the interceptor, if one is set.
    #[cfg(feature = "ipc")]
    pub(crate) fn intercept_drained(&self) -> bool {
        self.interceptor.get().is_some_and(|i| i.0.drained())
    }

    /// [`Intercept::after_turn`] of the interceptor, if one is set.
    #[cfg(feature = "ipc")]
    pub(crate) fn intercept_after_turn(&self) {
        if let Some(i) = self.interceptor.get() {
            i.0.after_turn();
        }
    }

    /// Emits an event. Lifecycle events weigh nothing and never wait.
    pub(crate) fn emit(&self, event: Event) {
        self.emit_message(event);
    }

    /// Emits a message from the IPC channel; true if a stream (or the history) is now full,
    /// and the reader must [`wait_for_room`](Self::wait_for_room) before reading on.
    pub(crate) fn emit_message(&self, event: Event) -> bool {
        let weight = weight(&event);
        self.emit_weighed(event, weight)
    }

    fn emit_weighed(&self, event: Event, weight: u64) -> bool {
        let mut inner = self.lock();
        let is_close = matches!(event, Event::Close(_));
        let keep = weight == 0 || !inner.subscribed_once;
        let mut full = false;
        // Every subscriber gets a clone, except that the last one gets the event itself
        // when the history does not keep it: one message, no copy, for the usual single
        // subscriber. A message is counted before it is sent, so a stream never counts below
        // zero; a send fails only to a dropped stream, which is removed.
        let mut event = Some(event);
        let (count, mut seen) = (inner.subscribers.len(), 0);
        inner.subscribers.retain(|sub| {
            seen += 1;
            let copy = if seen == count && !keep {
                event.take()
            } else {
                event.clone()
            };
            let Some(copy) = copy else {
                return false;
            };
            let now_full = weight != 0 && sub.backlog.add(weight);
            let sent = sub.tx.send((copy, weight)).is_ok();
            full |= sent && now_full;
            sent
        });
        if let (true, Some(event)) = (keep, event) {
            if weight == 0 {
                inner.history.push((event, 0));
            } else if !(inner.discard && inner.limits.full(inner.history_backlog)) {
                inner.history_backlog += weight;
                inner.history.push((event, weight));
                full |= !inner.discard && inner.limits.full(inner.history_backlog);
            } else {
                inner.dropped += 1;
                if inner.dropped.is_power_of_two() {
                    tracing::debug!(dropped = inner.dropped, "messages nobody reads dropped");
                }
            }
        }
        if is_close {
            inner.closed = true;
            inner.subscribers.clear();
        }
        full
    }

    /// Waits until every live stream, and the history, hold no more than the low-water mark.
    #[cfg(feature = "ipc")]
    pub(crate) async fn wait_for_room(&self) {
        self.flow.wait(|| self.lock().blocked()).await;
    }

    /// Someone awaits the child's exit (`wait()`, `closed()`). If no stream was ever taken,
    /// nobody may read the history soon and a child blocked on a full channel would never
    /// exit: from now on the history keeps what it holds (at most the mark) for a later
    /// `events()`, and messages beyond it are dropped — Node drops messages that have no
    /// `'message'` listener.
    pub(crate) fn exit_awaited(&self) {
        let mut inner = self.lock();
        if !inner.subscribed_once && !inner.discard {
            inner.discard = true;
            drop(inner);
            self.flow.wake();
        }
    }

    /// The `ChildProcess` is gone: no stream can be taken any more, so the history's
    /// messages are dropped, and so are those to come unless a stream is still alive.
    pub(crate) fn abandon(&self) {
        let mut inner = self.lock();
        if !inner.subscribed_once {
            inner.subscribed_once = true;
            inner.discard = true;
            inner.history.retain(|(_, weight)| *weight == 0);
            inner.history_backlog = 0;
            drop(inner);
            self.flow.wake();
        }
    }

    /// Ends every stream without a `Close`: the child's exit could not be observed (it was
    /// reaped by someone else), so no `Exit` or `Close` will come.
    pub(crate) fn end(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.discard = true;
        inner.subscribers.clear();
        drop(inner);
        self.flow.wake();
    }

    pub(crate) fn subscribe(&self) -> Events {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut inner = self.lock();
        let backlog = Arc::new(Backlog::new(inner.limits, self.flow.clone()));
        if inner.subscribed_once {
            for (e, _) in &inner.history {
                let _ = tx.send((e.clone(), 0));
            }
        } else {
            // The first subscriber takes the messages over; the lifecycle stays for later ones.
            inner.subscribed_once = true;
            inner.history_backlog = 0;
            let history = std::mem::take(&mut inner.history);
            for (e, weight) in history {
                if weight == 0 {
                    let _ = tx.send((e.clone(), 0));
                    inner.history.push((e, 0));
                } else {
                    backlog.add(weight);
                    let _ = tx.send((e, weight));
                }
            }
        }
        if !inner.closed {
            inner.subscribers.push(Subscriber {
                tx,
                backlog: backlog.clone(),
            });
        }
        drop(inner);
        // The history no longer counts: the reader re-checks (the new stream may hold it up).
        self.flow.wake();
        Events {
            rx,
            backlog,
            untaken: 0,
        }
    }
}

/// What an event weighs in a backlog: a message its [`backlog::weight`](crate::backlog), a
/// lifecycle event nothing.
fn weight(event: &Event) -> u64 {
    match event {
        #[cfg(feature = "ipc")]
        Event::Message(v) | Event::MessageWithHandle(v, _) => crate::backlog::weight(v),
        _ => 0,
    }
}

#[cfg(feature = "ipc")]
impl HubInner {
    /// Whether the reader must keep waiting: a live stream, or the history nobody took yet,
    /// holds more than the low-water mark.
    fn blocked(&self) -> bool {
        let history = !self.subscribed_once && !self.discard;
        (history && self.limits.over_low(self.history_backlog))
            || self
                .subscribers
                .iter()
                .any(|s| !s.tx.is_closed() && s.backlog.over_low())
    }
}

/// A stream of a child's [`Event`]s, from [`ChildProcess::events`](crate::ChildProcess::events).
///
/// Each call to `events()` returns an independent stream that starts with the history so far,
/// so any number of consumers see the same order. The stream ends after `Close` (or, if the
/// child's exit could not be observed because something else reaped it, after that `Error`).
///
/// A stream holds at most the child's IPC high-water mark of messages
/// ([`Command::ipc_high_water`](crate::Command::ipc_high_water)): while any live stream is
/// full, the child's channel is not read, so the child's sends wait. Read every stream you
/// keep, or drop it: a kept stream nobody reads stops the messages of the others too.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::UnboundedReceiver<(Event, u64)>,
    backlog: Arc<Backlog>,
    /// What the stream yielded and has not settled with `backlog` yet (see [`Backlog`]).
    untaken: u64,
}

impl Events {
    fn settle(&mut self) {
        if self.untaken != 0 {
            self.backlog.take(self.untaken);
            self.untaken = 0;
        }
    }
}

impl Stream for Events {
    type Item = Event;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some((event, weight))) => {
                if weight != 0 {
                    self.untaken += weight;
                    if self.backlog.settles(self.untaken) {
                        self.settle();
                    }
                }
                Poll::Ready(Some(event))
            }
            Poll::Ready(None) => {
                self.settle();
                Poll::Ready(None)
            }
            Poll::Pending => {
                self.settle();
                Poll::Pending
            }
        }
    }
}

impl Drop for Events {
    /// Releases what the stream held at once, so a dropped stream never holds the reader up.
    fn drop(&mut self) {
        self.rx.close();
        self.backlog.release();
    }
}

// The hub's rules are about messages, which need the channel.
#[cfg(all(test, feature = "ipc"))]
mod tests {
    use super::*;

    fn drain(mut ev: Events) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok((e, _)) = ev.rx.try_recv() {
            out.push(format!("{e:?}"));
        }
        out
    }

    /// The next event if one is queued, through the stream (which counts it out).
    fn next_now(ev: &mut Events) -> Option<Event> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match Pin::new(ev).poll_next(&mut cx) {
            Poll::Ready(e) => e,
            Poll::Pending => None,
        }
    }

    fn message(n: i32) -> Event {
        Event::Message(Value::from(n))
    }

    fn blocked(hub: &EventHub) -> bool {
        hub.lock().blocked()
    }

    #[test]
    fn the_history_is_bounded_and_moved_to_the_first_subscriber() {
        let hub = EventHub::default();
        hub.set_limits(Limits::new(4, 1 << 20));
        hub.emit(Event::Spawn);
        assert!(!hub.emit_message(message(0)) && !hub.emit_message(message(1)));
        assert!(!hub.emit_message(message(2)));
        assert!(
            hub.emit_message(message(3)),
            "the fourth message fills the history"
        );
        assert!(blocked(&hub));
        let mut first = hub.subscribe();
        assert_eq!(
            hub.lock().history.len(),
            1,
            "the messages moved, the lifecycle stayed"
        );
        assert!(blocked(&hub), "the first stream holds them now");
        assert!(matches!(next_now(&mut first), Some(Event::Spawn)));
        for _ in 0..2 {
            assert!(matches!(next_now(&mut first), Some(Event::Message(_))));
        }
        assert!(!blocked(&hub), "half is under the low mark");
        let rest: Vec<String> = drain(first);
        assert_eq!(rest, ["Message(Number(2.0))", "Message(Number(3.0))"]);
    }

    #[test]
    fn a_dropped_stream_stops_holding_the_reader_up() {
        let hub = EventHub::default();
        hub.set_limits(Limits::new(2, 1 << 20));
        let mut read = hub.subscribe();
        let unread = hub.subscribe();
        assert!(!hub.emit_message(message(0)));
        assert!(hub.emit_message(message(1)));
        while next_now(&mut read).is_some() {}
        assert!(blocked(&hub), "the unread stream is full");
        drop(unread);
        assert!(!blocked(&hub));
        assert!(!hub.emit_message(message(2)), "and it is no longer counted");
    }

    #[test]
    fn once_the_exit_is_awaited_the_history_keeps_the_mark_and_drops_the_rest() {
        let hub = EventHub::default();
        hub.set_limits(Limits::new(2, 1 << 20));
        hub.emit_message(message(0));
        assert!(hub.emit_message(message(1)));
        hub.exit_awaited();
        assert!(!blocked(&hub));
        assert!(!hub.emit_message(message(2)), "dropped, the reader goes on");
        hub.emit(Event::Disconnect);
        assert_eq!(
            drain(hub.subscribe()),
            ["Message(Number(0.0))", "Message(Number(1.0))", "Disconnect"]
        );
    }

    #[test]
    fn late_subscribers_get_history_and_early_messages_are_kept_once() {
        let hub = EventHub::default();
        hub.emit(Event::Spawn);
        hub.emit(Event::Message(Value::from(1)));
        let first = hub.subscribe();
        hub.emit(Event::Message(Value::from(2)));
        hub.emit(Event::Disconnect);
        let st = ExitStatus::from_code(0);
        hub.emit(Event::Exit(st));
        hub.emit(Event::Close(st));
        let late = hub.subscribe();
        assert_eq!(
            drain(first),
            [
                "Spawn",
                "Message(Number(1.0))",
                "Message(Number(2.0))",
                "Disconnect",
                "Exit(ExitStatus(code 0))",
                "Close(ExitStatus(code 0))"
            ]
        );
        assert_eq!(
            drain(late),
            [
                "Spawn",
                "Disconnect",
                "Exit(ExitStatus(code 0))",
                "Close(ExitStatus(code 0))"
            ]
        );
    }
}
