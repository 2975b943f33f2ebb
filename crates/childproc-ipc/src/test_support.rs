//! Shared pieces of the codecs' unit tests: value strategies, exact comparison, a decoder
//! driver that behaves like `FramedRead`.

use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

use crate::value::{ArrayBuffer, JsError, SparseArray, TypedArray, TypedArrayKind};
use crate::{IpcError, Value};

/// Equality that tells -0 from 0 and takes NaN as equal to NaN (bit for bit).
pub fn same(a: &Value, b: &Value) -> bool {
    fn num(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits()
    }
    fn all(a: &[Value], b: &[Value]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
    }
    fn pairs<K: PartialEq>(a: &[(K, Value)], b: &[(K, Value)]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
    }
    match (a, b) {
        (Value::Number(a), Value::Number(b)) | (Value::Date(a), Value::Date(b)) => num(*a, *b),
        (Value::Array(a), Value::Array(b)) | (Value::Set(a), Value::Set(b)) => all(a, b),
        (Value::Object(a), Value::Object(b)) => pairs(a, b),
        (Value::Map(a), Value::Map(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| same(ka, kb) && same(va, vb))
        }
        (Value::SparseArray(a), Value::SparseArray(b)) => {
            a.length == b.length
                && pairs(&a.elements, &b.elements)
                && pairs(&a.properties, &b.properties)
        }
        (Value::Error(a), Value::Error(b)) => {
            a.name == b.name
                && a.message == b.message
                && a.stack == b.stack
                && match (&a.cause, &b.cause) {
                    (Some(a), Some(b)) => same(a, b),
                    (a, b) => a.is_none() && b.is_none(),
                }
        }
        (Value::Boxed(a), Value::Boxed(b)) => same(a, b),
        (Value::Shared { id: ia, value: a }, Value::Shared { id: ib, value: b }) => {
            ia == ib && same(a, b)
        }
        _ => a == b,
    }
}

/// `v` with its [`Value::Shared`] ids renumbered as a decoder numbers them (objects depth
/// first, in order), and without the `Shared`s that no `Ref` names, so that values from
/// different numberings compare.
pub fn renumbered(v: &Value) -> Value {
    fn refs(v: &Value, out: &mut std::collections::HashSet<u32>) {
        if let Value::Ref(id) = v {
            out.insert(*id);
        }
        match v {
            Value::Array(items) | Value::Set(items) => items.iter().for_each(|v| refs(v, out)),
            Value::Object(pairs) => pairs.iter().for_each(|(_, v)| refs(v, out)),
            Value::Map(entries) => entries.iter().for_each(|(k, v)| {
                refs(k, out);
                refs(v, out)
            }),
            Value::SparseArray(a) => {
                a.elements.iter().for_each(|(_, v)| refs(v, out));
                a.properties.iter().for_each(|(_, v)| refs(v, out));
            }
            Value::Error(e) => e.cause.iter().for_each(|v| refs(v, out)),
            Value::Shared { value, .. } => refs(value, out),
            _ => {}
        }
    }
    let mut named = std::collections::HashSet::new();
    refs(v, &mut named);
    let mut next = 0;
    let mut ids = std::collections::HashMap::new();
    walk(v, &mut next, &mut ids, &named)
}

fn walk(
    v: &Value,
    next: &mut u32,
    ids: &mut std::collections::HashMap<u32, u32>,
    named: &std::collections::HashSet<u32>,
) -> Value {
    {
        if let Value::Shared { id, value } = v {
            ids.insert(*id, *next);
            let inner = walk(value, next, ids, named);
            if !named.contains(id) {
                return inner;
            }
            return Value::shared(ids[id], inner);
        }
        if let Value::Ref(id) = v {
            return Value::Ref(ids.get(id).copied().unwrap_or(u32::MAX));
        }
        if v.is_object() {
            *next += 1;
        }
        let mut w = |v: &Value| walk(v, next, ids, named);
        match v {
            Value::Array(items) => Value::Array(items.iter().map(&mut w).collect()),
            Value::Set(items) => Value::Set(items.iter().map(&mut w).collect()),
            Value::Object(pairs) => {
                Value::Object(pairs.iter().map(|(k, v)| (k.clone(), w(v))).collect())
            }
            Value::Map(entries) => Value::Map(entries.iter().map(|(k, v)| (w(k), w(v))).collect()),
            Value::SparseArray(a) => {
                let elements = a.elements.iter().map(|(i, v)| (*i, w(v))).collect();
                let properties = a
                    .properties
                    .iter()
                    .map(|(k, v)| (k.clone(), w(v)))
                    .collect();
                Value::from(SparseArray {
                    length: a.length,
                    elements,
                    properties,
                })
            }
            Value::Error(e) => {
                let mut e = e.clone();
                e.cause = e.cause.as_ref().map(w);
                Value::Error(e)
            }
            other => other.clone(),
        }
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
        (text(), text(), proptest::option::of(text()))
            .prop_map(|(name, message, stack)| Value::error(name, message).with_stack(stack)),
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

/// Every kind of [`Value`] the structured-clone model has, and identity: some objects
/// shared (a [`Value::Ref`] after them) and some cyclic (a `Ref` inside them).
pub fn arb_clone_value() -> impl Strategy<Value = Value> {
    let kind = proptest::sample::select(TypedArrayKind::ALL.to_vec());
    let leaf = prop_oneof![
        4 => arb_value(),
        1 => (kind, proptest::collection::vec(any::<u8>(), 0..24)).prop_map(|(kind, mut bytes)| {
            bytes.truncate(bytes.len() / kind.element_size() * kind.element_size());
            Value::TypedArray(TypedArray::new(kind, bytes).unwrap())
        }),
        1 => proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::DataView),
        1 => (proptest::collection::vec(any::<u8>(), 0..8), proptest::option::of(8u32..64))
            .prop_map(|(bytes, max_byte_length)| Value::ArrayBuffer(ArrayBuffer { bytes, max_byte_length })),
        1 => prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<f64>().prop_map(Value::Number),
            text().prop_map(Value::String),
            big_int().prop_map(Value::BigInt),
        ].prop_map(|p| Value::Boxed(Box::new(p))),
    ];
    let tree = leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            (
                0u32..5_000_000_000u64.min(u32::MAX as u64 - 1) as u32,
                proptest::collection::btree_map(0u32..1_000, inner.clone(), 0..4),
                proptest::collection::vec(("[a-z]{1,3}", inner.clone()), 0..2)
            )
                .prop_map(|(extra, elements, properties)| {
                    let elements: Vec<(u32, Value)> = elements.into_iter().collect();
                    let top = elements.last().map_or(0, |(i, _)| i + 1);
                    Value::from(SparseArray {
                        length: top.saturating_add(extra % 1_000_000),
                        elements,
                        properties: dedup_keys(properties),
                    })
                }),
            proptest::collection::vec((text(), inner.clone()), 0..6).prop_map(Value::Object),
            proptest::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Value::Map),
            (text(), text(), inner.clone()).prop_map(|(name, message, cause)| Value::from(
                JsError {
                    name,
                    message,
                    stack: None,
                    cause: Some(cause),
                }
            )),
            proptest::collection::vec(inner, 0..6).prop_map(Value::Set),
        ]
    });
    (tree, proptest::collection::vec(any::<u8>(), 0..6))
        .prop_map(|(v, picks)| with_identity(v, &picks))
}

