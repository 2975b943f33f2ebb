//! Typed messages as MessagePack, straight from `serde`: `serde_json`'s serializer (so
//! every `serde` type maps to the JSON data model exactly as [`to_value`] maps it) driving a
//! [`Formatter`] that writes MessagePack instead of text, in the forms
//! [`MsgPackCodec`](crate::MsgPackCodec) writes the resulting [`Value`]: the same bytes.
//!
//! Containers and strings get their header when they end (the formatter is not told their
//! length up front): one byte is kept for it, which is the whole header of a string under
//! 32 bytes and of an array or map under 16 items; a longer one moves its contents up by
//! the 1, 2 or 4 bytes more its header needs.
//!
//! Reading goes through `rmp-serde` (see [`read`]).
//!
//! [`to_value`]: crate::to_value
//! [`Value`]: crate::Value

use std::io;

use bytes::{BufMut, BytesMut};
use rmp::Marker;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};

use super::json::{f32_as_read, unsupported, MAX_SAFE};
use crate::{Result, Value};

/// An open array, map or string: where its header byte is, and its item count.
struct Open {
    at: usize,
    count: usize,
}

/// Writes MessagePack where `serde_json` asks for JSON punctuation (see the module docs).
struct MsgPackFormatter<'a> {
    out: &'a mut BytesMut,
    containers: Vec<Open>,
    /// The string being written (a map key, or a str value), if any.
    string: Option<usize>,
}

fn io_err<E: Into<io::Error>>(e: E) -> io::Error {
    e.into()
}

/// A JavaScript number as [`MsgPackCodec`](crate::MsgPackCodec) writes it: the smallest
/// int when integral, not -0 and within ±2⁵³, else float 64.
fn write_number(out: &mut BytesMut, n: f64) -> io::Result<()> {
    let w = &mut out.writer();
    if n.fract() == 0.0 && n.abs() <= MAX_SAFE as f64 && !(n == 0.0 && n.is_sign_negative()) {
        rmp::encode::write_sint(w, n as i64).map_err(io_err)?;
    } else {
        rmp::encode::write_f64(w, n).map_err(io_err)?;
    }
    Ok(())
}

/// Puts the `header` of the item opened at `at` (whose one kept byte is there) in place,
/// moving the contents up when it is longer than that byte.
fn put_header(out: &mut BytesMut, at: usize, header: &[u8]) {
    let extra = header.len() - 1;
    if extra > 0 {
        let end = out.len();
        out.resize(end + extra, 0);
        out.copy_within(at + 1..end, at + 1 + extra);
    }
    out[at..at + header.len()].copy_from_slice(header);
}

/// The header of a string, array or map of `len` (bytes or items), in rmp's choice of form
/// (the smallest), as [`MsgPackCodec`](crate::MsgPackCodec) writes it.
fn header(len: usize, kind: Kind) -> io::Result<([u8; 5], usize)> {
    let len32 = u32::try_from(len).map_err(|_| {
        io::Error::other(format!(
            "a length of {len} (MessagePack's limit is 2^32 - 1)"
        ))
    })?;
    let mut h = [0u8; 5];
    let mut w = &mut h[..];
    let marker = match kind {
        Kind::Str => rmp::encode::write_str_len(&mut w, len32),
        Kind::Array => rmp::encode::write_array_len(&mut w, len32),
        Kind::Map => rmp::encode::write_map_len(&mut w, len32),
    }
    .map_err(io_err)?;
    let used = match marker {
        Marker::FixStr(_) | Marker::FixArray(_) | Marker::FixMap(_) => 1,
        Marker::Str8 => 2,
        Marker::Str16 | Marker::Array16 | Marker::Map16 => 3,
        _ => 5,
    };
    Ok((h, used))
}

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Array,
    Map,
}

impl MsgPackFormatter<'_> {
    fn open(&mut self) -> io::Result<()> {
        if self.containers.len() >= Value::MAX_DEPTH {
            return Err(io::Error::other(format!(
                "a value nested deeper than {} levels",
                Value::MAX_DEPTH
            )));
        }
        self.containers.push(Open {
            at: self.out.len(),
            count: 0,
        });
        self.out.put_u8(0);
        Ok(())
    }

    fn close(&mut self, kind: Kind) -> io::Result<()> {
        let Some(open) = self.containers.pop() else {
            return Err(io::Error::other("a container closed that was not open"));
        };
        let (h, used) = header(open.count, kind)?;
        put_header(self.out, open.at, &h[..used]);
        Ok(())
    }

    fn count(&mut self) {
        if let Some(open) = self.containers.last_mut() {
            open.count += 1;
        }
    }

    /// A number: inside a string (a map key) as `serde_json`'s text, else as a JavaScript
    /// number (`exact` when the value is an integer within ±2⁵³, written as it is).
    fn number(
        &mut self,
        as_text: impl FnOnce(&mut bytes::buf::Writer<&mut BytesMut>) -> io::Result<()>,
        n: f64,
    ) -> io::Result<()> {
        if self.string.is_some() {
            as_text(&mut (&mut *self.out).writer())
        } else {
            write_number(self.out, n)
        }
    }
}

