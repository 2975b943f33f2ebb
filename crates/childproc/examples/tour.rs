//! A tour of childproc: run it with `cargo run --example tour`.
//!
//! 1. Spawns a real program, streams its output line by line, and prints the event timeline
//!    (spawn → data → exit → close), as Node's `'spawn'`, `'data'`, `'exit'`, `'close'`.
//! 2. A timeout: a long `sleep` killed with the kill signal after 300 ms.
//! 3. A kill: `grep` waiting on stdin, sent SIGHUP (the manual's example).
//! 4. `exec(...).await`: a shell command's whole output, Node's promisified `exec`.
//! 5. A pipeline, `ps ax | grep ssh | wc -l`, linked at the OS level (no shell, no copying).

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use childproc::{ChildProcess, Command, Event, Pipeline, Signal, Stdio};
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let at = move || format!("{:>6.1} ms", start.elapsed().as_secs_f64() * 1000.0);

    println!("1. spawn a real program and stream its output");
    let script = "for i in 1 2 3; do echo \"tick $i\"; sleep 0.1; done; echo 'done' >&2";
    let mut child = Command::new("sh")
        .args(["-c", script])
        .stderr(Stdio::Inherit)
        .spawn()?;
    println!("   pid {} ({:?})", child.pid(), child.spawnargs());
    let events = tokio::spawn(print_events(child.events(), at));
    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    while let Some(line) = lines.next_line().await? {
        println!("   {}  data    stdout: {line}", at());
    }
    events.await?;

    println!("\n2. a timeout: `sleep 10` with timeout 300 ms (killSignal SIGTERM)");
    let child = Command::new("sleep")
        .arg("10")
        .timeout(Duration::from_millis(300))
        .spawn()?;
    print_events(child.events(), at).await;
    report(&child);

    println!("\n3. a kill: `grep ssh` waiting on stdin, then kill(SIGHUP)");
    let child = Command::new("grep").arg("ssh").spawn()?;
    let delivered = child.kill(Signal::SIGHUP);
    print_events(child.events(), at).await;
    println!("   kill(SIGHUP) delivered: {delivered}");
    report(&child);

    println!("\n4. exec: `uname -s && echo $((6 * 7))` awaited for {{stdout, stderr}}");
    let out = childproc::exec("uname -s && echo $((6 * 7))").await?;
    println!("   stdout: {:?}  stderr: {:?}", out.stdout, out.stderr);
    let err = childproc::exec("echo 'no such thing' >&2; exit 3")
        .await
        .unwrap_err();
    println!(
        "   a failing command: reason {:?}, code {:?}, message {:?}",
        err.reason,
        err.code,
        err.to_string()
    );

    println!("\n5. a pipeline: `ps ax | grep ssh | wc -l`, each stdout linked to the next stdin");
    let out = Pipeline::new()
        .pipe(Command::new("ps").arg("ax"))
        .pipe(Command::new("grep").arg("ssh"))
        .pipe(Command::new("wc").arg("-l"))
        .await?;
    let count = out.stdout.to_string_lossy();
    println!(
        "   {} line(s) mention ssh; stage statuses {:?}",
        count.trim(),
        out.status.stages()
    );
    Ok(())
}

async fn print_events(mut events: childproc::Events, at: impl Fn() -> String) {
    while let Some(event) = events.next().await {
        let what = match &event {
            Event::Spawn => "spawn".to_owned(),
            Event::Exit(status) => format!("exit    {status}"),
            Event::Close(status) => format!("close   {status}"),
            Event::Error(err) => format!("error   {err}"),
            other => format!("{other:?}"),
        };
        println!("   {}  {what}", at());
    }
}

fn report(child: &ChildProcess) {
    println!(
        "   killed={} exit_code={:?} signal_code={:?}",
        child.killed(),
        child.exit_code(),
        child.signal_code().map(|s| s.to_string())
    );
}
