//! Reading the values that hold other values: objects, arrays, maps, Errors and Node's host
//! objects (the rest of [`Reader`] is in `read.rs`).

use std::mem::size_of;

use super::{Reader, Value};
use crate::codec::advanced::tag;
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
        for _ in 0..len {
            if self.next_is(tag::HOLE) {
                items.push(Value::Undefined);
            } else {
                items.push(self.value(depth + 1)?);
            }
        }
        self.properties(tag::END_DENSE_ARRAY, "array", at, depth, |r, k, v| {
            r.set_element(&mut items, k, v, at)
        })?;
        let written_len = self.len()?;
        if written_len != len {
            return Err(IpcError::malformed(format!(
                "array at byte {at} says length {written_len} at its end but {len} at its start"
            )));
        }
        Ok(Value::Array(items))
    }

    pub(super) fn sparse_array(&mut self, depth: usize, at: usize) -> Result<Value> {
        let len = self.len()?;
        let mut items = Vec::new();
        let mut set = Vec::new();
        self.properties(
            tag::END_SPARSE_ARRAY,
            "sparse array",
            at,
            depth,
            |_, k, v| {
                // Named properties of an array have no place in a Value: dropped.
                if let Some(i) = k.index() {
                    set.push((i as usize, v));
                }
                Ok(())
            },
        )?;
        let written_len = self.len()?;
        if written_len != len {
            return Err(IpcError::malformed(format!(
                "sparse array at byte {at} says length {written_len} at its end but {len} at its start"
            )));
        }
        let total = set.iter().map(|(i, _)| i + 1).max().unwrap_or(0).max(len);
        let holes = total.saturating_sub(set.len());
        self.charge(holes.saturating_mul(size_of::<Value>()), "sparse array", at)?;
        items.resize(total, Value::Undefined);
        for (i, v) in set {
            items[i] = v;
        }
        Ok(Value::Array(items))
    }

    /// An extra property of a dense array: an index sets that element, a name is dropped.
    fn set_element(&mut self, items: &mut Vec<Value>, key: Key, v: Value, at: usize) -> Result<()> {
        if let Some(i) = key.index() {
            let i = i as usize;
            if i >= items.len() {
                let holes = i - items.len();
                self.charge(holes.saturating_mul(size_of::<Value>()), "array", at)?;
                items.resize(i + 1, Value::Undefined);
            }
            items[i] = v;
        }
        Ok(())
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
        loop {
            let sub_at = self.pos;
            let sub = self.u8()?;
            match sub {
                tag::ERROR_MESSAGE => message = self.string()?,
                tag::ERROR_STACK => stack = Some(self.string()?),
                // The cause has no place in a Value: read and dropped.
                tag::ERROR_CAUSE => {
                    self.value(depth + 1)?;
                }
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
        Ok(Value::Error {
            name: name.into(),
            message,
            stack,
        })
    }

    /// Node's host objects: an ArrayBufferView (every typed array, DataView and Buffer: its
    /// bytes), or a C++-backed object sent as a plain copy (that copy).
    pub(super) fn host_object(&mut self, depth: usize, at: usize) -> Result<Value> {
        match self.varint()? {
            tag::HOST_VIEW => {
                let index = self.varint()?;
                if index > tag::VIEW_INDEX_MAX {
                    return Err(IpcError::malformed(format!(
                        "host object at byte {at} is a view of unknown type index {index}"
                    )));
                }
                let len = self.len()?;
                Ok(Value::Bytes(self.take(len)?.to_vec()))
            }
            tag::HOST_PLAIN_COPY => self.value(depth + 1),
            kind => Err(IpcError::malformed(format!(
                "host object at byte {at} has unknown kind {kind} (Node writes 0 or 1)"
            ))),
        }
    }
}
