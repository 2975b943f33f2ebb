//! Node's `serialization` option and the codec each mode uses, chosen at run time.

use std::fmt;
use std::str::FromStr;

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::codec::{AdvancedCodec, LengthJsonCodec, MsgPackCodec, NodeJsonCodec};
use crate::error::IpcError;
use crate::value::Value;

/// How messages are framed and encoded on the channel (`NODE_CHANNEL_SERIALIZATION_MODE`).
///
/// `Json` (Node's default) and `Advanced` are what a Node peer speaks; the Rust-only modes are
/// for Rust↔Rust channels (a Node child refuses to start with them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Serialization {
    /// Node's `'json'`: one `JSON.stringify` text per line.
    #[default]
    Json,
    /// Node's `'advanced'`: a u32 big-endian length, then V8's ValueSerializer format
    /// ([`AdvancedCodec`]), carrying every `Value` kind.
    Advanced,
    /// Rust only: a u32 big-endian length, then JSON.
    LengthJson,
    /// Rust only: a u32 big-endian length, then MessagePack carrying every `Value` kind.
    MsgPack,
}

impl Serialization {
    /// The value of `NODE_CHANNEL_SERIALIZATION_MODE` for this mode.
    pub fn env_value(self) -> &'static str {
        match self {
            Serialization::Json => "json",
            Serialization::Advanced => "advanced",
            Serialization::LengthJson => "json-length",
            Serialization::MsgPack => "msgpack",
        }
    }

    /// The codec for this mode, with its default frame limit. (It cannot fail today; the
    /// `Result` leaves room for modes that need a feature or a peer check.)
    pub fn codec(self) -> Result<AnyCodec, IpcError> {
        match self {
            Serialization::Json => Ok(AnyCodec::NodeJson(NodeJsonCodec::new())),
            Serialization::LengthJson => Ok(AnyCodec::LengthJson(LengthJsonCodec::new())),
            Serialization::MsgPack => Ok(AnyCodec::MsgPack(MsgPackCodec::new())),
            Serialization::Advanced => Ok(AnyCodec::Advanced(AdvancedCodec::new())),
        }
    }
}

impl FromStr for Serialization {
    type Err = IpcError;
    fn from_str(s: &str) -> Result<Self, IpcError> {
        match s {
            "json" => Ok(Serialization::Json),
            "advanced" => Ok(Serialization::Advanced),
            "json-length" => Ok(Serialization::LengthJson),
            "msgpack" => Ok(Serialization::MsgPack),
            other => Err(IpcError::Unsupported {
                what: format!("serialization mode {other:?}"),
            }),
        }
    }
}

impl fmt::Display for Serialization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.env_value())
    }
}

/// The codec of a [`Serialization`] chosen at run time.
#[derive(Debug, Clone)]
pub enum AnyCodec {
    /// Node's json lines.
    NodeJson(NodeJsonCodec),
    /// Length-delimited JSON.
    LengthJson(LengthJsonCodec),
    /// Length-delimited MessagePack.
    MsgPack(MsgPackCodec),
    /// Node's advanced mode (V8 format).
    Advanced(AdvancedCodec),
}

impl AnyCodec {
    /// Has a Node json codec decode a pool envelope, `{"id":<number>,"<key>":<value>}` with
    /// `key` one of `keys`, as its value alone (see [`Channel::open_envelopes`]); the other
    /// serializations decode every message whole.
    ///
    /// [`Channel::open_envelopes`]: crate::Channel::open_envelopes
    pub(crate) fn open_envelopes(&mut self, keys: &'static [&'static str]) {
        if let AnyCodec::NodeJson(c) = self {
            c.open_envelopes(keys);
        }
    }

    /// The id and key of the envelope the last decoded value came in, if it was opened.
    pub(crate) fn take_opened(&mut self) -> Option<(Value, &'static str)> {
        match self {
            AnyCodec::NodeJson(c) => c.take_opened(),
            _ => None,
        }
    }
}

impl Decoder for AnyCodec {
    type Item = Value;
    type Error = IpcError;
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Value>, IpcError> {
        match self {
            AnyCodec::NodeJson(c) => c.decode(src),
            AnyCodec::LengthJson(c) => c.decode(src),
            AnyCodec::MsgPack(c) => c.decode(src),
            AnyCodec::Advanced(c) => c.decode(src),
        }
    }
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Value>, IpcError> {
        match self {
            AnyCodec::NodeJson(c) => c.decode_eof(src),
            AnyCodec::LengthJson(c) => c.decode_eof(src),
            AnyCodec::MsgPack(c) => c.decode_eof(src),
            AnyCodec::Advanced(c) => c.decode_eof(src),
        }
    }
}

