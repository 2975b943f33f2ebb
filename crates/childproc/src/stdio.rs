//! Node's `options.stdio`: what each of the child's fds is connected to.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

use crate::error::{Error, Result};
use crate::pipes::{ChildPipe, StreamWatch};
use crate::pty::{Pty, PtySize};
use crate::sys;

use crate::pipes::{ChildStderr, ChildStdin, ChildStdout};

/// What one fd of the child is connected to. Node's values map as:
///
/// | Node | Rust |
/// |---|---|
/// | `'pipe'` | [`Stdio::Pipe`] (a pipe for fds 0–2; a duplex Unix socket for fds ≥ 3) |
/// | `'overlapped'` | [`Stdio::Overlapped`] (the same as `Pipe` on Unix) |
/// | `'ipc'` | [`Stdio::Ipc`] (at most one; the `ipc` feature) |
/// | `'ignore'` | [`Stdio::Ignore`] (`/dev/null` for fds 0–2; left closed above, as Node) |
/// | `'inherit'` | [`Stdio::Inherit`] (the parent's same fd for 0–2; `Ignore` above) |
/// | a Stream / an integer | [`Stdio::Fd`], from a `File`, socket, `OwnedFd`, another child's pipe, or [`Stdio::parent_fd`] |
/// | `null` / `undefined` | [`Stdio::Default`] (a pipe for 0–2, ignore — closed — above) |
/// | (none: a shell's `2>&1`) | [`Stdio::SameAs`] |
/// | (none: node-pty's terminal) | [`Stdio::Pty`] |
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
    /// Node's `'ipc'`: the IPC channel (a Unix socket; `NODE_CHANNEL_FD` names this fd in the
    /// child). At most one per command; see [`fork`](crate::fork). With the `ipc` feature.
    #[cfg(feature = "ipc")]
    Ipc,
    /// The same open file as the child's fd `n`: a shell's `fd>&n` (beyond Node).
    /// `stderr(Stdio::SameAs(1))` is `2>&1`: with stdout a pipe, both streams go down that
    /// one pipe in the exact order the child wrote them, and the child has no separate
    /// stderr pipe ([`ChildProcess::stderr`](crate::ChildProcess::stderr) is `None`). Whatever
    /// fd `n` is (pipe, file, `/dev/null`, the parent's stdout) this fd is too; if fd `n` is
    /// left closed, so is this one. `n` may not itself be a `SameAs` or this fd.
    SameAs(RawFd),
    /// The slave side of a pseudo-terminal (beyond Node; what node-pty gives Node users):
    /// every fd set to `Pty` is the same terminal, the child's controlling terminal in a
    /// session of its own, and the parent holds the master as
    /// [`ChildProcess::pty`](crate::ChildProcess::pty). [`Command::pty`](crate::Command::pty)
    /// sets fds 0–2 to it; its size is [`Command::pty_size`](crate::Command::pty_size)'s.
    Pty,
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

/// The fds for one spawn: what the child gets and the parent's ends.
pub(crate) struct StdioSet<'a> {
    entries: Vec<(i32, ChildEnd<'a>)>,
}

enum ChildEnd<'a> {
    /// A fd that exists in the parent already (borrowed: user's fd, /dev/null, inherit).
    Borrowed(BorrowedFd<'a>),
    /// A fd made for this spawn, with the parent's end if it is a pipe.
    Owned(OwnedFd, Option<ParentEnd>),
}

/// The parent's end of one stdio pipe.
pub(crate) enum ParentEnd {
    /// The write end of the child's stdin.
    Stdin(OwnedFd),
    /// The read end of the child's stdout or stderr.
    Reader(OwnedFd),
    /// The parent's socket of an extra pipe fd.
    Duplex(std::os::unix::net::UnixStream),
    /// The parent's end of the IPC channel.
    #[cfg(feature = "ipc")]
    Ipc(std::os::unix::net::UnixStream),
    /// The master side of the child's pseudo-terminal.
    Pty(OwnedFd),
}

