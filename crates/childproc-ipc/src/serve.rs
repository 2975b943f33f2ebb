//! The worker's side of a `childproc::Pool`: answer each task the pool sends.
//!
//! The pool's protocol is plain messages, so a Node.js worker speaks it in five lines:
//!
//! ```js
//! process.on('message', async ({ id, task }) => {
//!   try { process.send({ id, result: await handle(task) }); }
//!   catch (e) { process.send({ id, error: String(e && e.message || e) }); }
//! });
//! ```
//!
//! - a task is `{ "id": <number>, "task": <any value> }`;
//! - its answer is `{ "id": <the same number>, "result": <any value> }`, or
//!   `{ "id": <the same number>, "error": <any value, usually the message> }`.
//!
//! Messages without a numeric `id` are not tasks: [`serve`] skips them. A Node worker
//! handles tasks concurrently by nature (each `'message'` runs while the others await);
//! a Rust worker does so with [`serve_concurrent`].

use std::fmt::Display;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;

use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::channel::{Channel, Received};
use crate::envelope::Envelope;
use crate::error::Result;
use crate::message::IntoMessage;
use crate::serialization::AnyCodec;
use crate::value::Value;

/// Answers tasks on `channel` with `handler` until the parent disconnects (then returns
/// `Ok`), one at a time, in the order they arrive. An `Err` from the handler is sent back
/// as the task's `error` (its `Display` text) and serving goes on; an error of the channel
/// itself (a malformed frame, a failed send) ends serving with that error.
///
/// This is [`serve_concurrent`] with a limit of one: the next task is not even read while
/// one runs.
///
/// ```no_run
/// # async fn demo() -> childproc_ipc::Result<()> {
/// let channel = childproc_ipc::from_env().expect("started by a pool")?;
/// childproc_ipc::serve(channel, |task| async move {
///     let n = task.as_f64().ok_or("expected a number")?;
///     Ok::<_, &str>(n * 2.0)
/// })
/// .await
/// # }
/// ```
pub async fn serve<F, Fut, R, E>(channel: Channel<AnyCodec>, handler: F) -> Result<()>
where
    F: FnMut(Value) -> Fut,
    Fut: Future<Output = std::result::Result<R, E>>,
    R: IntoMessage,
    E: Display,
{
    serve_concurrent(channel, 1, handler).await
}

