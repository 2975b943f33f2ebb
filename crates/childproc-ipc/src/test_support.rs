//! Shared pieces of the codecs' unit tests: value strategies, exact comparison, a decoder
//! driver that behaves like `FramedRead`.

use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

use crate::{IpcError, Value};

/// Equality that tells -0 from 0 and takes NaN as equal to NaN (bit for bit).
pub fn same(a: &Value, b: &Value) -> bool {
    fn num(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits()
    }
    match (a, b) {
        (Value::Number(a), Value::Number(b)) | (Value::Date(a), Value::Date(b)) => num(*a, *b),
        (Value::Array(a), Value::Array(b)) | (Value::Set(a), Value::Set(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
        }
        (Value::Map(a), Value::Map(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| same(ka, kb) && same(va, vb))
        }
        _ => a == b,
    }
}

/// Feeds `chunks` to `codec` one after the other as reads, like `FramedRead`: the frames
/// decoded, and the error that stopped decoding, if any.
pub fn decode_stream<D>(codec: &mut D, chunks: &[&[u8]]) -> (Vec<Value>, Option<IpcError>)
where
    D: Decoder<Item = Value, Error = IpcError>,
{
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(v)) => out.push(v),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(v)) => out.push(v),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// Encodes `values` one after the other with a codec from `new`, decodes the bytes cut at
/// `cuts` with another, and checks that exactly the same values come back, in order.
pub fn check_roundtrip<C>(
    new: impl Fn() -> C,
    values: &[Value],
    cuts: &[usize],
) -> Result<(), TestCaseError>
where
    C: for<'v> Encoder<&'v Value, Error = IpcError> + Decoder<Item = Value, Error = IpcError>,
{
    let mut buf = BytesMut::new();
    let mut codec = new();
    for v in values {
        codec.encode(v, &mut buf).unwrap();
    }
    let (got, err) = decode_stream(&mut new(), &chunked(&buf, cuts));
    prop_assert!(err.is_none(), "{err:?}");
    prop_assert_eq!(got.len(), values.len());
    for (a, b) in got.iter().zip(values) {
        prop_assert!(same(a, b), "{:?} != {:?}", a, b);
    }
    Ok(())
}

/// `bytes` cut at the given offsets (taken modulo its length + 1).
pub fn chunked<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for cut in cuts {
        pieces.push(&bytes[start..cut]);
        start = cut;
    }
    pieces.push(&bytes[start..]);
    pieces
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "(?s).{0,12}",
        "[a-z\\\\\"\\n\\r\\t\\u{0}-\\u{1f}\\u{7f}\\u{2028}é😀]{0,8}",
    ]
}

fn dedup_keys<V>(pairs: Vec<(String, V)>) -> Vec<(String, V)> {
    let mut seen = std::collections::HashSet::new();
    pairs
        .into_iter()
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect()
}

/// Values JSON carries without loss: null, booleans, finite numbers other than -0,
/// strings, arrays and objects with distinct keys.
pub fn arb_json_value() -> impl Strategy<Value = Value> {
    use proptest::num::f64 as f;
    let number = (f::NORMAL | f::SUBNORMAL | f::ZERO | f::POSITIVE | f::NEGATIVE).prop_map(|x| {
        if x == 0.0 {
            0.0
        } else {
            x
        }
    });
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number.prop_map(Value::Number),
        (-1000i32..1000).prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((text(), inner), 0..6)
                .prop_map(|pairs| Value::Object(dedup_keys(pairs))),
        ]
    })
}

fn big_int() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i128>().prop_map(|n| n.to_string()),
        "-?[1-9][0-9]{0,80}",
        Just("0".to_owned()),
    ]
}

/// Every kind of [`Value`], numbers and dates including NaN, ±Infinity and -0.
pub fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Undefined),
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>().prop_map(Value::Number),
        prop_oneof![
            Just(f64::NAN),
            Just(-0.0),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(9007199254740992.0),
            Just(-9007199254740993.0),
            Just(1e300)
        ]
        .prop_map(Value::Number),
        any::<i64>().prop_map(|n| Value::Number(n as f64)),
        big_int().prop_map(Value::BigInt),
        text().prop_map(Value::String),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
        any::<f64>().prop_map(Value::Date),
        (text(), "[dgimsuvy]{0,4}").prop_map(|(source, flags)| Value::RegExp { source, flags }),
        (text(), text(), proptest::option::of(text())).prop_map(|(name, message, stack)| {
            Value::Error {
                name,
                message,
                stack,
            }
        }),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((text(), inner.clone()), 0..6).prop_map(Value::Object),
            proptest::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Value::Map),
            proptest::collection::vec(inner, 0..6).prop_map(Value::Set),
        ]
    })
}
