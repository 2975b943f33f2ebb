//! Writing a [`Value`] as MessagePack (see [`MsgPackCodec`](super::MsgPackCodec) for the
//! mapping): the plain kinds here, the structured-clone extensions in `clone.rs`.

use std::io;

use bytes::{BufMut, BytesMut};
use rmp::Marker;

use super::clone;
use super::{EXT_BIGINT, EXT_DATE, EXT_MAP, EXT_REGEXP, EXT_SET, EXT_UNDEFINED, MAX_SAFE};
use crate::value::{identity, Anchors};
use crate::{IpcError, Result, Value};

/// `io::Write` over the destination buffer, for `rmp::encode`; and the [`Value::Shared`] ids
/// written so far.
pub(super) struct Out<'a>(pub(super) &'a mut BytesMut, pub(super) Anchors<()>);

impl io::Write for Out<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(super) fn patch_u32(dst: &mut BytesMut, at: usize, len: usize) {
    // Callers check len against a limit <= u32::MAX first.
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    dst[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

pub(super) fn io_err<E: Into<io::Error>>(e: E) -> IpcError {
    IpcError::Io(e.into())
}

pub(super) fn len32(len: usize, what: &str) -> Result<u32> {
    u32::try_from(len).map_err(|_| {
        IpcError::unsupported(format!(
            "a {what} of {len} (MessagePack's limit is 2^32 - 1)"
        ))
    })
}

pub(super) fn enter(depth: usize) -> Result<()> {
    crate::codec::check_write_depth(depth)
}

/// Whether `digits` is a BigInt's canonical decimal text: no `+`, no leading zeros, no `-0`.
pub(crate) fn canonical_bigint(digits: &str) -> bool {
    let magnitude = digits.strip_prefix('-').unwrap_or(digits);
    !magnitude.is_empty()
        && magnitude.bytes().all(|b| b.is_ascii_digit())
        && (magnitude.len() == 1 || !magnitude.starts_with('0'))
        && !(magnitude == "0" && digits.starts_with('-'))
}

pub(super) fn write_str(out: &mut Out<'_>, s: &str) -> Result<()> {
    rmp::encode::write_str_len(out, len32(s.len(), "string of bytes")?).map_err(io_err)?;
    out.0.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Ext with a payload known up front.
pub(super) fn write_ext(out: &mut Out<'_>, ty: i8, payload: &[u8]) -> Result<()> {
    rmp::encode::write_ext_meta(out, len32(payload.len(), "extension payload")?, ty)
        .map_err(io_err)?;
    out.0.extend_from_slice(payload);
    Ok(())
}

/// Starts an ext 32 whose payload is written in place; returns where its length goes.
pub(super) fn begin_ext32(out: &mut Out<'_>, ty: i8) -> usize {
    out.0.put_u8(Marker::Ext32.to_u8());
    let at = out.0.len();
    out.0.put_u32(0);
    out.0.put_i8(ty);
    at
}

/// Patches in the length of the ext 32 started at `at`.
pub(super) fn end_ext32(out: &mut Out<'_>, at: usize) -> Result<()> {
    let len = out.0.len() - at - 5;
    len32(len, "extension payload")?;
    patch_u32(out.0, at, len);
    Ok(())
}

/// Only containers recurse; everything else is written out of line by [`write_leaf`] to keep
/// this frame small (its size times [`Value::MAX_DEPTH`] is the stack a value can use).
pub(super) fn write_value(out: &mut Out<'_>, value: &Value, depth: usize) -> Result<()> {
    match value {
        Value::Array(items) => {
            enter(depth)?;
            write_array(out, items, depth)
        }
        Value::Object(pairs) => {
            enter(depth)?;
            rmp::encode::write_map_len(out, len32(pairs.len(), "object of keys")?)
                .map_err(io_err)?;
            for (key, item) in pairs {
                write_str(out, key)?;
                write_value(out, item, depth + 1)?;
            }
            Ok(())
        }
        Value::Map(entries) => {
            enter(depth)?;
            let at = begin_ext32(out, EXT_MAP);
            rmp::encode::write_map_len(out, len32(entries.len(), "Map of entries")?)
                .map_err(io_err)?;
            for (key, item) in entries {
                write_value(out, key, depth + 1)?;
                write_value(out, item, depth + 1)?;
            }
            end_ext32(out, at)
        }
        Value::Set(items) => {
            enter(depth)?;
            let at = begin_ext32(out, EXT_SET);
            write_array(out, items, depth)?;
            end_ext32(out, at)
        }
        Value::SparseArray(_)
        | Value::Error(_)
        | Value::Boxed(_)
        | Value::Shared { .. }
        | Value::Ref(_)
        | Value::TypedArray(_)
        | Value::DataView(_)
        | Value::ArrayBuffer(_) => clone::write(out, value, depth),
        _ => write_leaf(out, value),
    }
}

#[inline(never)]
fn write_leaf(out: &mut Out<'_>, value: &Value) -> Result<()> {
    match value {
        Value::Undefined => write_ext(out, EXT_UNDEFINED, &[])?,
        Value::Null => rmp::encode::write_nil(out).map_err(io_err)?,
        Value::Bool(b) => rmp::encode::write_bool(out, *b).map_err(io_err)?,
        Value::Number(n) => {
            let n = *n;
            if n.fract() == 0.0 && n.abs() <= MAX_SAFE && !(n == 0.0 && n.is_sign_negative()) {
                rmp::encode::write_sint(out, n as i64).map_err(io_err)?;
            } else {
                rmp::encode::write_f64(out, n).map_err(io_err)?;
            }
        }
        Value::BigInt(digits) => {
            if !canonical_bigint(digits) {
                return Err(IpcError::unsupported(format!(
                    "a BigInt whose text {digits:?} is not canonical decimal digits"
                )));
            }
            write_ext(out, EXT_BIGINT, digits.as_bytes())?;
        }
        Value::String(s) => write_str(out, s)?,
        Value::Bytes(b) => {
            rmp::encode::write_bin_len(out, len32(b.len(), "Buffer of bytes")?).map_err(io_err)?;
            out.0.extend_from_slice(b);
        }
        Value::Date(ms) => write_ext(out, EXT_DATE, &ms.to_be_bytes())?,
        Value::RegExp { source, flags } => {
            let at = begin_ext32(out, EXT_REGEXP);
            rmp::encode::write_array_len(out, 2).map_err(io_err)?;
            write_str(out, source)?;
            write_str(out, flags)?;
            end_ext32(out, at)?;
        }
        other => {
            return Err(IpcError::unsupported(format!(
                "{} in write_leaf",
                identity::kind_name(other)
            )))
        }
    }
    Ok(())
}

pub(super) fn write_array(out: &mut Out<'_>, items: &[Value], depth: usize) -> Result<()> {
    rmp::encode::write_array_len(out, len32(items.len(), "array of items")?).map_err(io_err)?;
    for item in items {
        write_value(out, item, depth + 1)?;
    }
    Ok(())
}