impl Encoder<Value> for AnyCodec {
    type Error = IpcError;
    fn encode(&mut self, v: Value, dst: &mut BytesMut) -> Result<(), IpcError> {
        self.encode(&v, dst)
    }
}

impl Encoder<&Value> for AnyCodec {
    type Error = IpcError;
    fn encode(&mut self, v: &Value, dst: &mut BytesMut) -> Result<(), IpcError> {
        match self {
            AnyCodec::NodeJson(c) => c.encode(v, dst),
            AnyCodec::LengthJson(c) => c.encode(v, dst),
            AnyCodec::MsgPack(c) => c.encode(v, dst),
            AnyCodec::Advanced(c) => c.encode(v, dst),
        }
    }
}

/// The environment variable naming the channel's fd.
pub const CHANNEL_FD_ENV: &str = "NODE_CHANNEL_FD";
/// The environment variable naming the serialization mode.
pub const SERIALIZATION_ENV: &str = "NODE_CHANNEL_SERIALIZATION_MODE";

/// Taken exclusively by [`from_env`] while it removes the channel's variables, and shared by
/// childproc while it creates a child: a child that inherits the environment unchanged gets
/// the process's own `environ` array, which must not change under it. (It cannot be std's own
/// environment lock, which is private.) Not part of the API.
#[doc(hidden)]
pub static ENVIRONMENT: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// The channel to the parent, if this process was started with one (`NODE_CHANNEL_FD`), as
/// Node's child side finds it: both variables are read and removed from the environment (so
/// this process's own children do not see them), and the fd becomes close-on-exec and
/// non-blocking. `None` without a channel; `Some(Err)` naming what is wrong with the
/// variables or the fd. Call it once, inside a tokio runtime.
///
/// A child whose parent runs its channel over stdin and stdout (`channel_over_stdio`) has
/// [`STDIO_CHANNEL_ENV`](crate::STDIO_CHANNEL_ENV) instead: then this is
/// [`from_stdio`](crate::from_stdio) in that serialization, so the same worker serves a fork
/// and a stdio channel.
pub fn from_env() -> Option<Result<crate::channel::Channel<AnyCodec>, IpcError>> {
    // A channel over stdin and stdout (a parent's `channel_over_stdio`).
    if let Ok(mode) = std::env::var(crate::stdio::STDIO_CHANNEL_ENV) {
        {
            let _changing = ENVIRONMENT.write().unwrap_or_else(|e| e.into_inner());
            std::env::remove_var(crate::stdio::STDIO_CHANNEL_ENV);
        }
        return Some(mode.parse().and_then(crate::stdio::from_stdio));
    }
    let fd = std::env::var(CHANNEL_FD_ENV).ok()?;
    let mode = std::env::var(SERIALIZATION_ENV).unwrap_or_else(|_| "json".into());
    {
        let _changing = ENVIRONMENT.write().unwrap_or_else(|e| e.into_inner());
        std::env::remove_var(CHANNEL_FD_ENV);
        std::env::remove_var(SERIALIZATION_ENV);
    }
    Some(open_parent_channel(&fd, &mode))
}

fn open_parent_channel(
    fd: &str,
    mode: &str,
) -> Result<crate::channel::Channel<AnyCodec>, IpcError> {
    let raw: i32 = fd.trim().parse().map_err(|_| IpcError::Malformed {
        reason: format!("{CHANNEL_FD_ENV}={fd:?} is not a number"),
    })?;
    let codec = mode.parse::<Serialization>()?.codec()?;
    let owned = crate::sys::take_inherited_socket(raw)?; // now non-blocking
    crate::channel::Channel::from_std(std::os::unix::net::UnixStream::from(owned), codec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_has_a_codec_that_round_trips() {
        let v = Value::object([("a", Value::from(1)), ("s", Value::from("é€"))]);
        for name in ["json", "advanced", "json-length", "msgpack"] {
            let mode: Serialization = name.parse().unwrap();
            assert_eq!(mode.env_value(), name);
            let mut codec = mode.codec().unwrap();
            let mut buf = BytesMut::new();
            codec.encode(v.clone(), &mut buf).unwrap();
            assert_eq!(codec.decode(&mut buf).unwrap(), Some(v.clone()), "{name}");
        }
        // The advanced codec speaks Node's bytes.
        let mut buf = BytesMut::new();
        Serialization::Advanced
            .codec()
            .unwrap()
            .encode(Value::Null, &mut buf)
            .unwrap();
        assert_eq!(&buf[..], [0, 0, 0, 3, 0xff, 0x0f, b'0']);
        assert!("v8".parse::<Serialization>().is_err());
    }
}
