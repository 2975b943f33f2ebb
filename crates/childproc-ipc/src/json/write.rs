//! Writing a [`Value`] as `JSON.stringify` does (see the [module docs](super) for the
//! mapping), and the number, string and date forms it uses.

use bytes::BufMut;

use super::clone;
use crate::value::Expansion;
use crate::{IpcError, Result, Value};

/// Writes `JSON.stringify(value)` to `out`. On error `out` may hold a partial text: callers
/// roll it back.
pub(crate) fn write_value<B: BufMut>(value: &Value, out: &mut B) -> Result<()> {
    if let Value::Undefined = value {
        return Err(IpcError::unsupported(
            "undefined as a JSON message (Node's send() throws ERR_MISSING_ARGS)",
        ));
    }
    write_inner(value, out, 0, &mut Expansion::default())
}

pub(super) fn write_inner<'v, B: BufMut>(
    value: &'v Value,
    out: &mut B,
    depth: usize,
    identity: &mut Expansion<'v>,
) -> Result<()> {
    identity.count()?;
    match value {
        // `Undefined` only gets here inside an array, where JSON.stringify writes null.
        Value::Undefined | Value::Null => out.put_slice(b"null"),
        Value::Bool(true) => out.put_slice(b"true"),
        Value::Bool(false) => out.put_slice(b"false"),
        Value::Number(n) => write_number(*n, out),
        Value::BigInt(_) => return Err(IpcError::unsupported(
            "a BigInt in JSON (JSON.stringify throws \"Do not know how to serialize a BigInt\")",
        )),
        Value::String(s) => write_str(s, out),
        Value::Bytes(bytes) => {
            out.put_slice(br#"{"type":"Buffer","data":["#);
            for (i, b) in bytes.iter().enumerate() {
                if i > 0 {
                    out.put_u8(b',');
                }
                write_u8_decimal(*b, out);
            }
            out.put_slice(b"]}");
        }
        Value::Array(items) => {
            check_write_depth(depth)?;
            out.put_u8(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.put_u8(b',');
                }
                write_inner(item, out, depth + 1, identity)?;
            }
            out.put_u8(b']');
        }
        Value::Object(pairs) => {
            check_write_depth(depth)?;
            out.put_u8(b'{');
            let mut first = true;
            for (key, item) in pairs {
                if let Value::Undefined = item {
                    continue;
                }
                write_key(key, !first, out);
                first = false;
                write_inner(item, out, depth + 1, identity)?;
            }
            out.put_u8(b'}');
        }
        Value::Map(_)
        | Value::Set(_)
        | Value::RegExp { .. }
        | Value::Error(_)
        | Value::DataView(_)
        | Value::ArrayBuffer(_) => out.put_slice(b"{}"),
        Value::Date(ms) => match iso_date(*ms) {
            Some(iso) => {
                out.put_u8(b'"');
                out.put_slice(iso.as_bytes());
                out.put_u8(b'"');
            }
            None => out.put_slice(b"null"),
        },
        Value::TypedArray(_) | Value::SparseArray(_) | Value::Boxed(_) => {
            clone::write(value, out, depth, identity)?
        }
        Value::Shared { id, value: inner } => {
            let inner = identity.enter_shared(*id, inner)?;
            write_inner(inner, out, depth, identity)?;
            identity.leave(false);
        }
        Value::Ref(id) => {
            let target = identity.enter_ref(*id)?;
            write_inner(target, out, depth, identity)?;
            identity.leave(true);
        }
    }
    Ok(())
}

pub(super) fn check_write_depth(depth: usize) -> Result<()> {
    if depth >= Value::MAX_DEPTH {
        return Err(IpcError::unsupported(format!(
            "a value nested deeper than {} levels",
            Value::MAX_DEPTH
        )));
    }
    Ok(())
}

pub(super) fn write_number<B: BufMut>(n: f64, out: &mut B) {
    // A whole number below 2^53 (ids, counts): its digits, as JavaScript prints it, without
    // the shortest-round-trip search. Whole is tested by a round trip through i64 rather
    // than `f64::fract` (a libm call on x86-64). Both zeros print "0", as JSON.stringify(-0).
    #[allow(clippy::cast_possible_truncation)]
    let whole = n as i64;
    #[allow(clippy::cast_precision_loss)]
    if n.abs() < MAX_EXACT && whole as f64 == n {
        write_integer(whole, out);
    } else if !n.is_finite() {
        out.put_slice(b"null");
    } else {
        out.put_slice(ryu_js::Buffer::new().format_finite(n).as_bytes());
    }
}

/// 2^53: every whole number below it is exact in a double, and JavaScript prints it as its
/// plain digits.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

