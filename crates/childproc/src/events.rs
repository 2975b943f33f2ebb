//! Node's ChildProcess events as a `futures::Stream`.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use childproc_ipc::{Handle, Value};
use futures_core::Stream;
use tokio::sync::mpsc;

use crate::child::ExitStatus;
use crate::error::Error;

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
    Message(Value),
    /// An IPC message that came with a handle (Node's `'message'` with its `sendHandle`
    /// argument): a socket or fd the child sent with
    /// [`Sender::send_handle`](childproc_ipc::Sender::send_handle) or Node's
    /// `process.send(message, handle)`. Events are cloned to every subscriber, so the
    /// handle is shared: the first to [`take`](ReceivedHandle::take) it owns it.
    MessageWithHandle(Value, ReceivedHandle),
    /// The IPC channel closed (Node's `'disconnect'`), after the last message.
    Disconnect,
}

/// The handle of an [`Event::MessageWithHandle`]: a cheap clone shared by every copy of the
/// event; [`take`](Self::take) it once to own the socket or fd. A handle nobody takes is
/// closed when the last copy is dropped.
#[derive(Debug, Clone)]
pub struct ReceivedHandle(Arc<Mutex<Option<Handle>>>);

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
/// only until the first subscriber arrives, so an early message is never lost but a
/// long-running channel does not grow memory.
#[derive(Debug, Default)]
pub(crate) struct EventHub {
    inner: Mutex<HubInner>,
}

#[derive(Debug, Default)]
struct HubInner {
    history: Vec<Event>,
    subscribers: Vec<mpsc::UnboundedSender<Event>>,
    subscribed_once: bool,
    closed: bool,
}

impl EventHub {
    pub(crate) fn emit(&self, event: Event) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let is_close = matches!(event, Event::Close(_));
        let keep = !is_message(&event) || !inner.subscribed_once;
        // Every subscriber gets a clone, except that the last one gets the event itself
        // when the history does not keep it: one message, no copy, for the usual single
        // subscriber.
        let mut event = Some(event);
        let (count, mut seen) = (inner.subscribers.len(), 0);
        inner.subscribers.retain(|tx| {
            seen += 1;
            let copy = if seen == count && !keep {
                event.take()
            } else {
                event.clone()
            };
            copy.is_some_and(|e| tx.send(e).is_ok())
        });
        if let (true, Some(event)) = (keep, event) {
            inner.history.push(event);
        }
        if is_close {
            inner.closed = true;
            inner.subscribers.clear();
        }
    }

    /// Ends every stream without a `Close`: the child's exit could not be observed (it was
    /// reaped by someone else), so no `Exit` or `Close` will come.
    pub(crate) fn end(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.closed = true;
        inner.subscribers.clear();
    }

    pub(crate) fn subscribe(&self) -> Events {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for e in &inner.history {
            let _ = tx.send(e.clone());
        }
        if !inner.subscribed_once {
            inner.subscribed_once = true;
            inner.history.retain(|e| !is_message(e));
        }
        if !inner.closed {
            inner.subscribers.push(tx);
        }
        Events { rx }
    }
}

/// Messages, with or without a handle, stay in the history only until the first subscriber.
fn is_message(event: &Event) -> bool {
    matches!(event, Event::Message(_) | Event::MessageWithHandle(..))
}

/// A stream of a child's [`Event`]s, from [`ChildProcess::events`](crate::ChildProcess::events).
///
/// Each call to `events()` returns an independent stream that starts with the history so far,
/// so any number of consumers see the same order. The stream ends after `Close` (or, if the
/// child's exit could not be observed because something else reaped it, after that `Error`).
#[derive(Debug)]
pub struct Events {
    rx: mpsc::UnboundedReceiver<Event>,
}

impl Stream for Events {
    type Item = Event;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(mut ev: Events) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(e) = ev.rx.try_recv() {
            out.push(format!("{e:?}"));
        }
        out
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
