//! Reading the values that hold other values: objects, arrays, maps, Errors and Node's host
//! objects (the rest of [`Reader`] is in `read.rs`).

use super::{Reader, Value, NO_NODE};
use crate::codec::advanced::tag;
use crate::value::{JsError, SparseArray, TypedArrayKind};
use crate::{IpcError, Result};

/// A property key as written: a string, or a number (array indices are written as numbers).
enum Key {
    Str(String),
    Num(f64),
}

impl Key {
    fn into_string(self) -> String {
        match self {
            Key::Str(s) => s,
            Key::Num(n) => js_number_string(n),
        }
    }

    /// The array index this key names, if it names one.
    fn index(&self) -> Option<u32> {
        match self {
            Key::Num(n) if n.fract() == 0.0 && *n >= 0.0 && *n < f64::from(u32::MAX) => {
                Some(*n as u32)
            }
            Key::Num(_) => None,
            Key::Str(s) => tag::array_index(s),
        }
    }
}

/// JavaScript's `String(n)`, for number property keys.
fn js_number_string(n: f64) -> String {
    if n == 0.0 {
        "0".into()
    } else if n.is_nan() {
        "NaN".into()
    } else if n.is_infinite() {
        if n > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        ryu_js::Buffer::new().format_finite(n).to_owned()
    }
}

