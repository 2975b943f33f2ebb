//! Node.js's `child_process`, native to async Rust on tokio.
//!
//! The three everyday paths, each a doc test that runs:
//!
//! **exec**: run a command line through the shell and await its output (Node's promisified
//! `exec`; [`exec_file`] runs a program without a shell):
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), childproc::ExecError> {
//! let out = childproc::exec("echo hello; echo oops >&2").await?;
//! assert_eq!(out.stdout, "hello\n");
//! assert_eq!(out.stderr, "oops\n");
//! # Ok(()) }
//! ```
//!
//! **spawn with streaming**: read a child's output as it comes, line by line, and wait for
//! Node's `'close'`:
//!
//! ```
//! use childproc::Command;
//! use futures_util::StreamExt;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut child = Command::new("printf").arg("one\ntwo\n").spawn()?;
//! let mut lines = child.stdout.take().unwrap().lines();
//! let mut seen = Vec::new();
//! while let Some(line) = lines.next().await {
//!     seen.push(line?);
//! }
//! let status = child.closed().await?; // Node's 'close'
//! assert_eq!(seen, ["one", "two"]);
//! assert!(status.success());
//! # Ok(()) }
//! ```
//!
//! **fork with messages** (the `ipc` feature, on by default): a child with Node's IPC
//! channel, here a Node.js one-liner (a Rust child uses `childproc_ipc::from_env()`; see
//! [`fork_exe`]):
//!
#![cfg_attr(feature = "ipc", doc = "```")]
#![cfg_attr(not(feature = "ipc"), doc = "```ignore")]
//! use childproc::{ipc::Value, Event};
//! use futures_util::StreamExt;
//!
//! # #[tokio::main] async fn main() -> Result<(), childproc::Error> {
//! let echo = "process.on('message', m => { process.send({ echo: m }); process.disconnect() })";
//! let child = childproc::fork_exe("node", ["-e", echo]).spawn()?;
//! child.send("hi").await?;
//! let mut events = child.events();
//! while let Some(event) = events.next().await {
//!     if let Event::Message(m) = event {
//!         assert_eq!(m, Value::object([("echo", Value::from("hi"))]));
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Where Node has an event emitter, childproc has [`ChildProcess::events`], a stream of
//! [`Event`]s in Node's order. docs/node-mapping.md maps every Node item to its Rust name.
//!
//! Beyond Node: OS-level [`Pipeline`]s (`ps ax | grep ssh` with no byte through the parent),
//! line streams ([`ChildStdout::lines`], [`Lines`]), stdout and stderr [`Interleaved`] with
//! tags, a shell's `2>&1` ([`Stdio::SameAs`]), whole-tree kills and SIGKILL escalation, a
//! wait delay for pipes held by grandchildren ([`Command::wait_delay`]), a pseudo-terminal
//! for the child ([`Command::pty`], [`Pty`]: node-pty's job, here one option), what each
//! child cost ([`ResourceUsage`], on every exit status), and a worker [`Pool`] whose workers
//! may run anywhere a byte stream reaches ([`Fork::channel_over_stdio`]: `ssh host worker`).
//!
//! # Feature flags
//!
//! - `ipc` (default): Node's IPC channel and everything built on it: [`fork`] and its
//!   variants, [`ChildProcess::send`] and the other channel methods, [`Stdio::Ipc`],
//!   `Event::Message`, `Event::MessageWithHandle` and `Event::Disconnect`,
//!   [`Command::serialization`] and [`Command::ipc_high_water`], the worker [`Pool`],
//!   [`wait_referenced`] waiting for open channels, and the [`ipc`] module (childproc-ipc
//!   re-exported: the message `Value`, typed messages, the child's side). It brings in
//!   childproc-ipc and its codecs' dependencies (serde, serde_json, rmp, ryu-js).
//!
//! Without it (`default-features = false`) childproc is spawn, exec, the sync trio,
//! pipelines, line streams and interleaving, with the same engine and the same Node
//! semantics, and none of those crates in the dependency tree.
//!
//! Supported Rust: the `rust-version` in the manifest (1.88). It is kept by clippy's
//! `incompatible_msrv` lint, which CI runs with `-D warnings` and which rejects standard
//! library items newer than that version.

// Without the `ipc` feature, the docs still name the IPC items (shown as plain text then);
// docs.rs and CI build them with every feature, where each link is checked.
#![cfg_attr(not(feature = "ipc"), allow(rustdoc::broken_intra_doc_links))]
// On docs.rs (nightly, `--cfg docsrs`), each IPC item is marked "Available on crate feature
// ipc only".
#![cfg_attr(docsrs, feature(doc_cfg))]

// The builder options that exec, the sync trio and pipelines share, as macros; first, so
// every module below can use them.
#[macro_use]
mod options;

mod backlog;
mod bulk;
mod child;
mod collect;
mod command;
mod encoding;
mod error;
mod events;
mod exec;
mod exit;
#[cfg(feature = "ipc")]
mod fork;
mod interleave;
mod lines;
mod pipeline;
mod pipes;
#[cfg(feature = "ipc")]
mod pool;
mod pty;
mod signal;
mod stdio;
mod sync;
#[allow(unsafe_code)]
mod sys;
mod unfinished;
mod usage;

#[cfg(feature = "ipc")]
pub use backlog::{IPC_HIGH_WATER_BYTES, IPC_HIGH_WATER_MESSAGES};
pub use child::{wait_referenced, ChildProcess};
pub use command::{spawn, Command};
pub use encoding::{Data, Encoding};
pub use error::{Error, Result};
#[cfg(feature = "ipc")]
pub use events::ReceivedHandle;
pub use events::{Event, Events};
pub use exec::{
    exec, exec_file, Exec, ExecChild, ExecError, ExecFailure, ExecOutput, StdStream,
    DEFAULT_MAX_BUFFER,
};
pub use exit::ExitStatus;
#[cfg(feature = "ipc")]
pub use fork::{fork, fork_current_exe, fork_exe, Fork};
pub use interleave::Interleaved;
pub use lines::{ByteLines, Lines, LinesError, DEFAULT_MAX_LINE};
pub use pipeline::{Pipeline, PipelineChild, PipelineError, PipelineOutput, PipelineStatus};
pub use pipes::{ChildPipe, ChildStderr, ChildStdin, ChildStdout};
#[cfg(feature = "ipc")]
pub use pool::{Pool, PoolBuilder, PoolError, PoolStats, PoolSummary};
pub use pty::{Pty, PtySize};
pub use signal::{Signal, SignalSpec, UnknownSignal};
pub use stdio::{Stdio, StdioShorthand};
pub use sync::{
    exec_file_sync, exec_sync, spawn_sync, ExecSync, ExecSyncError, ExecSyncFailure, SpawnSync,
    SpawnSyncResult, SyncFailure,
};
pub use tokio_util::sync::CancellationToken;
pub use usage::ResourceUsage;

/// Makes every child spawned from now on run without a pidfd, as on kernels older than 5.3:
/// exit is then awaited on SIGCHLD and signals go through `kill(2)` under the reaping lock.
/// For tests of that fallback; not part of the stable API.
#[doc(hidden)]
pub fn __force_no_pidfd(on: bool) {
    sys::force_no_pidfd(on);
}

/// Makes every child spawned from now on go through the portable `fork`+`execve` engine, the
/// only one on Unixes other than Linux, so tests run it on Linux too (children then have no
/// pidfd, as there). No effect elsewhere. For tests; not part of the stable API.
#[doc(hidden)]
pub fn __force_portable_engine(on: bool) {
    sys::force_portable_engine(on);
}

/// The process-creation engine that creates children now (`"clone-vfork"` on Linux, `"fork"`
/// for the portable engine) and how many children it has created, for tests that prove which
/// path every option takes. Not part of the stable API.
#[doc(hidden)]
pub fn __engine_stats() -> (&'static str, u64) {
    sys::engine_stats()
}

/// The IPC crate, re-exported: the [`Value`](ipc::Value) carried by [`Event::Message`].
#[cfg(feature = "ipc")]
pub use childproc_ipc as ipc;
#[cfg(feature = "ipc")]
pub use childproc_ipc::Serialization;

/// How the pool reads a worker's message: `Some((id, Ok(result)))` for `{ id, result }`,
/// `Some((id, Err(error)))` for `{ id, error }`, `None` for anything that is not an answer.
/// For the fuzz target `fuzz/fuzz_targets/pool_answer.rs`; not part of the stable API.
#[cfg(feature = "ipc")]
#[doc(hidden)]
pub fn __fuzz_pool_answer(message: ipc::Value) -> Option<(u64, Result<ipc::Value, ipc::Value>)> {
    pool::parse_answer(message)
}
