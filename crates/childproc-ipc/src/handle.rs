//! Handles passed over the channel with a message: Node's `send(message, sendHandle)`.
//!
//! A [`Handle`] is an owned socket or fd. Sending one moves it: the channel writes it with
//! the first bytes of a `NODE_HANDLE` frame (`SCM_RIGHTS`) and then closes its own copy —
//! the fd in flight keeps the socket alive, and the receiver gets a new fd for the same
//! open socket. To keep using it here too, send a `try_clone()` of it (Node's `keepOpen`).
//!
//! A received fd becomes the `Handle` its socket is, told from the socket itself as Node
//! does (`SO_TYPE`, `SO_ACCEPTCONN`, its address family), whatever `type` the sender named.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::sys::{self, FdKind};
use crate::value::Value;

/// A socket or fd sent or received with an IPC message (Node's `sendHandle`).
///
/// Build one with `From` (`Handle::from(listener)`, or pass any of the std types where an
/// `impl Into<Handle>` is expected); take one apart with `match`, [`TryFrom`] back to the std
/// type, or the `into_tokio_*` helpers. What a Node peer sees for each variant:
///
/// | variant | Node `type` | a Node receiver gets |
/// |---|---|---|
/// | `TcpListener`, `UnixListener` | `net.Server` | a listening `net.Server` |
/// | `TcpStream`, `UnixStream` | `net.Socket` | a connected `net.Socket` |
/// | `UdpSocket` | `dgram.Socket` (+ `dgramType` `udp4`/`udp6`) | a bound `dgram.Socket` |
/// | `Fd` | `net.Native` | a raw handle — only for Rust peers: a Node child aborts on a non-socket fd |
///
/// Received fds are close-on-exec. Sockets from Node are already non-blocking (the open file
/// description is shared with the sender, so changing that flag changes it for both).
#[derive(Debug)]
#[non_exhaustive]
pub enum Handle {
    /// A listening TCP socket (Node's `net.Server`).
    TcpListener(std::net::TcpListener),
    /// A TCP socket (Node's `net.Socket`).
    TcpStream(std::net::TcpStream),
    /// A listening Unix stream socket (Node's `net.Server` on a path).
    UnixListener(std::os::unix::net::UnixListener),
    /// A Unix stream socket (Node's `net.Socket` on a pipe).
    UnixStream(std::os::unix::net::UnixStream),
    /// A UDP socket (Node's `dgram.Socket`).
    UdpSocket(std::net::UdpSocket),
    /// Any other fd: a pipe, a file, another kind of socket (`net.Native` on the wire).
    Fd(OwnedFd),
}

impl Handle {
    /// A received fd as the handle its socket is (see the module docs).
    pub(crate) fn from_received(fd: OwnedFd) -> Handle {
        match sys::classify(fd.as_fd()) {
            FdKind::TcpListener => Handle::TcpListener(fd.into()),
            FdKind::TcpStream => Handle::TcpStream(fd.into()),
            FdKind::UnixListener => Handle::UnixListener(fd.into()),
            FdKind::UnixStream => Handle::UnixStream(fd.into()),
            FdKind::Udp => Handle::UdpSocket(fd.into()),
            FdKind::Other => Handle::Fd(fd),
        }
    }

    /// Node's `type` for this handle (`net.Server`, `net.Socket`, `dgram.Socket`,
    /// `net.Native`).
    pub fn node_type(&self) -> &'static str {
        match self {
            Handle::TcpListener(_) | Handle::UnixListener(_) => "net.Server",
            Handle::TcpStream(_) | Handle::UnixStream(_) => "net.Socket",
            Handle::UdpSocket(_) => "dgram.Socket",
            Handle::Fd(_) => "net.Native",
        }
    }

    /// The `NODE_HANDLE` frame that carries `msg` with this handle: `cmd`, `type`, `msg`,
    /// then `dgramType` for a UDP socket (Node requires it).
    pub(crate) fn wrap(&self, msg: Value) -> Value {
        let mut pairs = vec![
            ("cmd".to_owned(), Value::from("NODE_HANDLE")),
            ("type".to_owned(), Value::from(self.node_type())),
            ("msg".to_owned(), msg),
        ];
        if let Handle::UdpSocket(s) = self {
            let v6 = s.local_addr().is_ok_and(|a| a.is_ipv6());
            let family = if v6 { "udp6" } else { "udp4" };
            pairs.push(("dgramType".to_owned(), Value::from(family)));
        }
        Value::Object(pairs)
    }

    /// The owned fd, whatever the kind.
    pub fn into_fd(self) -> OwnedFd {
        match self {
            Handle::TcpListener(s) => s.into(),
            Handle::TcpStream(s) => s.into(),
            Handle::UnixListener(s) => s.into(),
            Handle::UnixStream(s) => s.into(),
            Handle::UdpSocket(s) => s.into(),
            Handle::Fd(fd) => fd,
        }
    }

    /// A second handle for the same socket or fd (`dup`): send one, keep the other (Node's
    /// `keepOpen`).
    pub fn try_clone(&self) -> io::Result<Handle> {
        let fd = self.as_fd().try_clone_to_owned()?;
        Ok(match self {
            Handle::TcpListener(_) => Handle::TcpListener(fd.into()),
            Handle::TcpStream(_) => Handle::TcpStream(fd.into()),
            Handle::UnixListener(_) => Handle::UnixListener(fd.into()),
            Handle::UnixStream(_) => Handle::UnixStream(fd.into()),
            Handle::UdpSocket(_) => Handle::UdpSocket(fd.into()),
            Handle::Fd(_) => Handle::Fd(fd),
        })
    }
}

