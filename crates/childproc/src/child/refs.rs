//! Node's event-loop references, for [`wait_referenced`]: which children and channels keep
//! it waiting.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Weak};

use tokio::sync::Notify;

use super::shared::{lock, Shared};
#[cfg(doc)]
use super::ChildProcess;

/// Children that keep [`wait_referenced`] waiting (Node's event-loop references).
pub(super) static REFERENCED: AtomicUsize = AtomicUsize::new(0);
static REFERENCED_CHANGED: Notify = Notify::const_new();
/// How many [`wait_referenced`] calls are in progress. Spawns and closes notify only when
/// one is: `Notify::notify_waiters` takes a process-wide lock, which every spawn and every
/// close would otherwise pay for nothing.
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// Wakes the [`wait_referenced`] calls in progress, if any. The counters it pairs with are
/// `SeqCst`: a waiter counts itself in `WAITING` before it reads `REFERENCED` (and drains
/// `UNWATCHED`), a changer updates those before it reads `WAITING`, so either the waiter sees
/// the change or the changer sees the waiter.
pub(super) fn referenced_changed() {
    if WAITING.load(Ordering::SeqCst) > 0 {
        REFERENCED_CHANGED.notify_waiters();
    }
}

/// Counts one [`wait_referenced`] in progress while alive (also if the call is dropped).
struct Waiting;

impl Waiting {
    fn new() -> Waiting {
        WAITING.fetch_add(1, Ordering::SeqCst);
        Waiting
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Children whose watcher task has not started (see [`Shared::lazy`]), keyed by the address
/// of their `Shared`, so [`wait_referenced`] can start them.
pub(super) static UNWATCHED: Mutex<BTreeMap<usize, Weak<Shared>>> = Mutex::new(BTreeMap::new());

/// Resolves once every *referenced* child has closed and every *referenced* IPC channel has
/// disconnected — the Rust counterpart of Node's event loop staying alive for its children
/// and their channels. A child is referenced from spawn until `Close`, unless
/// [`ChildProcess::unref`] was called; [`ChildProcess::ref_`] restores it. A channel is
/// referenced while it is connected unless its handle ([`ChildProcess::channel`]) was
/// unref'd, so, as in Node, `child.unref()` alone does not stop the wait for a child whose
/// channel is still open: unref the channel too, or disconnect it. (Channels exist with the
/// `ipc` feature.)
pub async fn wait_referenced() {
    let _waiting = Waiting::new();
    loop {
        let changed = REFERENCED_CHANGED.notified();
        // Children nobody watches yet must be watched to ever reach `Close`.
        let unwatched = std::mem::take(&mut *lock(&UNWATCHED));
        for shared in unwatched.values().filter_map(Weak::upgrade) {
            shared.ensure_watch();
        }
        if REFERENCED.load(Ordering::SeqCst) == 0 {
            // Referenced channels keep the wait going too (their peers may spawn meanwhile).
            #[cfg(feature = "ipc")]
            childproc_ipc::wait_referenced().await;
            if REFERENCED.load(Ordering::SeqCst) == 0 {
                return;
            }
            continue;
        }
        changed.await;
    }
}
