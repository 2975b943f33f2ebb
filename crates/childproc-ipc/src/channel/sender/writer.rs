//! The writer task of a channel's sending side.

use std::io;
use std::sync::{Arc, Weak};

use tokio::sync::Notify;

use super::super::socket::{RoomWait, Socket};
use super::queue::Flushed;
use super::shared::TxShared;

/// The writer task: writes what the senders queued but could not write, as the socket
/// drains; ends a `send_nowait` burst; shuts the write side down once a closed channel is
/// flushed. It holds the channel only weakly, so it ends when every handle is gone.
pub(super) fn write_loop<C>(
    shared: Weak<TxShared<C>>,
    wake: Arc<Notify>,
) -> impl std::future::Future<Output = ()> {
    // Made with the future, so a task dropped before it ever ran is abandoned too.
    let abandoned = Abandoned(shared.clone());
    writing(shared, wake, abandoned)
}

async fn writing<C>(shared: Weak<TxShared<C>>, wake: Arc<Notify>, _abandoned: Abandoned<C>) {
    // While the socket is full: the registration that tells when it has room again.
    let mut room: Option<RoomWait> = None;
    loop {
        wake.notified().await;
        loop {
            let socket = match write_step(&shared) {
                Step::Done => break,
                Step::Stop => return,
                Step::Wait(socket) => socket,
            };
            if room.is_none() {
                // The socket just filled: sends now wait for the peer.
                if let Some(tx) = shared.upgrade() {
                    tx.stall.notify_waiters();
                }
                match socket.room_wait() {
                    Ok(wait) => room = Some(wait),
                    Err(e) => {
                        fail_now(&shared, e);
                        return;
                    }
                }
            }
            drop(socket);
            let Some(wait) = &room else { return };
            // Also wake when poked: the last handle may have gone meanwhile.
            tokio::select! {
                ready = wait.ready() => if ready.is_err() { return },
                () = wake.notified() => {}
            }
        }
        room = None;
    }
}

/// What the writer task does next.
enum Step {
    /// The queue is written: wait to be woken.
    Done,
    /// The channel is gone, closed or failed.
    Stop,
    /// The socket is full: wait for room in it, then write again.
    Wait(Arc<Socket>),
}

/// One turn of the writer task: write what the socket takes.
fn write_step<C>(shared: &Weak<TxShared<C>>) -> Step {
    let Some(tx) = shared.upgrade() else {
        return Step::Stop;
    };
    let mut st = tx.lock();
    st.burst = false;
    match st.flush() {
        Flushed::All => {
            st.flushing = false;
            if st.closing {
                st.shut_write();
                return Step::Stop;
            }
            Step::Done
        }
        Flushed::Blocked => {
            st.flushing = true;
            st.write.clone().map_or(Step::Stop, Step::Wait)
        }
        Flushed::Failed(failures) => {
            drop(st);
            tx.report(failures);
            Step::Stop
        }
    }
}

/// Fails the channel from the writer task (no registration for room could be made).
fn fail_now<C>(shared: &Weak<TxShared<C>>, error: io::Error) {
    if let Some(tx) = shared.upgrade() {
        let failures = tx.lock().fail(error);
        tx.report(failures);
    }
}

/// Dropped with the writer task. At its usual end the channel is gone, closed or failed
/// already; otherwise (its runtime shut down, or the wait for room failed) the channel
/// fails now: what is not written is dropped and its sends fail, and the write side is
/// shut down, so the peer reads the end instead of waiting on a channel nobody serves.
struct Abandoned<C>(Weak<TxShared<C>>);

impl<C> Drop for Abandoned<C> {
    fn drop(&mut self) {
        let Some(tx) = self.0.upgrade() else {
            return;
        };
        let failures = {
            let mut st = tx.lock();
            if st.write.is_none() {
                return; // closed or failed already
            }
            st.shut_write();
            st.fail(io::Error::other("the channel's writer task ended"))
        };
        tx.report(failures);
    }
}
