//! [`Unfinished`]: what a task does if it is dropped before its end.
//!
//! A runtime that shuts down drops its tasks where they are, even before their first poll.
//! A task whose end others wait for (a child's watcher, an IPC reader) makes one of these
//! *with its future*, outside the `async` body, so that a task dropped before it ever ran
//! still lets the waiters go.

/// Runs its closure when dropped, unless [`finish`](Self::finish) was called first.
pub(crate) struct Unfinished<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Unfinished<F> {
    pub(crate) fn new(on_drop: F) -> Self {
        Unfinished(Some(on_drop))
    }

    /// The task reached its end: nothing to do on drop.
    pub(crate) fn finish(mut self) {
        self.0 = None;
    }
}

impl<F: FnOnce()> Drop for Unfinished<F> {
    fn drop(&mut self) {
        if let Some(on_drop) = self.0.take() {
            on_drop();
        }
    }
}
