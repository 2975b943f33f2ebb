//! Reading the pool's envelopes without the object around them: a channel told which
//! envelopes to open ([`Channel::open_envelopes`]) yields `{ id, <key>: value }` as its id,
//! its key and its value ([`Received::Opened`]), everything else as it came.

use std::task::{Context, Poll};

use crate::error::IpcError;
use crate::handle::Incoming;
use crate::serialization::AnyCodec;
use crate::value::Value;

use super::Channel;

/// A message read by [`Channel::poll_recv_opened`]. Not part of the API: the pool's and
/// [`serve`](crate::serve)'s own.
#[doc(hidden)]
#[derive(Debug)]
pub enum Received {
    /// `{ id, <key>: value }`, opened.
    Opened {
        /// The envelope's `id`, a number.
        id: Value,
        /// Which of the keys given to [`Channel::open_envelopes`] it had.
        key: &'static str,
        /// What it held.
        value: Value,
    },
    /// Any other message, whole.
    Whole(Incoming),
}

impl Channel<AnyCodec> {
    /// From the next frame on, a message `{ id, <key>: value }` with a number for `id` and
    /// `key` one of `keys`, written as `JSON.stringify` writes it, is decoded without
    /// building the object around the value. Only the Node json serialization opens
    /// envelopes; with the others every message is read whole. Read such a channel with
    /// [`poll_recv_opened`](Self::poll_recv_opened) only: its `Stream` and
    /// [`recv`](Self::recv) would yield an opened envelope's value alone.
    #[doc(hidden)]
    pub fn open_envelopes(&mut self, keys: &'static [&'static str]) {
        if let Some(rx) = self.rx.as_mut() {
            rx.decoder_mut().open_envelopes(keys);
        }
    }

    /// [`poll_recv`](Self::poll_recv), with the envelopes [`open_envelopes`] asked for
    /// opened.
    ///
    /// [`open_envelopes`]: Self::open_envelopes
    #[doc(hidden)]
    pub fn poll_recv_opened(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Received, IpcError>>> {
        let next = futures_core::ready!(self.poll_recv(cx));
        Poll::Ready(next.map(|read| {
            read.map(|incoming| {
                let opened = self
                    .rx
                    .as_mut()
                    .and_then(|rx| rx.decoder_mut().take_opened());
                match opened {
                    Some((id, key)) => Received::Opened {
                        id,
                        key,
                        value: incoming.message,
                    },
                    None => Received::Whole(incoming),
                }
            })
        }))
    }
}
