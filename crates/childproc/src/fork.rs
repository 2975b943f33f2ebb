//! Node's `fork`: a child with an IPC channel at fd 3.

use std::ffi::{OsStr, OsString};

use childproc_ipc::Serialization;

use crate::child::ChildProcess;
use crate::command::Command;
use crate::error::{Error, Result};
use crate::stdio::Stdio;

/// Node's `fork(modulePath, args)`: runs `[execPath, ...execArgv, modulePath, ...args]`
/// (`execPath` defaults to `node`) with stdio `[inherit, inherit, inherit, ipc]` — or
/// `[pipe, pipe, pipe, ipc]` with [`Fork::silent`] — and returns the child with its channel.
///
/// ```no_run
/// # async fn demo() -> Result<(), childproc::Error> {
/// use childproc::{ipc::Value, Event};
/// use futures_util::StreamExt;
/// let child = childproc::fork("worker.js", ["--fast"]).spawn()?;
/// child.send(Value::object([("hello", Value::from("world"))])).await?;
/// let mut events = child.events();
/// while let Some(event) = events.next().await {
///     if let Event::Message(m) = event {
///         println!("PARENT got message: {m:?}");
///         child.disconnect();
///     }
/// }
/// # Ok(()) }
/// ```
pub fn fork<I, S>(module: impl AsRef<OsStr>, args: I) -> Fork
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Fork::new(Some(module.as_ref().to_owned()), args)
}

/// Forks a program that is not a Node.js script — a Rust binary speaking the channel through
/// `childproc_ipc::from_env()` — with the same channel, stdio and options as [`fork`]:
/// `[program, ...args]`, no `execPath`.
pub fn fork_exe<I, S>(program: impl AsRef<OsStr>, args: I) -> Fork
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut f = Fork::new(None, args);
    f.exec_path = Some(program.as_ref().to_owned());
    f
}

/// Forks the running executable with `args` (e.g. a role: `fork_current_exe(["worker"])`).
pub fn fork_current_exe<I, S>(args: I) -> Result<Fork>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Ok(fork_exe(std::env::current_exe()?, args))
}

/// A fork to configure, then [`spawn`](Fork::spawn).
#[derive(Debug)]
#[must_use = "a Fork does nothing until spawned"]
pub struct Fork {
    module: Option<OsString>,
    args: Vec<OsString>,
    exec_path: Option<OsString>,
    exec_args: Vec<OsString>,
    silent: bool,
    stdio: Option<Vec<Stdio>>,
    over_stdio: bool,
    cmd: Command,
}

impl Fork {
    fn new<I, S>(module: Option<OsString>, args: I) -> Fork
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Fork {
            module,
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            exec_path: None,
            exec_args: Vec::new(),
            silent: false,
            stdio: None,
            over_stdio: false,
            cmd: Command::new("node"),
        }
    }

    fn command_mut(&mut self) -> &mut Command {
        &mut self.cmd
    }

    runner_options!();

    forward! {
        /// `detached`.
        detached(on: bool);
        /// `signal`: cancel to kill the child (an `Error(Aborted)` event follows).
        abort_signal(token: crate::CancellationToken);
        /// `serialization`: `Json` (Node's default) or `Advanced` (Node's V8 format, every
        /// `Value` kind) for Node or Rust children; `MsgPack` or `LengthJson` for Rust children.
        serialization(mode: Serialization);
        /// Kill with the kill signal when the `ChildProcess` is dropped.
        kill_on_drop(on: bool);
        /// SIGKILL after this grace period if the kill signal did not end the child.
        escalate_after(grace: std::time::Duration);
        /// SIGKILL the child if this process dies.
        kill_on_parent_death(on: bool);
    }

    forward! {
        /// The IPC receive bound: see [`Command::ipc_high_water`].
        ipc_high_water(messages: usize, bytes: usize);
    }

    /// `execPath`: the executable that runs the module (default `node`; an empty path means
    /// the default, as in Node).
    pub fn exec_path(mut self, path: impl AsRef<OsStr>) -> Self {
        // Node's `options.execPath || process.execPath`.
        let path = path.as_ref();
        self.exec_path = (!path.is_empty()).then(|| path.to_owned());
        self
    }

    /// `execArgv`: arguments for the executable, before the module path.
    pub fn exec_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.exec_args = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        self
    }

    /// `silent`: pipe the child's stdin/stdout/stderr to the parent instead of inheriting.
    pub fn silent(mut self, on: bool) -> Self {
        self.silent = on;
        self
    }

    /// `stdio`: overrides `silent`; must hold exactly one [`Stdio::Ipc`], as Node requires.
    pub fn stdio<I, T>(mut self, entries: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<Stdio>,
    {
        self.stdio = Some(entries.into_iter().map(Into::into).collect());
        self
    }

    /// Runs the channel over the child's stdin and stdout instead of an `'ipc'` socket
    /// (beyond Node): length-delimited frames in `json-length`, `msgpack` or `advanced` (or
    /// lines in `json`), so the child may be anything a byte stream reaches, `ssh host
    /// worker` or `kubectl exec -i pod -- worker` included. The same `send`, messages and
    /// disconnect; stderr stays the child's own (inherited, or piped with `silent`); handles
    /// cannot be sent. The child side is `childproc_ipc::from_stdio` (or `from_env`, which
    /// finds it when the environment reaches the child).
    ///
    /// ```no_run
    /// # async fn f() -> childproc::Result<()> {
    /// use childproc::{fork_exe, Serialization};
    ///
    /// let worker = fork_exe("ssh", ["build-host", "/usr/local/bin/worker", "--stdio"])
    ///     .channel_over_stdio()
    ///     .serialization(Serialization::MsgPack)
    ///     .spawn()?;
    /// worker.send("hello").await?;
    /// # Ok(()) }
    /// ```
    pub fn channel_over_stdio(mut self) -> Self {
        self.over_stdio = true;
        self.cmd.channel_over_stdio(true);
        self
    }

    /// Starts the child with its channel.
    pub fn spawn(self) -> Result<ChildProcess> {
        let Fork {
            module,
            args,
            exec_path,
            exec_args,
            silent,
            stdio,
            over_stdio,
            mut cmd,
        } = self;
        let stdio = match stdio {
            Some(entries) if over_stdio => {
                if entries.iter().any(|s| matches!(s, Stdio::Ipc)) {
                    return Err(Error::InvalidOption {
                        option: "stdio",
                        reason: "a channel over stdio has no 'ipc' entry".into(),
                    });
                }
                entries
            }
            None if over_stdio => {
                let stderr = if silent { Stdio::Pipe } else { Stdio::Inherit };
                vec![Stdio::Pipe, Stdio::Pipe, stderr]
            }
            Some(entries) => {
                let ipc = entries.iter().filter(|s| matches!(s, Stdio::Ipc)).count();
                if ipc != 1 {
                    let reason =
                        format!("the stdio array must hold exactly one ipc entry, not {ipc}");
                    return Err(Error::InvalidOption {
                        option: "stdio",
                        reason,
                    });
                }
                entries
            }
            None if silent => vec![Stdio::Pipe, Stdio::Pipe, Stdio::Pipe, Stdio::Ipc],
            None => vec![Stdio::Inherit, Stdio::Inherit, Stdio::Inherit, Stdio::Ipc],
        };
        let program = exec_path.unwrap_or_else(|| "node".into());
        cmd.set_program(&program);
        cmd.args(exec_args).args(module).args(args).stdio(stdio);
        cmd.spawn()
    }
}