/// `n` in decimal, a sign before it if negative.
fn write_integer<B: BufMut>(n: i64, out: &mut B) {
    if n < 0 {
        out.put_u8(b'-');
    }
    write_decimal(n.unsigned_abs(), out);
}

/// The decimal digits of `n`, two at a time.
pub(super) fn write_decimal<B: BufMut>(mut n: u64, out: &mut B) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        buf[at] = b'0' + n as u8;
    }
    out.put_slice(&buf[at..]);
}

fn write_u8_decimal<B: BufMut>(b: u8, out: &mut B) {
    if b >= 100 {
        out.put_u8(b'0' + b / 100);
    }
    if b >= 10 {
        out.put_u8(b'0' + (b / 10) % 10);
    }
    out.put_u8(b'0' + b % 10);
}

/// How long a string [`write_short`] takes: keys and short values, most of a message's
/// strings.
const SHORT: usize = 32;

/// Writes `text` quoted, after a comma if `comma` and before a colon if `colon`, with one
/// copy into `out`, if `text` is [`SHORT`] and needs no escape. Whether it did.
fn write_short<B: BufMut>(text: &str, comma: bool, colon: bool, out: &mut B) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() > SHORT || crate::scan::plain_len(bytes) != bytes.len() {
        return false;
    }
    // `[,]"text"[:]`: the comma and the colon are always written, and left out by where
    // the text starts and how much is put.
    let mut buf = [0u8; SHORT + 4];
    let mut at = usize::from(comma);
    buf[0] = b',';
    buf[at] = b'"';
    copy_short(&mut buf[at + 1..], bytes);
    at += 1 + bytes.len();
    buf[at] = b'"';
    buf[at + 1] = b':';
    out.put_slice(&buf[..at + 1 + usize::from(colon)]);
    true
}

/// `dst[..src.len()] = src` for at most [`SHORT`] bytes, by two fixed-size (overlapping)
/// copies: a `memcpy` call would cost more than the copy.
fn copy_short(dst: &mut [u8], src: &[u8]) {
    debug_assert!(
        src.len() <= SHORT,
        "two 16-byte copies cover at most 32 bytes"
    );
    fn two<const N: usize>(dst: &mut [u8], src: &[u8]) {
        let n = src.len();
        dst[..N].copy_from_slice(&src[..N]);
        dst[n - N..n].copy_from_slice(&src[n - N..]);
    }
    match src.len() {
        0 => {}
        n @ 1..=3 => {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        4..=7 => two::<4>(dst, src),
        8..=15 => two::<8>(dst, src),
        _ => two::<16>(dst, src),
    }
}

/// An object's key, `,"key":` (without the comma for the first).
fn write_key<B: BufMut>(key: &str, comma: bool, out: &mut B) {
    if !write_short(key, comma, true, out) {
        if comma {
            out.put_u8(b',');
        }
        write_escaped(key, out);
        out.put_u8(b':');
    }
}

pub(super) fn write_str<B: BufMut>(s: &str, out: &mut B) {
    if !write_short(s, false, false, out) {
        write_escaped(s, out);
    }
}

/// A string, quoted, any length, escapes written as `JSON.stringify` writes them.
fn write_escaped<B: BufMut>(s: &str, out: &mut B) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.put_u8(b'"');
    let mut rest = s.as_bytes();
    loop {
        // Copy the run that needs no escape (multi-byte UTF-8 included) in one go.
        let plain = crate::scan::plain_len(rest);
        out.put_slice(&rest[..plain]);
        let Some(&b) = rest.get(plain) else {
            break;
        };
        rest = &rest[plain + 1..];
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => {
                out.put_slice(b"\\u00");
                out.put_u8(HEX[usize::from(b >> 4)]);
                out.put_u8(HEX[usize::from(b & 0xf)]);
                continue;
            }
        };
        out.put_slice(escape);
    }
    out.put_u8(b'"');
}

/// `Date.prototype.toJSON`: the ISO-8601 text of a time value, `None` for an invalid date.
pub(super) fn iso_date(ms: f64) -> Option<String> {
    // TimeClip: beyond ±8.64e15 ms (or NaN) a JavaScript Date is invalid; else truncate.
    if !ms.is_finite() || ms.abs() > 8.64e15 {
        return None;
    }
    let t = ms.trunc() as i64;
    const DAY: i64 = 86_400_000;
    let (days, in_day) = (t.div_euclid(DAY), t.rem_euclid(DAY));
    let (year, month, day) = civil_from_days(days);
    let (h, min, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    let year = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else if year > 0 {
        format!("+{year:06}")
    } else {
        format!("-{:06}", -year)
    };
    Some(format!(
        "{year}-{month:02}-{day:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z"
    ))
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
