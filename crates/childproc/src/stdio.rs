//! Node's `options.stdio`: what each of the child's fds is connected to.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd, RawFd};

use crate::pipes::{ChildStderr, ChildStdin, ChildStdout};

/// What one fd of the child is connected to. Node's values map as:
///
/// | Node | Rust |
/// |---|---|
/// | `'pipe'` | [`Stdio::Pipe`] (a pipe for fds 0–2; a duplex Unix socket for fds ≥ 3) |
/// | `'overlapped'` | [`Stdio::Overlapped`] (the same as `Pipe` on Unix) |
/// | `'ignore'` | [`Stdio::Ignore`] (`/dev/null` for fds 0–2; left closed above, as Node) |
/// | `'inherit'` | [`Stdio::Inherit`] (the parent's same fd for 0–2; `Ignore` above) |
/// | a Stream / an integer | [`Stdio::Fd`], from a `File`, socket, `OwnedFd`, another child's pipe, or [`Stdio::parent_fd`] |
/// | `null` / `undefined` | [`Stdio::Default`] (a pipe for 0–2, ignore — closed — above) |
///
/// The child receives exactly the fds configured here: every other fd is closed.
#[derive(Debug, Default)]
#[non_exhaustive]
pub enum Stdio {
    /// A pipe between parent and child, exposed on the [`ChildProcess`](crate::ChildProcess).
    Pipe,
    /// Windows' overlapped pipe; on Unix exactly [`Stdio::Pipe`].
    Overlapped,
    /// `/dev/null` for fds 0–2; above 2 the fd is left closed in the child (as Node does).
    Ignore,
    /// The parent's own fd of the same number (fds 0–2); for higher fds the same as
    /// [`Stdio::Ignore`], as Node documents.
    Inherit,
    /// This fd, duplicated into the child (the parent keeps its own copy).
    Fd(OwnedFd),
    /// The parent's fd with this number, looked up when the command spawns (Node's integer
    /// entries). An fd that is not open is an error naming it.
    ParentFd(RawFd),
    /// Node's `null`: a pipe for fds 0–2, ignore above.
    #[default]
    Default,
}

impl Stdio {
    /// `'pipe'`.
    pub fn piped() -> Stdio {
        Stdio::Pipe
    }
    /// `'ignore'`.
    pub fn null() -> Stdio {
        Stdio::Ignore
    }
    /// `'inherit'`.
    pub fn inherit() -> Stdio {
        Stdio::Inherit
    }
    /// The parent's fd `fd` (Node's integer entry), checked at spawn time.
    pub fn parent_fd(fd: RawFd) -> Stdio {
        Stdio::ParentFd(fd)
    }
    /// A duplicate of anything holding an fd (a file, socket, tty…).
    pub fn dup(fd: &impl AsFd) -> std::io::Result<Stdio> {
        Ok(Stdio::Fd(fd.as_fd().try_clone_to_owned()?))
    }
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Self {
        Stdio::Fd(fd)
    }
}
impl From<File> for Stdio {
    fn from(f: File) -> Self {
        Stdio::Fd(f.into())
    }
}
impl From<std::os::unix::net::UnixStream> for Stdio {
    fn from(s: std::os::unix::net::UnixStream) -> Self {
        Stdio::Fd(s.into())
    }
}
impl From<std::net::TcpStream> for Stdio {
    fn from(s: std::net::TcpStream) -> Self {
        Stdio::Fd(s.into())
    }
}
/// Another child's stdout feeds this fd directly (an OS-level pipe: `ps ax | grep ssh`).
impl From<ChildStdout> for Stdio {
    fn from(s: ChildStdout) -> Self {
        Stdio::Fd(s.into_owned_fd())
    }
}
impl From<ChildStderr> for Stdio {
    fn from(s: ChildStderr) -> Self {
        Stdio::Fd(s.into_owned_fd())
    }
}
impl From<ChildStdin> for Stdio {
    fn from(s: ChildStdin) -> Self {
        Stdio::Fd(s.into_owned_fd())
    }
}

/// Node's string shorthands for the whole `stdio` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdioShorthand {
    /// `'pipe'`: `['pipe', 'pipe', 'pipe']`.
    Pipe,
    /// `'overlapped'`: `['overlapped', 'overlapped', 'overlapped']`.
    Overlapped,
    /// `'ignore'`: `['ignore', 'ignore', 'ignore']`.
    Ignore,
    /// `'inherit'`: `['inherit', 'inherit', 'inherit']`.
    Inherit,
}

impl StdioShorthand {
    pub(crate) fn expand(self) -> Stdio {
        match self {
            StdioShorthand::Pipe => Stdio::Pipe,
            StdioShorthand::Overlapped => Stdio::Overlapped,
            StdioShorthand::Ignore => Stdio::Ignore,
            StdioShorthand::Inherit => Stdio::Inherit,
        }
    }
}
