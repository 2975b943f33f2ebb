//! Line streams over a child's output: what Node gets from
//! `readline.createInterface({ input: child.stdout })` and its `'line'` events, as a
//! `futures::Stream`, with a bound on line length.
//!
//! Built on tokio-util's framing: `FramedRead` with its delimiter codec, which also keeps
//! memory bounded on a line that never ends (it skips to the next newline).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use tokio::io::AsyncRead;
use tokio_util::codec::{AnyDelimiterCodec, AnyDelimiterCodecError, Decoder, FramedRead};

/// The longest line a line stream accepts unless told otherwise: 1 MiB, as exec's default
/// `maxBuffer`.
pub const DEFAULT_MAX_LINE: usize = 1024 * 1024;

/// Why a line could not be delivered. [`TooLong`](Self::TooLong) and
/// [`InvalidUtf8`](Self::InvalidUtf8) concern one line: the stream goes on with the next.
/// [`Io`](Self::Io) ends it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinesError {
    /// The line had more than `max` bytes (not counting its `\n` or `\r\n`); the rest of it,
    /// up to the next newline, was skipped without being kept in memory.
    #[error("line longer than {max} bytes")]
    TooLong {
        /// The limit in force.
        max: usize,
    },
    /// The line is not valid UTF-8 (a strict [`Lines`]); the error holds its bytes.
    #[error("line is not valid UTF-8: {0}")]
    InvalidUtf8(#[source] std::string::FromUtf8Error),
    /// Reading the stream failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Splits at `\n`, drops one `\r` before it, and bounds each line at `max` bytes. Its items
/// carry the per-line errors, so `FramedRead` (which stops after a decoder error) keeps going.
#[derive(Debug)]
struct LineDecoder {
    inner: AnyDelimiterCodec,
    max: usize,
}

impl LineDecoder {
    fn new(max: usize) -> Self {
        // One byte of room for the '\r' of a CRLF line: the limit counts the line's own bytes.
        let inner =
            AnyDelimiterCodec::new_with_max_length(vec![b'\n'], Vec::new(), max.saturating_add(1));
        LineDecoder { inner, max }
    }

    fn line(&self, decoded: Result<Option<Bytes>, AnyDelimiterCodecError>) -> DecodedLine {
        match decoded {
            Ok(None) => Ok(None),
            Ok(Some(mut line)) => {
                if line.last() == Some(&b'\r') {
                    line.truncate(line.len() - 1);
                }
                if line.len() > self.max {
                    return Ok(Some(Err(LinesError::TooLong { max: self.max })));
                }
                Ok(Some(Ok(line)))
            }
            Err(AnyDelimiterCodecError::MaxChunkLengthExceeded) => {
                Ok(Some(Err(LinesError::TooLong { max: self.max })))
            }
            Err(AnyDelimiterCodecError::Io(e)) => Err(e),
        }
    }
}

type DecodedLine = io::Result<Option<Result<Bytes, LinesError>>>;

impl Decoder for LineDecoder {
    type Item = Result<Bytes, LinesError>;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> DecodedLine {
        let decoded = self.inner.decode(buf);
        self.line(decoded)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> DecodedLine {
        // A last line without a newline is a line.
        let decoded = self.inner.decode_eof(buf);
        self.line(decoded)
    }
}

/// The lines of a byte stream as `String`s, without their `\n` or `\r\n`; a last line
/// without a newline is delivered too. A `Stream` of `Result<String, LinesError>`.
///
/// Lines are decoded whole, so a character split across reads (or writes of the child) is
/// never split in a line. Strict by default: a line that is not UTF-8 is
/// [`LinesError::InvalidUtf8`]; [`lossy`](Self::lossy) replaces bad sequences with U+FFFD
/// instead. At most [`DEFAULT_MAX_LINE`] bytes a line unless [`max_length`](Self::max_length)
/// says otherwise: memory stays bounded even if the child never writes a newline.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use futures_util::StreamExt;
/// let mut child = childproc::Command::new("ls").spawn()?;
/// let mut lines = child.stdout.take().unwrap().lines();
/// while let Some(line) = lines.next().await {
///     println!("{}", line?);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Lines<R> {
    inner: FramedRead<R, LineDecoder>,
    lossy: bool,
}

impl<R: AsyncRead> Lines<R> {
    /// The lines of `reader`: a child's stdout, stderr, extra pipe, or any `AsyncRead`.
    pub fn new(reader: R) -> Self {
        Lines {
            inner: FramedRead::new(reader, LineDecoder::new(DEFAULT_MAX_LINE)),
            lossy: false,
        }
    }

    /// The longest line accepted, in bytes (its `\n` or `\r\n` not counted). Set it before
    /// reading.
    pub fn max_length(mut self, max: usize) -> Self {
        *self.inner.decoder_mut() = LineDecoder::new(max);
        self
    }

    /// Replace invalid UTF-8 with U+FFFD instead of yielding [`LinesError::InvalidUtf8`].
    pub fn lossy(mut self) -> Self {
        self.lossy = true;
        self
    }

    /// The reader, and any bytes read but not yet delivered as a line.
    pub fn into_inner(self) -> (R, BytesMut) {
        let parts = self.inner.into_parts();
        (parts.io, parts.read_buf)
    }
}

impl<R: AsyncRead + Unpin> Stream for Lines<R> {
    type Item = Result<String, LinesError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let lossy = self.lossy;
        let next = ready!(Pin::new(&mut self.inner).poll_next(cx));
        Poll::Ready(next.map(|line| match line {
            Ok(Ok(bytes)) => match String::from_utf8(Vec::from(bytes)) {
                Ok(s) => Ok(s),
                Err(e) if lossy => Ok(String::from_utf8_lossy(e.as_bytes()).into_owned()),
                Err(e) => Err(LinesError::InvalidUtf8(e)),
            },
            Ok(Err(e)) => Err(e),
            Err(e) => Err(LinesError::Io(e)),
        }))
    }
}

