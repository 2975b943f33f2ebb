//! The platform room: the only module that calls libc. Everything above it speaks in
//! `OwnedFd`s, paths and `io::Error`s.
//!
//! - [`spawn`]: process creation (see `spawn.rs` for the engine and its child-side rules).
//! - [`Process`]: a created child: its pid, its pidfd, waiting and signalling.
//! - `fd.rs`: pipes, `/dev/null`, duplicating fds.

#[cfg(not(target_os = "linux"))]
compile_error!("childproc's process engine is Linux-only for now (see docs/design.md)");

mod fd;
mod process;
mod spawn;

pub(crate) use fd::{
    async_fd, dev_null, dup_parent_fd, hung_up, is_executable, own_stdio, pipe, read_into,
    set_nonblocking, shutdown_write, PollSet,
};
pub(crate) use process::{force_no_pidfd, Process, RawStatus};
pub(crate) use spawn::{
    spawn, spawn_kept, FdMap, SpawnFailure, SpawnPlan, Stage, ENGINE, VFORK_SPAWNS,
};
