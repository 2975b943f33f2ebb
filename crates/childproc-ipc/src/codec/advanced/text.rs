//! Between Rust's UTF-8 and V8's two string forms, Latin-1 (one byte a character) and
//! UTF-16LE: the copying a V8 peer never does, so it is done a word at a time (plain `u64`
//! arithmetic, no `unsafe`): ASCII runs, most of real text, are found eight bytes (or four
//! UTF-16 units) at a time and copied or widened in one go.

use bytes::{BufMut, BytesMut};

const HIGH: u64 = 0x8080_8080_8080_8080;
/// The bits that are zero in four UTF-16LE units that are all ASCII.
const UNITS_NOT_ASCII: u64 = 0xff80_ff80_ff80_ff80;

fn word(bytes: &[u8], i: usize) -> Option<u64> {
    let chunk: [u8; 8] = bytes.get(i..i + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// The Latin-1 bytes of `s`, whose characters are all at most U+00FF, appended to `out`.
/// (A character above U+00FF, which callers rule out, is written as `?`.)
pub(super) fn latin1_from_utf8(s: &str, out: &mut BytesMut) {
    let src = s.as_bytes();
    let mut i = 0;
    while i < src.len() {
        if let Some(x) = word(src, i) {
            // The ASCII bytes before the first that is not (a whole word is stored, then
            // cut back: a store of a known size is much cheaper than a copy of a short run).
            let plain = ((x & HIGH).trailing_zeros() / 8) as usize;
            out.extend_from_slice(&x.to_le_bytes());
            out.truncate(out.len() - 8 + plain);
            i += plain;
            if plain == 8 {
                continue;
            }
        }
        let b = src[i];
        if b < 0x80 {
            out.put_u8(b);
            i += 1;
        } else if b < 0xc4 && i + 1 < src.len() {
            // A C2 or C3 lead and its continuation: a character below U+0100.
            out.put_u8((b & 0x03) << 6 | (src[i + 1] & 0x3f));
            i += 2;
        } else {
            out.put_u8(b'?');
            i += 1;
            while i < src.len() && src[i] & 0xc0 == 0x80 {
                i += 1;
            }
        }
    }
}

/// The number of UTF-16 units of `s`.
pub(super) fn utf16_len(s: &str) -> usize {
    // One unit per character, two for a 4-byte sequence: the bytes that are not
    // continuations, and the 4-byte leads once more. (Two counts: each vectorizes well, a
    // sum of both per byte does not.)
    let bytes = s.as_bytes();
    let starts = bytes.iter().filter(|&&b| (b as i8) >= -64).count();
    let quads = bytes.iter().filter(|&&b| b >= 0xf0).count();
    starts + quads
}

/// The UTF-16LE bytes of `s` appended to `out`; `units` is [`utf16_len`] of `s`.
pub(super) fn utf16le_from_utf8(s: &str, units: usize, out: &mut BytesMut) {
    let start = out.len();
    out.resize(start + units * 2, 0);
    let dst = &mut out[start..];
    let src = s.as_bytes();
    let (mut i, mut o) = (0, 0);
    while i < src.len() {
        if let Some(x) = word(src, i) {
            if x & HIGH == 0 && o + 16 <= dst.len() {
                // Eight ASCII bytes widened to eight units in two words.
                let spread = |x: u64| {
                    (x & 0xff) | (x & 0xff00) << 8 | (x & 0xff_0000) << 16 | (x & 0xff00_0000) << 24
                };
                dst[o..o + 8].copy_from_slice(&spread(x).to_le_bytes());
                dst[o + 8..o + 16].copy_from_slice(&spread(x >> 32).to_le_bytes());
                i += 8;
                o += 16;
                continue;
            }
        }
        // One character; the commonest kinds first. `s` is UTF-8, so its continuation bytes
        // are there; `get` keeps a mistake from panicking.
        let b = src[i];
        let c = if b < 0x80 {
            i += 1;
            u32::from(b)
        } else if (0xe0..0xf0).contains(&b) {
            i += 3;
            u32::from(b & 0x0f) << 12 | cont(src, i - 2) << 6 | cont(src, i - 1)
        } else if b < 0xe0 {
            i += 2;
            u32::from(b & 0x1f) << 6 | cont(src, i - 1)
        } else {
            i += 4;
            u32::from(b & 0x07) << 18
                | cont(src, i - 3) << 12
                | cont(src, i - 2) << 6
                | cont(src, i - 1)
        };
        if c < 0x1_0000 {
            if let Some(d) = dst.get_mut(o..o + 2) {
                d.copy_from_slice(&(c as u16).to_le_bytes());
            }
            o += 2;
        } else {
            let c = c - 0x1_0000;
            let high = 0xd800 | (c >> 10) as u16;
            let low = 0xdc00 | (c & 0x3ff) as u16;
            if let Some(d) = dst.get_mut(o..o + 4) {
                d[..2].copy_from_slice(&high.to_le_bytes());
                d[2..].copy_from_slice(&low.to_le_bytes());
            }
            o += 4;
        }
    }
}

/// The payload bits of the continuation byte at `i` (a `&str` has it).
fn cont(src: &[u8], i: usize) -> u32 {
    u32::from(src.get(i).copied().unwrap_or(0x80) & 0x3f)
}

/// Latin-1 bytes as UTF-8.
pub(super) fn utf8_from_latin1(bytes: &[u8]) -> String {
    let high = bytes.iter().filter(|&&b| b >= 0x80).count();
    // Sized exactly and written by index: no capacity check per byte.
    let mut out = vec![0u8; bytes.len() + high];
    let (mut i, mut o) = (0, 0);
    while i < bytes.len() {
        if let (Some(x), Some(dst)) = (word(bytes, i), out.get_mut(o..o + 8)) {
            dst.copy_from_slice(&x.to_le_bytes());
            // The ASCII bytes before the first that is not are in place.
            let plain = ((x & HIGH).trailing_zeros() / 8) as usize;
            i += plain;
            o += plain;
            if plain == 8 {
                continue;
            }
        }
        let b = bytes[i];
        i += 1;
        if b < 0x80 {
            out[o] = b;
            o += 1;
        } else {
            out[o] = 0xc0 | b >> 6;
            out[o + 1] = 0x80 | (b & 0x3f);
            o += 2;
        }
    }
    // ASCII bytes and whole two-byte sequences: UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// UTF-16LE units (`bytes` of even length) as UTF-8; a lone surrogate becomes U+FFFD.
pub(super) fn utf8_from_utf16le(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() / 2 + bytes.len() / 4);
    let mut i = 0;
    let unit = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    while i + 1 < bytes.len() {
        if let Some(x) = word(bytes, i) {
            if x & UNITS_NOT_ASCII == 0 {
                // Four ASCII units narrowed to four bytes.
                let narrow = (x & 0xff)
                    | (x >> 8) & 0xff00
                    | (x >> 16) & 0xff_0000
                    | (x >> 24) & 0xff00_0000;
                out.extend_from_slice(&(narrow as u32).to_le_bytes());
                i += 8;
                continue;
            }
            // The ASCII units before the first that is not (four narrowed, then cut back).
            let plain = ((x & UNITS_NOT_ASCII).trailing_zeros() / 16) as usize;
            let narrow =
                (x & 0xff) | (x >> 8) & 0xff00 | (x >> 16) & 0xff_0000 | (x >> 24) & 0xff00_0000;
            out.extend_from_slice(&(narrow as u32).to_le_bytes());
            out.truncate(out.len() - 4 + plain);
            i += plain * 2;
        }
        let u = unit(i);
        i += 2;
        let c = match u {
            0x0000..=0x007f => {
                out.push(u as u8);
                continue;
            }
            0xd800..=0xdbff if i + 1 < bytes.len() && (0xdc00..=0xdfff).contains(&unit(i)) => {
                let low = unit(i);
                i += 2;
                0x1_0000 + ((u32::from(u) - 0xd800) << 10 | (u32::from(low) - 0xdc00))
            }
            0xd800..=0xdfff => 0xfffd,
            _ => u32::from(u),
        };
        let c = char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER);
        let mut utf8 = [0; 4];
        out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
    }
    // Every piece pushed is whole UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn agrees_with_the_standard_library(s in "(?s).{0,40}", latin in "[\\u{0}-\\u{ff}]{0,40}") {
            let mut wide = BytesMut::new();
            utf16le_from_utf8(&s, utf16_len(&s), &mut wide);
            let want: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
            prop_assert_eq!(&wide[..], &want[..]);
            prop_assert_eq!(utf16_len(&s), s.encode_utf16().count());
            prop_assert_eq!(utf8_from_utf16le(&wide), s);
            let mut narrow = BytesMut::new();
            latin1_from_utf8(&latin, &mut narrow);
            let want: Vec<u8> = latin.chars().map(|c| c as u8).collect();
            prop_assert_eq!(&narrow[..], &want[..]);
            prop_assert_eq!(utf8_from_latin1(&narrow), latin);
        }

        #[test]
        fn lone_surrogates_become_replacement_characters(units in proptest::collection::vec(any::<u16>(), 0..20)) {
            let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_le_bytes()).collect();
            let want: String = char::decode_utf16(units.iter().copied())
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect();
            prop_assert_eq!(utf8_from_utf16le(&bytes), want);
        }
    }
}