macro_rules! msgpack_ints {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method<W: ?Sized + io::Write>(&mut self, _: &mut W, v: $ty) -> io::Result<()> {
            #[allow(clippy::cast_lossless, clippy::unnecessary_cast)]
            let n = v as f64;
            self.number(|w| CompactFormatter.$method(w, v), n)
        }
    )*};
}

impl Formatter for MsgPackFormatter<'_> {
    fn write_null<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.out.put_u8(Marker::Null.to_u8());
        Ok(())
    }

    fn write_bool<W: ?Sized + io::Write>(&mut self, _: &mut W, v: bool) -> io::Result<()> {
        if self.string.is_some() {
            // A bool map key: serde_json writes its text.
            self.out.put_slice(if v { b"true" } else { b"false" });
        } else {
            self.out
                .put_u8(if v { Marker::True } else { Marker::False }.to_u8());
        }
        Ok(())
    }

    // Integers convert to f64 exactly within ±2⁵³, and beyond it round as JavaScript does:
    // `write_number` then writes what `MsgPackCodec` writes for that double.
    msgpack_ints!(write_i8: i8, write_i16: i16, write_i32: i32, write_i64: i64,
        write_i128: i128, write_u8: u8, write_u16: u16, write_u32: u32, write_u64: u64,
        write_u128: u128);

    fn write_f32<W: ?Sized + io::Write>(&mut self, _: &mut W, v: f32) -> io::Result<()> {
        self.number(|w| CompactFormatter.write_f32(w, v), f32_as_read(v))
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, _: &mut W, v: f64) -> io::Result<()> {
        self.number(|w| CompactFormatter.write_f64(w, v), v)
    }

    fn write_number_str<W: ?Sized + io::Write>(&mut self, _: &mut W, _: &str) -> io::Result<()> {
        Err(io::Error::other("arbitrary-precision numbers"))
    }

    fn write_raw_fragment<W: ?Sized + io::Write>(&mut self, _: &mut W, _: &str) -> io::Result<()> {
        Err(io::Error::other("raw JSON fragments"))
    }

    fn begin_string<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.string = Some(self.out.len());
        self.out.put_u8(0);
        Ok(())
    }

    fn end_string<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        let Some(at) = self.string.take() else {
            return Err(io::Error::other("a string closed that was not open"));
        };
        let (h, used) = header(self.out.len() - at - 1, Kind::Str)?;
        put_header(self.out, at, &h[..used]);
        Ok(())
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        _: &mut W,
        s: &str,
    ) -> io::Result<()> {
        self.out.put_slice(s.as_bytes());
        Ok(())
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        _: &mut W,
        e: CharEscape,
    ) -> io::Result<()> {
        // MessagePack strings are raw UTF-8: the character itself.
        self.out.put_u8(match e {
            CharEscape::Quote => b'"',
            CharEscape::ReverseSolidus => b'\\',
            CharEscape::Solidus => b'/',
            CharEscape::Backspace => 0x08,
            CharEscape::FormFeed => 0x0c,
            CharEscape::LineFeed => b'\n',
            CharEscape::CarriageReturn => b'\r',
            CharEscape::Tab => b'\t',
            CharEscape::AsciiControl(b) => b,
        });
        Ok(())
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.open()
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.close(Kind::Array)
    }

    fn begin_array_value<W: ?Sized + io::Write>(&mut self, _: &mut W, _: bool) -> io::Result<()> {
        self.count();
        Ok(())
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        Ok(())
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.open()
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.close(Kind::Map)
    }

    fn begin_object_key<W: ?Sized + io::Write>(&mut self, _: &mut W, _: bool) -> io::Result<()> {
        self.count();
        Ok(())
    }

    fn end_object_key<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        Ok(())
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        Ok(())
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        Ok(())
    }
}

/// Appends `message` as the MessagePack [`MsgPackCodec`](crate::MsgPackCodec) writes for
/// the [`Value`] that [`to_value`](crate::to_value) makes of it. On error `out` may hold a
/// partial value: callers roll it back.
pub(super) fn write<T: Serialize + ?Sized>(message: &T, out: &mut BytesMut) -> Result<()> {
    let formatter = MsgPackFormatter {
        out,
        containers: Vec::new(),
        string: None,
    };
    let mut ser = serde_json::Serializer::with_formatter(io::sink(), formatter);
    message.serialize(&mut ser).map_err(unsupported)
}

/// `message` read from one MessagePack value: straight with `rmp-serde` (human-readable,
/// as `serde_json` is, so that types which serialize differently for people, such as
/// addresses, read what was written), and where that fails (or leaves bytes over),
/// through a [`Value`] as [`from_value`](crate::from_value) reads it, which decides the
/// error: an integral float where an integer is expected, an extension type, a repeated key.
pub(super) fn read<T: DeserializeOwned>(payload: &[u8]) -> Result<T> {
    let mut rest = payload;
    let direct = {
        let mut de = rmp_serde::Deserializer::new(&mut rest).with_human_readable();
        de.set_max_depth(Value::MAX_DEPTH);
        T::deserialize(&mut de)
    };
    match direct {
        Ok(message) if rest.is_empty() => Ok(message),
        _ => crate::json::from_value(&crate::codec::decode_msgpack(payload)?),
    }
}
