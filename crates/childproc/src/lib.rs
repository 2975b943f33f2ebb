//! Node.js's `child_process`, native to async Rust on tokio.
//!
//! ```no_run
//! use childproc::{Command, Event};
//! use futures_util::StreamExt;
//! use tokio::io::AsyncReadExt;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut ls = Command::new("ls").args(["-lh", "/usr"]).spawn()?;
//! let mut out = String::new();
//! ls.stdout.take().unwrap().read_to_string(&mut out).await?;
//! let status = ls.closed().await?;            // Node's 'close'
//! println!("{out}child process exited with {status}");
//! # Ok(()) }
//! ```
//!
//! Where Node has an event emitter, childproc has [`ChildProcess::events`], a stream of
//! [`Event`]s in Node's order. docs/node-mapping.md maps every Node item to its Rust name.

mod child;
mod command;
mod encoding;
mod error;
mod events;
mod exec;
mod pipes;
mod signal;
mod stdio;
#[allow(unsafe_code)]
mod sys;

pub use child::{wait_referenced, ChildProcess, ExitStatus};
pub use command::{spawn, Command};
pub use encoding::{Data, Encoding};
pub use error::{Error, Result};
pub use events::{Event, Events};
pub use exec::{
    exec, exec_file, Exec, ExecChild, ExecError, ExecFailure, ExecOutput, StdStream,
    DEFAULT_MAX_BUFFER,
};
pub use pipes::{ChildPipe, ChildStderr, ChildStdin, ChildStdout};
pub use signal::{Signal, SignalSpec};
pub use stdio::{Stdio, StdioShorthand};
pub use tokio_util::sync::CancellationToken;

/// Makes every child spawned from now on run without a pidfd, as on kernels older than 5.3:
/// exit is then awaited on SIGCHLD and signals go through `kill(2)` under the reaping lock.
/// For tests of that fallback; not part of the stable API.
#[doc(hidden)]
pub fn __force_no_pidfd(on: bool) {
    sys::force_no_pidfd(on);
}

/// The IPC crate, re-exported: the [`Value`](ipc::Value) carried by [`Event::Message`].
pub use childproc_ipc as ipc;
