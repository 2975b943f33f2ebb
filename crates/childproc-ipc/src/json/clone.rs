//! `JSON.stringify` of the structured-clone kinds beyond JSON's own: what Node's `'json'`
//! serialization sends for a typed array, a sparse array or a boxed primitive.

use bytes::BufMut;

use super::write::{check_write_depth, write_decimal, write_inner, write_number};
use crate::value::{Expansion, TypedArray, TypedArrayKind};
use crate::{IpcError, Result, Value};

/// The longest string V8 makes (2²⁹ − 24 characters): `JSON.stringify` of a longer text
/// throws "Invalid string length".
const MAX_STRING_LENGTH: u64 = (1 << 29) - 24;

pub(super) fn write<'v, B: BufMut>(
    value: &'v Value,
    out: &mut B,
    depth: usize,
    identity: &mut Expansion<'v>,
) -> Result<()> {
    match value {
        Value::TypedArray(array) => typed_array(array, out),
        Value::SparseArray(array) => {
            check_write_depth(depth)?;
            // Every hole is `null,`: refuse what V8 could not make, before writing any.
            if u64::from(array.length) * 5 > MAX_STRING_LENGTH {
                return Err(IpcError::unsupported(format!(
                    "a sparse array of length {} in JSON (JSON.stringify writes each hole as \
                     null, beyond the longest string V8 makes: \"Invalid string length\")",
                    array.length
                )));
            }
            out.put_u8(b'[');
            let mut elements = array.elements.iter().peekable();
            for i in 0..array.length {
                if i > 0 {
                    out.put_u8(b',');
                }
                match elements.next_if(|(at, _)| *at == i) {
                    Some((_, item)) => write_inner(item, out, depth + 1, identity)?,
                    None => out.put_slice(b"null"),
                }
            }
            out.put_u8(b']');
            Ok(())
        }
        Value::Boxed(inner) => match &**inner {
            Value::BigInt(_) => Err(IpcError::unsupported(
                "a boxed BigInt in JSON (JSON.stringify throws \"Do not know how to serialize \
                 a BigInt\")",
            )),
            primitive => write_inner(primitive, out, depth, identity),
        },
        _ => Err(IpcError::unsupported("a kind json::clone does not write")),
    }
}