/// The parent's ends of a new child's stdio, wrapped for tokio: what
/// [`ChildProcess`](crate::ChildProcess) exposes, and what its watcher watches.
pub(crate) struct ParentEnds {
    pub(crate) stdin: Option<ChildStdin>,
    pub(crate) stdout: Option<ChildStdout>,
    pub(crate) stderr: Option<ChildStderr>,
    /// The pipes at fds 3 and up.
    pub(crate) extra: BTreeMap<i32, ChildPipe>,
    /// One per readable end, for `Close` (and the wait delay).
    pub(crate) watches: Vec<StreamWatch>,
    /// The channel's end, non-blocking, for `childproc_ipc::Channel::from_std`.
    #[cfg(feature = "ipc")]
    pub(crate) ipc: Option<std::os::unix::net::UnixStream>,
    /// The pseudo-terminal's master.
    pub(crate) pty: Option<Pty>,
}

impl<'a> StdioSet<'a> {
    pub(crate) fn open(config: &'a BTreeMap<i32, Stdio>, pty_size: PtySize) -> Result<Self> {
        // Fds 0-2 and the configured ones: every other fd is left closed, so a huge fd
        // number (`fd(i32::MAX, ..)`) costs one entry, not a loop up to it.
        let fds: std::collections::BTreeSet<i32> = (0..=2)
            .chain(config.keys().copied().filter(|fd| *fd >= 0))
            .collect();
        let mut entries = Vec::with_capacity(fds.len());
        static DEFAULT: Stdio = Stdio::Default;
        let mut same_as = Vec::new();
        // One terminal for every `Pty` fd: its master goes with the first.
        let mut pty = if config.values().any(|s| matches!(s, Stdio::Pty)) {
            let (master, slave) = sys::open_pty(pty_size.rows, pty_size.cols)?;
            Some((Some(master), slave))
        } else {
            None
        };
        for fd in fds {
            let cfg = config.get(&fd).unwrap_or(&DEFAULT);
            let end = match cfg {
                Stdio::SameAs(n) => {
                    same_as.push((fd, *n));
                    continue;
                }
                Stdio::Default | Stdio::Pipe | Stdio::Overlapped if fd <= 2 => {
                    let (r, w) = sys::pipe()?;
                    if fd == 0 {
                        ChildEnd::Owned(r, Some(ParentEnd::Stdin(w)))
                    } else {
                        ChildEnd::Owned(w, Some(ParentEnd::Reader(r)))
                    }
                }
                Stdio::Pipe | Stdio::Overlapped => {
                    let (parent, child) = std::os::unix::net::UnixStream::pair()?;
                    ChildEnd::Owned(child.into(), Some(ParentEnd::Duplex(parent)))
                }
                #[cfg(feature = "ipc")]
                Stdio::Ipc => {
                    let (parent, child) = std::os::unix::net::UnixStream::pair()?;
                    ChildEnd::Owned(child.into(), Some(ParentEnd::Ipc(parent)))
                }
                // Node leaves ignored fds above 2 closed in the child.
                Stdio::Default | Stdio::Ignore | Stdio::Inherit if fd > 2 => continue,
                Stdio::Default | Stdio::Ignore => ChildEnd::Borrowed(sys::dev_null()?),
                Stdio::Inherit => given(fd, inherited(fd)?),
                Stdio::Fd(owned) => given(fd, owned.as_fd()),
                Stdio::Pty => {
                    let Some((master, slave)) = pty.as_mut() else {
                        unreachable!("a Pty entry opened the terminal above");
                    };
                    ChildEnd::Owned(slave.try_clone()?, master.take().map(ParentEnd::Pty))
                }
                Stdio::ParentFd(n) => {
                    let dup = sys::dup_parent_fd(*n).map_err(|e| {
                        Error::Stdio(format!("stdio[{fd}]: parent fd {n} cannot be used: {e}"))
                    })?;
                    let view = (fd <= 2).then(|| sys::blocking_view(dup.as_fd())).flatten();
                    ChildEnd::Owned(view.unwrap_or(dup), None)
                }
            };
            entries.push((fd, end));
        }
        // `n>&m` once every other fd is known: a close-on-exec duplicate of fd m's end.
        for (fd, n) in same_as {
            if n < 0 || n == fd || matches!(config.get(&n), Some(Stdio::SameAs(_))) {
                return Err(Error::Stdio(format!(
                    "stdio[{fd}]: SameAs({n}) must name another fd that is not a SameAs"
                )));
            }
            let Some((_, target)) = entries.iter().find(|(t, _)| *t == n) else {
                continue; // fd n is left closed in the child: so is this one
            };
            let dup = match target {
                ChildEnd::Borrowed(b) => b.try_clone_to_owned()?,
                ChildEnd::Owned(o, _) => o.try_clone()?,
            };
            entries.push((fd, ChildEnd::Owned(dup, None)));
        }
        entries.sort_by_key(|(fd, _)| *fd);
        Ok(StdioSet { entries })
    }

