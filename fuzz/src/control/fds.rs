//! The fds the peer sends: made fresh for each write, each a kernel object of its own, known
//! by its inode so the target can find every copy of it in `/proc/self/fd`.

use std::collections::HashMap;
use std::net::{TcpListener, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::linux::fs::MetadataExt;
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener, UnixStream};
use std::sync::atomic::{AtomicU64, Ordering};

use childproc_ipc::Handle;

/// What kind of object an fd is, and so which `Handle` variant it must arrive as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A pipe's write end: `Handle::Fd`.
    Pipe,
    /// One end of a Unix stream socketpair: `Handle::UnixStream`.
    UnixStream,
    /// One end of a Unix datagram socketpair: `Handle::Fd` (another kind of socket).
    UnixDatagram,
    /// A listening Unix socket (abstract address): `Handle::UnixListener`.
    UnixListener,
    /// A UDP socket on 127.0.0.1: `Handle::UdpSocket`.
    Udp,
    /// A listening TCP socket on 127.0.0.1: `Handle::TcpListener`.
    TcpListener,
}

const KINDS: [Kind; 6] = [
    Kind::Pipe,
    Kind::UnixStream,
    Kind::UnixDatagram,
    Kind::UnixListener,
    Kind::Udp,
    Kind::TcpListener,
];

impl Kind {
    /// The kind a selector byte picks; `i` varies it within one write.
    pub fn pick(selector: u8, i: usize) -> Kind {
        // Cheap kinds mostly: sockets bound to addresses cost more syscalls.
        let cheap = usize::from(selector) % 4 != 0;
        let n = if cheap { 3 } else { KINDS.len() };
        KINDS[(usize::from(selector) / 4 + i) % n]
    }

    /// Whether `handle` is the variant an fd of this kind must arrive as.
    pub fn matches(self, handle: &Handle) -> bool {
        matches!(
            (self, handle),
            (Kind::Pipe | Kind::UnixDatagram, Handle::Fd(_))
                | (Kind::UnixStream, Handle::UnixStream(_))
                | (Kind::UnixListener, Handle::UnixListener(_))
                | (Kind::Udp, Handle::UdpSocket(_))
                | (Kind::TcpListener, Handle::TcpListener(_))
        )
    }
}

/// A kernel object's identity: device and inode of what an fd refers to.
pub type Id = (u64, u64);

/// The identity of what `fd` refers to.
pub fn id_of(fd: BorrowedFd<'_>) -> Option<Id> {
    let m = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    Some((m.st_dev(), m.st_ino()))
}

/// A fresh object of `kind`; its other ends (if any) are closed already.
pub fn make(kind: Kind) -> std::io::Result<OwnedFd> {
    static NAMES: AtomicU64 = AtomicU64::new(0);
    Ok(match kind {
        Kind::Pipe => std::io::pipe()?.1.into(),
        Kind::UnixStream => UnixStream::pair()?.0.into(),
        Kind::UnixDatagram => UnixDatagram::pair()?.0.into(),
        Kind::UnixListener => {
            let name = format!(
                "childproc-fuzz-{}-{}",
                std::process::id(),
                NAMES.fetch_add(1, Ordering::Relaxed)
            );
            use std::os::linux::net::SocketAddrExt;
            UnixListener::bind_addr(&SocketAddr::from_abstract_name(name)?)?.into()
        }
        Kind::Udp => UdpSocket::bind("127.0.0.1:0")?.into(),
        Kind::TcpListener => TcpListener::bind("127.0.0.1:0")?.into(),
    })
}

/// The objects the peer made during one input, by identity.
#[derive(Default)]
pub struct Tracked {
    kinds: HashMap<Id, Kind>,
}

impl Tracked {
    /// Makes `n` fresh objects of the kinds `selector` picks, remembering each.
    pub fn make_many(&mut self, n: usize, selector: u8) -> Vec<OwnedFd> {
        let mut fds = Vec::with_capacity(n);
        for i in 0..n {
            let kind = Kind::pick(selector, i);
            let fd = make(kind).unwrap_or_else(|e| panic!("cannot make a {kind:?}: {e}"));
            let id = id_of(fd.as_fd()).expect("a fresh fd has an identity");
            self.kinds.insert(id, kind);
            fds.push(fd);
        }
        fds
    }

    /// Whether the peer made no object yet.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// The kind of the object `fd` refers to, if the peer made it.
    pub fn kind_of(&self, fd: BorrowedFd<'_>) -> Option<Kind> {
        self.kinds.get(&id_of(fd)?).copied()
    }

    /// How many fds of this process refer to objects the peer made (the peer closes its
    /// own copies right after each write, so each one found is a received copy).
    pub fn open_copies(&self) -> usize {
        open_fds()
            .into_iter()
            .filter(|fd| {
                std::fs::metadata(format!("/proc/self/fd/{fd}"))
                    .is_ok_and(|m| self.kinds.contains_key(&(m.st_dev(), m.st_ino())))
            })
            .count()
    }
}

/// The fd numbers open in this process.
pub fn open_fds() -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    fds
}

/// `fd`, which is of `kind`, as the handle variant for it (what our side sends).
pub fn handle(kind: Kind, fd: OwnedFd) -> Handle {
    match kind {
        Kind::Pipe | Kind::UnixDatagram => Handle::Fd(fd),
        Kind::UnixStream => Handle::UnixStream(fd.into()),
        Kind::UnixListener => Handle::UnixListener(fd.into()),
        Kind::Udp => Handle::UdpSocket(fd.into()),
        Kind::TcpListener => Handle::TcpListener(fd.into()),
    }
}
