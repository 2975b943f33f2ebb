//! The one error type of this crate: what can go wrong turning values into frames and back.

use std::io;

/// What went wrong encoding or decoding an IPC message.
///
/// Every decoding error ends a channel: the messages decoded before it are still delivered,
/// and the error names what was wrong so the user can act on it. Nothing in this crate
/// panics on bad input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpcError {
    /// A frame is larger than the codec's limit (see each codec's `with_max_frame`).
    ///
    /// When decoding, `len` is the frame's length if its header or its end has been seen,
    /// otherwise the number of bytes buffered so far (the frame is at least that long):
    /// the codec gives up as soon as the limit is passed instead of buffering the whole frame.
    #[error("IPC frame of {len} bytes or more exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The frame's length in bytes (or a lower bound of it, see above).
        len: usize,
        /// The codec's limit in bytes.
        max: usize,
    },
    /// A JSON frame is not valid UTF-8.
    ///
    /// This is stricter than Node.js, whose reader silently replaces invalid sequences
    /// with U+FFFD: a peer that sends invalid UTF-8 is either broken or not speaking JSON,
    /// and replacing bytes would deliver a message that was never sent.
    #[error("invalid UTF-8 in IPC frame at byte {offset}")]
    InvalidUtf8 {
        /// Offset of the first invalid byte, counted from the start of the frame's payload.
        offset: usize,
    },
    /// A frame is not a valid message: invalid JSON or MessagePack, an empty line, …
    ///
    /// Node.js's reader throws a `SyntaxError` for these and, without an
    /// `uncaughtException` handler, exits; this crate ends the channel with this error.
    #[error("malformed IPC message: {reason}")]
    Malformed {
        /// What was wrong, e.g. `"empty line"`, `"expected value at column 3"`.
        reason: String,
    },
    /// The stream ended in the middle of a frame: `buffered` bytes were left over.
    ///
    /// Node.js drops such a tail silently; this crate reports it.
    #[error("IPC stream ended inside a frame ({buffered} bytes left over)")]
    Truncated {
        /// The number of bytes that did not form a whole frame.
        buffered: usize,
    },
    /// A value this codec cannot carry, e.g. a `BigInt` or a top-level `undefined` in JSON
    /// (Node's `send()` throws for these too).
    #[error("cannot send {what}")]
    Unsupported {
        /// The value that cannot be carried, and where.
        what: String,
    },
    /// The channel is closed (disconnected by either side): Node's `ERR_IPC_CHANNEL_CLOSED`.
    #[error("channel closed")]
    Closed,
    /// An I/O error from the underlying stream.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl IpcError {
    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        IpcError::Malformed {
            reason: reason.into(),
        }
    }

    pub(crate) fn unsupported(what: impl Into<String>) -> Self {
        IpcError::Unsupported { what: what.into() }
    }
}

/// `Result` with [`IpcError`].
pub type Result<T, E = IpcError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_what_was_wrong() {
        let e = IpcError::FrameTooLarge { len: 10, max: 5 };
        assert_eq!(
            e.to_string(),
            "IPC frame of 10 bytes or more exceeds the limit of 5 bytes"
        );
        assert_eq!(
            IpcError::malformed("empty line").to_string(),
            "malformed IPC message: empty line"
        );
        let io: IpcError = io::Error::new(io::ErrorKind::BrokenPipe, "gone").into();
        assert!(matches!(io, IpcError::Io(ref e) if e.kind() == io::ErrorKind::BrokenPipe));
        assert_eq!(
            IpcError::Truncated { buffered: 3 }.to_string(),
            "IPC stream ended inside a frame (3 bytes left over)"
        );
    }
}
