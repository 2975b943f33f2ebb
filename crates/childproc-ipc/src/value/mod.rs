//! The structured-clone value model: everything V8's serializer carries between Node.js
//! processes (Node's `'advanced'` serialization), of which `'json'` carries a subset.
//!
//! A [`Value`] is a tree. Object identity (one object reached twice, or a cycle) is explicit:
//! the object is wrapped once in [`Value::Shared`] with a number, and every other place it
//! appears holds [`Value::Ref`] with that number (see [`Value::Shared`]). A message with no
//! sharing has neither, so code that never needs identity sees a plain tree.

mod buffers;
pub(crate) mod identity;

pub use buffers::{ArrayBuffer, TypedArray, TypedArrayElement, TypedArrayKind};
pub(crate) use identity::{Anchors, Expansion};

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
    /// A Node.js `Buffer`. (A plain `Uint8Array` is a [`Value::TypedArray`] of kind
    /// [`TypedArrayKind::Uint8`].)
    Bytes(Vec<u8>),
    /// An array with no holes and no named properties (the everyday array).
    Array(Vec<Value>),
    /// An array with holes or named properties: `a = []; a[1e9] = 1` is one element and a
    /// length, however large the length.
    SparseArray(Box<SparseArray>),
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
    /// An `Error`: its name, message, stack and cause.
    Error(Box<JsError>),
    /// A typed array (`Int8Array` … `BigUint64Array`): its element type and its bytes.
    TypedArray(TypedArray),
    /// A `DataView`: the bytes it views.
    DataView(Vec<u8>),
    /// An `ArrayBuffer` (resizable or not): its bytes.
    ArrayBuffer(ArrayBuffer),
    /// A boxed primitive: `new Boolean(b)`, `new Number(n)`, `new String(s)` or `Object(5n)`,
    /// around a [`Value::Bool`], [`Value::Number`], [`Value::String`] or [`Value::BigInt`].
    Boxed(Box<Value>),
    /// An object that the message holds in more than one place, or that contains itself.
    ///
    /// `value` is the object (any kind but a primitive, a `Shared` or a `Ref`), written at
    /// its first place in the message; every other place holds `Ref(id)`. A `Ref` names a
    /// `Shared` that encloses it (a cycle) or that comes before it in the message's order
    /// (depth first, keys and values in order): each id is shared once. Ids are only
    /// names within one message: a decoded message numbers its objects as the sender's
    /// serializer did, so the ids are not 0, 1, 2…
    ///
    /// ```
    /// use childproc_ipc::Value;
    ///
    /// // const point = { x: 1 }; const msg = { a: point, b: point, self: undefined };
    /// // msg.self = msg;
    /// let point = Value::object([("x", Value::from(1))]);
    /// let msg = Value::shared(
    ///     0,
    ///     Value::object([
    ///         ("a", Value::shared(1, point.clone())),
    ///         ("b", Value::Ref(1)),
    ///         ("self", Value::Ref(0)),
    ///     ]),
    /// );
    /// assert_eq!(msg.get("a").map(Value::unshared), Some(&point));
    /// assert_eq!(msg.get("b"), Some(&Value::Ref(1)));
    /// ```
    Shared {
        /// The name that [`Value::Ref`]s use.
        id: u32,
        /// The shared object.
        value: Box<Value>,
    },
    /// Another place of the [`Value::Shared`] object with this id.
    Ref(u32),
}

/// An array with holes or named properties ([`Value::SparseArray`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SparseArray {
    /// The array's `length`: every index below it that `elements` lacks is a hole.
    pub length: u32,
    /// The elements that are present, by index, in increasing index order.
    pub elements: Vec<(u32, Value)>,
    /// Named (non-index) properties, in insertion order: `a.foo = 1`.
    pub properties: Vec<(String, Value)>,
}

/// An `Error` ([`Value::Error`]).
#[derive(Debug, Clone, PartialEq)]
pub struct JsError {
    /// The constructor name: `"Error"`, `"TypeError"`… V8 carries six names besides
    /// `"Error"` (`EvalError`, `RangeError`, `ReferenceError`, `SyntaxError`, `TypeError`,
    /// `URIError`); another name arrives in a Node.js peer as `"Error"`.
    pub name: String,
    /// The message.
    pub message: String,
    /// The stack trace text, when the sender had one.
    pub stack: Option<String>,
    /// The `cause`, when it has one (`new Error('m', { cause })`).
    pub cause: Option<Value>,
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

