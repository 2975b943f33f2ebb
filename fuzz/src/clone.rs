//! `clone_roundtrip`: values of the whole structured-clone model, identity included (and
//! sometimes broken on purpose), built from the fuzzer's bytes and encoded by every codec.
//! Encoding never panics; what encodes decodes; and a decoded value encodes to the same
//! bytes again (the wire form is a fixed point after one round trip). In MessagePack the
//! decoded value is the value itself.

use arbitrary::{Result, Unstructured};
use bytes::BytesMut;
use childproc_ipc::{
    AdvancedCodec, ArrayBuffer, IpcError, JsError, LengthJsonCodec, MsgPackCodec,
    NodeJsonCodec, SparseArray, TypedArray, TypedArrayKind, Value,
};
use tokio_util::codec::{Decoder, Encoder};

/// Ids shared so far, how deep the builder may still go, and whether a sparse array is long
/// (JSON writes a `null` for each hole: the JSON codecs are not run then).
struct Builder {
    ids: Vec<u32>,
    depth: usize,
    long: bool,
}

impl Builder {
    fn value(&mut self, u: &mut Unstructured<'_>) -> Result<Value> {
        if self.depth == 0 || u.is_empty() {
            return self.leaf(u);
        }
        self.depth -= 1;
        let v = match u.int_in_range(0..=12)? {
            0 => Value::Array(self.items(u)?),
            1 => Value::Set(self.items(u)?),
            2 => {
                let n = u.int_in_range(0..=4)?;
                let mut pairs = Vec::new();
                for _ in 0..n {
                    pairs.push((u.arbitrary::<String>()?, self.value(u)?));
                }
                Value::Object(pairs)
            }
            3 => {
                let n = u.int_in_range(0..=3)?;
                let mut entries = Vec::new();
                for _ in 0..n {
                    entries.push((self.value(u)?, self.value(u)?));
                }
                Value::Map(entries)
            }
            4 => {
                let length = if u.arbitrary()? {
                    u.int_in_range(0..=2000)?
                } else {
                    self.long = true;
                    u.arbitrary::<u32>()?
                };
                let mut elements = Vec::new();
                let mut next = 0u32;
                for _ in 0..u.int_in_range(0..=3)? {
                    // Mostly increasing and in range; sometimes not (an encoder refuses it).
                    next = next.saturating_add(u.int_in_range(0..=1000)?);
                    elements.push((next, self.value(u)?));
                    next = next.saturating_add(1);
                }
                let properties = if u.arbitrary()? {
                    vec![(u.arbitrary::<String>()?, self.value(u)?)]
                } else {
                    vec![]
                };
                Value::from(SparseArray {
                    length,
                    elements,
                    properties,
                })
            }
            5 => Value::from(JsError {
                name: u.arbitrary()?,
                message: u.arbitrary()?,
                stack: u.arbitrary()?,
                cause: if u.arbitrary()? { Some(self.value(u)?) } else { None },
            }),
            6 | 7 => {
                // A shared object, mostly with a fresh id.
                let id = if u.arbitrary()? {
                    self.ids.len() as u32
                } else {
                    u.arbitrary()?
                };
                self.ids.push(id);
                Value::shared(id, self.value(u)?)
            }
            _ => self.leaf(u)?,
        };
        self.depth += 1;
        Ok(v)
    }

    fn items(&mut self, u: &mut Unstructured<'_>) -> Result<Vec<Value>> {
        let n = u.int_in_range(0..=4)?;
        (0..n).map(|_| self.value(u)).collect()
    }

    fn leaf(&mut self, u: &mut Unstructured<'_>) -> Result<Value> {
        Ok(match u.int_in_range(0..=15)? {
            0 => Value::Undefined,
            1 => Value::Null,
            2 => Value::Bool(u.arbitrary()?),
            3 => Value::Number(u.arbitrary()?),
            4 => Value::BigInt(u.arbitrary::<i64>()?.to_string()),
            5 => Value::String(u.arbitrary()?),
            6 => Value::Bytes(u.arbitrary()?),
            7 => Value::Date(u.arbitrary()?),
            8 => {
                let kind = *u.choose(&TypedArrayKind::ALL)?;
                let n = u.int_in_range(0..=4)? * kind.element_size();
                let bytes = u.bytes(n.min(u.len()) / kind.element_size() * kind.element_size())?;
                Value::TypedArray(TypedArray::new(kind, bytes.to_vec()).unwrap_or_else(|| {
                    TypedArray::from_slice::<u8>(&[])
                }))
            }
            9 => Value::DataView(u.arbitrary()?),
            10 => Value::ArrayBuffer(ArrayBuffer {
                bytes: u.arbitrary()?,
                max_byte_length: u.arbitrary()?,
            }),
            11 => Value::Boxed(Box::new(match u.int_in_range(0..=4)? {
                0 => Value::Bool(u.arbitrary()?),
                1 => Value::Number(u.arbitrary()?),
                2 => Value::String(u.arbitrary()?),
                3 => Value::BigInt(u.arbitrary::<i32>()?.to_string()),
                _ => Value::Null,
            })),
            12 | 13 if !self.ids.is_empty() => Value::Ref(*u.choose(&self.ids)?),
            14 => Value::Ref(u.arbitrary()?),
            _ => Value::RegExp {
                source: u.arbitrary()?,
                flags: "gi".into(),
            },
        })
    }
}

fn encode<C: for<'a> Encoder<&'a Value, Error = IpcError>>(
    codec: &mut C,
    v: &Value,
) -> std::result::Result<BytesMut, IpcError> {
    let mut buf = BytesMut::new();
    codec.encode(v, &mut buf)?;
    Ok(buf)
}

/// Encode, decode, encode again: the same bytes when `bytes` (else the same value after a
/// second round trip: JSON's repeated keys merge on the first); the decoded value is returned.
fn fixed_point<C>(new: impl Fn() -> C, v: &Value, name: &str, bytes: bool) -> Option<Value>
where
    C: for<'a> Encoder<&'a Value, Error = IpcError> + Decoder<Item = Value, Error = IpcError>,
{
    let wire = encode(&mut new(), v).ok()?;
    let mut frame = wire.clone();
    let back = match new().decode(&mut frame) {
        Ok(Some(back)) if frame.is_empty() => back,
        other => panic!("{name}: what encoded does not decode: {other:?}\n{v:?}"),
    };
    let again = encode(&mut new(), &back)
        .unwrap_or_else(|e| panic!("{name}: a decoded value does not encode: {e}\n{back:?}"));
    if bytes {
        assert_eq!(wire, again, "{name}: not a fixed point\n{v:?}\n{back:?}");
    } else {
        let mut frame = again;
        let back2 = new().decode(&mut frame).ok().flatten();
        assert_eq!(
            format!("{back2:?}"),
            format!("{:?}", Some(&back)),
            "{name}: not a fixed point\n{v:?}"
        );
    }
    Some(back)
}

/// The fuzz target's body.
pub fn check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut builder = Builder {
        ids: Vec::new(),
        depth: 8,
        long: false,
    };
    let Ok(v) = builder.value(&mut u) else {
        return;
    };
    if let Some(back) = fixed_point(MsgPackCodec::new, &v, "msgpack", true) {
        assert_eq!(format!("{back:?}"), format!("{v:?}"), "msgpack changed the value");
    }
    fixed_point(AdvancedCodec::new, &v, "advanced", true);
    if !builder.long {
        fixed_point(NodeJsonCodec::new, &v, "json", false);
        fixed_point(LengthJsonCodec::new, &v, "json-length", false);
    }
}