impl AsFd for Handle {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Handle::TcpListener(s) => s.as_fd(),
            Handle::TcpStream(s) => s.as_fd(),
            Handle::UnixListener(s) => s.as_fd(),
            Handle::UnixStream(s) => s.as_fd(),
            Handle::UdpSocket(s) => s.as_fd(),
            Handle::Fd(fd) => fd.as_fd(),
        }
    }
}

/// `From<std type> for Handle`, `TryFrom<Handle> for std type` (giving the handle back on a
/// mismatch) and an `into_tokio_*` helper for each socket kind.
macro_rules! kinds {
    ($($variant:ident: $std:ty => $tokio:ty, $helper:ident;)*) => {$(
        impl From<$std> for Handle {
            fn from(s: $std) -> Handle {
                Handle::$variant(s)
            }
        }

        impl TryFrom<Handle> for $std {
            type Error = Handle;
            fn try_from(h: Handle) -> Result<$std, Handle> {
                match h {
                    Handle::$variant(s) => Ok(s),
                    other => Err(other),
                }
            }
        }

        impl Handle {
            #[doc = concat!("This handle as a `", stringify!($tokio), "` (made non-blocking and")]
            /// registered with the current runtime, which must exist). `InvalidInput` if the
            /// handle is of another kind (it is closed).
            pub fn $helper(self) -> io::Result<$tokio> {
                match <$std>::try_from(self) {
                    Ok(s) => {
                        s.set_nonblocking(true)?;
                        <$tokio>::from_std(s)
                    }
                    Err(other) => Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("the handle is a {}, not a {}", other.node_type(), stringify!($variant)),
                    )),
                }
            }
        }
    )*};
}

kinds! {
    TcpListener: std::net::TcpListener => tokio::net::TcpListener, into_tokio_tcp_listener;
    TcpStream: std::net::TcpStream => tokio::net::TcpStream, into_tokio_tcp_stream;
    UnixListener: std::os::unix::net::UnixListener => tokio::net::UnixListener, into_tokio_unix_listener;
    UnixStream: std::os::unix::net::UnixStream => tokio::net::UnixStream, into_tokio_unix_stream;
    UdpSocket: std::net::UdpSocket => tokio::net::UdpSocket, into_tokio_udp_socket;
}

impl From<OwnedFd> for Handle {
    /// Any fd, sent as `net.Native`: for a socket, prefer the std type, which gives Node
    /// the right `type`.
    fn from(fd: OwnedFd) -> Handle {
        Handle::Fd(fd)
    }
}

/// A message with the handle that came with it, if any: what
/// [`Channel::recv`](crate::Channel::recv) yields (Node's `'message'` with its
/// `sendHandle` argument).
#[derive(Debug)]
#[non_exhaustive]
pub struct Incoming {
    /// The user's message (for a handle, the `msg` of Node's `NODE_HANDLE` frame).
    pub message: Value,
    /// The handle sent with it.
    pub handle: Option<Handle>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream, UdpSocket};
    use std::os::unix::net::{UnixListener, UnixStream};

    #[test]
    fn received_fds_are_told_apart_by_the_socket_itself() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dir = std::env::temp_dir().join(format!("childproc-handle-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let ul = UnixListener::bind(&dir).unwrap();
        let (a, _b) = UnixStream::pair().unwrap();
        let file = OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        let kinds: Vec<&str> = [
            OwnedFd::from(l),
            OwnedFd::from(s),
            OwnedFd::from(u),
            OwnedFd::from(ul),
            OwnedFd::from(a),
            file,
        ]
        .into_iter()
        .map(|fd| match Handle::from_received(fd) {
            Handle::TcpListener(_) => "tcp listener",
            Handle::TcpStream(_) => "tcp stream",
            Handle::UdpSocket(_) => "udp",
            Handle::UnixListener(_) => "unix listener",
            Handle::UnixStream(_) => "unix stream",
            Handle::Fd(_) => "fd",
        })
        .collect();
        let _ = std::fs::remove_file(&dir);
        assert_eq!(
            kinds,
            [
                "tcp listener",
                "tcp stream",
                "udp",
                "unix listener",
                "unix stream",
                "fd"
            ]
        );
    }

    #[test]
    fn frames_name_node_types_in_nodes_property_order() {
        let u = Handle::from(UdpSocket::bind("127.0.0.1:0").unwrap());
        let frame = u.wrap(Value::from(1));
        let Value::Object(pairs) = &frame else {
            panic!("not an object")
        };
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["cmd", "type", "msg", "dgramType"]);
        assert_eq!(frame.get("type"), Some(&Value::from("dgram.Socket")));
        assert_eq!(frame.get("dgramType"), Some(&Value::from("udp4")));
        let l = Handle::from(TcpListener::bind("127.0.0.1:0").unwrap());
        assert_eq!(l.node_type(), "net.Server");
        assert!(
            TcpStream::try_from(l).is_err(),
            "a mismatch gives the handle back"
        );
    }
}
