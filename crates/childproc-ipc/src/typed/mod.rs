//! Typed messages straight to and from the wire: a `Serialize` message is encoded for a
//! channel's codec without building a [`Value`], and a `Deserialize` one is read from the
//! frame's bytes ([`TypedCodec`]).
//!
//! The bytes are the ones the [`Value`] path writes for the same message (encoding
//! [`to_value`](crate::to_value)`(&message)` with the same codec), byte for byte, so a peer
//! cannot tell them apart (a Node.js peer in `'json'` mode reads them unchanged):
//!
//! | codec | typed encoding | typed decoding |
//! |---|---|---|
//! | [`NodeJsonCodec`], [`LengthJsonCodec`] | `serde_json` with a formatter that writes numbers as JavaScript does | `serde_json::from_slice` |
//! | [`MsgPackCodec`] | `serde_json`'s serializer (the same data model) driving a formatter that writes MessagePack | `rmp-serde` |
//! | [`AdvancedCodec`] | through a [`Value`] | through a [`Value`] |
//!
//! Numbers follow JavaScript's, as through a [`Value`]: every number is a double, so an
//! integer beyond ±2⁵³ is rounded to the nearest one, `-0.0` is `0` in JSON, an `f32` is
//! the double its shortest text reads as, NaN and ±Infinity are `null`.
//!
//! Decoding reads the frame straight into `T`; where that fails it falls back to the
//! [`Value`] path ([`from_value`](crate::from_value) of the decoded frame), which then
//! decides the result or the error. So typed decoding reads whatever the `Value` path reads,
//! with the same result, except where the direct read succeeds on input the `Value` path
//! would have read differently; none of these come from Node.js or from our encoders'
//! numbers, see docs/ipc.md ("Typed messages").
//!
//! [`Value`]: crate::Value

mod json;
mod msgpack;

use bytes::{BufMut, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::codec::{Decoder, Encoder};

use crate::codec::frame;
use crate::serialization::AnyCodec;
use crate::{AdvancedCodec, IpcError, LengthJsonCodec, MsgPackCodec, NodeJsonCodec, Result};

/// A codec that also encodes and decodes typed (`serde`) messages, without a [`Value`](crate::Value) in
/// between where its format allows (see the [module docs](self)).
pub trait TypedCodec {
    /// Appends one frame holding `message`: the bytes the codec writes for
    /// [`to_value`](crate::to_value)`(message)`. Fails as that does ([`IpcError::Unsupported`]
    /// for what JSON cannot hold, such as a map with non-string keys, or nesting deeper than
    /// [`Value::MAX_DEPTH`](crate::Value::MAX_DEPTH)), or with [`IpcError::FrameTooLarge`]; on error `dst` is left
    /// as it was.
    fn encode_typed<T: Serialize + ?Sized>(
        &mut self,
        message: &T,
        dst: &mut BytesMut,
    ) -> Result<()>;

    /// Takes the next whole frame out of `src` and reads it as a `T`, if it has arrived.
    /// A frame that is not a `T` is an error (consumed, as a malformed frame is).
    fn decode_typed<T: DeserializeOwned>(&mut self, src: &mut BytesMut) -> Result<Option<T>>;
}

impl TypedCodec for NodeJsonCodec {
    fn encode_typed<T: Serialize + ?Sized>(
        &mut self,
        message: &T,
        dst: &mut BytesMut,
    ) -> Result<()> {
        let start = dst.len();
        let max = self.max_frame();
        let result = json::write(message, dst).and_then(|()| {
            let len = dst.len() - start;
            if len > max {
                return Err(IpcError::FrameTooLarge { len, max });
            }
            dst.put_u8(b'\n');
            Ok(())
        });
        if result.is_err() {
            dst.truncate(start);
        }
        result
    }

    fn decode_typed<T: DeserializeOwned>(&mut self, src: &mut BytesMut) -> Result<Option<T>> {
        self.read_line(src, json::read)
    }
}

impl TypedCodec for LengthJsonCodec {
    fn encode_typed<T: Serialize + ?Sized>(
        &mut self,
        message: &T,
        dst: &mut BytesMut,
    ) -> Result<()> {
        frame::encode_prefixed(dst, self.max_frame(), |dst| json::write(message, dst))
    }

    fn decode_typed<T: DeserializeOwned>(&mut self, src: &mut BytesMut) -> Result<Option<T>> {
        frame::split_prefixed(src, self.max_frame())?
            .map(|payload| json::read(&payload))
            .transpose()
    }
}

impl TypedCodec for MsgPackCodec {
    fn encode_typed<T: Serialize + ?Sized>(
        &mut self,
        message: &T,
        dst: &mut BytesMut,
    ) -> Result<()> {
        frame::encode_prefixed(dst, self.max_frame(), |dst| msgpack::write(message, dst))
    }

    fn decode_typed<T: DeserializeOwned>(&mut self, src: &mut BytesMut) -> Result<Option<T>> {
        frame::split_prefixed(src, self.max_frame())?
            .map(|payload| msgpack::read(&payload))
            .transpose()
    }
}

/// V8's format goes through a [`Value`](crate::Value): a `serde` serializer for it would be a second
/// writer of that format, and messages in `'advanced'` mode are usually the kinds JSON
/// cannot carry, which a `Value` holds and `serde` does not (see docs/design.md).
impl TypedCodec for AdvancedCodec {
    fn encode_typed<T: Serialize + ?Sized>(
        &mut self,
        message: &T,
        dst: &mut BytesMut,
    ) -> Result<()> {
        self.encode(crate::to_value(message)?, dst)
    }

    fn decode_typed<T: DeserializeOwned>(&mut self, src: &mut BytesMut) -> Result<Option<T>> {
        self.decode(src)?
            .map(|value| crate::from_value(&value))
            .transpose()
    }
}

impl TypedCodec for AnyCodec {
    fn encode_typed<T: Serialize + ?Sized>(
        &mut self,
        message: &T,
        dst: &mut BytesMut,
    ) -> Result<()> {
        match self {
            AnyCodec::NodeJson(c) => c.encode_typed(message, dst),
            AnyCodec::LengthJson(c) => c.encode_typed(message, dst),
            AnyCodec::MsgPack(c) => c.encode_typed(message, dst),
            AnyCodec::Advanced(c) => c.encode_typed(message, dst),
        }
    }

    fn decode_typed<T: DeserializeOwned>(&mut self, src: &mut BytesMut) -> Result<Option<T>> {
        match self {
            AnyCodec::NodeJson(c) => c.decode_typed(src),
            AnyCodec::LengthJson(c) => c.decode_typed(src),
            AnyCodec::MsgPack(c) => c.decode_typed(src),
            AnyCodec::Advanced(c) => c.decode_typed(src),
        }
    }
}

#[cfg(test)]
mod tests;
