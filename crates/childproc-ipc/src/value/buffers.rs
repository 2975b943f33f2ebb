//! Binary data in the value model: typed arrays with their element type, and `ArrayBuffer`s.

use std::fmt;

/// The element type of a [`TypedArray`]: every typed-array kind Node.js 20 has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypedArrayKind {
    /// `Int8Array`.
    Int8,
    /// `Uint8Array`.
    Uint8,
    /// `Uint8ClampedArray`.
    Uint8Clamped,
    /// `Int16Array`.
    Int16,
    /// `Uint16Array`.
    Uint16,
    /// `Int32Array`.
    Int32,
    /// `Uint32Array`.
    Uint32,
    /// `Float32Array`.
    Float32,
    /// `Float64Array`.
    Float64,
    /// `BigInt64Array`.
    BigInt64,
    /// `BigUint64Array`.
    BigUint64,
}

impl TypedArrayKind {
    /// Every kind, in Node's order of view types.
    pub const ALL: [TypedArrayKind; 11] = [
        TypedArrayKind::Int8,
        TypedArrayKind::Uint8,
        TypedArrayKind::Uint8Clamped,
        TypedArrayKind::Int16,
        TypedArrayKind::Uint16,
        TypedArrayKind::Int32,
        TypedArrayKind::Uint32,
        TypedArrayKind::Float32,
        TypedArrayKind::Float64,
        TypedArrayKind::BigInt64,
        TypedArrayKind::BigUint64,
    ];

    /// `BYTES_PER_ELEMENT`.
    pub fn element_size(self) -> usize {
        match self {
            TypedArrayKind::Int8 | TypedArrayKind::Uint8 | TypedArrayKind::Uint8Clamped => 1,
            TypedArrayKind::Int16 | TypedArrayKind::Uint16 => 2,
            TypedArrayKind::Int32 | TypedArrayKind::Uint32 | TypedArrayKind::Float32 => 4,
            TypedArrayKind::Float64 | TypedArrayKind::BigInt64 | TypedArrayKind::BigUint64 => 8,
        }
    }

    /// The JavaScript constructor's name, e.g. `"Float32Array"`.
    pub fn name(self) -> &'static str {
        match self {
            TypedArrayKind::Int8 => "Int8Array",
            TypedArrayKind::Uint8 => "Uint8Array",
            TypedArrayKind::Uint8Clamped => "Uint8ClampedArray",
            TypedArrayKind::Int16 => "Int16Array",
            TypedArrayKind::Uint16 => "Uint16Array",
            TypedArrayKind::Int32 => "Int32Array",
            TypedArrayKind::Uint32 => "Uint32Array",
            TypedArrayKind::Float32 => "Float32Array",
            TypedArrayKind::Float64 => "Float64Array",
            TypedArrayKind::BigInt64 => "BigInt64Array",
            TypedArrayKind::BigUint64 => "BigUint64Array",
        }
    }
}

impl fmt::Display for TypedArrayKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A typed array: its element type and its bytes, little-endian as in memory (what a
/// JavaScript typed array holds on every platform Node.js runs on).
///
/// The byte length is always a whole number of elements.
///
/// ```
/// use childproc_ipc::{TypedArray, TypedArrayKind, Value};
///
/// let a = TypedArray::from_slice(&[1.5f64, -0.0]);
/// assert_eq!(a.kind(), TypedArrayKind::Float64);
/// assert_eq!(a.len(), 2);
/// assert_eq!(a.to_vec::<f64>(), Some(vec![1.5, -0.0]));
/// assert_eq!(a.to_vec::<f32>(), None);
/// let _message = Value::from(a);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TypedArray {
    kind: TypedArrayKind,
    bytes: Vec<u8>,
}

impl TypedArray {
    /// A typed array of `kind` over `bytes`; `None` when the length is not a whole number of
    /// elements.
    pub fn new(kind: TypedArrayKind, bytes: Vec<u8>) -> Option<TypedArray> {
        bytes
            .len()
            .is_multiple_of(kind.element_size())
            .then_some(TypedArray { kind, bytes })
    }

