//! Framing shared by the codecs: the u32 big-endian length prefix of the length-delimited
//! codecs, and what every codec does with bytes left over at end of stream.

use bytes::{Buf, BufMut, BytesMut};

use crate::{IpcError, Result};

/// Appends one length-prefixed frame whose payload `write` produces. A payload over `max`
/// is [`IpcError::FrameTooLarge`]; on any error `dst` is left as it was.
pub(crate) fn encode_prefixed(
    dst: &mut BytesMut,
    max: usize,
    write: impl FnOnce(&mut BytesMut) -> Result<()>,
) -> Result<()> {
    let start = dst.len();
    dst.put_u32(0);
    let result = write(dst).and_then(|()| {
        let len = dst.len() - start - 4;
        if len > max {
            return Err(IpcError::FrameTooLarge { len, max });
        }
        // Cannot saturate: max is capped at u32::MAX by the codecs.
        let prefix = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
        dst[start..start + 4].copy_from_slice(&prefix);
        Ok(())
    });
    if result.is_err() {
        dst.truncate(start);
    }
    result
}

/// Takes the next whole length-prefixed payload out of `src`, if it has arrived. The limit
/// is checked on the prefix alone, so an oversized frame is refused before it is buffered;
/// an empty payload is malformed.
pub(crate) fn split_prefixed(src: &mut BytesMut, max: usize) -> Result<Option<BytesMut>> {
    let Some(prefix) = src.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if len > max {
        return Err(IpcError::FrameTooLarge { len, max });
    }
    if src.len() < 4 + len {
        return Ok(None);
    }
    src.advance(4);
    let payload = src.split_to(len);
    if payload.is_empty() {
        return Err(IpcError::malformed("empty frame (length 0)"));
    }
    Ok(Some(payload))
}

/// End of stream: a last frame decoded from `buf` is delivered; bytes that do not form one
/// are [`IpcError::Truncated`] (and dropped).
pub(crate) fn at_eof<T>(decoded: Option<T>, buf: &mut BytesMut) -> Result<Option<T>> {
    match decoded {
        Some(value) => Ok(Some(value)),
        None if buf.is_empty() => Ok(None),
        None => {
            let buffered = buf.len();
            buf.clear();
            Err(IpcError::Truncated { buffered })
        }
    }
}
