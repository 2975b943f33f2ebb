//! The platform room: the only module that calls libc. Everything above it speaks in
//! `OwnedFd`s, paths and `io::Error`s.
//!
//! - [`spawn`]: process creation, by the Linux engine (`spawn/linux.rs`) or the portable one
//!   (`spawn/portable.rs`, every other Unix) behind one interface.
//! - [`Process`]: a created child: its pid, its pidfd (Linux), waiting and signalling.
//! - `fd.rs`: pipes, `/dev/null`, duplicating fds.
//! - `mem.rs`: faulting in a buffer before a read fills it.
//! - `orphan.rs`: the reaper thread for children dropped before they were reaped.
//! - `pty.rs`: pseudo-terminals (a pair, its window size).

#[cfg(not(unix))]
compile_error!("childproc's process engines need a Unix (see docs/design.md)");

mod fd;
mod mem;
mod orphan;
mod process;
mod pty;
mod spawn;

pub(crate) use fd::{
    async_fd, blocking_view, dev_null, dup_parent_fd, hung_up, is_executable, own_stdio, pipe,
    read_append, read_into, replace_with_dev_null, resize_pipe, set_nonblocking, shutdown_read,
    shutdown_write, PollSet,
};
pub(crate) use mem::prefault;
#[cfg(all(test, target_os = "linux"))]
pub(crate) use mem::resident_pages;
pub(crate) use process::{force_no_pidfd, Process, RawStatus, RawUsage};
pub(crate) use pty::{async_master, open_pty, set_window_size, window_size};
pub(crate) use spawn::{
    engine_name, engine_stats, force_portable_engine, spawn, spawn_kept, EnvBlock, FdMap,
    SpawnFailure, SpawnPlan, Stage,
};
