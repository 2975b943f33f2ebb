//! The codecs: tokio-util [`Decoder`](tokio_util::codec::Decoder)s and
//! [`Encoder`](tokio_util::codec::Encoder)s of [`Value`](crate::Value) messages, each
//! usable on any byte stream (`FramedRead`, `FramedWrite`, `Framed`).
//!
//! | codec | frame | carries |
//! |---|---|---|
//! | [`NodeJsonCodec`] | JSON text + LF, exactly Node's `'json'` serialization | the JSON subset of [`Value`](crate::Value) |
//! | [`LengthJsonCodec`] | u32 big-endian length + JSON text | the same JSON subset |
//!
mod length_json;
mod node_json;

pub use length_json::LengthJsonCodec;
pub use node_json::NodeJsonCodec;
