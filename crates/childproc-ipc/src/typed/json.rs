//! Typed messages as JSON text, straight from `serde` through `serde_json` with a
//! [`Formatter`] that writes numbers as JavaScript does: the text [`json::stringify`] writes
//! for the [`Value`] that [`to_value`] makes of the same message, byte for byte.
//!
//! [`json::stringify`]: crate::json::stringify
//! [`to_value`]: crate::to_value
//! [`Value`]: crate::Value

use std::io;

use bytes::{BufMut, BytesMut};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};

use crate::{IpcError, Result, Value};

/// Integers up to this magnitude are exact doubles; beyond it a JavaScript number rounds.
pub(super) const MAX_SAFE: u64 = 1 << 53;

/// `serde_json`'s compact output, except numbers outside strings: each is written as the
/// JavaScript number it becomes (`JSON.stringify(JSON.parse(text))`): integers beyond 2⁵³
/// rounded to the nearest double, `-0.0` as `0`, `1.0` as `1`, `1e21` as `1e+21`, an `f32`
/// as the double its shortest text reads as. Numbers inside strings (map keys) keep
/// `serde_json`'s text, as the `Value` path keeps a key's text. Containers deeper than
/// [`Value::MAX_DEPTH`] are refused, as the `Value` path refuses them.
#[derive(Default)]
struct JsFormatter {
    in_string: bool,
    depth: usize,
}

/// The double that `serde_json`'s text for `v` (an `f32`) reads as.
pub(super) fn f32_as_read(v: f32) -> f64 {
    let mut text = Vec::with_capacity(16);
    // Writing into a Vec cannot fail; a finite f32's shortest text always parses.
    let _ = CompactFormatter.write_f32(&mut text, v);
    std::str::from_utf8(&text)
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(f64::from(v))
}

fn write_js<W: ?Sized + io::Write>(w: &mut W, n: f64) -> io::Result<()> {
    if n == 0.0 {
        w.write_all(b"0")
    } else {
        w.write_all(ryu_js::Buffer::new().format_finite(n).as_bytes())
    }
}

fn too_deep() -> io::Error {
    io::Error::other(format!(
        "a value nested deeper than {} levels",
        Value::MAX_DEPTH
    ))
}

macro_rules! js_ints {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method<W: ?Sized + io::Write>(&mut self, w: &mut W, v: $ty) -> io::Result<()> {
            #[allow(clippy::cast_lossless, clippy::unnecessary_cast)]
            if self.in_string || (v as i128).unsigned_abs() <= MAX_SAFE as u128 {
                CompactFormatter.$method(w, v)
            } else {
                write_js(w, v as f64)
            }
        }
    )*};
}

impl Formatter for JsFormatter {
    js_ints!(write_i8: i8, write_i16: i16, write_i32: i32, write_i64: i64,
        write_u8: u8, write_u16: u16, write_u32: u32, write_u64: u64);

    fn write_i128<W: ?Sized + io::Write>(&mut self, w: &mut W, v: i128) -> io::Result<()> {
        if self.in_string || v.unsigned_abs() <= u128::from(MAX_SAFE) {
            CompactFormatter.write_i128(w, v)
        } else {
            write_js(w, v as f64)
        }
    }

    fn write_u128<W: ?Sized + io::Write>(&mut self, w: &mut W, v: u128) -> io::Result<()> {
        if self.in_string || v <= u128::from(MAX_SAFE) {
            CompactFormatter.write_u128(w, v)
        } else {
            write_js(w, v as f64)
        }
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, w: &mut W, v: f32) -> io::Result<()> {
        if self.in_string {
            CompactFormatter.write_f32(w, v)
        } else {
            write_js(w, f32_as_read(v))
        }
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, v: f64) -> io::Result<()> {
        if self.in_string {
            CompactFormatter.write_f64(w, v)
        } else {
            write_js(w, v)
        }
    }

    fn write_number_str<W: ?Sized + io::Write>(&mut self, _: &mut W, _: &str) -> io::Result<()> {
        Err(io::Error::other("arbitrary-precision numbers"))
    }

    fn write_raw_fragment<W: ?Sized + io::Write>(&mut self, _: &mut W, _: &str) -> io::Result<()> {
        Err(io::Error::other("raw JSON fragments"))
    }

    fn begin_string<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.in_string = true;
        CompactFormatter.begin_string(w)
    }

    fn end_string<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.in_string = false;
        CompactFormatter.end_string(w)
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.enter()?;
        CompactFormatter.begin_array(w)
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth -= 1;
        CompactFormatter.end_array(w)
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.enter()?;
        CompactFormatter.begin_object(w)
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth -= 1;
        CompactFormatter.end_object(w)
    }
}

impl JsFormatter {
    fn enter(&mut self) -> io::Result<()> {
        if self.depth >= Value::MAX_DEPTH {
            return Err(too_deep());
        }
        self.depth += 1;
        Ok(())
    }
}

/// An error of a typed serializer: what it could not represent is [`IpcError::Unsupported`].
pub(super) fn unsupported(e: impl std::fmt::Display) -> IpcError {
    IpcError::unsupported(e.to_string())
}

/// Appends `message` as the JSON text the `Value` path writes for it. On error `out` may
/// hold a partial text: callers roll it back.
pub(super) fn write<T: Serialize + ?Sized>(message: &T, out: &mut BytesMut) -> Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(out.writer(), JsFormatter::default());
    message.serialize(&mut ser).map_err(unsupported)
}

/// `message` read from JSON text: straight with `serde_json`, and where that fails, through
/// a [`Value`] as [`from_value`](crate::from_value) reads it (which decides the error), so
/// that text `serde_json` refuses but `JSON.parse` reads (a lone surrogate escape, a
/// repeated key) decodes as it always did.
pub(super) fn read<T: DeserializeOwned>(text: &[u8]) -> Result<T> {
    match serde_json::from_slice(text) {
        Ok(message) => Ok(message),
        Err(_) => crate::json::from_value(&crate::json::parse(text)?),
    }
}
