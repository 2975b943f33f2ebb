//! The harness shared by the fuzz targets: one decoder, fed the same bytes in chunks and
//! all at once (the codec targets); a real channel and its hostile peer ([`control`]);
//! typed decoding ([`typed`]); the whole value model through every codec ([`clone`]).

pub mod clone;
pub mod control;
pub mod typed;

use bytes::BytesMut;
use childproc_ipc::{IpcError, Value};
use tokio_util::codec::Decoder;

/// The frame limit of most runs: small enough that the fuzzer never allocates much.
pub const MAX_FRAME: usize = 1024 * 1024;

/// The frame limit when the first input byte's high bit is set, so the inputs the fuzzer
/// produces (a few KiB) can reach the `FrameTooLarge` paths.
pub const SMALL_MAX_FRAME: usize = 64;

/// What one decoding run produced: the frames (as `{:?}`, since NaN != NaN) up to the first
/// error, and that error if any.
#[derive(Debug)]
pub struct Outcome {
    /// `{:?}` of every frame decoded before the first error.
    pub frames: Vec<String>,
    /// The first error, as `{:?}`; decoding stops there.
    pub error: Option<String>,
}

/// Runs `codec` over `data` with the bytes arriving `chunk` at a time: after each chunk, `decode` until `None` or an error; at the end, `decode_eof` until
/// `None` or an error.
pub fn decode_chunked<D>(mut codec: D, data: &[u8], chunk: usize) -> Outcome
where
    D: Decoder<Item = Value, Error = IpcError>,
{
    let mut out = Outcome {
        frames: Vec::new(),
        error: None,
    };
    let mut buf = BytesMut::new();
    for piece in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(v)) => out.frames.push(format!("{v:?}")),
                Ok(None) => break,
                Err(e) => {
                    out.error = Some(format!("{e:?}"));
                    return out;
                }
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(v)) => out.frames.push(format!("{v:?}")),
            Ok(None) => return out,
            Err(e) => {
                out.error = Some(format!("{e:?}"));
                return out;
            }
        }
    }
}

/// The fuzz target body. The first byte picks the chunk size (its low 6 bits, plus one) and
/// the frame limit (its high bit: [`SMALL_MAX_FRAME`], else [`MAX_FRAME`]); the rest is the
/// stream. Decoding must not panic, and decoding in chunks must give the same frames as
/// decoding everything at once, and fail (or not) the same way.
pub fn check<D, F>(input: &[u8], make: F)
where
    D: Decoder<Item = Value, Error = IpcError>,
    F: Fn(usize) -> D,
{
    let Some((&first, data)) = input.split_first() else {
        return;
    };
    let chunk = usize::from(first & 0x3f) + 1;
    let max_frame = if first & 0x80 != 0 {
        SMALL_MAX_FRAME
    } else {
        MAX_FRAME
    };
    let chunked = decode_chunked(make(max_frame), data, chunk);
    let whole = decode_chunked(make(max_frame), data, data.len());
    assert_eq!(
        chunked.frames, whole.frames,
        "chunks of {chunk} decode other frames than the whole input (chunked error: {:?}, whole error: {:?})",
        chunked.error, whole.error
    );
    // The error text may differ (a frame found too large while still buffering names the
    // bytes buffered so far), but an error in one mode must be an error in the other.
    assert_eq!(
        chunked.error.is_some(),
        whole.error.is_some(),
        "chunks of {chunk}: error {:?}, whole input: error {:?}",
        chunked.error,
        whole.error
    );
}
