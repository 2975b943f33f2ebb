//! The crate's error type.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;

use crate::signal::Signal;

/// Everything that can go wrong in childproc. Each variant carries what names the problem;
/// [`Error::kind`] keeps `std::io::ErrorKind` meaningful (`NotFound` for a missing program).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The program could not be started (Node's `spawn <file> <code>` error).
    #[error("spawn {}: {source}", program.to_string_lossy())]
    Spawn {
        /// The program as it was given.
        program: OsString,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// The working directory does not exist, is not a directory, or cannot be entered.
    #[error("spawn {}: cannot use cwd {}: {source}", program.to_string_lossy(), cwd.display())]
    Cwd {
        /// The program being spawned.
        program: OsString,
        /// The working directory that was asked for.
        cwd: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// A program name, argument, argv0, cwd or environment entry contains a NUL byte.
    #[error("{what} contains a NUL byte: {}", value.to_string_lossy())]
    Nul {
        /// Which input: `"program"`, `"argument 2"`, `"environment key"`…
        what: String,
        /// The offending value (NULs shown as `\u{0}`).
        value: OsString,
    },
    /// A signal name or number that Node does not accept (its `ERR_UNKNOWN_SIGNAL`; same text).
    #[error("Unknown signal: {0}")]
    UnknownSignal(String),
    /// The child's user or group identity could not be set.
    #[error("spawn {}: cannot set {what} {id}: {source}", program.to_string_lossy())]
    Identity {
        /// The program being spawned.
        program: OsString,
        /// `"uid"` or `"gid"`.
        what: &'static str,
        /// The id that was asked for.
        id: u32,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// The stdio configuration is invalid (an fd given twice, a negative fd, a bad parent fd).
    #[error("invalid stdio: {0}")]
    Stdio(String),
    /// An option has a value that cannot be honoured.
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The option's Rust name (`timeout`, `env`…).
        option: &'static str,
        /// Why.
        reason: String,
    },
    /// A signal could not be delivered to the child (Node's `kill` error event).
    #[error("kill {signal} to pid {pid}: {source}")]
    Kill {
        /// The child's pid.
        pid: u32,
        /// The signal.
        signal: Signal,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// The child was aborted through its cancellation token (Node's `AbortError`).
    #[error("The operation was aborted")]
    Aborted,
    /// Waiting for the child failed, or the runtime driving it went away.
    #[error("wait for pid {pid}: {source}")]
    Wait {
        /// The child's pid.
        pid: u32,
        /// The reason.
        #[source]
        source: io::Error,
    },
    /// The IPC channel failed: closed, a malformed frame from the peer, a value that cannot
    /// be sent. With the `ipc` feature.
    #[cfg(feature = "ipc")]
    #[error("ipc: {0}")]
    Ipc(#[from] childproc_ipc::IpcError),
    /// One stage of a [`Pipeline`](crate::Pipeline) could not be started (or was configured in
    /// a way a pipeline cannot honour); the stages spawned before it were killed and reaped.
    #[error("pipeline stage {stage}: {source}")]
    Pipeline {
        /// The stage's index, from 0 (the leftmost command).
        stage: usize,
        /// The stage's own error (naming its program).
        #[source]
        source: Box<Error>,
    },
    /// An I/O error with no more specific home.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl Error {
    /// The `std::io::ErrorKind` that best describes this error.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::Spawn { source, .. }
            | Error::Cwd { source, .. }
            | Error::Identity { source, .. }
            | Error::Kill { source, .. }
            | Error::Wait { source, .. }
            | Error::Io(source) => source.kind(),
            Error::Nul { .. }
            | Error::UnknownSignal(_)
            | Error::Stdio(_)
            | Error::InvalidOption { .. } => io::ErrorKind::InvalidInput,
            Error::Aborted => io::ErrorKind::Interrupted,
            #[cfg(feature = "ipc")]
            Error::Ipc(e) => ipc_kind(e),
            Error::Pipeline { source, .. } => source.kind(),
        }
    }

    /// The OS error code underneath, if there is one (`ENOENT` = 2 for a missing program).
    pub fn raw_os_error(&self) -> Option<i32> {
        if let Error::Pipeline { source, .. } = self {
            return source.raw_os_error();
        }
        std::error::Error::source(self)
            .and_then(|s| s.downcast_ref::<io::Error>())
            .and_then(io::Error::raw_os_error)
            .or_else(|| match self {
                Error::Io(e) => e.raw_os_error(),
                _ => None,
            })
    }

    /// True for [`Error::Aborted`]: the child was stopped through its cancellation token.
    pub fn is_abort(&self) -> bool {
        matches!(self, Error::Aborted)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io(e) => e,
            other => io::Error::new(other.kind(), other),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::signal::UnknownSignal> for Error {
    fn from(e: crate::signal::UnknownSignal) -> Self {
        Error::UnknownSignal(e.0)
    }
}

/// The `std::io::ErrorKind` of a channel error: its I/O error's, `BrokenPipe` for a closed
/// channel, `InvalidData` for anything malformed.
#[cfg(feature = "ipc")]
fn ipc_kind(e: &childproc_ipc::IpcError) -> io::ErrorKind {
    match e {
        childproc_ipc::IpcError::Io(e) => e.kind(),
        childproc_ipc::IpcError::Closed => io::ErrorKind::BrokenPipe,
        _ => io::ErrorKind::InvalidData,
    }
}
