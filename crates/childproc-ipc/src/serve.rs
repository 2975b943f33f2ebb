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
//! Messages without a numeric `id` are not tasks: [`serve`] skips them.

use std::fmt::Display;
use std::future::{poll_fn, Future};
use std::pin::Pin;

use futures_core::Stream;

use crate::channel::Channel;
use crate::error::Result;
use crate::message::IntoMessage;
use crate::serialization::AnyCodec;
use crate::value::Value;

/// Answers tasks on `channel` with `handler` until the parent disconnects (then returns
/// `Ok`), one at a time, in the order they arrive. An `Err` from the handler is sent back
/// as the task's `error` (its `Display` text) and serving goes on; an error of the channel
/// itself (a malformed frame, a failed send) ends serving with that error.
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
pub async fn serve<F, Fut, R, E>(mut channel: Channel<AnyCodec>, mut handler: F) -> Result<()>
where
    F: FnMut(Value) -> Fut,
    Fut: Future<Output = std::result::Result<R, E>>,
    R: IntoMessage,
    E: Display,
{
    let tx = channel.sender();
    while let Some(message) = poll_fn(|cx| Pin::new(&mut channel).poll_next(cx)).await {
        let Some((id, task)) = split_task(message?) else {
            continue;
        };
        let answer = match handler(task).await.map(IntoMessage::into_message) {
            Ok(Ok(result)) => ("result", result),
            Ok(Err(e)) => (
                "error",
                Value::String(format!("cannot send the result: {e}")),
            ),
            Err(e) => ("error", Value::String(e.to_string())),
        };
        tx.send(Value::object([("id", id), answer])).await?;
    }
    Ok(())
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
}