/// The lines of a byte stream as raw bytes ([`Bytes`], without `\n` or `\r\n`), for output
/// that is not text. Otherwise as [`Lines`]: a last line without a newline is delivered, and
/// lines are bounded at [`DEFAULT_MAX_LINE`] unless [`max_length`](Self::max_length) says
/// otherwise.
#[derive(Debug)]
pub struct ByteLines<R> {
    inner: FramedRead<R, LineDecoder>,
}

impl<R: AsyncRead> ByteLines<R> {
    /// The lines of `reader`.
    pub fn new(reader: R) -> Self {
        ByteLines {
            inner: FramedRead::new(reader, LineDecoder::new(DEFAULT_MAX_LINE)),
        }
    }

    /// The longest line accepted, in bytes (its `\n` or `\r\n` not counted). Set it before
    /// reading.
    pub fn max_length(mut self, max: usize) -> Self {
        *self.inner.decoder_mut() = LineDecoder::new(max);
        self
    }
}

impl<R: AsyncRead + Unpin> Stream for ByteLines<R> {
    type Item = Result<Bytes, LinesError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = ready!(Pin::new(&mut self.inner).poll_next(cx));
        Poll::Ready(next.map(|line| line.unwrap_or_else(|e| Err(LinesError::Io(e)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio::io::ReadBuf;

    /// Hands out its bytes one per read: every multibyte character is split across reads.
    struct Trickle(Vec<u8>, usize);

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if let Some(&b) = self.0.get(self.1) {
                buf.put_slice(&[b]);
                self.1 += 1;
            }
            Poll::Ready(Ok(()))
        }
    }

    fn lines(bytes: &[u8], max: usize) -> Vec<Result<String, String>> {
        let stream = Lines::new(Trickle(bytes.to_vec(), 0)).max_length(max);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let all = rt.block_on(stream.collect::<Vec<_>>());
        all.into_iter()
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
    }

    #[test]
    fn characters_split_across_reads_endings_and_limits() {
        assert_eq!(
            lines("€ uno\r\n\ndos €\nlast".as_bytes(), 100),
            [
                Ok("€ uno".into()),
                Ok("".into()),
                Ok("dos €".into()),
                Ok("last".into())
            ]
        );
        // The limit counts the line's own bytes; a CRLF line of exactly `max` passes.
        assert_eq!(
            lines(b"abc\r\nabcd\nabc\nabcdefgh", 3),
            [
                Ok("abc".into()),
                Err("line longer than 3 bytes".into()),
                Ok("abc".into()),
                Err("line longer than 3 bytes".into()),
            ]
        );
        let bad = lines(b"ok\n\xff\nok", 100);
        assert!(
            bad[1].as_ref().unwrap_err().contains("not valid UTF-8"),
            "{bad:?}"
        );
        assert_eq!((bad.len(), &bad[2]), (3, &Ok("ok".into())));
    }
}
