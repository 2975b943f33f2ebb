//! A channel over a byte stream instead of a socket: a worker's stdin and stdout, so that a
//! worker started through `ssh host cmd`, `kubectl exec -i` or `docker exec -i` speaks to its
//! parent as a forked one does. Frames go as they are (length-delimited in `json-length`,
//! `msgpack` and `advanced`, one line each in `json`); handles cannot cross a byte stream.
//!
//! Both sides put a local socketpair between the stream and the [`Channel`], with a relay
//! task copying bytes both ways ([`relay`]), so the channel itself is the same one a fork
//! has: the same sends, messages, backpressure and disconnect.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::channel::Channel;
use crate::error::IpcError;
use crate::serialization::{AnyCodec, Serialization};

/// Set in a child whose channel is its stdin and stdout, to its serialization's name
/// (`CHILDPROC_CHANNEL_STDIO=msgpack`): [`from_env`](crate::from_env) finds it. A command
/// started on another machine does not get it (ssh does not pass the environment on): such a
/// worker calls [`from_stdio`] itself.
pub const STDIO_CHANNEL_ENV: &str = "CHILDPROC_CHANNEL_STDIO";

/// This process's channel to its parent over its own stdin and stdout (see the module docs),
/// in `serialization`. Nothing else may write to stdout then (log to stderr). Must be called
/// inside a tokio runtime; stdin and stdout must be pipes, sockets or terminals (what
/// `ssh`, `kubectl exec -i` and a parent's pipes give).
///
/// ```no_run
/// # async fn f() -> Result<(), childproc_ipc::IpcError> {
/// use childproc_ipc::{from_stdio, Serialization, Value};
/// use futures_util::StreamExt;
///
/// let mut channel = from_stdio(Serialization::MsgPack)?;
/// let tx = channel.sender();
/// while let Some(Ok(message)) = channel.next().await {
///     tx.send(Value::object([("echo", message)])).await?;
/// }
/// # Ok(()) }
/// ```
pub fn from_stdio(serialization: Serialization) -> Result<Channel<AnyCodec>, IpcError> {
    let codec = serialization.codec()?;
    let input = std::io::stdin().as_fd().try_clone_to_owned()?;
    let output = std::io::stdout().as_fd().try_clone_to_owned()?;
    let read = crate::sys::async_stream(input)?;
    let write = crate::sys::async_stream(output)?;
    Channel::from_std(relay(read, write)?, codec)
}

/// Puts a socketpair between a byte stream (`read` from the peer, `write` to it) and a
/// channel: returns the channel's end, and copies bytes between the other end and the stream
/// in a task, until the peer's side ends (`read` reaches EOF): then the channel's end reads
/// EOF too. When the channel's side stops writing (a disconnect), `write` is shut down, so
/// the peer reads EOF. Fds sent on the channel's end do not cross: the relay's reads drop
/// them (the senders refuse handles first). Must be called inside a tokio runtime.
pub fn relay<R, W>(read: R, write: W) -> io::Result<UnixStream>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (ours, theirs) = UnixStream::pair()?;
    theirs.set_nonblocking(true)?;
    let theirs = tokio::net::UnixStream::from_std(theirs)?;
    tokio::spawn(async move {
        let (mut from_channel, mut to_channel) = theirs.into_split();
        let (mut read, mut write) = (read, write);
        let from_peer = async move {
            let _ = tokio::io::copy(&mut read, &mut to_channel).await;
        };
        let to_peer = async move {
            let _ = tokio::io::copy(&mut from_channel, &mut write).await;
            let _ = write.shutdown().await;
            // Closed, so the peer reads EOF (a pipe's shutdown alone does not close it);
            // what it still sends is copied until it ends.
            drop(write);
            std::future::pending::<()>().await;
        };
        // Once the peer's side ends, everything ends: the channel's end reads EOF.
        tokio::select! {
            () = from_peer => {}
            () = to_peer => {}
        }
    });
    Ok(ours)
}
