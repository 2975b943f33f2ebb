//! The bound on what a child's event streams hold: receive backpressure for IPC messages.
//!
//! Every [`Events`](crate::Events) stream counts the messages queued for it and an estimate
//! of their bytes in one atomic word ([`Backlog`]). The IPC reader task adds a message's
//! [`weight`] as it emits it; the stream subtracts what it yielded, in small batches. When an
//! emit brings a
//! stream to the high-water mark (in messages or in bytes), the reader stops reading the
//! channel's socket until every live stream is back under the low-water mark (half of it):
//! the socket fills and the kernel makes the child's sends wait. Only that crossing wakes the
//! reader ([`Flow`]), so a stream that keeps up costs one atomic add per message and one
//! subtract per batch. Lifecycle events weigh nothing and never wait. See docs/ipc.md for the rules
//! (history, no reader, exited child).
//!
//! Without the `ipc` feature there are no messages: the streams still count through this
//! module, but only lifecycle events pass, at weight 0, so nothing ever waits.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

#[cfg(feature = "ipc")]
use childproc_ipc::Value;
use tokio::sync::Notify;

/// The default high-water mark in messages: what one event stream (or the history before the
/// first stream) may hold before the IPC reader stops reading the child's channel
/// ([`Command::ipc_high_water`](crate::Command::ipc_high_water)).
pub const IPC_HIGH_WATER_MESSAGES: usize = 1024;

/// The default high-water mark in bytes (an estimate of the messages' size in memory): what
/// one event stream may hold before the IPC reader stops reading the child's channel
/// ([`Command::ipc_high_water`](crate::Command::ipc_high_water)).
pub const IPC_HIGH_WATER_BYTES: usize = 1 << 20;

/// A backlog word: the message count above this bit, the bytes below it.
const COUNT_SHIFT: u32 = 40;
const BYTES_MASK: u64 = (1 << COUNT_SHIFT) - 1;
/// Marks are clamped so that a backlog (at most a mark plus what a dead child left in its
/// socket) never overflows either field.
const MAX_MESSAGES: u64 = 1 << 22;
const MAX_BYTES: u64 = 1 << 36;
/// One message counts at most this many bytes (frames are far smaller).
#[cfg(feature = "ipc")]
const MAX_MESSAGE_BYTES: u64 = 1 << 32;
/// A stream settles what it yielded at least this often (and whenever it waits).
const MAX_BATCH_MESSAGES: u64 = 32;
const MAX_BATCH_BYTES: u64 = 64 << 10;

/// The marks of one child: the reader pauses at `high` and resumes at or under `low`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    high: Mark,
    low: Mark,
    /// A stream settles what it yielded once it has this much (see [`Backlog::settles`]).
    batch: Mark,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    messages: u64,
    bytes: u64,
}

impl Mark {
    /// Whether a backlog word has reached this mark in messages or in bytes.
    fn reached(self, word: u64) -> bool {
        word >> COUNT_SHIFT >= self.messages || word & BYTES_MASK >= self.bytes
    }
}

impl Limits {
    /// A high-water mark of `messages` and `bytes` (each at least 1); the low-water mark is
    /// half of each.
    pub(crate) fn new(messages: usize, bytes: usize) -> Limits {
        let messages = (messages as u64).clamp(1, MAX_MESSAGES);
        let bytes = (bytes as u64).clamp(1, MAX_BYTES);
        Limits {
            high: Mark { messages, bytes },
            // A backlog "over low" holds more than half: `reached` on half + 1.
            low: Mark {
                messages: messages / 2 + 1,
                bytes: bytes / 2 + 1,
            },
            batch: Mark {
                messages: (messages / 8).clamp(1, MAX_BATCH_MESSAGES),
                bytes: (bytes / 8).clamp(1, MAX_BATCH_BYTES),
            },
        }
    }

    /// Whether a backlog word is at the high-water mark: the reader must pause.
    pub(crate) fn full(self, word: u64) -> bool {
        self.high.reached(word)
    }

