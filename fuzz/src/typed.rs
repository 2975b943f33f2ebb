//! `from_value`: values decoded from arbitrary bytes, then decoded again into typed
//! messages (`childproc_ipc::from_value`) of representative shapes. Must never panic; what
//! decodes must survive `to_value` and decode to the same again.

use std::collections::{BTreeMap, HashMap};

use bytes::BytesMut;
use childproc_ipc::{from_value, to_value, Serialization, Value};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio_util::codec::Decoder;

/// A job as a pool might send it: options, vectors, a nested enum, a map, every width.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    id: u64,
    name: String,
    tags: Vec<String>,
    retry: Option<u8>,
    weight: f32,
    kind: Kind,
    #[serde(default)]
    meta: HashMap<String, i64>,
    #[serde(default)]
    next: Option<Box<Job>>,
}

/// An externally tagged enum of every variant shape.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub enum Kind {
    /// A unit variant.
    Unit,
    /// A newtype variant.
    Small(i16),
    /// A struct variant.
    Wide {
        /// 32 bits.
        x: u32,
        /// 128 bits.
        y: i128,
    },
    /// A tuple variant.
    Pair(Vec<u8>, bool),
}

/// An internally tagged enum (serde buffers the content first).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Tagged {
    /// With fields.
    Start {
        /// A u16.
        port: u16,
        /// An optional char.
        sep: Option<char>,
    },
    /// Without.
    Stop,
}

/// An untagged, recursive enum.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Loose {
    /// A byte.
    Byte(i8),
    /// A wide number.
    Big(u128),
    /// A double.
    Float(f64),
    /// Text.
    Text(String),
    /// A list of more.
    List(Vec<Loose>),
    /// A map of more.
    Map(BTreeMap<String, Loose>),
}

/// Numbers of each width, and the unit type, in a tuple struct.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Widths(u8, u16, u32, i8, i16, i32, i64, u128, f64, (), char);

/// Decodes `value` as a `T`; if that works, `to_value` of it must decode again, and its
/// value form must then be a fixed point. (Not `T` equality: a number past `f32`'s range
/// decodes to an infinite `f32`, as `Math.fround` gives, which JSON writes as `null`.)
fn typed<T: DeserializeOwned + Serialize + std::fmt::Debug>(value: &Value) {
    let Ok(t) = from_value::<T>(value) else {
        return;
    };
    let again = to_value(&t)
        .unwrap_or_else(|e| panic!("{t:?} decoded from {value:?} cannot be encoded: {e}"));
    let back: T = from_value(&again)
        .unwrap_or_else(|e| panic!("{t:?} (from {value:?}) does not decode again: {e}"));
    let third = to_value(&back).unwrap_or_else(|e| panic!("{back:?} cannot be encoded: {e}"));
    assert_eq!(third, again, "{value:?} decoded to {t:?}, then {back:?}");
}

/// Every typed shape for one value.
pub fn check_value(value: &Value) {
    typed::<Job>(value);
    typed::<Kind>(value);
    typed::<Tagged>(value);
    typed::<Loose>(value);
    typed::<Widths>(value);
    typed::<Vec<Option<i32>>>(value);
    typed::<HashMap<u32, String>>(value);
    typed::<BTreeMap<String, Vec<bool>>>(value);
    typed::<(u64, Option<String>)>(value);
    typed::<Option<f32>>(value);
    typed::<String>(value);
}

/// The target body: the first byte picks the serialization, the rest is its stream; each
/// frame it decodes to (until an error) goes through [`check_value`].
pub fn check(input: &[u8]) {
    let Some((&first, data)) = input.split_first() else {
        return;
    };
    let mode = match first % 4 {
        0 => Serialization::Json,
        1 => Serialization::Advanced,
        2 => Serialization::LengthJson,
        _ => Serialization::MsgPack,
    };
    let mut codec = mode.codec().expect("codec");
    let mut buf = BytesMut::from(data);
    while let Ok(Some(value)) = codec.decode_eof(&mut buf) {
        check_value(&value);
    }
}