/// `{"0":…,"1":…}`: a typed array's own enumerable properties are its indices.
fn typed_array<B: BufMut>(array: &TypedArray, out: &mut B) -> Result<()> {
    let kind = array.kind();
    if matches!(kind, TypedArrayKind::BigInt64 | TypedArrayKind::BigUint64) && !array.is_empty() {
        return Err(IpcError::unsupported(format!(
            "a {kind} in JSON (JSON.stringify throws \"Do not know how to serialize a BigInt\")"
        )));
    }
    out.put_u8(b'{');
    let size = kind.element_size();
    for (i, e) in array.bytes().chunks_exact(size).enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_u8(b'"');
        write_decimal(i as u64, out);
        out.put_slice(b"\":");
        let n = match kind {
            TypedArrayKind::Int8 => f64::from(e[0] as i8),
            TypedArrayKind::Uint8 | TypedArrayKind::Uint8Clamped => f64::from(e[0]),
            TypedArrayKind::Int16 => f64::from(i16::from_le_bytes([e[0], e[1]])),
            TypedArrayKind::Uint16 => f64::from(u16::from_le_bytes([e[0], e[1]])),
            TypedArrayKind::Int32 => f64::from(i32::from_le_bytes([e[0], e[1], e[2], e[3]])),
            TypedArrayKind::Uint32 => f64::from(u32::from_le_bytes([e[0], e[1], e[2], e[3]])),
            TypedArrayKind::Float32 => f64::from(f32::from_le_bytes([e[0], e[1], e[2], e[3]])),
            TypedArrayKind::Float64 | TypedArrayKind::BigInt64 | TypedArrayKind::BigUint64 => {
                let mut le = [0; 8];
                le.copy_from_slice(e);
                f64::from_le_bytes(le)
            }
        };
        write_number(n, out);
    }
    out.put_u8(b'}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::json::stringify;
    use crate::value::{ArrayBuffer, JsError, SparseArray, TypedArray};
    use crate::{IpcError, Value};

    /// What Node 20 prints for `JSON.stringify([...])` of the same values.
    #[test]
    fn as_json_stringify_writes_them() {
        let e = Value::from(JsError {
            name: "Error".into(),
            message: "m".into(),
            stack: Some("s".into()),
            cause: Some(Value::from(1)),
        });
        let holey = Value::from(SparseArray {
            length: 3,
            elements: vec![(0, Value::from(1)), (2, Value::from(3))],
            properties: vec![("foo".into(), Value::from(2))],
        });
        let v = Value::Array(vec![
            Value::from(TypedArray::from_slice(&[1i16, -2])),
            Value::from(TypedArray::from_slice(&[0.1f32])),
            Value::DataView(vec![0, 0]),
            Value::ArrayBuffer(ArrayBuffer::from(vec![0, 0])),
            Value::Boxed(Box::new(Value::from(1.5))),
            Value::Boxed(Box::new(Value::from("s"))),
            Value::Boxed(Box::new(Value::Bool(false))),
            e,
            holey,
            Value::from(TypedArray::from_slice::<u8>(&[])),
            Value::from(TypedArray::from_slice::<i64>(&[])),
            Value::from(TypedArray::from_slice(&[f64::NAN, 1e21, 250.0])),
        ]);
        assert_eq!(
            stringify(&v).unwrap(),
            r#"[{"0":1,"1":-2},{"0":0.10000000149011612},{},{},1.5,"s",false,{},[1,null,3],{},{},{"0":null,"1":1e+21,"2":250}]"#
        );
    }

    /// `o = {x: 1}; JSON.stringify({a: o, b: o})` writes it twice; a cycle throws.
    #[test]
    fn shared_objects_are_copies_and_cycles_are_refused() {
        let o = Value::object([("x", Value::from(1))]);
        let shared = Value::object([("a", Value::shared(4, o)), ("b", Value::Ref(4))]);
        assert_eq!(stringify(&shared).unwrap(), r#"{"a":{"x":1},"b":{"x":1}}"#);
        // A Ref to an object that holds a Shared of its own.
        let inner = Value::shared(1, Value::Array(vec![]));
        let nested = Value::Array(vec![
            Value::shared(2, Value::Array(vec![inner, Value::Ref(1)])),
            Value::Ref(2),
        ]);
        assert_eq!(stringify(&nested).unwrap(), "[[[],[]],[[],[]]]");
        let cyclic = Value::shared(0, Value::object([("self", Value::Ref(0))]));
        for refused in [
            cyclic,
            Value::Ref(3),
            Value::Array(vec![Value::Boxed(Box::new(Value::BigInt("5".into())))]),
            Value::from(TypedArray::from_slice(&[5i64])),
            Value::from(SparseArray {
                length: 200_000_000,
                elements: vec![],
                properties: vec![],
            }),
        ] {
            assert!(
                matches!(stringify(&refused), Err(IpcError::Unsupported { .. })),
                "{refused:?}"
            );
        }
        let msg = stringify(&Value::shared(0, Value::Array(vec![Value::Ref(0)]))).unwrap_err();
        assert!(
            msg.to_string()
                .contains("Converting circular structure to JSON"),
            "{msg}"
        );
    }

    proptest::proptest! {
        /// Any value of the model: JSON text that parses, or a refusal; and the parsed value
        /// writes the same text again (JSON.stringify's mapping is a fixed point after one
        /// round trip).
        #[test]
        fn every_clone_value_is_json_or_refused(v in crate::test_support::arb_clone_value()) {
            match stringify(&v) {
                Ok(text) => {
                    let back = crate::json::parse(text.as_bytes()).unwrap();
                    let again = stringify(&back).unwrap();
                    let back2 = crate::json::parse(again.as_bytes()).unwrap();
                    proptest::prop_assert!(crate::test_support::same(&back, &back2), "{text}");
                }
                Err(e) => proptest::prop_assert!(matches!(e, IpcError::Unsupported { .. }), "{e:?}"),
            }
        }
    }

    /// References that double at each level would write 2^40 values: refused.
    #[test]
    fn copies_are_bounded() {
        let mut v = Value::shared(0, Value::Array(vec![]));
        for id in 1..=40 {
            v = Value::shared(id, Value::Array(vec![v, Value::Ref(id - 1)]));
            v = Value::Array(vec![v]);
            v = match v {
                Value::Array(mut items) => items.remove(0),
                other => other,
            };
        }
        // v = [[…], ref]: the refs unfold into 2^40 arrays.
        let err = stringify(&v).unwrap_err();
        assert!(err.to_string().contains("copied values"), "{err}");
    }
}
