//! The reference model `channel_control` checks the channel against: what the peer's bytes
//! decode to, which of those frames a user sees, and what must be answered.

use bytes::BytesMut;
use childproc_ipc::{is_internal, AnyCodec, IpcError, Value};
use tokio_util::codec::Decoder;

/// `bytes` decoded in one go, as the channel's `FramedRead` does at EOF: the frames up to
/// the first error, the offset where each ends, and that error.
pub fn decode_all(mut codec: AnyCodec, bytes: &[u8]) -> (Vec<(Value, usize)>, Option<IpcError>) {
    let mut buf = BytesMut::from(bytes);
    let mut frames = Vec::new();
    let mut eof = false;
    loop {
        let next = if eof {
            codec.decode_eof(&mut buf)
        } else {
            codec.decode(&mut buf)
        };
        match next {
            Ok(Some(v)) => frames.push((v, bytes.len() - buf.len())),
            Ok(None) if eof => return (frames, None),
            Ok(None) => eof = true,
            Err(e) => return (frames, Some(e)),
        }
    }
}

/// The `cmd` of an internal message, as the channel reads it (the first `cmd` key).
pub fn internal_cmd(v: &Value) -> Option<&str> {
    if is_internal(v) {
        v.get("cmd").and_then(Value::as_str)
    } else {
        None
    }
}

/// What the channel does with one frame that reaches the user, or could.
#[derive(Debug)]
pub enum Item {
    /// A user message (`{:?}`): always delivered, without a handle.
    User(String),
    /// A `NODE_HANDLE` frame's message (`{:?}`), unwrapped: delivered with a handle and
    /// answered ACK, or not delivered and answered NACK.
    Handle(String),
}

/// The user's message of a `NODE_HANDLE` frame: its first `msg`, unwrapped while that is a
/// `NODE_HANDLE` frame itself (Node's resend quirk); `undefined` if it has none.
fn unwrap_handle(mut frame: Value) -> Value {
    loop {
        let msg = match frame {
            Value::Object(pairs) => pairs.into_iter().find(|(k, _)| k == "msg").map(|(_, v)| v),
            _ => None,
        }
        .unwrap_or(Value::Undefined);
        if internal_cmd(&msg) == Some("NODE_HANDLE") {
            frame = msg;
        } else {
            return msg;
        }
    }
}

/// The items of the peer's frames, in order; internal frames other than `NODE_HANDLE` give
/// none.
pub fn items(frames: Vec<(Value, usize)>) -> Vec<Item> {
    frames
        .into_iter()
        .filter_map(|(v, _)| match internal_cmd(&v) {
            Some("NODE_HANDLE") => Some(Item::Handle(format!("{:?}", unwrap_handle(v)))),
            Some(_) => None,
            None => Some(Item::User(format!("{v:?}"))),
        })
        .collect()
}

/// Checks what the channel delivered (`{:?}` of each message, whether a handle came with
/// it) and the answers it wrote (true = ACK, in order) against the items: the n-th answer is
/// for the n-th handle frame; the delivered messages are the user messages and the ACKed
/// handle frames' messages, in order, each handle frame's with its handle. `complete`: the
/// channel read the whole stream. `all_answers`: every answer it wrote was read.
pub fn check_delivery(
    items: &[Item],
    delivered: &[(String, bool)],
    answers: &[bool],
    complete: bool,
    all_answers: bool,
) {
    let handle_frames = items
        .iter()
        .filter(|i| matches!(i, Item::Handle(_)))
        .count();
    assert!(
        answers.len() <= handle_frames,
        "{} answers for {handle_frames} handle frames: {answers:?}",
        answers.len()
    );
    if complete && all_answers {
        assert_eq!(
            answers.len(),
            handle_frames,
            "not every handle frame was answered: {answers:?}"
        );
    }
    let mut got = delivered.iter().enumerate().peekable();
    let mut handles = 0;
    for item in items {
        match item {
            Item::User(want) => {
                let Some((i, (msg, with_handle))) = got.next() else {
                    assert!(
                        !complete,
                        "the channel read everything but never delivered {want}; delivered {delivered:?}"
                    );
                    return;
                };
                assert!(
                    !with_handle && msg == want,
                    "delivered #{i} {msg} (handle: {with_handle}), but the next user message is {want}"
                );
            }
            Item::Handle(want) => {
                let answer = answers.get(handles).copied();
                handles += 1;
                let next = got.peek();
                let matches =
                    next.is_some_and(|(_, (msg, with_handle))| *with_handle && msg == want);
                match answer {
                    Some(true) => {
                        let Some((i, (msg, with_handle))) = got.next() else {
                            panic!("handle frame #{} was ACKed but not delivered", handles - 1);
                        };
                        assert!(
                            *with_handle && msg == want,
                            "delivered #{i} {msg} (handle: {with_handle}), but the ACKed handle frame's message is {want}"
                        );
                    }
                    Some(false) => {}
                    // The answer was not read: the frame was delivered or it was not.
                    None if matches => drop(got.next()),
                    None => {}
                }
            }
        }
    }
    if let Some((i, (msg, with_handle))) = got.next() {
        panic!("delivered #{i} {msg} (handle: {with_handle}) is no frame the peer sent; items {items:?}");
    }
}
