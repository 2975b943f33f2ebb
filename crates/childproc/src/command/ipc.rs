//! The command's side of Node's `'ipc'` stdio entry: the checks, the child's environment,
//! and the parent's end of the channel. Without the `ipc` feature a command has no channel:
//! the small impl at the bottom says so to the rest of `command`.

#[cfg(feature = "ipc")]
use childproc_ipc::{AnyCodec, Channel, CHANNEL_FD_ENV, SERIALIZATION_ENV};

#[cfg(feature = "ipc")]
use crate::error::Error;
use crate::error::Result;
#[cfg(feature = "ipc")]
use crate::stdio::Stdio;
use crate::sys::EnvBlock;

use super::Command;

/// `NODE_CHANNEL_FD` and `NODE_CHANNEL_SERIALIZATION_MODE`: they describe *this* process's
/// channel (Node deletes them from `process.env` at startup), so no child inherits them,
/// with the `ipc` feature or without it.
pub(super) const CHANNEL_VARS: [&str; 2] = ["NODE_CHANNEL_FD", "NODE_CHANNEL_SERIALIZATION_MODE"];

#[cfg(feature = "ipc")]
impl Command {
    /// Whether the child has a channel: an fd that is Node's `'ipc'`, or stdin and stdout.
    pub(crate) fn has_ipc(&self) -> bool {
        self.stdio_channel || self.stdio.values().any(|s| matches!(s, Stdio::Ipc))
    }

    /// Whether the channel runs over stdin and stdout.
    pub(crate) fn channel_over_stdio_on(&self) -> bool {
        self.stdio_channel
    }

    /// For a channel over stdin and stdout: checks that both are pipes and nothing is
    /// `'ipc'`, and tells the child (`CHILDPROC_CHANNEL_STDIO`).
    pub(super) fn stdio_channel_env(&self, envp: &mut EnvBlock) -> Result<()> {
        if !self.stdio_channel {
            return Ok(());
        }
        let pipe = |fd| {
            matches!(
                self.stdio.get(&fd),
                None | Some(Stdio::Pipe | Stdio::Default | Stdio::Overlapped)
            )
        };
        if !pipe(0) || !pipe(1) || self.stdio.values().any(|s| matches!(s, Stdio::Ipc)) {
            return Err(Error::Stdio(
                "a channel over stdio needs stdin and stdout as pipes and no 'ipc' entry".into(),
            ));
        }
        self.serialization.codec()?;
        let mode = self.serialization.env_value();
        envp.push(childproc_ipc::STDIO_CHANNEL_ENV.as_bytes(), mode.as_bytes());
        Ok(())
    }

    /// The child fd of the `'ipc'` entry, if there is one; more than one, or a serialization
    /// that cannot be used, is an error before anything is created.
    pub(super) fn ipc_fd(&self) -> Result<Option<i32>> {
        let fds: Vec<i32> = self
            .stdio
            .iter()
            .filter(|(_, s)| matches!(s, Stdio::Ipc))
            .map(|(fd, _)| *fd)
            .collect();
        if fds.len() > 1 {
            return Err(Error::Stdio(format!(
                "more than one 'ipc' entry (fds {fds:?}); a child has at most one"
            )));
        }
        if !fds.is_empty() {
            self.serialization.codec()?;
        }
        Ok(fds.first().copied())
    }

    /// Adds the two variables through which Node's child side finds the channel at `fd`.
    pub(super) fn channel_env(&self, envp: &mut EnvBlock, fd: i32) {
        let mode = self.serialization.env_value();
        envp.push(CHANNEL_FD_ENV.as_bytes(), fd.to_string().as_bytes());
        envp.push(SERIALIZATION_ENV.as_bytes(), mode.as_bytes());
    }

    /// The parent's end of the channel, if the child has one, with the command's codec.
    pub(super) fn open_channel(
        &self,
        end: Option<std::os::unix::net::UnixStream>,
    ) -> std::io::Result<Option<Channel<AnyCodec>>> {
        let Some(end) = end else {
            return Ok(None);
        };
        let channel = self
            .serialization
            .codec()
            .and_then(|codec| Channel::from_std(end, codec));
        channel.map(Some).map_err(std::io::Error::other)
    }
}

/// Runs `create` (the process creation) while the environment cannot change under it: a
/// child that inherits the environment unchanged gets the process's own `environ` array.
/// The IPC crate's `from_env` removes its variables under the same lock; without the `ipc`
/// feature nothing in childproc changes the environment, and `create` just runs.
pub(super) fn environment_held<T>(create: impl FnOnce() -> T) -> T {
    #[cfg(feature = "ipc")]
    let _held = childproc_ipc::serialization::ENVIRONMENT
        .read()
        .unwrap_or_else(|e| e.into_inner());
    create()
}

#[cfg(not(feature = "ipc"))]
impl Command {
    /// Without the `ipc` feature no fd is Node's `'ipc'`.
    pub(crate) fn has_ipc(&self) -> bool {
        false
    }

    /// Without the `ipc` feature a command has no channel.
    pub(super) fn ipc_fd(&self) -> Result<Option<i32>> {
        Ok(None)
    }

    /// Never called: without the `ipc` feature [`ipc_fd`](Self::ipc_fd) is always `None`.
    pub(super) fn channel_env(&self, _envp: &mut EnvBlock, _fd: i32) {}

    /// Without the `ipc` feature there is no channel over stdio.
    pub(super) fn stdio_channel_env(&self, _envp: &mut EnvBlock) -> Result<()> {
        Ok(())
    }
}

#[cfg(all(test, feature = "ipc"))]
mod tests {
    #[test]
    fn the_channel_variables_are_the_ipc_crates() {
        assert_eq!(
            super::CHANNEL_VARS,
            [
                childproc_ipc::CHANNEL_FD_ENV,
                childproc_ipc::SERIALIZATION_ENV
            ]
        );
    }
}
