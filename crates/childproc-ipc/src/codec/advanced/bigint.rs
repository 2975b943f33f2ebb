//! `BigInt` magnitudes: the decimal text of [`Value::BigInt`](crate::Value::BigInt) ↔ V8's
//! little-endian bytes. Schoolbook arithmetic on 32-bit limbs (so that every division is a
//! native 64-bit one), quadratic in the length, which is why the codec caps the size
//! ([`MAX_BYTES`]).

/// The largest BigInt magnitude the codec carries, in bytes (32 768 bits, about 9 860
/// decimal digits). Converting between binary and decimal is quadratic: this keeps a
/// hostile frame from costing more than about a millisecond.
pub(crate) const MAX_BYTES: usize = 4 * 1024;

/// 10^9, the largest power of ten in a `u32`.
const CHUNK: u64 = 1_000_000_000;
const CHUNK_DIGITS: usize = 9;

/// The magnitude of `digits` (ASCII decimal digits, no sign) as little-endian bytes in whole
/// 8-byte digits, as V8 writes them (empty for zero).
pub(super) fn le_bytes_from_decimal(digits: &str) -> Vec<u8> {
    let bytes = digits.as_bytes();
    let mut limbs: Vec<u32> = Vec::with_capacity(bytes.len() / CHUNK_DIGITS + 1);
    let mut rest = bytes;
    let mut take = match bytes.len() % CHUNK_DIGITS {
        0 => CHUNK_DIGITS,
        n => n,
    };
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(take.min(rest.len()));
        rest = tail;
        take = CHUNK_DIGITS;
        let mut value = 0u64;
        let mut scale = 1u64;
        for &b in chunk {
            value = value * 10 + u64::from(b.wrapping_sub(b'0') % 10);
            scale *= 10;
        }
        // limbs = limbs * scale + value
        let mut carry = value;
        for limb in &mut limbs {
            let t = u64::from(*limb) * scale + carry;
            *limb = t as u32;
            carry = t >> 32;
        }
        if carry != 0 {
            limbs.push(carry as u32);
        }
    }
    trim(&mut limbs);
    if limbs.len() % 2 == 1 {
        limbs.push(0);
    }
    limbs.iter().flat_map(|l| l.to_le_bytes()).collect()
}

/// The decimal digits (no sign) of the little-endian magnitude `bytes`; `"0"` for zero.
pub(super) fn decimal_from_le_bytes(bytes: &[u8]) -> String {
    let mut limbs: Vec<u32> = bytes
        .chunks(4)
        .map(|c| {
            let mut le = [0u8; 4];
            le[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(le)
        })
        .collect();
    trim(&mut limbs);
    if limbs.is_empty() {
        return "0".into();
    }
    let mut chunks = Vec::with_capacity(limbs.len() * 10 / 9 + 1);
    while !limbs.is_empty() {
        let mut rem = 0u64;
        for limb in limbs.iter_mut().rev() {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / CHUNK) as u32;
            rem = cur % CHUNK;
        }
        chunks.push(rem as u32);
        trim(&mut limbs);
    }
    let mut out = String::with_capacity(chunks.len() * CHUNK_DIGITS);
    let mut iter = chunks.iter().rev();
    if let Some(first) = iter.next() {
        out.push_str(&first.to_string());
    }
    for chunk in iter {
        out.push_str(&format!("{chunk:09}"));
    }
    out
}

fn trim(limbs: &mut Vec<u32>) {
    while limbs.last() == Some(&0) {
        limbs.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(words: &[u64]) -> Vec<u8> {
        words.iter().flat_map(|l| l.to_le_bytes()).collect()
    }

    #[test]
    fn decimal_and_binary_agree() {
        for (digits, words) in [
            ("0", vec![]),
            ("1", vec![1]),
            ("1000000000", vec![1_000_000_000]),
            ("18446744073709551615", vec![u64::MAX]),
            ("18446744073709551616", vec![0, 1]),
            (
                "340282366920938463463374607431768211455",
                vec![u64::MAX, u64::MAX],
            ),
        ] {
            assert_eq!(le_bytes_from_decimal(digits), le(&words), "{digits}");
            assert_eq!(decimal_from_le_bytes(&le(&words)), digits);
        }
        // Any byte length, high zeros ignored.
        assert_eq!(decimal_from_le_bytes(&[5]), "5");
        assert_eq!(
            decimal_from_le_bytes(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
            "256"
        );
        assert_eq!(decimal_from_le_bytes(&[0, 0]), "0");
        let long = "1234567890".repeat(40);
        assert_eq!(decimal_from_le_bytes(&le_bytes_from_decimal(&long)), long);
    }
}
