//! What the channel tests share: a channel whose peer is a plain non-blocking socket, read
//! without waiting, so "nothing was written" is an observation (the read would block), not
//! a wait.

use std::io::{ErrorKind, Read};
use std::os::unix::net::UnixStream as StdUnixStream;

use childproc_ipc::{AnyCodec, Channel};

/// A channel speaking `codec`, and the peer's end as a non-blocking std socket.
pub fn channel_and_peer(codec: AnyCodec) -> (Channel<AnyCodec>, StdUnixStream) {
    let (ours, peer) = StdUnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    peer.set_nonblocking(true).unwrap();
    let ours = tokio::net::UnixStream::from_std(ours).unwrap();
    (Channel::new(ours, codec).unwrap(), peer)
}

/// What the peer can read now, without waiting.
pub fn readable_now(peer: &mut StdUnixStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match peer.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return all,
            Err(e) => panic!("reading the peer: {e}"),
        }
    }
}
