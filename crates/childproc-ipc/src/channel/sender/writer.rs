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
pub(super) async fn write_loop<C>(shared: Weak<TxShared<C>>, wake: Arc<Notify>) {
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
