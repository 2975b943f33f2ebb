//! The structured-clone kinds MessagePack has no type for, as extension types: typed arrays,
//! `DataView`, `ArrayBuffer`, boxed primitives, sparse arrays, an `Error` (with its cause),
//! and identity ([`Value::Shared`], [`Value::Ref`]). See [`MsgPackCodec`](super::MsgPackCodec)
//! for the table.

use bytes::BufMut;
use rmp::Marker;

use super::read::{bad_ext, Reader};
use super::write::{
    begin_ext32, end_ext32, enter, io_err, len32, write_ext, write_str, write_value, Out,
};
use crate::value::{identity, ArrayBuffer, JsError, SparseArray, TypedArray, TypedArrayKind};
use crate::{IpcError, Result, Value};

pub(super) const EXT_ERROR: i8 = 7;
pub(super) const EXT_TYPED_ARRAY: i8 = 8;
pub(super) const EXT_DATA_VIEW: i8 = 9;
pub(super) const EXT_ARRAY_BUFFER: i8 = 10;
pub(super) const EXT_RESIZABLE_ARRAY_BUFFER: i8 = 11;
pub(super) const EXT_BOXED: i8 = 12;
pub(super) const EXT_SPARSE_ARRAY: i8 = 13;
pub(super) const EXT_SHARED: i8 = 14;
pub(super) const EXT_REF: i8 = 15;

/// Writes the kinds of this module (containers with their depth check).
pub(super) fn write(out: &mut Out<'_>, value: &Value, depth: usize) -> Result<()> {
    match value {
        Value::TypedArray(a) => {
            let kind = TypedArrayKind::ALL
                .iter()
                .position(|k| *k == a.kind())
                .unwrap_or(0);
            write_bytes_ext(out, EXT_TYPED_ARRAY, &[kind as u8], a.bytes())
        }
        Value::DataView(bytes) => write_bytes_ext(out, EXT_DATA_VIEW, &[], bytes),
        Value::ArrayBuffer(ArrayBuffer {
            bytes,
            max_byte_length: None,
        }) => write_bytes_ext(out, EXT_ARRAY_BUFFER, &[], bytes),
        Value::ArrayBuffer(ArrayBuffer {
            bytes,
            max_byte_length: Some(max),
        }) => {
            if (*max as usize) < bytes.len() {
                return Err(IpcError::unsupported(format!(
                    "a resizable ArrayBuffer of {} bytes with max_byte_length {max}",
                    bytes.len()
                )));
            }
            write_bytes_ext(out, EXT_RESIZABLE_ARRAY_BUFFER, &max.to_be_bytes(), bytes)
        }
        Value::Boxed(inner) => {
            if !matches!(
                **inner,
                Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::BigInt(_)
            ) {
                return Err(IpcError::unsupported(format!(
                    "Value::Boxed around a {}: only a Bool, Number, String or BigInt can be boxed",
                    identity::kind_name(inner)
                )));
            }
            enter(depth)?;
            let at = begin_ext32(out, EXT_BOXED);
            write_value(out, inner, depth + 1)?;
            end_ext32(out, at)
        }
        Value::SparseArray(a) => {
            enter(depth)?;
            check_sparse(a)?;
            let at = begin_ext32(out, EXT_SPARSE_ARRAY);
            rmp::encode::write_array_len(out, 3).map_err(io_err)?;
            rmp::encode::write_uint(out, a.length.into()).map_err(io_err)?;
            rmp::encode::write_array_len(out, len32(a.elements.len() * 2, "sparse elements")?)
                .map_err(io_err)?;
            for (i, item) in &a.elements {
                rmp::encode::write_uint(out, (*i).into()).map_err(io_err)?;
                write_value(out, item, depth + 1)?;
            }
            rmp::encode::write_map_len(out, len32(a.properties.len(), "sparse properties")?)
                .map_err(io_err)?;
            for (key, item) in &a.properties {
                write_str(out, key)?;
                write_value(out, item, depth + 1)?;
            }
            end_ext32(out, at)
        }
        Value::Error(e) => {
            enter(depth)?;
            let at = begin_ext32(out, EXT_ERROR);
            let len = if e.cause.is_some() { 4 } else { 3 };
            rmp::encode::write_array_len(out, len).map_err(io_err)?;
            write_str(out, &e.name)?;
            write_str(out, &e.message)?;
            match &e.stack {
                Some(stack) => write_str(out, stack)?,
                None => rmp::encode::write_nil(out).map_err(io_err)?,
            }
            if let Some(cause) = &e.cause {
                write_value(out, cause, depth + 1)?;
            }
            end_ext32(out, at)
        }
        Value::Shared { id, value: inner } => {
            if !inner.is_object() || !out.1.define(*id, ()) {
                return Err(identity::unsupported_shared(*id, inner));
            }
            // A level of its own, as for the reader: a chain of extensions inside extensions
            // is bounded by the depth limit.
            enter(depth)?;
            let at = begin_ext32(out, EXT_SHARED);
            out.0.put_u32(*id);
            write_value(out, inner, depth + 1)?;
            end_ext32(out, at)
        }
        Value::Ref(id) => {
            if out.1.get(*id).is_none() {
                return Err(identity::dangling_ref(*id));
            }
            write_ext(out, EXT_REF, &id.to_be_bytes())
        }
        other => Err(IpcError::unsupported(format!(
            "{} in msgpack::clone::write",
            identity::kind_name(other)
        ))),
    }
}

