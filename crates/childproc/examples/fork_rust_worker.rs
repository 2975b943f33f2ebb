//! Fork the current executable as a worker and exchange messages over IPC, Rust to Rust.
//! Run with `cargo run --example fork_rust_worker`.
//!
//! The same binary plays both roles: started with `worker` (and a channel from its parent) it
//! answers `{id, n}` requests with `{id, square}`; otherwise it is the parent.

#![allow(clippy::print_stdout)]

use childproc::ipc::Value;
use childproc::{fork_current_exe, Event, Serialization};
use futures_util::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("worker") {
        return worker().await;
    }
    // MessagePack carries every Value kind losslessly between Rust peers.
    let child = fork_current_exe(["worker"])?
        .serialization(Serialization::MsgPack)
        .spawn()?;
    let mut events = child.events();
    for id in 1..=3 {
        child
            .send(Value::object([
                ("id", Value::from(id)),
                ("n", Value::from(id * 7)),
            ]))
            .await?;
    }
    let mut answered = 0;
    while let Some(event) = events.next().await {
        match event {
            Event::Message(m) => {
                println!("parent got {m:?}");
                answered += 1;
                if answered == 3 {
                    child.disconnect();
                }
            }
            Event::Close(status) => println!("worker closed with {status}"),
            other => println!("{other:?}"),
        }
    }
    Ok(())
}

async fn worker() -> Result<(), Box<dyn std::error::Error>> {
    let mut channel =
        childproc::ipc::from_env().ok_or("no IPC channel: run me without arguments")??;
    let tx = channel.sender();
    while let Some(message) = channel.next().await {
        let message = message?;
        let n = message.get("n").and_then(Value::as_f64).unwrap_or(0.0);
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        tx.send(Value::object([("id", id), ("square", Value::from(n * n))]))
            .await?;
    }
    Ok(()) // the parent disconnected
}
