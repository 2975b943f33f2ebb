//! The structured-clone value model: every kind a Node.js message can hold in 'advanced'
//! serialization, of which 'json' carries a subset.

/// A dynamically typed IPC message: the values Node's structured clone can carry.
///
/// Objects keep insertion order (a `Vec` of pairs), as JavaScript objects do for string keys.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// JavaScript `undefined`.
    Undefined,
    /// JavaScript `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A JavaScript number (an IEEE 754 double, NaN, ±Infinity and -0 included).
    Number(f64),
    /// A `BigInt`, as its signed decimal digits (arbitrary precision).
    BigInt(String),
    /// A string.
    String(String),
    /// A `Buffer` / `Uint8Array`.
    Bytes(Vec<u8>),
    /// An array.
    Array(Vec<Value>),
    /// A plain object: string keys in insertion order.
    Object(Vec<(String, Value)>),
    /// A `Map`, entries in insertion order.
    Map(Vec<(Value, Value)>),
    /// A `Set`, in insertion order.
    Set(Vec<Value>),
    /// A `Date`: milliseconds since the Unix epoch.
    Date(f64),
    /// A `RegExp`: its source and flags.
    RegExp {
        /// The pattern text.
        source: String,
        /// The flags, e.g. `"gi"`.
        flags: String,
    },
    /// An `Error`: its name (`"Error"`, `"TypeError"`…), message and stack if any.
    Error {
        /// The constructor name.
        name: String,
        /// The message.
        message: String,
        /// The stack trace text, when the sender had one.
        stack: Option<String>,
    },
}

impl Value {
    /// How deeply arrays, objects, maps and sets may nest in a message (1 = a bare
    /// container). Every codec refuses deeper values, on both sides: decoding a deeper frame
    /// is [`IpcError::Malformed`](crate::IpcError::Malformed), encoding a deeper value is
    /// [`IpcError::Unsupported`](crate::IpcError::Unsupported). Recursion this deep is
    /// bounded well inside a thread's stack (2 MiB for std and tokio worker threads, even
    /// unoptimized), so a hostile peer cannot overflow it: a stack overflow aborts the
    /// process. Node.js has no such limit for JSON; real messages stay far below it.
    pub const MAX_DEPTH: usize = 256;

    /// Builds an object from `(key, value)` pairs, keeping their order.
    pub fn object<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Object(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The value of `key` if this is an object that has it (the first, if repeated).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Value::Number(n.into())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keeps_insertion_order_and_first_key_wins() {
        let v = Value::object([
            ("b", Value::from(1)),
            ("a", Value::Null),
            ("b", Value::from(2)),
        ]);
        let Value::Object(pairs) = &v else {
            panic!("not an object")
        };
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "b"]);
        assert_eq!(v.get("b"), Some(&Value::Number(1.0)));
        assert_eq!(v.get("zz"), None);
        assert_eq!(Value::from("x").as_str(), Some("x"));
        assert_eq!(
            Value::from(-0.0).as_f64().map(f64::is_sign_negative),
            Some(true)
        );
    }
}