    /// The typed array of `T`'s kind holding these elements (`u8` makes a `Uint8Array`).
    pub fn from_slice<T: TypedArrayElement>(elements: &[T]) -> TypedArray {
        let mut bytes = Vec::with_capacity(std::mem::size_of_val(elements));
        for e in elements {
            e.put_le(&mut bytes);
        }
        TypedArray {
            kind: T::KIND,
            bytes,
        }
    }

    /// The element type.
    pub fn kind(&self) -> TypedArrayKind {
        self.kind
    }

    /// The bytes, little-endian.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes, taken out.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The number of elements (`length` in JavaScript).
    pub fn len(&self) -> usize {
        self.bytes.len() / self.kind.element_size()
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The elements as `T`s, if `T` is this array's element type (`u8` for `Uint8Array`
    /// and `Uint8ClampedArray`).
    pub fn to_vec<T: TypedArrayElement>(&self) -> Option<Vec<T>> {
        let fits = self.kind == T::KIND
            || (self.kind == TypedArrayKind::Uint8Clamped && T::KIND == TypedArrayKind::Uint8);
        fits.then(|| {
            self.bytes
                .chunks_exact(self.kind.element_size())
                .map(T::from_le)
                .collect()
        })
    }
}

/// A Rust number type that is the element of a typed array kind (`u8` → `Uint8Array`,
/// `f64` → `Float64Array`, `i64` → `BigInt64Array`…).
pub trait TypedArrayElement: Copy + sealed::Sealed {
    /// The kind of typed array these elements make.
    const KIND: TypedArrayKind;
    #[doc(hidden)]
    fn put_le(self, out: &mut Vec<u8>);
    #[doc(hidden)]
    fn from_le(bytes: &[u8]) -> Self;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! element {
    ($($t:ty => $kind:ident),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl TypedArrayElement for $t {
            const KIND: TypedArrayKind = TypedArrayKind::$kind;
            fn put_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn from_le(bytes: &[u8]) -> Self {
                let mut le = [0; std::mem::size_of::<$t>()];
                le.copy_from_slice(bytes);
                <$t>::from_le_bytes(le)
            }
        }
    )*};
}

element!(
    i8 => Int8, u8 => Uint8, i16 => Int16, u16 => Uint16, i32 => Int32, u32 => Uint32,
    f32 => Float32, f64 => Float64, i64 => BigInt64, u64 => BigUint64,
);

/// An `ArrayBuffer`: its bytes, and for a resizable one (`new ArrayBuffer(n, {
/// maxByteLength })`) the most it may grow to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ArrayBuffer {
    /// The contents.
    pub bytes: Vec<u8>,
    /// `maxByteLength` of a resizable buffer (at least the length); `None` for a fixed one.
    pub max_byte_length: Option<u32>,
}

impl From<Vec<u8>> for ArrayBuffer {
    fn from(bytes: Vec<u8>) -> Self {
        ArrayBuffer {
            bytes,
            max_byte_length: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_round_trip_and_kinds_check() {
        assert_eq!(
            TypedArray::from_slice(&[1i16, -1]).bytes(),
            [1, 0, 0xff, 0xff]
        );
        assert_eq!(
            TypedArray::from_slice(&[u64::MAX]).to_vec::<u64>(),
            Some(vec![u64::MAX])
        );
        assert_eq!(
            TypedArray::from_slice(&[5i64]).kind(),
            TypedArrayKind::BigInt64
        );
        assert!(TypedArray::new(TypedArrayKind::Float64, vec![0; 7]).is_none());
        let clamped = TypedArray::new(TypedArrayKind::Uint8Clamped, vec![9]).unwrap();
        assert_eq!(clamped.to_vec::<u8>(), Some(vec![9]));
        assert_eq!(clamped.to_vec::<i8>(), None);
        for kind in TypedArrayKind::ALL {
            let a = TypedArray::new(kind, vec![0; 8]).unwrap();
            assert_eq!(a.len() * kind.element_size(), 8);
            assert!(kind.name().ends_with("Array"));
        }
    }
}
