//! Reading MessagePack into a [`Value`] (see [`MsgPackCodec`](super::MsgPackCodec) for what
//! is accepted): the plain kinds here, the structured-clone extensions in `clone.rs`.

use std::cell::Cell;

use rmp::Marker;

use super::clone::{self, EXT_ERROR};
use super::write::canonical_bigint;
use super::{EXT_BIGINT, EXT_DATE, EXT_MAP, EXT_REGEXP, EXT_SET, EXT_TIMESTAMP, EXT_UNDEFINED};
use crate::{IpcError, Result, Value};

/// A cursor over one frame's payload (or a part of it: an extension's payload keeps the
/// frame's offsets, so errors name the byte in the frame).
pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
    /// Set when the frame has a [`Value::Shared`]: its identity is checked at the end.
    pub(super) identity: &'a Cell<bool>,
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        crate::codec::take_bytes(self.buf, &mut self.pos, n, "MessagePack")
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(super) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn u16(&mut self) -> Result<usize> {
        Ok(u16::from_be_bytes(self.array()?).into())
    }

    pub(super) fn u32(&mut self) -> Result<usize> {
        Ok(u32::from_be_bytes(self.array()?) as usize)
    }

    /// A capacity that a hostile count cannot blow up: every item takes at least a byte.
    pub(super) fn capacity(&self, count: usize) -> usize {
        count.min(self.buf.len() - self.pos)
    }

    pub(super) fn str_of(&mut self, len: usize) -> Result<String> {
        let start = self.pos;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| IpcError::InvalidUtf8 {
                offset: start + e.valid_up_to(),
            })
    }

    pub(super) fn str_len(&mut self, marker: Marker) -> Result<Option<usize>> {
        Ok(Some(match marker {
            Marker::FixStr(n) => n.into(),
            Marker::Str8 => self.u8()?.into(),
            Marker::Str16 => self.u16()?,
            Marker::Str32 => self.u32()?,
            _ => return Ok(None),
        }))
    }

    /// One value. Only containers recurse; everything else is handled out of line in
    /// [`Self::scalar`] and [`Self::ext_value`] to keep this frame small, since its size
    /// times [`Value::MAX_DEPTH`] is the stack a hostile frame can make us use.
    pub(super) fn value(&mut self, depth: usize) -> Result<Value> {
        let at = self.pos;
        let marker = Marker::from_u8(self.u8()?);
        match marker {
            Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
                let len = self.array_len(marker)?.unwrap_or(0);
                self.enter(depth, at)?;
                self.items(len, depth).map(Value::Array)
            }
            Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
                let len = self.map_len(marker)?.unwrap_or(0);
                self.enter(depth, at)?;
                self.object_or_map(len, depth)
            }
            Marker::FixExt1
            | Marker::FixExt2
            | Marker::FixExt4
            | Marker::FixExt8
            | Marker::FixExt16
            | Marker::Ext8
            | Marker::Ext16
            | Marker::Ext32 => self.ext_value(marker, depth, at),
            _ => self.scalar(marker, at),
        }
    }

    #[inline(never)]
    pub(super) fn scalar(&mut self, marker: Marker, at: usize) -> Result<Value> {
        Ok(match marker {
            Marker::Null => Value::Null,
            Marker::True => Value::Bool(true),
            Marker::False => Value::Bool(false),
            Marker::FixPos(n) => Value::Number(n.into()),
            Marker::FixNeg(n) => Value::Number(n.into()),
            Marker::U8 => Value::Number(self.u8()?.into()),
            Marker::U16 => Value::Number(self.u16()? as f64),
            Marker::U32 => Value::Number(self.u32()? as f64),
            Marker::U64 => Value::Number(u64::from_be_bytes(self.array()?) as f64),
            Marker::I8 => Value::Number(i8::from_be_bytes(self.array()?).into()),
            Marker::I16 => Value::Number(i16::from_be_bytes(self.array()?).into()),
            Marker::I32 => Value::Number(i32::from_be_bytes(self.array()?).into()),
            Marker::I64 => Value::Number(i64::from_be_bytes(self.array()?) as f64),
            Marker::F32 => Value::Number(f32::from_be_bytes(self.array()?).into()),
            Marker::F64 => Value::Number(f64::from_be_bytes(self.array()?)),
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                let len = self.str_len(marker)?.unwrap_or(0);
                Value::String(self.str_of(len)?)
            }
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                let len = match marker {
                    Marker::Bin8 => self.u8()?.into(),
                    Marker::Bin16 => self.u16()?,
                    _ => self.u32()?,
                };
                Value::Bytes(self.take(len)?.to_vec())
            }
            _ => {
                return Err(IpcError::malformed(format!(
                    "reserved MessagePack byte 0xc1 at byte {at}"
                )))
            }
        })
    }

    #[inline(never)]
    pub(super) fn ext_value(&mut self, marker: Marker, depth: usize, at: usize) -> Result<Value> {
        let len = match marker {
            Marker::FixExt1 => 1,
            Marker::FixExt2 => 2,
            Marker::FixExt4 => 4,
            Marker::FixExt8 => 8,
            Marker::FixExt16 => 16,
            Marker::Ext8 => self.u8()?.into(),
            Marker::Ext16 => self.u16()?,
            _ => self.u32()?,
        };
        let ty = i8::from_be_bytes(self.array()?);
        match ty {
            EXT_MAP | EXT_SET => self.ext_container(ty, len, depth, at),
            clone::EXT_BOXED | clone::EXT_SPARSE_ARRAY | clone::EXT_SHARED | EXT_ERROR => {
                self.take(len)?;
                let mut inner = self.part(self.pos - len);
                let value = Reader::clone_nested(&mut inner, ty, depth, at)?;
                if inner.pos != self.pos {
                    return Err(bad_ext(ty, at, "trailing bytes"));
                }
                Ok(value)
            }
            _ => self.ext(ty, len, at),
        }
    }

    /// A reader of the payload from `start` to here, keeping the frame's offsets.
    pub(super) fn part(&self, start: usize) -> Reader<'a> {
        Reader {
            buf: &self.buf[..self.pos],
            pos: start,
            identity: self.identity,
        }
    }

    /// A `Map` or `Set` extension: its payload is one map or array that must fill it.
    pub(super) fn ext_container(
        &mut self,
        ty: i8,
        len: usize,
        depth: usize,
        at: usize,
    ) -> Result<Value> {
        self.enter(depth, at)?;
        let start = self.pos;
        self.take(len)?;
        let mut inner = self.part(start);
        let marker = Marker::from_u8(inner.u8()?);
        let value = if ty == EXT_MAP {
            let count = inner.map_len(marker)?;
            count.map(|count| inner.entries(count, depth).map(Value::Map))
        } else {
            let count = inner.array_len(marker)?;
            count.map(|count| inner.items(count, depth).map(Value::Set))
        };
        let value = value.unwrap_or_else(|| Err(bad_ext(ty, at, "not a map or array")))?;
        if inner.pos != start + len {
            return Err(bad_ext(ty, at, "trailing bytes"));
        }
        Ok(value)
    }

    pub(super) fn enter(&self, depth: usize, at: usize) -> Result<()> {
        crate::codec::check_read_depth(depth, at)
    }

    pub(super) fn array_len(&mut self, marker: Marker) -> Result<Option<usize>> {
        Ok(Some(match marker {
            Marker::FixArray(n) => n.into(),
            Marker::Array16 => self.u16()?,
            Marker::Array32 => self.u32()?,
            _ => return Ok(None),
        }))
    }

    pub(super) fn map_len(&mut self, marker: Marker) -> Result<Option<usize>> {
        Ok(Some(match marker {
            Marker::FixMap(n) => n.into(),
            Marker::Map16 => self.u16()?,
            Marker::Map32 => self.u32()?,
            _ => return Ok(None),
        }))
    }

    pub(super) fn items(&mut self, len: usize, depth: usize) -> Result<Vec<Value>> {
        let mut items = Vec::with_capacity(self.capacity(len));
        for _ in 0..len {
            items.push(self.value(depth + 1)?);
        }
        Ok(items)
    }

    pub(super) fn entries(&mut self, len: usize, depth: usize) -> Result<Vec<(Value, Value)>> {
        let mut entries = Vec::with_capacity(self.capacity(len));
        for _ in 0..len {
            let key = self.value(depth + 1)?;
            entries.push((key, self.value(depth + 1)?));
        }
        Ok(entries)
    }

    /// A plain map: an `Object` when every key is a str (ours always are), else a `Map`.
    pub(super) fn object_or_map(&mut self, len: usize, depth: usize) -> Result<Value> {
        let entries = self.entries(len, depth)?;
        if entries.iter().all(|(k, _)| matches!(k, Value::String(_))) {
            Ok(Value::Object(
                entries
                    .into_iter()
                    .filter_map(|(k, v)| match k {
                        Value::String(k) => Some((k, v)),
                        _ => None,
                    })
                    .collect(),
            ))
        } else {
            Ok(Value::Map(entries))
        }
    }

    /// A str inside an extension payload.
    pub(super) fn expect_str(&mut self, what: &str) -> Result<String> {
        let at = self.pos;
        let marker = Marker::from_u8(self.u8()?);
        match self.str_len(marker)? {
            Some(len) => self.str_of(len),
            None => Err(IpcError::malformed(format!(
                "expected a str ({what}) at byte {at}"
            ))),
        }
    }

    #[inline(never)]
    pub(super) fn ext(&mut self, ty: i8, len: usize, at: usize) -> Result<Value> {
        let start = self.pos;
        let payload = self.take(len)?;
        // Parse the payload in a reader of its own that keeps the frame's offsets.
        let mut inner = self.part(start);
        let bad = |what: &str| bad_ext(ty, at, what);
        let value = match ty {
            EXT_UNDEFINED if len == 0 => Value::Undefined,
            EXT_UNDEFINED => return Err(bad("undefined has no payload")),
            EXT_BIGINT => {
                let digits = std::str::from_utf8(payload)
                    .ok()
                    .filter(|d| canonical_bigint(d))
                    .ok_or_else(|| bad("not canonical decimal digits"))?;
                Value::BigInt(digits.to_owned())
            }
            EXT_DATE => {
                let bytes: [u8; 8] = payload.try_into().map_err(|_| bad("not 8 bytes"))?;
                Value::Date(f64::from_be_bytes(bytes))
            }
            EXT_TIMESTAMP => {
                Value::Date(timestamp_ms(payload).ok_or_else(|| bad("not a timestamp"))?)
            }
            EXT_REGEXP => {
                let marker = Marker::from_u8(inner.u8()?);
                if inner.array_len(marker)? != Some(2) {
                    return Err(bad("not an array of 2"));
                }
                Value::RegExp {
                    source: inner.expect_str("RegExp source")?,
                    flags: inner.expect_str("RegExp flags")?,
                }
            }
            clone::EXT_TYPED_ARRAY..=clone::EXT_RESIZABLE_ARRAY_BUFFER | clone::EXT_REF => {
                return self.clone_leaf(ty, payload, at)
            }
            _ => {
                return Err(IpcError::malformed(format!(
                    "unknown MessagePack extension type {ty} at byte {at}"
                )))
            }
        };
        if inner.pos != start + len && !matches!(ty, EXT_BIGINT | EXT_DATE | EXT_TIMESTAMP) {
            return Err(bad("trailing bytes"));
        }
        Ok(value)
    }
}

pub(super) fn bad_ext(ty: i8, at: usize, what: &str) -> IpcError {
    IpcError::malformed(format!("bad extension {ty} payload at byte {at}: {what}"))
}

/// MessagePack's timestamp extension (32, 64 or 96 bits) as milliseconds since the epoch.
fn timestamp_ms(payload: &[u8]) -> Option<f64> {
    let (secs, nanos) = match payload.len() {
        4 => (u32::from_be_bytes(payload.try_into().ok()?) as f64, 0u32),
        8 => {
            let v = u64::from_be_bytes(payload.try_into().ok()?);
            ((v & 0x3_ffff_ffff) as f64, (v >> 34) as u32)
        }
        12 => {
            let nanos = u32::from_be_bytes(payload[..4].try_into().ok()?);
            (
                i64::from_be_bytes(payload[4..].try_into().ok()?) as f64,
                nanos,
            )
        }
        _ => return None,
    };
    (nanos < 1_000_000_000).then(|| secs * 1000.0 + f64::from(nanos) / 1e6)
}