/// [`serve`] with up to `limit` tasks running at once (at least one), for a pool built with
/// `PoolBuilder::concurrency`: each answer is sent as soon as its handler finishes, so
/// answers go out in any order, each with its task's id. While `limit` handlers run, no
/// further task is read (the parent's socket buffer holds them).
///
/// `handler` is called in the order the tasks arrive, synchronously, before the next task
/// is read: work it does before its first `.await` (registering the task somewhere, say)
/// happens in arrival order. The handlers run in the calling task (none is spawned), so
/// neither they nor their futures need to be `Send`. When the parent disconnects, serving
/// returns `Ok` at once and the handlers still running are dropped: their answers could not
/// be delivered anyway. A failed send of an answer ends serving with that error.
///
/// Answers that are ready one after the other (the tasks of one read, handled without
/// waiting) go out in one write ([`Sender::cork`](crate::Sender::cork)), which wakes the
/// parent once for all of them; nothing is held back while the worker waits for anything.
/// As in Node, an answer is queued without waiting for the parent to read it, unless more
/// than [`BACKLOG_LIMIT`](crate::BACKLOG_LIMIT) bytes are queued already: then it waits.
///
/// ```no_run
/// # async fn demo() -> childproc_ipc::Result<()> {
/// let channel = childproc_ipc::from_env().expect("started by a pool")?;
/// childproc_ipc::serve_concurrent(channel, 8, |task| async move {
///     let url = task.as_str().ok_or("expected a URL")?.to_owned();
///     Ok::<_, &str>(url.len() as f64) // e.g. an HTTP fetch here
/// })
/// .await
/// # }
/// ```
pub async fn serve_concurrent<F, Fut, R, E>(
    mut channel: Channel<AnyCodec>,
    limit: usize,
    mut handler: F,
) -> Result<()>
where
    F: FnMut(Value) -> Fut,
    Fut: Future<Output = std::result::Result<R, E>>,
    R: IntoMessage,
    E: Display,
{
    let limit = limit.max(1);
    let tx = channel.sender();
    // The first handler running has a place of its own (with a limit of one, the only
    // one): no allocation and no wake-up queue for it, as the others have in `running`.
    let mut first = pin!(none_of(answering::<Fut, R, E>));
    let mut running = FuturesUnordered::new();
    // Held while answers are ready one after the other, so those that follow the tasks of one
    // read go out in one write; dropped before the task sleeps, whatever it then waits for.
    let mut cork = None;
    // The last answer found more than `BACKLOG_LIMIT` queued: the next one waits for the
    // parent to read (Node's flow control), so the queue stays bounded.
    let mut behind = false;
    // `{ id, result }` and `{ id, error }`, filled in for each answer.
    let (mut results, mut errors) = (Envelope::new("result"), Envelope::new("error"));
    // Tasks are read without the `{ id, task }` object around them.
    channel.open_envelopes(&["task"]);
    loop {
        // Finished handlers first (each frees a place), then a new task if there is room.
        let step = poll_fn(|cx| {
            if let Some(Poll::Ready(answer)) = first.as_mut().as_pin_mut().map(|f| f.poll(cx)) {
                first.set(None);
                return Poll::Ready(Step::Answered(answer));
            }
            if !running.is_empty() {
                if let Poll::Ready(Some(answer)) = running.poll_next_unpin(cx) {
                    return Poll::Ready(Step::Answered(answer));
                }
            }
            if running.len() + usize::from(first.is_some()) < limit {
                if let Poll::Ready(next) = channel.poll_recv_opened(cx) {
                    return Poll::Ready(Step::Received(next));
                }
            }
            cork = None;
            Poll::Pending
        })
        .await;
        if let Some(e) = tx.take_error() {
            return Err(e); // an answer's write failed
        }
        match step {
            Step::Answered(Answer { id, key, value }) if behind => {
                drop(cork.take());
                tx.send(Envelope::whole(id, key, value)).await?;
                behind = false;
            }
            Step::Answered(Answer { id, key, mut value }) => {
                cork.get_or_insert_with(|| tx.cork());
                let envelope = if key == "result" {
                    &mut results
                } else {
                    &mut errors
                };
                // False also on a closed channel: the next answer's send then says so.
                behind = !envelope.with(id, &mut value, |answer| tx.send_ref_nowait(answer))?;
            }
            Step::Received(None) => return Ok(()),
            Step::Received(Some(message)) => {
                let (id, task) = match message? {
                    Received::Opened { id, value, .. } => (id, value),
                    Received::Whole(incoming) => match split_task(incoming.message) {
                        Some(task) => task,
                        None => continue,
                    },
                };
                let work = answering::<Fut, R, E>(id, handler(task));
                if first.is_none() {
                    first.set(Some(work));
                } else {
                    running.push(work);
                }
            }
        }
    }
}

enum Step {
    /// A handler finished: its answer, to send.
    Answered(Answer),
    /// The next message, or the end of the channel.
    Received(Option<Result<Received>>),
}

/// An answer: `{ id, <key>: value }`.
struct Answer {
    id: Value,
    key: &'static str,
    value: Value,
}

/// The answer to task `id` once its handler's `work` is done.
async fn answering<Fut, R, E>(id: Value, work: Fut) -> Answer
where
    Fut: Future<Output = std::result::Result<R, E>>,
    R: IntoMessage,
    E: Display,
{
    let (key, value) = answer_of(work.await);
    Answer { id, key, value }
}

/// No value of what `f` returns: names the type of [`answering`]'s future.
fn none_of<A, B, T>(_: fn(A, B) -> T) -> Option<T> {
    None
}

/// A handler's outcome as the answer's second field: `("result", value)` or
/// `("error", text)`.
fn answer_of<R: IntoMessage, E: Display>(
    outcome: std::result::Result<R, E>,
) -> (&'static str, Value) {
    match outcome.map(IntoMessage::into_message) {
        Ok(Ok(result)) => ("result", result),
        Ok(Err(e)) => (
            "error",
            Value::String(format!("cannot send the result: {e}")),
        ),
        Err(e) => ("error", Value::String(e.to_string())),
    }
}