    /// An `Error` with this name and message, no stack and no cause.
    pub fn error(name: impl Into<String>, message: impl Into<String>) -> Value {
        Value::Error(Box::new(JsError {
            name: name.into(),
            message: message.into(),
            stack: None,
            cause: None,
        }))
    }

    /// This `Error` with its stack set to `stack` (anything else: itself).
    pub fn with_stack(mut self, stack: Option<String>) -> Value {
        if let Value::Error(error) = &mut self {
            error.stack = stack;
        }
        self
    }

    /// `value` as the [`Value::Shared`] object `id`.
    pub fn shared(id: u32, value: Value) -> Value {
        Value::Shared {
            id,
            value: Box::new(value),
        }
    }

    /// The value itself, or the object inside if this is a [`Value::Shared`].
    pub fn unshared(&self) -> &Value {
        match self {
            Value::Shared { value, .. } => value,
            v => v,
        }
    }

    /// Whether this is an object in JavaScript's sense (not a primitive): what can be
    /// [`Value::Shared`].
    pub fn is_object(&self) -> bool {
        !matches!(
            self,
            Value::Undefined
                | Value::Null
                | Value::Bool(_)
                | Value::Number(_)
                | Value::BigInt(_)
                | Value::String(_)
                | Value::Shared { .. }
                | Value::Ref(_)
        )
    }

    /// The value of `key` if this is an object that has it (the first, if repeated). Looks
    /// through a [`Value::Shared`] around the object (not through a [`Value::Ref`]).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self.unshared() {
            Value::Object(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Takes `key` out of this object and returns its value (the first, if repeated), as
    /// JavaScript's `delete` would remove it; `None`, and nothing changed, if this is not an
    /// object or has no such key. Looks through a [`Value::Shared`] as [`get`](Self::get)
    /// does. With a task owned, this moves a part of it out where `get(..).cloned()` would
    /// copy it:
    ///
    /// ```
    /// use childproc_ipc::Value;
    /// let mut task = Value::object([("echo", Value::from("hi")), ("n", Value::from(1))]);
    /// assert_eq!(task.remove("echo"), Some(Value::from("hi")));
    /// assert_eq!(task, Value::object([("n", Value::from(1))]));
    /// assert_eq!(task.remove("echo"), None);
    /// ```
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let pairs = match self {
            Value::Object(pairs) => pairs,
            Value::Shared { value, .. } => match &mut **value {
                Value::Object(pairs) => pairs,
                _ => return None,
            },
            _ => return None,
        };
        let at = pairs.iter().position(|(k, _)| k == key)?;
        Some(pairs.remove(at).1)
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

impl From<TypedArray> for Value {
    fn from(a: TypedArray) -> Self {
        Value::TypedArray(a)
    }
}

impl From<JsError> for Value {
    fn from(e: JsError) -> Self {
        Value::Error(Box::new(e))
    }
}

impl From<SparseArray> for Value {
    fn from(a: SparseArray) -> Self {
        Value::SparseArray(Box::new(a))
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

    #[test]
    fn a_value_stays_small() {
        // Every array element and object property is one: the big variants are boxed.
        assert!(
            std::mem::size_of::<Value>() <= 56,
            "{}",
            std::mem::size_of::<Value>()
        );
    }

    #[test]
    fn objects_and_primitives() {
        assert!(Value::object([("a", Value::Null)]).is_object());
        assert!(Value::error("TypeError", "m").is_object());
        assert!(Value::Boxed(Box::new(Value::from(1))).is_object());
        for p in [Value::Null, Value::from(1), Value::from("s"), Value::Ref(0)] {
            assert!(!p.is_object(), "{p:?}");
        }
        let shared = Value::shared(3, Value::object([("k", Value::from(true))]));
        assert!(!shared.is_object());
        assert_eq!(shared.get("k"), Some(&Value::Bool(true)));
    }
}