/// An extension whose payload is `head` then `bytes`.
fn write_bytes_ext(out: &mut Out<'_>, ty: i8, head: &[u8], bytes: &[u8]) -> Result<()> {
    let len = len32(head.len() + bytes.len(), "extension payload")?;
    rmp::encode::write_ext_meta(out, len, ty).map_err(io_err)?;
    out.0.put_slice(head);
    out.0.put_slice(bytes);
    Ok(())
}

/// Indices increasing and below the length; no property named like an index.
pub(crate) fn check_sparse(a: &SparseArray) -> Result<()> {
    let mut last = None;
    for (i, _) in &a.elements {
        if *i >= a.length || last.is_some_and(|l| *i <= l) {
            return Err(IpcError::unsupported(format!(
                "a SparseArray of length {} with element index {i} (indices must increase and \
                 stay below the length)",
                a.length
            )));
        }
        last = Some(*i);
    }
    if let Some((key, _)) = a.properties.iter().find(|(k, _)| is_index(k)) {
        return Err(IpcError::unsupported(format!(
            "a SparseArray with a property named {key:?}: an index belongs in its elements"
        )));
    }
    Ok(())
}

/// Whether `key` is a canonical array index (`"0"`, `"17"`; below 2³² − 1).
fn is_index(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && b.len() <= 10
        && (b.len() == 1 || b[0] != b'0')
        && b.iter().all(u8::is_ascii_digit)
        && key.parse::<u32>().is_ok_and(|i| i != u32::MAX)
}