/// `{ id, task }` → `(id, task)` (a missing `task` is `undefined`); `None` for anything
/// else.
fn split_task(message: Value) -> Option<(Value, Value)> {
    let Value::Object(fields) = message else {
        return None;
    };
    let (mut id, mut task) = (None, Value::Undefined);
    for (key, value) in fields {
        match key.as_str() {
            "id" if matches!(value, Value::Number(_)) => id = Some(value),
            "task" => task = value,
            _ => {}
        }
    }
    Some((id?, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_objects_with_a_numeric_id_are_tasks() {
        let task = Value::object([("id", Value::from(3)), ("task", Value::from("x"))]);
        assert_eq!(split_task(task), Some((Value::from(3), Value::from("x"))));
        let no_task = Value::object([("id", Value::from(4))]);
        assert_eq!(
            split_task(no_task),
            Some((Value::from(4), Value::Undefined))
        );
        assert_eq!(split_task(Value::object([("id", Value::from("3"))])), None);
        assert_eq!(split_task(Value::object([("task", Value::from(1))])), None);
        assert_eq!(split_task(Value::from("hello")), None);
    }

    /// Holds `{hold: name}` until `{release: name}` comes; the release answers at once.
    #[tokio::test]
    async fn concurrent_handlers_answer_as_they_finish_each_with_its_id() {
        use std::cell::RefCell;
        use std::collections::HashMap;
        use std::rc::Rc;

        use crate::serialization::Serialization;

        let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
        let codec = || Serialization::Json.codec().unwrap();
        let mut parent = Channel::new(ours, codec()).unwrap();
        let worker = Channel::new(theirs, codec()).unwrap();
        let gates = Rc::new(RefCell::new(HashMap::new()));
        let serving = serve_concurrent(worker, 3, move |task| {
            // Registered here, in arrival order, not when the future first runs.
            let name = |key| task.get(key).and_then(Value::as_str).map(str::to_owned);
            let (hold, release) = (name("hold"), name("release"));
            let wait = hold.clone().map(|h| {
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                gates.borrow_mut().insert(h, tx);
                rx
            });
            let released = release.and_then(|r| gates.borrow_mut().remove(&r));
            async move {
                if let Some(gate) = released {
                    let _ = gate.send(());
                    return Ok(Value::from("released"));
                }
                match (wait, hold) {
                    (Some(rx), Some(h)) => rx.await.map(|()| Value::from(h)).map_err(|_| "dropped"),
                    _ => Err("unknown task"),
                }
            }
        });
        let task = |id: i32, key: &str, name: &str| {
            Value::object([
                ("id", Value::from(id)),
                ("task", Value::object([(key, Value::from(name))])),
            ])
        };
        let talk = async {
            let tx = parent.sender();
            for t in [
                task(1, "hold", "a"),
                task(2, "hold", "b"),
                task(3, "release", "b"),
            ] {
                tx.send(t).await.unwrap();
            }
            let mut got = Vec::new();
            for _ in 0..2 {
                got.push(parent.next().await.unwrap().unwrap());
            }
            // Task 1 is still held: only the release and task 2 have answered, by id.
            let mut ids: Vec<f64> = got.iter().filter_map(|v| v.get("id")?.as_f64()).collect();
            ids.sort_by(f64::total_cmp);
            assert_eq!(ids, [2.0, 3.0], "{got:?}");
            let b = got
                .iter()
                .find(|v| v.get("id") == Some(&Value::from(2)))
                .unwrap();
            assert_eq!(b.get("result"), Some(&Value::from("b")));
            tx.send(task(4, "release", "a")).await.unwrap();
            tx.send(task(5, "hold", "c")).await.unwrap();
            let mut rest = Vec::new();
            for _ in 0..2 {
                rest.push(parent.next().await.unwrap().unwrap());
            }
            let a = rest
                .iter()
                .find(|v| v.get("id") == Some(&Value::from(1)))
                .unwrap();
            assert_eq!(a.get("result"), Some(&Value::from("a")), "{rest:?}");
            // Disconnecting with task 5 still held ends serving at once, with `Ok`.
            parent.disconnect();
        };
        let (served, ()) = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            tokio::join!(serving, talk)
        })
        .await
        .expect("hung");
        served.unwrap();
    }
}