    /// The child fd of the pseudo-terminal to make its controlling terminal: the lowest one
    /// set to [`Stdio::Pty`].
    pub(crate) fn controlling_tty(&self) -> Option<RawFd> {
        self.entries.iter().find_map(|(fd, end)| match end {
            ChildEnd::Owned(_, Some(ParentEnd::Pty(_))) => Some(*fd),
            _ => None,
        })
    }

    pub(crate) fn child_fds(&self) -> sys::FdMap<'_> {
        self.entries
            .iter()
            .map(|(fd, end)| match end {
                ChildEnd::Borrowed(b) => (*fd, *b),
                ChildEnd::Owned(o, _) => (*fd, o.as_fd()),
            })
            .collect()
    }

    /// Closes the child's ends and returns the parent's.
    pub(crate) fn into_parent_ends(self) -> Vec<(i32, ParentEnd)> {
        self.entries
            .into_iter()
            .filter_map(|(fd, end)| match end {
                ChildEnd::Owned(_child_end, Some(parent)) => Some((fd, parent)),
                _ => None,
            })
            .collect()
    }
}

/// Wraps the parent's ends as tokio pipes.
pub(crate) fn wrap_parent_ends(ends: Vec<(i32, ParentEnd)>) -> io::Result<ParentEnds> {
    let (mut stdin, mut stdout, mut stderr) = (None, None, None);
    let mut extra = BTreeMap::new();
    let mut watches = Vec::new();
    #[cfg(feature = "ipc")]
    let mut ipc = None;
    let mut pty = None;
    for (fd, parent) in ends {
        match parent {
            ParentEnd::Stdin(w) => stdin = Some(ChildStdin::new(w)?),
            ParentEnd::Reader(r) if fd == 1 => {
                let (s, w) = ChildStdout::new(r)?;
                stdout = Some(s);
                watches.push(w);
            }
            ParentEnd::Reader(r) => {
                let (s, w) = ChildStderr::new(r)?;
                stderr = Some(s);
                watches.push(w);
            }
            ParentEnd::Duplex(sock) => {
                let (p, w) = ChildPipe::new(sock)?;
                extra.insert(fd, p);
                watches.push(w);
            }
            #[cfg(feature = "ipc")]
            ParentEnd::Ipc(sock) => {
                sock.set_nonblocking(true)?;
                ipc = Some(sock);
            }
            ParentEnd::Pty(master) => {
                let (p, w) = Pty::new(master)?;
                pty = Some(p);
                watches.push(w);
            }
        }
    }
    Ok(ParentEnds {
        stdin,
        stdout,
        stderr,
        extra,
        watches,
        #[cfg(feature = "ipc")]
        ipc,
        pty,
    })
}

/// An fd of the parent's given to the child as fd `fd`. Node (libuv) clears `O_NONBLOCK` on
/// a child's fds 0–2, since programs expect blocking stdio; clearing it on a shared open
/// file description would also turn the parent's own end blocking (a tokio pipe, say), so a
/// non-blocking fd 0–2 gets a blocking view of the same pipe of its own instead (see
/// [`sys::blocking_view`]).
fn given(fd: i32, end: BorrowedFd<'_>) -> ChildEnd<'_> {
    match (fd <= 2).then(|| sys::blocking_view(end)).flatten() {
        Some(view) => ChildEnd::Owned(view, None),
        None => ChildEnd::Borrowed(end),
    }
}

/// The parent's own fd `fd` for `'inherit'` (0–2), or `/dev/null` if the parent's is closed.
fn inherited(fd: i32) -> io::Result<BorrowedFd<'static>> {
    match sys::own_stdio(fd) {
        Some(b) => Ok(b),
        None => sys::dev_null(),
    }
}