impl Reader<'_> {
    /// After an end tag: the count V8 wrote must be the count read.
    pub(super) fn check_count(&mut self, what: &str, at: usize, read: usize) -> Result<()> {
        let written = self.len()?;
        if written != read {
            return Err(IpcError::malformed(format!(
                "{what} at byte {at} says {written} entries but has {read}"
            )));
        }
        Ok(())
    }

    fn key(&mut self) -> Result<Key> {
        let (t, at) = self.tag()?;
        Ok(match t {
            tag::ONE_BYTE_STRING | tag::TWO_BYTE_STRING | tag::UTF8_STRING => {
                Key::Str(self.string_body(t, at)?)
            }
            tag::INT32 => Key::Num(self.int32()?.into()),
            tag::UINT32 => Key::Num(self.varint()?.into()),
            tag::DOUBLE => Key::Num(self.f64()?),
            _ => {
                return Err(IpcError::malformed(format!(
                    "property key at byte {at} is tag {}, not a string or number",
                    tag::show(t)
                )))
            }
        })
    }

    /// Properties until `end`, handed to `each`; then the count check.
    fn properties(
        &mut self,
        end: u8,
        what: &str,
        at: usize,
        depth: usize,
        mut each: impl FnMut(&mut Self, Key, Value) -> Result<()>,
    ) -> Result<()> {
        let mut count = 0;
        while !self.next_is(end) {
            let key = self.key()?;
            let value = self.value(depth + 1)?;
            each(self, key, value)?;
            count += 1;
        }
        self.check_count(what, at, count)
    }

    pub(super) fn object(&mut self, depth: usize, at: usize) -> Result<Vec<(String, Value)>> {
        let mut pairs = Vec::new();
        self.properties(tag::END_OBJECT, "object", at, depth, |_, k, v| {
            pairs.push((k.into_string(), v));
            Ok(())
        })?;
        Ok(pairs)
    }

    pub(super) fn dense_array(&mut self, depth: usize, at: usize) -> Result<Value> {
        let len = self.len()?;
        let mut items = Vec::with_capacity(self.capacity(len));
        let mut holes = false;
        for i in 0..len {
            if self.next_is(tag::HOLE) {
                holes = true;
            } else {
                let item = self.value(depth + 1)?;
                items.push((i as u32, item));
            }
        }
        let mut properties = Vec::new();
        self.properties(tag::END_DENSE_ARRAY, "array", at, depth, |_, k, v| {
            if k.index().is_some() {
                return Err(IpcError::malformed(format!(
                    "array at byte {at} has an index among its named properties (V8 writes \
                     its elements before them)"
                )));
            }
            properties.push((k.into_string(), v));
            Ok(())
        })?;
        let written_len = self.len()?;
        if written_len != len {
            return Err(IpcError::malformed(format!(
                "array at byte {at} says length {written_len} at its end but {len} at its start"
            )));
        }
        Ok(array_value(len as u32, items, properties, holes))
    }

    pub(super) fn sparse_array(&mut self, depth: usize, at: usize) -> Result<Value> {
        let len = self.varint()?;
        let mut elements: Vec<(u32, Value)> = Vec::new();
        let mut properties = Vec::new();
        self.properties(
            tag::END_SPARSE_ARRAY,
            "sparse array",
            at,
            depth,
            |_, k, v| {
                let Some(i) = k.index() else {
                    properties.push((k.into_string(), v));
                    return Ok(());
                };
                let after = elements.last().map(|(last, _)| *last);
                if i >= len || after.is_some_and(|last| i <= last) || !properties.is_empty() {
                    return Err(IpcError::malformed(format!(
                        "sparse array at byte {at} of length {len} has index {i} out of order \
                         (V8 writes increasing indices below the length, then named properties)"
                    )));
                }
                elements.push((i, v));
                Ok(())
            },
        )?;
        let written_len = self.varint()?;
        if written_len != len {
            return Err(IpcError::malformed(format!(
                "sparse array at byte {at} says length {written_len} at its end but {len} at its start"
            )));
        }
        let holes = elements.len() != len as usize;
        Ok(array_value(len, elements, properties, holes))
    }

    pub(super) fn map(&mut self, depth: usize, at: usize) -> Result<Value> {
        let mut entries = Vec::new();
        while !self.next_is(tag::END_MAP) {
            let key = self.value(depth + 1)?;
            if self.next_is(tag::END_MAP) {
                return Err(IpcError::malformed(format!(
                    "Map at byte {at} ends after a key without its value"
                )));
            }
            entries.push((key, self.value(depth + 1)?));
        }
        self.check_count("Map", at, entries.len() * 2)?;
        Ok(Value::Map(entries))
    }

    pub(super) fn error(&mut self, depth: usize, at: usize) -> Result<Value> {
        let mut name = "Error";
        let mut message = String::new();
        let mut stack = None;
        let mut cause = None;
        loop {
            let sub_at = self.pos;
            let sub = self.u8()?;
            match sub {
                tag::ERROR_MESSAGE => message = self.string()?,
                tag::ERROR_STACK => stack = Some(self.string()?),
                tag::ERROR_CAUSE => cause = Some(self.value(depth + 1)?),
                tag::ERROR_END => break,
                _ => match tag::error_name(sub) {
                    Some(n) => name = n,
                    None => {
                        return Err(IpcError::malformed(format!(
                            "Error at byte {at} has an unknown field tag {} at byte {sub_at}",
                            tag::show(sub)
                        )))
                    }
                },
            }
        }
        Ok(Value::from(JsError {
            name: name.into(),
            message,
            stack,
            cause,
        }))
    }

    /// Node's host objects: an ArrayBufferView (every typed array, DataView and Buffer), or
    /// a C++-backed object sent as a plain copy of its properties (that copy).
    pub(super) fn host_object(&mut self, depth: usize, at: usize) -> Result<Value> {
        match self.varint()? {
            tag::HOST_VIEW => {
                self.new_object();
                let index = self.varint()?;
                let len = self.len()?;
                let bytes = self.take(len)?.to_vec();
                if index == u32::from(tag::VIEW_INDEX_BUFFER) {
                    return Ok(Value::Bytes(bytes));
                }
                let kind = match index {
                    9 => None,
                    0..=8 => Some(TypedArrayKind::ALL[index as usize]),
                    11 | 12 => Some(TypedArrayKind::ALL[index as usize - 2]),
                    _ => {
                        return Err(IpcError::malformed(format!(
                            "host object at byte {at} is a view of unknown type index {index}"
                        )))
                    }
                };
                self.view(kind, bytes, at)
            }
            tag::HOST_PLAIN_COPY => {
                // The host object and its copy are one object here: the host's number
                // names the copy (or nothing, if the copy is not an object).
                let host = self.node_of.len();
                self.node_of.push(NO_NODE);
                let copy = self.value(depth + 1)?;
                if copy.is_object() {
                    self.node_of[host] = self.node_of[host + 1];
                }
                Ok(copy)
            }
            kind => Err(IpcError::malformed(format!(
                "host object at byte {at} has unknown kind {kind} (Node writes 0 or 1)"
            ))),
        }
    }
}

/// An array read with its elements at their indices: a [`Value::Array`] when it has every
/// index and no named property, else a [`Value::SparseArray`].
fn array_value(
    length: u32,
    elements: Vec<(u32, Value)>,
    properties: Vec<(String, Value)>,
    holes: bool,
) -> Value {
    if !holes && properties.is_empty() {
        return Value::Array(elements.into_iter().map(|(_, v)| v).collect());
    }
    Value::from(SparseArray {
        length,
        elements,
        properties,
    })
}