impl Reader<'_> {
    /// The extensions of this module without values inside; `payload` fills the extension.
    pub(super) fn clone_leaf(&mut self, ty: i8, payload: &[u8], at: usize) -> Result<Value> {
        let bad = |what: &str| bad_ext(ty, at, what);
        Ok(match ty {
            EXT_TYPED_ARRAY => {
                let (&kind, bytes) = payload.split_first().ok_or_else(|| bad("empty"))?;
                let kind = *TypedArrayKind::ALL
                    .get(usize::from(kind))
                    .ok_or_else(|| bad("unknown element type"))?;
                let array = TypedArray::new(kind, bytes.to_vec())
                    .ok_or_else(|| bad("not a whole number of elements"))?;
                Value::TypedArray(array)
            }
            EXT_DATA_VIEW => Value::DataView(payload.to_vec()),
            EXT_ARRAY_BUFFER => Value::ArrayBuffer(payload.to_vec().into()),
            EXT_RESIZABLE_ARRAY_BUFFER => {
                if payload.len() < 4 {
                    return Err(bad("shorter than its maximum length"));
                }
                let (max, bytes) = payload.split_at(4);
                let max = u32::from_be_bytes([max[0], max[1], max[2], max[3]]);
                if (max as usize) < bytes.len() {
                    return Err(bad("longer than its maximum length"));
                }
                Value::ArrayBuffer(ArrayBuffer {
                    bytes: bytes.to_vec(),
                    max_byte_length: Some(max),
                })
            }
            EXT_REF => {
                let id: [u8; 4] = payload.try_into().map_err(|_| bad("not 4 bytes"))?;
                self.identity.set(true);
                Value::Ref(u32::from_be_bytes(id))
            }
            _ => return Err(bad("unknown")),
        })
    }

    /// The extensions of this module with values inside: `inner` reads the payload. Each
    /// kind is read out of line, so that the frames on the recursive path stay small (their
    /// size times [`Value::MAX_DEPTH`] is the stack a hostile frame can make us use).
    pub(super) fn clone_nested(
        inner: &mut Reader<'_>,
        ty: i8,
        depth: usize,
        at: usize,
    ) -> Result<Value> {
        inner.enter(depth, at)?;
        match ty {
            EXT_BOXED => inner.boxed(depth, at),
            EXT_SHARED => inner.shared(depth),
            EXT_ERROR => inner.error(depth, at),
            EXT_SPARSE_ARRAY => inner.sparse_array(depth, at),
            _ => Err(bad_ext(ty, at, "unknown")),
        }
    }

    #[inline(never)]
    fn boxed(&mut self, depth: usize, at: usize) -> Result<Value> {
        match self.value(depth + 1)? {
            v @ (Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::BigInt(_)) => {
                Ok(Value::Boxed(Box::new(v)))
            }
            _ => Err(bad_ext(
                EXT_BOXED,
                at,
                "not a boolean, number, string or BigInt",
            )),
        }
    }

    #[inline(never)]
    fn shared(&mut self, depth: usize) -> Result<Value> {
        let id = u32::from_be_bytes(self.array()?);
        self.identity.set(true);
        Ok(Value::shared(id, self.value(depth + 1)?))
    }

    #[inline(never)]
    fn error(&mut self, depth: usize, at: usize) -> Result<Value> {
        let marker = Marker::from_u8(self.u8()?);
        let len = self.array_len(marker)?;
        if !matches!(len, Some(3 | 4)) {
            return Err(bad_ext(EXT_ERROR, at, "not an array of 3 or 4"));
        }
        let name = self.expect_str("Error name")?;
        let message = self.expect_str("Error message")?;
        let stack = if self.buf.get(self.pos) == Some(&Marker::Null.to_u8()) {
            self.pos += 1;
            None
        } else {
            Some(self.expect_str("Error stack")?)
        };
        let cause = match len {
            Some(4) => Some(self.value(depth + 1)?),
            _ => None,
        };
        Ok(Value::from(JsError {
            name,
            message,
            stack,
            cause,
        }))
    }

    #[inline(never)]
    fn sparse_array(&mut self, depth: usize, at: usize) -> Result<Value> {
        let bad = |what: &str| bad_ext(EXT_SPARSE_ARRAY, at, what);
        let marker = Marker::from_u8(self.u8()?);
        if self.array_len(marker)? != Some(3) {
            return Err(bad("not an array of 3"));
        }
        let length = self
            .uint32(depth)?
            .ok_or_else(|| bad("its length is not a uint32"))?;
        let marker = Marker::from_u8(self.u8()?);
        let pairs = self
            .array_len(marker)?
            .ok_or_else(|| bad("no element array"))?;
        if pairs % 2 == 1 {
            return Err(bad("an odd element array"));
        }
        let mut elements = Vec::with_capacity(self.capacity(pairs / 2));
        for _ in 0..pairs / 2 {
            let index = self
                .uint32(depth)?
                .ok_or_else(|| bad("an element index that is not a uint32"))?;
            elements.push((index, self.value(depth + 1)?));
        }
        let marker = Marker::from_u8(self.u8()?);
        let count = self
            .map_len(marker)?
            .ok_or_else(|| bad("no property map"))?;
        let mut properties = Vec::with_capacity(self.capacity(count));
        for _ in 0..count {
            let key = self.expect_str("property name")?;
            properties.push((key, self.value(depth + 1)?));
        }
        let array = SparseArray {
            length,
            elements,
            properties,
        };
        check_sparse(&array).map_err(|e| bad(&e.to_string()))?;
        Ok(Value::from(array))
    }

    /// A value that must be a whole number in `u32`'s range.
    fn uint32(&mut self, depth: usize) -> Result<Option<u32>> {
        Ok(match self.value(depth + 1)? {
            Value::Number(n) if n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&n) => {
                Some(n as u32)
            }
            _ => None,
        })
    }
}
