//! Reading a child's output into memory, and the limits that end it early: what `exec`,
//! `execFile` and a pipeline's `output` share.
//!
//! Node's buffered runners stop reading when a limit ends the run: `exec`'s timeout and
//! `maxBuffer` overflow call `kill()`, which destroys the stdout and stderr streams before it
//! signals the child, and an abort does the same. So a grandchild that inherited the pipes
//! cannot keep the call waiting: the call ends once the child itself has exited, with what
//! was read so far. [`Limits::reached`] is that moment; the caller then drops the readers
//! (closing the parent's ends) and waits for the exit only.

use std::future::Future;
use std::os::fd::AsFd;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::bulk::{self, Bulk};
use crate::encoding::{Data, Encoding};

/// What was read of one stream.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub(crate) bytes: Vec<u8>,
    /// More than the limit came: `bytes` ends with the whole read that passed it, which
    /// started at `overflow_at` (see [`decode`](Self::decode)).
    pub(crate) overflow: bool,
    overflow_at: usize,
    /// Read to its end (or there was no stream): nothing was left unread.
    pub(crate) eof: bool,
}

/// Reads `stream` to EOF into `into`. Past `max` bytes it cancels `overflowed` and stops,
/// keeping the read that passed the limit whole for [`Collected::decode`] (the buffer never
/// has room for more than Node's read size, 64 KiB, past `max`). `into` keeps what was read
/// if this future is dropped midway.
pub(crate) async fn collect<R: AsyncRead + AsFd + Unpin>(
    stream: Option<R>,
    max: usize,
    into: &mut Collected,
    overflowed: &CancellationToken,
) {
    let Some(mut stream) = stream else {
        into.eof = true;
        return;
    };
    let bytes = &mut into.bytes;
    // Held as long as the stream: both end when this returns or is dropped.
    let mut bulk = Bulk::default();
    loop {
        bulk::make_room(bytes, max);
        bulk.before_read(bytes);
        let before = bytes.len();
        match stream.read_buf(bytes).await {
            Ok(0) | Err(_) => {
                bulk::trim(bytes);
                into.eof = true;
                return;
            }
            Ok(_) if bytes.len() > max => {
                into.overflow_at = before;
                into.overflow = true;
                overflowed.cancel();
                return;
            }
            Ok(_) => {
                let room = max - bytes.len();
                bulk.after_read(stream.as_fd(), bytes.len() - before, room);
            }
        }
    }
}

impl Collected {
    /// The output as Node's exec keeps it: with `'buffer'`, exactly `max` bytes; with a
    /// string encoding, everything before the read that passed the limit, then that read
    /// decoded and cut to the room that was left, counted in UTF-16 code units of the
    /// decoded text (Node counts bytes but slices the decoded chunk:
    /// `exec("printf '中文测试\n'", {maxBuffer: 10})` keeps all of `"中文测试\n"`).
    pub(crate) fn decode(self, encoding: Encoding, max: usize) -> Data {
        let mut bytes = self.bytes;
        if !self.overflow {
            return encoding.decode(bytes);
        }
        if encoding == Encoding::Buffer {
            bytes.truncate(max);
            return encoding.decode(bytes);
        }
        // Where Node's string decoder started the last chunk: it holds back a character
        // (or base64 group) that the previous chunk left incomplete.
        let split = encoding.chunk_start(&bytes, self.overflow_at);
        let room = max.saturating_sub(self.overflow_at);
        let tail = bytes.split_off(split);
        let mut text = encoding.decode(bytes).to_string();
        let mut units = 0;
        for c in encoding.decode(tail).to_string().chars() {
            units += c.len_utf16();
            if units > room {
                break;
            }
            text.push(c);
        }
        Data::Text(text)
    }
}

/// Why a buffered run stopped reading before its pipes reached end-of-file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// `maxBuffer` was passed on some stream.
    Overflow,
    /// The cancellation token was cancelled.
    Abort,
    /// The timeout passed.
    Timeout,
    /// Everything had exited and the wait delay passed.
    WaitDelay,
}

/// The limits of one buffered run.
#[derive(Debug)]
pub(crate) struct Limits {
    /// When the timeout passes; `None` for none (or one too long to represent).
    pub(crate) deadline: Option<Instant>,
    pub(crate) abort: Option<CancellationToken>,
    /// Cancelled by [`collect`] on an overflow.
    pub(crate) overflowed: CancellationToken,
    /// How long to keep reading once everything has exited.
    pub(crate) wait_delay: Option<Duration>,
}

impl Limits {
    /// The limits of a run that starts now.
    pub(crate) fn new(
        timeout: Option<Duration>,
        abort: Option<CancellationToken>,
        wait_delay: Option<Duration>,
    ) -> Limits {
        Limits {
            deadline: timeout.and_then(|t| Instant::now().checked_add(t)),
            abort,
            overflowed: CancellationToken::new(),
            wait_delay,
        }
    }

    /// Resolves when the first limit is reached; `exited` resolves once every child of the
    /// run has exited (it starts the wait delay).
    pub(crate) async fn reached(&self, exited: impl Future<Output = ()>) -> Stop {
        let deadline = async {
            match self.deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let aborted = async {
            match &self.abort {
                Some(token) => token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let delayed = async {
            match self.wait_delay {
                Some(delay) => {
                    exited.await;
                    tokio::time::sleep(delay).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = self.overflowed.cancelled() => Stop::Overflow,
            () = aborted => Stop::Abort,
            () = deadline => Stop::Timeout,
            () = delayed => Stop::WaitDelay,
        }
    }
}
