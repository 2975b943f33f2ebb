//! [`Value`] ↔ JSON text with the semantics of JavaScript's `JSON.stringify` and
//! `JSON.parse`, which is what Node.js's `'json'` serialization uses; plus typed helpers for
//! any `serde` type.
//!
//! Writing ([`stringify()`]) follows `JSON.stringify` byte for byte:
//!
//! | [`Value`] | JSON text |
//! |---|---|
//! | `Number`: NaN, ±Infinity / -0 / others | `null` / `0` / as JavaScript's `Number.prototype.toString` (`1e+21`, `1.5`, `1e-7`) |
//! | `Undefined` | left out of objects; `null` in arrays; refused at the top level ([`IpcError::Unsupported`], Node's `send()` throws) |
//! | `BigInt` | refused anywhere ([`IpcError::Unsupported`]; `JSON.stringify` throws) |
//! | `String` | `"` … `"` escaping `"` `\` and `\b \f \n \r \t`; other C0 controls as `\u00xx` (lowercase); DEL, U+2028 and everything else raw UTF-8 |
//! | `Bytes` | `{"type":"Buffer","data":[…]}` (`Buffer.prototype.toJSON`) |
//! | `Date` | its ISO string `"1970-01-01T00:00:00.000Z"` (`null` for an invalid date) |
//! | `Map`, `Set`, `RegExp`, `Error`, `DataView`, `ArrayBuffer` | `{}` (they have no enumerable own properties) |
//! | `Object` | pairs in the `Vec`'s order, as given (repeated keys are written as they are) |
//! | `TypedArray` | its elements by index, `{"0":1,"1":2}` (a non-empty `BigInt64Array` is refused, as a `BigInt`) |
//! | `SparseArray` | an array with `null` for each hole, named properties left out (refused when longer than V8's longest string, as `JSON.stringify` throws "Invalid string length") |
//! | `Boxed` | the primitive inside (a boxed `BigInt` is refused) |
//! | `Shared` / `Ref` | the object at each of its places (at most 4 Mi values copied per message); a cycle is refused ("Converting circular structure to JSON") |
//!
//! Reading ([`parse()`]) follows `JSON.parse`: any JSON value with JSON whitespace around it;
//! numbers become `f64` (`1e400` is Infinity, `-0` stays -0); an object keeps its keys in
//! text order, and a repeated key keeps its first position and its last value, as a
//! JavaScript object does. Differences, all deliberate:
//!
//! * invalid UTF-8 is [`IpcError::InvalidUtf8`] (Node replaces it with U+FFFD);
//! * a lone surrogate escape such as `"\ud800"` becomes U+FFFD (a Rust `String` cannot hold
//!   one);
//! * keys that are array indices (`"1"`) keep their text position (a JavaScript object
//!   would enumerate them first, in ascending order);
//! * nesting deeper than [`Value::MAX_DEPTH`] is refused on both sides.

use serde::{de::DeserializeOwned, Serialize};

use crate::{IpcError, Result, Value};

mod clone;
mod parse;
#[cfg(test)]
mod tests;
mod write;

pub(crate) use write::write_value;

/// `JSON.stringify(value)`, as UTF-8 text.
///
/// Fails with [`IpcError::Unsupported`] for a top-level `undefined`, a `BigInt` anywhere,
/// or nesting deeper than [`Value::MAX_DEPTH`].
///
/// ```
/// use childproc_ipc::{json, Value};
/// let v = Value::object([("a", Value::from(1)), ("b", Value::Number(f64::NAN))]);
/// assert_eq!(json::stringify(&v).unwrap(), r#"{"a":1,"b":null}"#);
/// ```
pub fn stringify(value: &Value) -> Result<String> {
    let mut out = Vec::new();
    write_value(value, &mut out)?;
    // The writer only ever emits valid UTF-8: ASCII plus the bytes of valid `str`s.
    String::from_utf8(out).map_err(|e| IpcError::InvalidUtf8 {
        offset: e.utf8_error().valid_up_to(),
    })
}

/// `JSON.parse(text)`, into a [`Value`] (see the module docs for the mapping).
///
/// ```
/// use childproc_ipc::{json, Value};
/// let v = json::parse(br#" {"a":1,"b":[true,null],"a":2} "#).unwrap();
/// assert_eq!(v, Value::object([
///     ("a", Value::from(2)),
///     ("b", Value::Array(vec![Value::Bool(true), Value::Null])),
/// ]));
/// ```
pub fn parse(text: &[u8]) -> Result<Value> {
    let text = std::str::from_utf8(text).map_err(|e| IpcError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    parse::document(text)
}

/// [`parse()`] of a pool envelope, `{"id":<number>,"<key>":<value>}` as `JSON.stringify`
/// writes it with `key` one of `keys`, without building the object around the value: the id,
/// the key and the value. `None` for any other text (parse it whole).
pub(crate) fn envelope(text: &[u8], keys: &[&'static str]) -> Option<(Value, &'static str, Value)> {
    // Any other message (a worker's log line) is checked for UTF-8 only once, by `parse`.
    if !text.starts_with(br#"{"id":"#) {
        return None;
    }
    parse::envelope(std::str::from_utf8(text).ok()?, keys)
}

/// Serializes any `serde` type to JSON text (with `serde_json`; no trailing LF).
///
/// The output is valid JSON that Node's `JSON.parse` reads; non-finite floats become `null`
/// as in JavaScript. Fails with [`IpcError::Unsupported`] when `serde_json` cannot represent
/// the value (e.g. a map with non-string keys).
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| IpcError::unsupported(e.to_string()))
}

/// Deserializes any `serde` type from JSON text (with `serde_json`).
///
/// Invalid UTF-8 is [`IpcError::InvalidUtf8`]; invalid JSON or JSON that does not fit `T`
/// is [`IpcError::Malformed`] with `serde_json`'s explanation.
pub fn from_json<T: DeserializeOwned>(text: &[u8]) -> Result<T> {
    let text = std::str::from_utf8(text).map_err(|e| IpcError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    serde_json::from_str(text).map_err(|e| IpcError::malformed(e.to_string()))
}

/// A typed message as a [`Value`], through its JSON form: what a peer in `'json'` mode
/// receives when you send `message`. Use it to send any `Serialize` type on a channel.
pub fn to_value<T: Serialize + ?Sized>(message: &T) -> Result<Value> {
    parse(&to_json(message)?)
}

/// A received [`Value`] as a typed message, through its JSON form (`Deserialize` types).
/// Values JSON cannot hold (a `BigInt`, say) are an error naming them.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T> {
    from_json(stringify(value)?.as_bytes())
}
