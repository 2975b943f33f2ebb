//! stdout and stderr read as one stream, each item tagged with the stream it came from.
//!
//! Two orders are on offer, and they differ:
//! - [`Interleaved`] merges two pipes in the parent, in the order their data *arrives*: what
//!   the child wrote to one stream before the parent read the other comes first, but writes
//!   to both that are pending at the same moment come in either order (the parent cannot tell
//!   which happened first). Node's `'data'` handlers on both streams see the same order.
//! - [`Stdio::SameAs`](crate::Stdio::SameAs) (`stderr(Stdio::SameAs(1))`, a shell's `2>&1`)
//!   points both fds at one pipe: the bytes come in exactly the order the child wrote them,
//!   but untagged.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::stream::{self, Select, StreamExt};
use tokio::io::AsyncRead;
use tokio_util::codec::{BytesCodec, FramedRead};

use crate::child::ChildProcess;
use crate::exec::StdStream;
use crate::lines::{Lines, LinesError};

type Tagged<T> = Pin<Box<dyn Stream<Item = (StdStream, Result<T, LinesError>)> + Send>>;

/// stdout and stderr merged in arrival order, each item tagged with its [`StdStream`]; the
/// stream ends once both have ended (one closing early does not end it). Items are lines
/// ([`Interleaved::lines`], [`ChildProcess::interleaved_lines`]) or chunks as they were read
/// ([`Interleaved::chunks`], [`ChildProcess::interleaved_chunks`]).
///
/// The order is the order in which data *arrives* in the parent: what the child wrote to one
/// stream before the parent read the other comes first (Node's `'data'` handlers on both
/// streams see the same order), but writes to both that are pending at the same moment come
/// in either order: two pipes cannot tell which was written first. For the child's exact
/// write order, untagged, point both fds at one pipe with
/// [`stderr(Stdio::SameAs(1))`](crate::Stdio::SameAs), a shell's `2>&1`.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use childproc::{Command, StdStream};
/// use futures_util::StreamExt;
/// let mut child = Command::new("make").spawn()?;
/// let mut output = child.interleaved_lines();
/// while let Some((stream, line)) = output.next().await {
///     match stream {
///         StdStream::Stdout => println!("{}", line?),
///         StdStream::Stderr => eprintln!("{}", line?),
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Interleaved<T> {
    inner: Select<Tagged<T>, Tagged<T>>,
}

impl<T> std::fmt::Debug for Interleaved<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interleaved").finish_non_exhaustive()
    }
}

fn tagged<T, S>(tag: StdStream, s: Option<S>) -> Tagged<T>
where
    S: Stream<Item = Result<T, LinesError>> + Send + 'static,
    T: Send + 'static,
{
    match s {
        Some(s) => Box::pin(s.map(move |item| (tag, item))),
        None => Box::pin(stream::empty()),
    }
}

impl<T: Send + 'static> Interleaved<T> {
    /// Merges two streams of items (e.g. [`Lines`] with options of your own); `None` stands
    /// for a stream that is not there.
    pub fn new<O, E>(stdout: Option<O>, stderr: Option<E>) -> Self
    where
        O: Stream<Item = Result<T, LinesError>> + Send + 'static,
        E: Stream<Item = Result<T, LinesError>> + Send + 'static,
    {
        Interleaved {
            inner: stream::select(
                tagged(StdStream::Stdout, stdout),
                tagged(StdStream::Stderr, stderr),
            ),
        }
    }
}

impl Interleaved<String> {
    /// The lines of both readers (strict UTF-8, [`DEFAULT_MAX_LINE`](crate::DEFAULT_MAX_LINE)).
    pub fn lines<O, E>(stdout: Option<O>, stderr: Option<E>) -> Self
    where
        O: AsyncRead + Unpin + Send + 'static,
        E: AsyncRead + Unpin + Send + 'static,
    {
        Interleaved::new(stdout.map(Lines::new), stderr.map(Lines::new))
    }
}

impl Interleaved<Bytes> {
    /// The bytes of both readers, chunk by chunk as they were read (Node's `'data'` events).
    /// Only [`LinesError::Io`] can occur.
    pub fn chunks<O, E>(stdout: Option<O>, stderr: Option<E>) -> Self
    where
        O: AsyncRead + Unpin + Send + 'static,
        E: AsyncRead + Unpin + Send + 'static,
    {
        fn chunks<R: AsyncRead + Unpin + Send + 'static>(
            r: R,
        ) -> impl Stream<Item = Result<Bytes, LinesError>> + Send {
            FramedRead::new(r, BytesCodec::new())
                .map(|chunk| chunk.map(|b| b.freeze()).map_err(LinesError::Io))
        }
        Interleaved::new(stdout.map(chunks), stderr.map(chunks))
    }
}

impl<T> Stream for Interleaved<T> {
    type Item = (StdStream, Result<T, LinesError>);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl ChildProcess {
    /// Takes the child's stdout and stderr (those that are pipes) and merges their lines in
    /// arrival order: see [`Interleaved`].
    pub fn interleaved_lines(&mut self) -> Interleaved<String> {
        Interleaved::lines(self.stdout.take(), self.stderr.take())
    }

    /// Takes the child's stdout and stderr (those that are pipes) and merges their chunks in
    /// arrival order: see [`Interleaved`].
    pub fn interleaved_chunks(&mut self) -> Interleaved<Bytes> {
        Interleaved::chunks(self.stdout.take(), self.stderr.take())
    }
}