/// `v` with identity added where `picks` say: the picked objects (by their number, depth
/// first) become [`Value::Shared`], and a picked leaf after or inside each becomes its
/// [`Value::Ref`].
fn with_identity(mut v: Value, picks: &[u8]) -> Value {
    fn count(v: &Value, objects: &mut u32, leaves: &mut u32) {
        let v = v.unshared();
        if v.is_object() {
            *objects += 1;
        } else {
            *leaves += 1;
        }
        for child in children(v) {
            count(child, objects, leaves);
        }
    }
    fn children(v: &Value) -> Vec<&Value> {
        match v {
            Value::Array(items) | Value::Set(items) => items.iter().collect(),
            Value::Object(pairs) => pairs.iter().map(|(_, v)| v).collect(),
            Value::Map(entries) => entries.iter().flat_map(|(k, v)| [k, v]).collect(),
            Value::SparseArray(a) => a
                .elements
                .iter()
                .map(|(_, v)| v)
                .chain(a.properties.iter().map(|(_, v)| v))
                .collect(),
            Value::Error(e) => e.cause.iter().collect(),
            _ => vec![],
        }
    }
    fn children_mut(v: &mut Value) -> Vec<&mut Value> {
        match v {
            Value::Array(items) | Value::Set(items) => items.iter_mut().collect(),
            Value::Object(pairs) => pairs.iter_mut().map(|(_, v)| v).collect(),
            Value::Map(entries) => entries.iter_mut().flat_map(|(k, v)| [k, v]).collect(),
            Value::SparseArray(a) => a
                .elements
                .iter_mut()
                .map(|(_, v)| v)
                .chain(a.properties.iter_mut().map(|(_, v)| v))
                .collect(),
            Value::Error(e) => e.cause.iter_mut().collect(),
            _ => vec![],
        }
    }
    /// Walks in order; wraps object number `target` (→ `*state = 1`), then turns the first
    /// leaf at or after leaf number `leaf` met once the target is open into a Ref.
    #[allow(clippy::too_many_arguments)]
    fn walk(
        v: &mut Value,
        target: u32,
        leaf: u32,
        objects: &mut u32,
        leaves: &mut u32,
        state: &mut u8,
        id: u32,
        ref_id: &mut u32,
    ) {
        if *state == 2 {
            return;
        }
        if let Value::Shared { id: shared, value } = v {
            // Already shared: picked, it gets another Ref.
            if *objects == target {
                *ref_id = *shared;
            }
            *objects += 1;
            for child in children_mut(value) {
                walk(child, target, leaf, objects, leaves, state, id, ref_id);
            }
            return;
        }
        if v.is_object() {
            let me = *objects;
            *objects += 1;
            for child in children_mut(v) {
                walk(child, target, leaf, objects, leaves, state, id, ref_id);
            }
            if me == target && *state == 0 {
                // No leaf inside: the Ref may still come after.
                *state = 1;
            }
            if me == target {
                let inner = std::mem::replace(v, Value::Null);
                *v = Value::shared(id, inner);
            }
            return;
        }
        let me = *leaves;
        *leaves += 1;
        if matches!(v, Value::Ref(_)) {
            return;
        }
        let inside_or_after = *objects > target;
        if inside_or_after && me >= leaf && *state < 2 {
            *v = Value::Ref(*ref_id);
            *state = 2;
        }
    }
    for (n, pick) in picks.chunks(2).enumerate() {
        let (mut objects, mut leaves) = (0, 0);
        count(&v, &mut objects, &mut leaves);
        if objects == 0 || leaves == 0 {
            break;
        }
        let target = u32::from(pick[0]) % objects;
        let leaf = u32::from(*pick.get(1).unwrap_or(&0)) % leaves;
        let (mut o, mut l, mut state) = (0, 0, 0);
        let id = 1000 + n as u32;
        walk(&mut v, target, leaf, &mut o, &mut l, &mut state, id, &mut {
            id
        });
    }
    v
}
