//! A pool whose workers are reached through a byte stream, as through `ssh host worker`:
//! one local forked worker and one behind a relay that only copies bytes (this binary plays
//! the relay, standing in for `ssh`, and the worker). Run with
//! `cargo run --example remote_worker`.
//!
//! With a real remote host the factory is
//! `fork_exe("ssh", ["host", "/path/to/worker"]).channel_over_stdio()`, and the worker calls
//! `childproc_ipc::from_stdio(Serialization::MsgPack)` (ssh does not pass on the variable
//! that `from_env` finds here).

#![allow(clippy::print_stdout)]

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use childproc::ipc::{serve, Value};
use childproc::{fork_current_exe, Pool, Serialization};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::args().nth(1).as_deref() {
        Some("worker") => return worker().await,
        Some("relay") => {
            relay();
            return Ok(());
        }
        _ => {}
    }
    let started = AtomicUsize::new(0);
    let pool = Pool::builder(move || {
        let local = started.fetch_add(1, Ordering::Relaxed).is_multiple_of(2);
        let fork = if local {
            fork_current_exe(["worker"]).expect("this program's path")
        } else {
            // "ssh": the relay runs the worker with piped stdio and copies bytes both ways.
            fork_current_exe(["relay"])
                .expect("this program's path")
                .channel_over_stdio()
        };
        fork.serialization(Serialization::MsgPack)
    })
    .size(2)
    .build()?;
    let mut answers = Vec::new();
    for n in 1..=6 {
        let task = Value::object([("square", Value::from(n))]);
        answers.push(pool.run(task).await?);
    }
    println!("squares: {answers:?}");
    let summary = pool.close().await;
    println!(
        "answered {} tasks; workers ended: {}",
        summary.stats.answered,
        summary.worker_usage.len()
    );
    Ok(())
}

/// The worker: `{square: n}` → `{n2, pid}`. The same code serves a fork (an `'ipc'` socket)
/// and a channel over stdio: `from_env` finds either.
async fn worker() -> Result<(), Box<dyn std::error::Error>> {
    let channel = childproc::ipc::from_env().ok_or("no channel")??;
    serve(channel, |task: Value| async move {
        let n = task
            .get("square")
            .and_then(Value::as_f64)
            .ok_or("no square")?;
        Ok::<_, String>(Value::object([
            ("n2", Value::from(n * n)),
            ("pid", Value::from(f64::from(std::process::id()))),
        ]))
    })
    .await?;
    Ok(())
}

/// A stand-in for `ssh host worker`: runs the worker with piped stdin and stdout and copies
/// bytes between them and its own, nothing else.
fn relay() {
    let exe = std::env::current_exe().expect("this program's path");
    let mut child = std::process::Command::new(exe)
        .arg("worker")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the worker starts");
    let mut to_worker = child.stdin.take().expect("piped");
    let mut from_worker = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut to_worker);
    });
    let mut buf = [0; 8192];
    let mut out = std::io::stdout();
    while let Ok(n) = from_worker.read(&mut buf) {
        if n == 0 || out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    let _ = child.wait();
}
