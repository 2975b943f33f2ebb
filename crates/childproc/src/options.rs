//! What several entry points share: the options of the buffered runners (exec and the sync
//! trio) and their termination options, as builder methods forwarding to the `Command`
//! inside. Each builder provides `fn command_mut(&mut self) -> &mut Command`.

/// Generates builder methods that forward to the `Command` inside a consuming builder (`exec`,
/// the sync API); the builder provides `fn command_mut(&mut self) -> &mut Command`.
macro_rules! forward {
    ($($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        $(#[$doc])*
        pub fn $name(mut self, $($arg: $ty),*) -> Self {
            self.command_mut().$name($($arg),*);
            self
        }
    )*};
}

/// The options every buffered runner (exec and the sync API) shares, as forwarding methods.
macro_rules! runner_options {
    () => {
        forward! {
            /// `cwd`.
            current_dir(dir: impl AsRef<std::path::Path>);
            /// One `env` entry on top of the inherited environment.
            env(key: impl AsRef<std::ffi::OsStr>, val: impl AsRef<std::ffi::OsStr>);
            /// Removes a variable.
            env_remove(key: impl AsRef<std::ffi::OsStr>);
            /// Start from an empty environment (Node's `env: {...}` is `.env_clear().env(..)…`).
            env_clear();
            /// `shell`: a shell other than `/bin/sh` (for the file variants, turns the shell on).
            shell_path(shell: impl AsRef<std::ffi::OsStr>);
            /// `shell: true|false` (`exec` always uses one).
            shell(on: bool);
            /// `uid`.
            uid(uid: u32);
            /// `gid`.
            gid(gid: u32);
            /// `timeout`: at it, stop reading (the parent's pipe ends close, so a grandchild
            /// holding them cannot delay the call), kill the child with the kill signal if it
            /// still runs, and fail once it has exited ([`ExecFailure::Timeout`](crate::ExecFailure::Timeout),
            /// with the output so far). Zero means none; `Duration::MAX` never fires.
            timeout(timeout: std::time::Duration);
            /// `killSignal` (default SIGTERM), for timeout, abort and max-buffer overflow.
            kill_signal(signal: impl Into<crate::SignalSpec>);
            /// `argv0`.
            argv0(argv0: impl AsRef<std::ffi::OsStr>);
            /// `windowsHide`: accepted and ignored.
            windows_hide(on: bool);
        }

        /// Several `env` entries.
        pub fn envs<I, K, V>(mut self, vars: I) -> Self
        where
            I: IntoIterator<Item = (K, V)>,
            K: AsRef<std::ffi::OsStr>,
            V: AsRef<std::ffi::OsStr>,
        {
            self.command_mut().envs(vars);
            self
        }
    };
}

/// The process-group and termination options beyond Node's, shared by the runner builders
/// (exec and the sync trio); they need `command_mut`.
macro_rules! termination_options {
    () => {
        forward! {
            /// `detached`: a new session (setsid).
            detached(on: bool);
            /// A process group for the child (`0`: a new one it leads).
            process_group(pgid: i32);
            /// Timeout, abort and overflow kills go to the whole process group.
            kill_group(on: bool);
            /// SIGKILL after this grace period if the kill signal did not end the child.
            escalate_after(grace: std::time::Duration);
            /// Once the child has exited, wait at most this long for its pipes to reach
            /// end-of-file, then stop reading them and finish with what was read (Go's
            /// `WaitDelay`; see [`Command::wait_delay`](crate::Command::wait_delay)); the
            /// result's `pipes_closed_early` says so.
            wait_delay(delay: std::time::Duration);
            /// SIGKILL the child if this process dies.
            kill_on_parent_death(on: bool);
        }
    };
}
