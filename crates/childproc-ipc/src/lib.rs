//! Node.js-compatible IPC for [childproc](https://docs.rs/childproc).
//!
//! This crate is what a child program needs to talk to its parent over Node's IPC channel;
//! it depends on nothing of the process-spawning side. It holds:
//!
//! * [`Value`], the structured-clone value model that every codec carries and that
//!   `childproc::Event::Message` delivers;
//! * [`json`]: `Value` ↔ JSON text with `JSON.stringify`/`JSON.parse` semantics, and
//!   [`to_json`]/[`from_json`] for any `serde` type;
//! * the [`codec`]s, tokio-util `Decoder`/`Encoder`s usable on any byte stream:
//!   [`NodeJsonCodec`] (Node's `'json'` serialization, byte for byte),
//!   [`AdvancedCodec`] (Node's `'advanced'` serialization: V8's ValueSerializer format, every
//!   `Value` kind), [`LengthJsonCodec`] (the same JSON behind a length prefix) and
//!   [`MsgPackCodec`] (every `Value` kind, losslessly, as MessagePack with documented
//!   extension types);
//! * [`Handle`]: sockets and fds passed with a message over `SCM_RIGHTS` in Node's
//!   `NODE_HANDLE` protocol ([`Sender::send_handle`], [`Channel::recv`]);
//! * [`serve`] and [`serve_concurrent`], the worker's side of a `childproc::Pool`: answer
//!   each task it sends, one at a time or several at once;
//! * [`IpcError`], the one error type: bad input never panics, it is an error naming
//!   what was wrong.
//!
//! ```
//! use bytes::BytesMut;
//! use childproc_ipc::{NodeJsonCodec, Value};
//! use tokio_util::codec::{Decoder, Encoder};
//!
//! let v = Value::object([("hello", Value::from("world")), ("n", Value::from(1.5))]);
//! let mut wire = BytesMut::new();
//! NodeJsonCodec::new().encode(&v, &mut wire).unwrap();
//! assert_eq!(&wire[..], b"{\"hello\":\"world\",\"n\":1.5}\n");
//! assert_eq!(NodeJsonCodec::new().decode(&mut wire).unwrap(), Some(v));
//! ```

pub mod channel;
pub mod codec;
mod envelope;
mod error;
mod handle;
pub mod json;
mod message;
mod scan;
pub mod serialization;
mod serve;
pub mod stdio;
mod sys;
#[cfg(test)]
mod test_support;
pub mod typed;
mod value;

#[doc(hidden)]
pub use channel::Received;
pub use channel::{
    is_internal, wait_referenced, Channel, Cork, HangupProbe, Sender, BACKLOG_LIMIT,
};
pub use codec::{AdvancedCodec, LengthJsonCodec, MsgPackCodec, NodeJsonCodec};
#[doc(hidden)]
pub use envelope::Envelope;
pub use error::{IpcError, Result};
pub use handle::{Handle, Incoming};
pub use json::{from_json, from_value, to_json, to_value};
pub use message::{IntoMessage, Json};
pub use serialization::{from_env, AnyCodec, Serialization, CHANNEL_FD_ENV, SERIALIZATION_ENV};
pub use serve::{serve, serve_concurrent};
pub use stdio::{from_stdio, STDIO_CHANNEL_ENV};
pub use typed::TypedCodec;
pub use value::{
    ArrayBuffer, JsError, SparseArray, TypedArray, TypedArrayElement, TypedArrayKind, Value,
};

/// Hooks for the fuzz targets in `fuzz/`, which play a hostile peer of a real channel: not
/// part of the API, no stability promise.
#[doc(hidden)]
pub mod __fuzz {
    pub use crate::sys::{recv_with_fds, send_many_fds};
    /// See `sys::FDS_PER_READ`: room for this many fds in one of the channel's reads.
    pub const FDS_PER_READ: usize = crate::sys::FDS_PER_READ;
    /// See `sys::MAX_FDS_PER_SEND` (`SCM_MAX_FD`).
    pub const MAX_FDS_PER_SEND: usize = crate::sys::MAX_FDS_PER_SEND;
    /// At most this many received fds wait for a `NODE_HANDLE` frame.
    pub const MAX_QUEUED_FDS: usize = crate::channel::MAX_QUEUED_FDS;

    /// A [`NodeJsonCodec`](crate::NodeJsonCodec) that opens the pool's envelopes (`result`,
    /// `error`, `task`) and puts each opened one back together: for fuzzing that it decodes
    /// every input as the plain codec does.
    #[derive(Debug)]
    pub struct Opening(crate::NodeJsonCodec);

    impl Opening {
        /// Frames of at most `max_frame` bytes.
        pub fn with_max_frame(max_frame: usize) -> Self {
            let mut codec = crate::NodeJsonCodec::with_max_frame(max_frame);
            codec.open_envelopes(&["result", "error", "task"]);
            Opening(codec)
        }
    }

    impl tokio_util::codec::Decoder for Opening {
        type Item = crate::Value;
        type Error = crate::IpcError;

        fn decode(&mut self, src: &mut bytes::BytesMut) -> crate::Result<Option<crate::Value>> {
            let value = self.0.decode(src)?;
            Ok(self.rebuilt(value))
        }

        fn decode_eof(&mut self, src: &mut bytes::BytesMut) -> crate::Result<Option<crate::Value>> {
            let value = self.0.decode_eof(src)?;
            Ok(self.rebuilt(value))
        }
    }

    impl Opening {
        fn rebuilt(&mut self, value: Option<crate::Value>) -> Option<crate::Value> {
            value.map(|value| match self.0.take_opened() {
                Some((id, key)) => crate::Envelope::whole(id, key, value),
                None => value,
            })
        }
    }
}
