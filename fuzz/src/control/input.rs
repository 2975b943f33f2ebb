//! What one `channel_control` input describes, as `arbitrary` types: the peer's frames (Node's
//! internal messages built often, so the fuzzer reaches the handle paths at once), how the
//! peer writes them, with which fds, and what our side sends meanwhile.

use arbitrary::Arbitrary;
use childproc_ipc::{Serialization, Value};

/// One input: a serialization, a sequence of steps, and how the conversation ends.
#[derive(Arbitrary, Debug)]
pub struct Script {
    /// The channel's serialization (the peer encodes its frames with the same codec).
    pub mode: Mode,
    /// The steps, in order.
    pub ops: Vec<Op>,
    /// How the conversation ends.
    pub end: End,
}

/// The four serializations.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Mode {
    /// Node's `json`.
    Json,
    /// Node's `advanced`.
    Advanced,
    /// `json-length`.
    LengthJson,
    /// `msgpack`.
    MsgPack,
}

impl Mode {
    /// The serialization.
    pub fn serialization(self) -> Serialization {
        match self {
            Mode::Json => Serialization::Json,
            Mode::Advanced => Serialization::Advanced,
            Mode::LengthJson => Serialization::LengthJson,
            Mode::MsgPack => Serialization::MsgPack,
        }
    }
}

/// How the conversation ends; every end is then driven until all is settled.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum End {
    /// The peer shuts its writing down: the channel reads to the end (EOF).
    PeerEof,
    /// The peer closes its socket: the channel still reads what was sent, then EOF, and its
    /// writes fail.
    PeerClose,
    /// The peer closes its socket without reading what our side wrote last (the channel's
    /// read then fails with `ECONNRESET` after the data: still a plain end).
    PeerCloseUnread,
    /// Our side disconnects (it stops reading).
    Disconnect,
}

/// One step.
#[derive(Arbitrary, Debug)]
pub enum Op {
    /// The peer appends a frame's bytes to what it has yet to write.
    Push(Frame),
    /// The peer writes up to `len` of its pending bytes (at least one) in one `sendmsg`,
    /// with fds attached to the first of them.
    Write {
        /// At most this many bytes.
        len: u16,
        /// How many fds go with them.
        fds: FdCount,
        /// Which kinds of fd (see [`crate::control::fds::Kind`]).
        kind: u8,
    },
    /// The peer writes all its pending bytes in one `sendmsg`, with fds.
    WriteAll {
        /// How many fds go with them.
        fds: FdCount,
        /// Which kinds of fd.
        kind: u8,
    },
    /// Our side reads until it would block (answering handle frames).
    Drive,
    /// Our side sends a message (awaited in a task of its own).
    Send(Msg),
    /// Our side queues a message without waiting.
    SendNowait(Msg),
    /// Our side sends a handle of this kind with a message (in a task of its own).
    SendHandle {
        /// Which kind of fd.
        kind: u8,
        /// The message it goes with.
        msg: Msg,
    },
}

/// How many fds go with one write.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum FdCount {
    /// None: a plain write.
    None,
    /// One, as Node sends.
    One,
    /// 2–16: fits one read of the channel.
    Few(u8),
    /// 17–40: more than a read has room for (`MSG_CTRUNC`).
    Overflow(u8),
    /// `SCM_MAX_FD` (253).
    Max,
}

impl FdCount {
    /// The number of fds.
    pub fn count(self) -> usize {
        match self {
            FdCount::None => 0,
            FdCount::One => 1,
            FdCount::Few(n) => 2 + usize::from(n) % 15,
            FdCount::Overflow(n) => 17 + usize::from(n) % 24,
            FdCount::Max => childproc_ipc::__fuzz::MAX_FDS_PER_SEND,
        }
    }
}

