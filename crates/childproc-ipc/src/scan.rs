//! Byte scans the JSON paths run over every byte of a message, eight bytes at a time (SWAR:
//! plain `u64` arithmetic, no `unsafe`, no SIMD intrinsics). A byte-at-a-time loop with a
//! `match` spent most of a 64 KiB string message's encoding and decoding time.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Nonzero iff some byte of `x` is zero.
fn has_zero(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGH
}

/// Nonzero iff some byte of `x` is below `n` (for `n` ≤ 0x80).
fn has_below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH
}

/// The eight bytes at `i`, if there are eight.
fn word(bytes: &[u8], i: usize) -> Option<u64> {
    let chunk: [u8; 8] = bytes.get(i..i + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// The index of the first `needle` in `bytes`.
pub(crate) fn find(bytes: &[u8], needle: u8) -> Option<usize> {
    let pattern = ONES * u64::from(needle);
    let mut i = 0;
    while let Some(x) = word(bytes, i) {
        let found = has_zero(x ^ pattern);
        if found != 0 {
            return Some(i + first(found));
        }
        i += 8;
    }
    bytes[i..].iter().position(|&b| b == needle).map(|p| i + p)
}

/// How many leading bytes of `bytes` a JSON string holds as they are: up to the first `"`,
/// `\` or control character (below 0x20), or all of them.
#[inline]
pub(crate) fn plain_len(bytes: &[u8]) -> usize {
    let (quote, backslash) = (ONES * u64::from(b'"'), ONES * u64::from(b'\\'));
    let mut i = 0;
    while let Some(x) = word(bytes, i) {
        let special = has_zero(x ^ quote) | has_zero(x ^ backslash) | has_below(x, 0x20);
        if special != 0 {
            return i + first(special);
        }
        i += 8;
    }
    i + bytes[i..]
        .iter()
        .position(|&b| SPECIAL[usize::from(b)])
        .unwrap_or(bytes.len() - i)
}

/// The bytes a JSON string cannot hold as they are: `"`, `\` and the controls below 0x20.
static SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// The index of the first byte flagged in a nonzero mask of [`has_zero`] or [`has_below`]
/// (little-endian words). Their lowest flag is always exact: a byte's false flag needs a
/// borrow from a flagged byte below it.
fn first(mask: u64) -> usize {
    (mask.trailing_zeros() / 8) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_plain_len(bytes: &[u8]) -> usize {
        let special = |&b: &u8| b == b'"' || b == b'\\' || b < 0x20;
        bytes.iter().position(special).unwrap_or(bytes.len())
    }

    #[test]
    fn every_special_byte_at_every_offset() {
        for len in 0..40 {
            for at in 0..len {
                for special in (0u8..0x20).chain([b'"', b'\\']) {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    assert_eq!(plain_len(&bytes), at, "{special:#x} at {at} of {len}");
                }
                let mut bytes = vec![0xe2; len]; // UTF-8 continuation-range bytes are plain
                bytes[at] = b'\n';
                assert_eq!(find(&bytes, b'\n'), Some(at));
            }
            assert_eq!(plain_len(&vec![0x7f; len]), len);
            assert_eq!(find(&vec![b'x'; len], b'\n'), None);
        }
    }

    proptest! {
        #[test]
        fn matches_the_byte_loop(bytes in proptest::collection::vec(any::<u8>(), 0..100), needle: u8) {
            prop_assert_eq!(plain_len(&bytes), naive_plain_len(&bytes));
            prop_assert_eq!(find(&bytes, needle), bytes.iter().position(|&b| b == needle));
        }
    }
}
