//! Which channels keep [`wait_referenced`](super::wait_referenced) waiting: Node's
//! `channel.ref()` / `channel.unref()`, process-wide.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Open channels that are referenced.
static REFERENCED: AtomicUsize = AtomicUsize::new(0);
static CHANGED: Notify = Notify::const_new();

/// A channel opened, or was ref'd while open.
pub(super) fn add() {
    REFERENCED.fetch_add(1, Ordering::SeqCst);
}

/// A counted channel closed or was unref'd.
pub(super) fn remove() {
    REFERENCED.fetch_sub(1, Ordering::SeqCst);
    CHANGED.notify_waiters();
}

/// Resolves once no channel of this process is both open and referenced.
pub(super) async fn wait() {
    loop {
        let changed = CHANGED.notified();
        if REFERENCED.load(Ordering::SeqCst) == 0 {
            return;
        }
        changed.await;
    }
}