    /// Whether a backlog word is still over the low-water mark: the reader stays paused.
    pub(crate) fn over_low(self, word: u64) -> bool {
        self.low.reached(word)
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::new(IPC_HIGH_WATER_MESSAGES, IPC_HIGH_WATER_BYTES)
    }
}

/// A message's weight, as added to a backlog word: one message, and an estimate of its size
/// in memory (the `Value` tree and its heap bytes, plus the queue slot).
#[cfg(feature = "ipc")]
pub(crate) fn weight(value: &Value) -> u64 {
    let bytes = (std::mem::size_of::<crate::Event>() + heap_bytes(value)) as u64;
    (1 << COUNT_SHIFT) | bytes.min(MAX_MESSAGE_BYTES)
}

/// The heap bytes of a value, estimated from lengths (not capacities). Recursion is bounded
/// by `Value::MAX_DEPTH`, which every codec enforces.
#[cfg(feature = "ipc")]
fn heap_bytes(value: &Value) -> usize {
    const NODE: usize = std::mem::size_of::<Value>();
    const STRING: usize = std::mem::size_of::<String>();
    match value {
        Value::Undefined
        | Value::Null
        | Value::Bool(_)
        | Value::Number(_)
        | Value::Date(_)
        | Value::Ref(_) => 0,
        Value::BigInt(s) | Value::String(s) => s.len(),
        Value::Bytes(b) | Value::DataView(b) => b.len(),
        Value::TypedArray(a) => a.bytes().len(),
        Value::ArrayBuffer(a) => a.bytes.len(),
        Value::Boxed(v) | Value::Shared { value: v, .. } => NODE + heap_bytes(v),
        Value::SparseArray(a) => {
            let elements: usize = a
                .elements
                .iter()
                .map(|(_, v)| 4 + NODE + heap_bytes(v))
                .sum();
            let properties: usize = a
                .properties
                .iter()
                .map(|(k, v)| STRING + k.len() + NODE + heap_bytes(v))
                .sum();
            elements + properties
        }
        Value::Array(items) | Value::Set(items) => items.iter().map(|v| NODE + heap_bytes(v)).sum(),
        Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| STRING + k.len() + NODE + heap_bytes(v))
            .sum(),
        Value::Map(entries) => entries
            .iter()
            .map(|(k, v)| 2 * NODE + heap_bytes(k) + heap_bytes(v))
            .sum(),
        Value::RegExp { source, flags } => source.len() + flags.len(),
        Value::Error(e) => {
            let cause = e.cause.as_ref().map_or(0, |c| NODE + heap_bytes(c));
            e.name.len() + e.message.len() + e.stack.as_ref().map_or(0, String::len) + cause
        }
    }
}

/// How the reader of one child waits for room: set `paused`, then re-check the backlogs
/// after every wake-up. A backlog that falls under the low-water mark wakes it only while it
/// is paused. Both sides use `SeqCst` on `paused` and on the backlog words, so either the
/// reader sees the backlog fall or the stream sees the pause.
#[derive(Debug, Default)]
pub(crate) struct Flow {
    paused: AtomicBool,
    room: Notify,
}

impl Flow {
    /// Wakes the reader if it is paused (it re-checks; a spare wake-up only costs a check).
    pub(crate) fn wake(&self) {
        if self.paused.load(Ordering::SeqCst) {
            self.room.notify_one();
        }
    }

    /// Waits until `blocked()` is false, re-checking after each wake-up.
    #[cfg(feature = "ipc")]
    pub(crate) async fn wait(&self, blocked: impl Fn() -> bool) {
        self.paused.store(true, Ordering::SeqCst);
        while blocked() {
            self.room.notified().await;
        }
        self.paused.store(false, Ordering::SeqCst);
    }
}

