//! Reading a worker's answer: `{ id, result }` or `{ id, error }`.
//!
//! A pure function of the message, so it can be fuzzed (`fuzz/fuzz_targets/pool_answer.rs`
//! through [`crate::__fuzz_pool_answer`]): whatever a worker sends, it never panics.

use childproc_ipc::Value;

/// The largest id the pool hands out and accepts back: JavaScript's
/// `Number.MAX_SAFE_INTEGER`, above which a double no longer holds every integer (so a
/// Node worker could not echo the id exactly).
pub(crate) const MAX_ID: u64 = (1 << 53) - 1;

/// `{ id, result }` → `(id, Ok(result))`, `{ id, error }` → `(id, Err(error))`; `None` for
/// anything that is not an answer (a worker may send logs or progress on the same channel).
///
/// - `id` must be an integer from 0 to [`MAX_ID`]; if the key comes twice the last one
///   counts, as with `JSON.parse`.
/// - A bare `{ id }` is a result of `undefined`: what `JSON.stringify` leaves of
///   `{ id, result: undefined }`, a Node handler that returned nothing.
/// - A message with both `result` and `error` is an error: a failure is never taken for a
///   result.
pub(crate) fn parse(message: Value) -> Option<(u64, Result<Value, Value>)> {
    let Value::Object(fields) = message else {
        return None;
    };
    let (mut id, mut result, mut error) = (None, None, None);
    for (key, value) in fields {
        match key.as_str() {
            "id" => id = as_id(&value),
            "result" => result = Some(value),
            "error" => error = Some(value),
            _ => {}
        }
    }
    let answer = match (error, result) {
        (Some(error), _) => Err(error),
        (None, result) => Ok(result.unwrap_or(Value::Undefined)),
    };
    Some((id?, answer))
}

/// An answer the channel read opened (`{ id, <key>: value }`, `key` one of [`KEYS`]): as
/// [`parse`] of that object.
pub(crate) fn opened(id: &Value, key: &str, value: Value) -> Option<(u64, Result<Value, Value>)> {
    let answer = if key == "error" {
        Err(value)
    } else {
        Ok(value)
    };
    Some((as_id(id)?, answer))
}

/// The envelopes an answer comes in, `{ id, result }` and `{ id, error }`, by key.
pub(crate) const KEYS: &[&str] = &["result", "error"];

/// A number that is an integer in `0..=MAX_ID` (`-0` is 0).
fn as_id(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) if n.fract() == 0.0 && (0.0..=MAX_ID as f64).contains(n) => {
            Some(*n as u64)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_matched_by_id_and_need_a_result_or_an_error() {
        let ok = Value::object([("id", Value::from(7)), ("result", Value::from("x"))]);
        assert_eq!(parse(ok), Some((7, Ok(Value::from("x")))));
        let err = Value::object([("error", Value::from("boom")), ("id", Value::from(8))]);
        assert_eq!(parse(err), Some((8, Err(Value::from("boom")))));
        let null_result = Value::object([("id", Value::from(9)), ("result", Value::Null)]);
        assert_eq!(parse(null_result), Some((9, Ok(Value::Null))));
        let bare = Value::object([("id", Value::from(1))]);
        assert_eq!(parse(bare), Some((1, Ok(Value::Undefined))));
        assert_eq!(parse(Value::from("log line")), None);
    }

    #[test]
    fn ids_are_safe_integers_and_the_last_id_counts() {
        let with_id = |id: Value| Value::object([("id", id), ("result", Value::Null)]);
        for bad in [
            Value::from(-1),
            Value::from(1.5),
            Value::Number(f64::NAN),
            Value::Number(f64::INFINITY),
            Value::Number(2f64.powi(53)),
            Value::from("3"),
            Value::BigInt("3".into()),
        ] {
            assert_eq!(parse(with_id(bad.clone())), None, "{bad:?}");
        }
        assert_eq!(
            parse(with_id(Value::Number(-0.0))),
            Some((0, Ok(Value::Null)))
        );
        let max = Value::Number(MAX_ID as f64);
        assert_eq!(parse(with_id(max)), Some((MAX_ID, Ok(Value::Null))));
        let twice = Value::object([
            ("id", Value::from(4)),
            ("result", Value::Null),
            ("id", Value::from("4")),
        ]);
        assert_eq!(parse(twice), None);
    }

    #[test]
    fn an_error_beside_a_result_is_an_error() {
        let both = Value::object([
            ("id", Value::from(2)),
            ("error", Value::from("bad")),
            ("result", Value::from(1)),
        ]);
        assert_eq!(parse(both), Some((2, Err(Value::from("bad")))));
    }
}