/// A frame the peer sends, mostly well formed so the channel acts on it.
#[derive(Arbitrary, Debug)]
pub enum Frame {
    /// `NODE_HANDLE` with a `type`, a `msg` wrapped `wraps % 4` more times in further
    /// `NODE_HANDLE` frames (Node's resend quirk), and optional extras.
    Handle {
        /// The `type` field.
        ty: HandleType,
        /// The user's message.
        msg: Msg,
        /// How many times the frame is wrapped again.
        wraps: u8,
        /// `key` / `dgramType` / odd extras.
        extra: Option<Extra>,
    },
    /// `{"cmd":"NODE_HANDLE_ACK"}`.
    Ack,
    /// `{"cmd":"NODE_HANDLE_NACK"}`.
    Nack,
    /// Another `NODE_*` command, or a near miss.
    Internal(Cmd),
    /// A user message.
    User(Msg),
    /// A `NODE_HANDLE` whose fields are odd: no `msg`, `cmd` repeated, a non-object `msg`.
    OddHandle(u8, Msg),
    /// Bytes as they are (usually a malformed frame: the channel's end).
    Raw(Vec<u8>),
    /// The first `cut` bytes of a well-formed handle frame, then the rest of it later.
    Split {
        /// Where the frame is cut (modulo its length).
        cut: u8,
        /// The message.
        msg: Msg,
    },
}

/// The `type` of a `NODE_HANDLE` frame.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum HandleType {
    /// `net.Server`.
    Server,
    /// `net.Socket`.
    Socket,
    /// `dgram.Socket`.
    Dgram,
    /// `net.Native`.
    Native,
    /// `dgram.Native`.
    DgramNative,
    /// Something else.
    Other,
    /// Not a string at all.
    Number,
}

/// Extra fields of a `NODE_HANDLE` frame.
#[derive(Arbitrary, Debug)]
pub enum Extra {
    /// `key` (a socket from a Node server).
    Key(String),
    /// `dgramType`.
    DgramType(bool),
    /// Any field.
    Field(String, Msg),
}

/// Internal commands other than the handle protocol.
#[derive(Arbitrary, Debug)]
pub enum Cmd {
    /// `NODE_SOCKET_GET_COUNT`.
    GetCount,
    /// `NODE_SOCKET_NOTIFY_CLOSE`.
    NotifyClose,
    /// `NODE_CLUSTER`.
    Cluster,
    /// `NODE_` (not internal).
    Bare,
    /// `node_handle` (not internal).
    Lower,
    /// `NODE_` + anything.
    Any(String),
}

/// A message value (depth bounded when built).
#[derive(Arbitrary, Debug)]
pub enum Msg {
    /// `null`.
    Null,
    /// `undefined`.
    Undefined,
    /// A boolean.
    Bool(bool),
    /// A small integer.
    Int(i32),
    /// Any double.
    Num(f64),
    /// A string.
    Str(String),
    /// A BigInt.
    Big(i64),
    /// Bytes.
    Bytes(Vec<u8>),
    /// An array.
    Arr(Vec<Msg>),
    /// An object.
    Obj(Vec<(String, Msg)>),
}

impl Msg {
    /// The value, nested at most a few levels (deeper parts become `null`).
    pub fn value(&self) -> Value {
        self.value_at(0)
    }

    fn value_at(&self, depth: usize) -> Value {
        if depth > 6 {
            return Value::Null;
        }
        match self {
            Msg::Null => Value::Null,
            Msg::Undefined => Value::Undefined,
            Msg::Bool(b) => Value::Bool(*b),
            Msg::Int(n) => Value::from(*n),
            Msg::Num(x) => Value::Number(*x),
            Msg::Str(s) => Value::from(s.as_str()),
            Msg::Big(n) => Value::BigInt(n.to_string()),
            Msg::Bytes(b) => Value::Bytes(b.clone()),
            Msg::Arr(items) => Value::Array(items.iter().map(|m| m.value_at(depth + 1)).collect()),
            Msg::Obj(pairs) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, m)| (k.clone(), m.value_at(depth + 1)))
                    .collect(),
            ),
        }
    }
}

fn obj(pairs: Vec<(&str, Value)>) -> Value {
    Value::object(pairs)
}

fn cmd(name: &str) -> Value {
    obj(vec![("cmd", Value::from(name))])
}