/// What one event stream holds, in messages and bytes (one word, see [`COUNT_SHIFT`]).
///
/// The reader adds each message as it queues it. The stream does not subtract each message
/// it yields: that would move the word's cache line between the reader's CPU and the
/// consumer's twice per message. It sums what it yielded and settles the sum here once it
/// reaches a batch (an eighth of the mark, at most 32 messages or 64 KiB), whenever the
/// reader is paused, and whenever the stream has nothing to yield (so a consumer that read
/// everything never leaves the reader waiting). The reader's view is thus a little high:
/// it may pause a little early, never late.
#[derive(Debug)]
pub(crate) struct Backlog {
    word: AtomicU64,
    limits: Limits,
    flow: Arc<Flow>,
}

impl Backlog {
    pub(crate) fn new(limits: Limits, flow: Arc<Flow>) -> Backlog {
        Backlog {
            word: AtomicU64::new(0),
            limits,
            flow,
        }
    }

    /// Counts a message queued for the stream; true if the stream is now full.
    pub(crate) fn add(&self, weight: u64) -> bool {
        let word = self.word.fetch_add(weight, Ordering::SeqCst) + weight;
        self.limits.full(word)
    }

    /// Whether a stream that has yielded `untaken` (a backlog word) since it last settled
    /// should [`take`](Self::take) it now: a batch is full, or the reader waits.
    pub(crate) fn settles(&self, untaken: u64) -> bool {
        self.limits.batch.reached(untaken) || self.flow.paused.load(Ordering::SeqCst)
    }

    /// Counts messages the stream yielded; wakes the reader when this brought the backlog
    /// under the low-water mark.
    pub(crate) fn take(&self, weight: u64) {
        let before = self.word.fetch_sub(weight, Ordering::SeqCst);
        if self.limits.over_low(before) && !self.limits.over_low(before - weight) {
            self.flow.wake();
        }
    }

    /// Whether the stream holds more than the low-water mark.
    #[cfg(feature = "ipc")]
    pub(crate) fn over_low(&self) -> bool {
        self.limits.over_low(self.word.load(Ordering::SeqCst))
    }

    /// The stream is gone: it holds nothing any more, and the reader may go on.
    pub(crate) fn release(&self) {
        self.word.store(0, Ordering::SeqCst);
        self.flow.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_count_messages_and_bytes_with_half_as_the_low_mark() {
        let limits = Limits::new(4, 1000);
        let one = 1u64 << COUNT_SHIFT;
        assert!(!limits.full(3 * one + 999));
        assert!(limits.full(4 * one), "four messages reach the mark");
        assert!(limits.full(one + 1000), "so do 1000 bytes");
        assert!(limits.over_low(3 * one));
        assert!(
            !limits.over_low(2 * one + 500),
            "half is under the low mark"
        );
        assert!(limits.over_low(one + 501));
        let tiny = Limits::new(0, 0);
        assert!(tiny.full(one + 1), "a mark is at least one message");
        assert!(!tiny.over_low(0));
    }

    #[cfg(feature = "ipc")]
    #[test]
    fn a_backlog_wakes_a_paused_reader_only_when_it_falls_under_the_low_mark() {
        let flow = Arc::new(Flow::default());
        let backlog = Backlog::new(Limits::new(4, 1 << 20), flow.clone());
        let w = weight(&Value::from("x"));
        assert!(!backlog.add(w) && !backlog.add(w) && !backlog.add(w));
        assert!(backlog.add(w), "the fourth message fills it");
        flow.paused.store(true, Ordering::SeqCst);
        backlog.take(w);
        assert!(backlog.over_low(), "three of four are over half");
        backlog.take(w);
        assert!(!backlog.over_low());
        // The crossing stored one wake-up for the paused reader.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(flow.wait(|| backlog.over_low()));
    }

    #[cfg(feature = "ipc")]
    #[test]
    fn weights_grow_with_the_value() {
        let small = weight(&Value::from("x")) & BYTES_MASK;
        let big = weight(&Value::from("x".repeat(1000))) & BYTES_MASK;
        assert_eq!(big - small, 999);
        let nested = Value::object([("a", Value::Array(vec![Value::from(1); 10]))]);
        assert!(weight(&nested) & BYTES_MASK > 10 * std::mem::size_of::<Value>() as u64);
        assert_eq!(weight(&nested) >> COUNT_SHIFT, 1);
    }
}
