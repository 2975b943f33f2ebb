//! The children's sides: `xtask bench-worker ipc-child|ipc-raw|ipc-tokio`, and the message
//! protocol the Rust parent and child share (see the section's module docs).

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use childproc::ipc::{AnyCodec, Sender, Value};
use futures_util::StreamExt;

use super::SMALL_SIZE;
use crate::BoxError;

/// A count as a message number (counts here are far below 2^53).
pub(super) fn count_value(n: u64) -> Value {
    Value::Number(n as f64)
}

/// A count field of a message.
pub(super) fn count_field(message: &Value, key: &str) -> Option<u64> {
    let n = message.get(key)?.as_f64()?;
    (n >= 0.0 && n.fract() == 0.0).then_some(n as u64)
}

/// Sends `n` strings of `size` characters with Node's flow control: `send_nowait` while it
/// returns true; after a false (more than 128 KiB queued) the next one is an awaited `send`,
/// which resolves once the queue has drained up to it.
pub(super) async fn send_many(tx: &Sender<AnyCodec>, n: u64, size: usize) -> Result<(), BoxError> {
    let text = "x".repeat(size);
    let mut blocked = false;
    for _ in 0..n {
        let message = Value::String(text.clone());
        if blocked {
            tx.send(message).await?;
            blocked = false;
        } else {
            blocked = !tx.send_nowait(message)?;
        }
    }
    Ok(())
}

/// Sends `n` strings of `size` characters (at least 10), each starting with its sequence
/// number in ten digits, with the flow control of [`send_many`].
pub(super) async fn send_numbered(
    tx: &Sender<AnyCodec>,
    n: u64,
    size: usize,
) -> Result<(), BoxError> {
    let pad = "x".repeat(size.saturating_sub(10));
    let mut blocked = false;
    for i in 0..n {
        let message = Value::String(format!("{i:010}{pad}"));
        if blocked {
            tx.send(message).await?;
            blocked = false;
        } else {
            blocked = !tx.send_nowait(message)?;
        }
    }
    Ok(())
}

/// `xtask bench-worker ipc-child|ipc-raw|ipc-tokio`: the Rust children.
pub(crate) fn worker(args: &[String]) -> Result<(), BoxError> {
    match args {
        [role] if role == "ipc-child" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(child())
        }
        [role] if role == "ipc-raw" => raw_child(),
        [role] if role == "ipc-tokio" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(tokio_child())
        }
        _ => Err("usage: xtask bench-worker ipc-child|ipc-raw|ipc-tokio".into()),
    }
}

/// The Rust child of the protocol in the module docs, on its parent's channel.
async fn child() -> Result<(), BoxError> {
    let mut channel =
        childproc::ipc::from_env().ok_or("ipc-child: started without a channel")??;
    let tx = channel.sender();
    // While counting: (messages still to come, how many were asked for).
    let mut sink: Option<(u64, u64)> = None;
    while let Some(message) = channel.next().await {
        let message = message?;
        if let Some((left, total)) = &mut sink {
            *left -= 1;
            if *left == 0 {
                tx.send(Value::object([("got", count_value(*total))]))
                    .await?;
                sink = None;
            }
        } else if matches!(message, Value::String(_)) {
            tx.send(message).await?;
        } else if let Some(n) = count_field(&message, "sink") {
            if n == 0 {
                tx.send(Value::object([("got", count_value(0))])).await?;
            } else {
                sink = Some((n, n));
            }
        } else if let (Some(n), Some(size)) = (
            count_field(&message, "source"),
            count_field(&message, "size"),
        ) {
            send_many(&tx, n, usize::try_from(size)?).await?;
        } else if let (Some(n), Some(size)) = (
            count_field(&message, "numbered"),
            count_field(&message, "size"),
        ) {
            send_numbered(&tx, n, usize::try_from(size)?).await?;
        } else {
            return Err(format!("ipc-child: unexpected message {message:?}").into());
        }
    }
    Ok(())
}

/// The raw echo child: its stdin is the socket; echoes 16-byte blocks until EOF.
fn raw_child() -> Result<(), BoxError> {
    let mut socket = UnixStream::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let mut buf = [0u8; SMALL_SIZE];
    loop {
        match socket.read_exact(&mut buf) {
            Ok(()) => socket.write_all(&buf)?,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// The tokio echo child: the raw child's loop on tokio's `UnixStream`.
async fn tokio_child() -> Result<(), BoxError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = UnixStream::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    socket.set_nonblocking(true)?;
    let mut socket = tokio::net::UnixStream::from_std(socket)?;
    let mut buf = [0u8; SMALL_SIZE];
    loop {
        match socket.read_exact(&mut buf).await {
            Ok(_) => socket.write_all(&buf).await?,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}