/// A `NODE_HANDLE` frame around `msg`.
fn handle_frame(ty: Value, msg: Value) -> Value {
    obj(vec![
        ("cmd", Value::from("NODE_HANDLE")),
        ("type", ty),
        ("msg", msg),
    ])
}

impl HandleType {
    fn value(self) -> Value {
        Value::from(match self {
            HandleType::Server => "net.Server",
            HandleType::Socket => "net.Socket",
            HandleType::Dgram => "dgram.Socket",
            HandleType::Native => "net.Native",
            HandleType::DgramNative => "dgram.Native",
            HandleType::Other => "fs.File",
            HandleType::Number => return Value::from(7),
        })
    }
}

impl Frame {
    /// The frame as values to encode, or bytes to send as they are. `Split` gives two
    /// pieces of bytes.
    pub fn pieces(&self) -> Vec<Piece> {
        match self {
            Frame::Handle {
                ty,
                msg,
                wraps,
                extra,
            } => {
                let mut v = msg.value();
                for i in 0..=(wraps % 4) {
                    let ty = if i == 0 {
                        ty.value()
                    } else {
                        Value::from("net.Native")
                    };
                    v = handle_frame(ty, v);
                }
                if let (Some(extra), Value::Object(pairs)) = (extra, &mut v) {
                    match extra {
                        Extra::Key(k) => pairs.push(("key".into(), Value::from(k.as_str()))),
                        Extra::DgramType(six) => pairs.push((
                            "dgramType".into(),
                            Value::from(if *six { "udp6" } else { "udp4" }),
                        )),
                        Extra::Field(k, m) => pairs.push((k.clone(), m.value())),
                    }
                }
                vec![Piece::Value(v)]
            }
            Frame::Ack => vec![Piece::Value(cmd("NODE_HANDLE_ACK"))],
            Frame::Nack => vec![Piece::Value(cmd("NODE_HANDLE_NACK"))],
            Frame::Internal(c) => vec![Piece::Value(match c {
                Cmd::GetCount => obj(vec![
                    ("cmd", Value::from("NODE_SOCKET_GET_COUNT")),
                    ("key", Value::from("4:127.0.0.1:0")),
                ]),
                Cmd::NotifyClose => obj(vec![
                    ("cmd", Value::from("NODE_SOCKET_NOTIFY_CLOSE")),
                    ("key", Value::from("4:127.0.0.1:0")),
                ]),
                Cmd::Cluster => obj(vec![
                    ("cmd", Value::from("NODE_CLUSTER")),
                    ("act", Value::from("online")),
                    ("seq", Value::from(0)),
                ]),
                Cmd::Bare => cmd("NODE_"),
                Cmd::Lower => cmd("node_handle"),
                Cmd::Any(s) => cmd(&format!("NODE_{s}")),
            })],
            Frame::User(m) => vec![Piece::Value(m.value())],
            Frame::OddHandle(how, m) => vec![Piece::Value(match how % 5 {
                0 => cmd("NODE_HANDLE"),
                1 => obj(vec![
                    ("cmd", Value::from("NODE_HANDLE")),
                    ("cmd", Value::from("NODE_HANDLE_ACK")),
                    ("msg", m.value()),
                ]),
                2 => obj(vec![
                    ("msg", m.value()),
                    ("cmd", Value::from("NODE_HANDLE")),
                ]),
                3 => handle_frame(Value::from("net.Native"), cmd("NODE_HANDLE")),
                _ => Value::Array(vec![cmd("NODE_HANDLE"), m.value()]),
            })],
            Frame::Raw(bytes) => vec![Piece::Bytes(bytes.clone())],
            Frame::Split { cut, msg } => vec![Piece::Cut(
                handle_frame(Value::from("net.Socket"), msg.value()),
                usize::from(*cut),
            )],
        }
    }
}

/// Part of a frame as the peer builds it.
pub enum Piece {
    /// A value the peer's codec encodes (skipped if it cannot).
    Value(Value),
    /// Bytes as they are.
    Bytes(Vec<u8>),
    /// A value encoded, to be written in two writes cut at this byte.
    Cut(Value, usize),
}
