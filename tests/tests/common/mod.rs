//! Helpers shared by childproc's integration tests.
#![allow(dead_code)]

use std::time::Duration;

use childproc::{ChildProcess, Event, Events};
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

/// The fixture binary built from `src/bin/fixture.rs`.
pub const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");

/// A guard against hangs: generous, so a loaded 2-core machine still passes.
pub const GUARD: Duration = Duration::from_secs(30);

/// Longer than a child takes to start and set itself up on a loaded 2-core machine (tens
/// of milliseconds were measured there): a timeout that must not fire before the child has
/// done its first act, such as the fixture's `ignore-term` ignoring SIGTERM, is this long.
/// A shorter one races the child's start, as a kill signal sent then finds it not yet ready.
pub const STARTUP: Duration = Duration::from_secs(1);

/// The `ignore-term` fixture's argument: it runs `ms` milliseconds after [`STARTUP`].
pub fn after_startup(ms: u64) -> String {
    (STARTUP.as_millis() as u64 + ms).to_string()
}

/// A current-thread runtime of its own, for the tests that move children between runtimes
/// or outlive one.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `fut` or fails the test after [`GUARD`].
pub async fn guard<F: std::future::IntoFuture>(fut: F) -> F::Output {
    tokio::time::timeout(GUARD, fut)
        .await
        .expect("timed out: the test hung")
}

/// Reads a child's whole stdout as a string.
pub async fn stdout_string(child: &mut ChildProcess) -> String {
    let mut s = String::new();
    let mut out = child.stdout.take().expect("stdout is piped");
    guard(out.read_to_string(&mut s))
        .await
        .expect("read stdout");
    s
}

/// Every event of a child until Close, as short names: `spawn`, `exit code 0`, `close signal SIGHUP`…
pub async fn timeline(child: &ChildProcess) -> Vec<String> {
    described(child.events()).await
}

/// The rest of an event stream, until Close, as short names (see [`describe`]).
pub async fn described(events: Events) -> Vec<String> {
    let events: Vec<Event> = guard(events.collect()).await;
    events.iter().map(describe).collect()
}

/// A short name for an event.
pub fn describe(e: &Event) -> String {
    match e {
        Event::Spawn => "spawn".into(),
        Event::Exit(s) => format!("exit {s}"),
        Event::Close(s) => format!("close {s}"),
        Event::Error(e) => format!("error {e}"),
        Event::Message(v) => format!("message {v:?}"),
        Event::Disconnect => "disconnect".into(),
        other => format!("{other:?}"),
    }
}

/// Whether the machine's Node.js is available; prints why a test skips when it is not.
pub fn node() -> bool {
    let ok = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping: `node` is not installed (.ci/run requires it)");
    }
    ok
}

/// The path of a Node.js script in tests/node.
pub fn script(name: &str) -> String {
    format!("{}/node/{name}", env!("CARGO_MANIFEST_DIR"))
}
