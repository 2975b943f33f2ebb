//! Checking a command's inputs and building what the engine needs: argv, the environment
//! block, the cwd, the program found in `PATH` (every allocation happens here, before the
//! child exists), and the errors that name the offending input.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sys::{self, EnvBlock, SpawnFailure, Stage};

use super::ipc::CHANNEL_VARS;
use super::Command;

/// The search path used when an explicit environment has no `PATH` (as `execvp` and Node).
const DEFAULT_PATH: &str = "/usr/bin:/bin";

impl Command {
    pub(super) fn spawn_error(&self, f: SpawnFailure) -> Error {
        // Named by the file that was executed, as Node's `spawn bad_shell ENOENT`.
        let program = self.spawnfile().to_owned();
        match f.stage {
            Stage::Chdir => Error::Cwd {
                program,
                cwd: self.cwd.clone().unwrap_or_default(),
                source: f.error,
            },
            Stage::Uid => Error::Identity {
                program,
                what: "uid",
                id: self.uid.unwrap_or_default(),
                source: f.error,
            },
            Stage::Gid => Error::Identity {
                program,
                what: "gid",
                id: self.gid.unwrap_or_default(),
                source: f.error,
            },
            Stage::Prepare
            | Stage::Setsid
            | Stage::Pgid
            | Stage::ParentDeath
            | Stage::Fds
            | Stage::Terminal
            | Stage::Exec => Error::Spawn {
                program,
                source: f.error,
            },
        }
    }

    /// Checks every input and builds what the engine needs (all allocation happens here).
    pub(super) fn prepare(&self) -> Result<Prepared> {
        if self.program.is_empty() {
            return Err(Error::InvalidOption {
                option: "program",
                reason: "the command cannot be empty".into(),
            });
        }
        for (what, id) in [("uid", self.uid), ("gid", self.gid)] {
            if id == Some(u32::MAX) {
                return Err(Error::InvalidOption {
                    option: what,
                    reason: format!("{what} {} is not a valid id", u32::MAX),
                });
            }
        }
        let (file, argv_os) = match &self.shell {
            Some(shell) => {
                let mut line = self.program.clone();
                for a in &self.args {
                    line.push(" ");
                    line.push(a);
                }
                let argv0 = self.argv0.clone().unwrap_or_else(|| shell.clone());
                (shell.clone(), vec![argv0, "-c".into(), line])
            }
            None => {
                let argv0 = self.argv0.clone().unwrap_or_else(|| self.program.clone());
                let argv = std::iter::once(argv0)
                    .chain(self.args.iter().cloned())
                    .collect();
                (self.program.clone(), argv)
            }
        };
        cstring("program", &self.program)?;
        cstring("program", &file)?;
        let mut argv = Vec::with_capacity(argv_os.len());
        for (i, a) in argv_os.iter().enumerate() {
            let what = if i == 0 {
                "argv0".to_owned()
            } else {
                format!("argument {i}")
            };
            argv.push(cstring(&what, a)?);
        }
        let envp = self.envp()?;
        let cwd = match &self.cwd {
            Some(dir) => Some(self.check_cwd(dir)?),
            None => None,
        };
        let path =
            resolve_program(&file, || self.path_var(), self.cwd.as_deref()).map_err(|source| {
                Error::Spawn {
                    program: file.clone(),
                    source,
                }
            })?;
        Ok(Prepared {
            file,
            argv_os,
            path,
            argv,
            envp,
            cwd,
        })
    }

    fn check_cwd(&self, dir: &Path) -> Result<CString> {
        let c = cstring("cwd", dir.as_os_str())?;
        let err = |source| Error::Cwd {
            program: self.spawnfile().to_owned(),
            cwd: dir.to_owned(),
            source,
        };
        let meta = std::fs::metadata(dir).map_err(err)?;
        if !meta.is_dir() {
            return Err(err(io::Error::from_raw_os_error(libc::ENOTDIR)));
        }
        Ok(c)
    }

    /// The PATH to search, by Node's rules.
    fn path_var(&self) -> OsString {
        match self.env.get(OsStr::new("PATH")) {
            Some(Some(p)) => p.clone(),
            Some(None) => DEFAULT_PATH.into(),
            None if self.env_clear => DEFAULT_PATH.into(),
            None => std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
        }
    }

    fn envp(&self) -> Result<EnvBlock> {
        if !self.env_clear && self.env.is_empty() {
            // The common case: the parent's environment as it is. Entries from the OS cannot
            // hold a NUL, and their keys no '='.
            return Ok(EnvBlock::inherited(&CHANNEL_VARS));
        }
        let mut vars: BTreeMap<OsString, OsString> = if self.env_clear {
            BTreeMap::new()
        } else {
            std::env::vars_os()
                .filter(|(k, _)| !is_channel_var(k))
                .collect()
        };
        for (k, v) in &self.env {
            match v {
                Some(v) => vars.insert(k.clone(), v.clone()),
                None => vars.remove(k),
            };
        }
        let mut envp = EnvBlock::with_capacity(vars.len());
        for (k, v) in vars {
            if k.is_empty() || k.as_bytes().contains(&b'=') {
                return Err(Error::InvalidOption {
                    option: "env",
                    reason: format!("key {:?} is empty or contains '='", k.to_string_lossy()),
                });
            }
            cstring("environment key", &k)?;
            cstring(&format!("environment value of {}", k.to_string_lossy()), &v)?;
            envp.push(k.as_bytes(), v.as_bytes());
        }
        Ok(envp)
    }
}

/// `NODE_CHANNEL_FD` / `NODE_CHANNEL_SERIALIZATION_MODE` describe *this* process's channel:
/// never passed on by inheritance (Node deletes them from `process.env` at startup).
fn is_channel_var(key: &OsStr) -> bool {
    CHANNEL_VARS.iter().any(|var| key == *var)
}

pub(super) struct Prepared {
    pub(super) file: OsString,
    pub(super) argv_os: Vec<OsString>,
    pub(super) path: CString,
    pub(super) argv: Vec<CString>,
    pub(super) envp: EnvBlock,
    pub(super) cwd: Option<CString>,
}

fn cstring(what: &str, s: &OsStr) -> Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| Error::Nul {
        what: what.to_owned(),
        value: s.to_owned(),
    })
}

/// `execvp`'s search, done in the parent: the first executable regular file in `path_var`.
fn resolve_program(
    file: &OsStr,
    path_var: impl FnOnce() -> OsString,
    cwd: Option<&Path>,
) -> io::Result<CString> {
    if file.as_bytes().contains(&b'/') {
        return Ok(CString::new(file.as_bytes())?);
    }
    let mut denied = false;
    for dir in std::env::split_paths(&path_var()) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let dir = match cwd {
            Some(cwd) if dir.is_relative() => cwd.join(dir),
            _ => dir,
        };
        let candidate = dir.join(file);
        let Ok(c) = CString::new(candidate.into_os_string().into_vec()) else {
            continue;
        };
        match std::fs::metadata(OsStr::from_bytes(c.as_bytes())) {
            Ok(m) if m.is_file() => match sys::is_executable(&c) {
                Ok(true) => return Ok(c),
                Ok(false) => denied = true,
                Err(_) => {}
            },
            _ => {}
        }
    }
    Err(io::Error::from_raw_os_error(if denied {
        libc::EACCES
    } else {
        libc::ENOENT
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_lookup_follows_nodes_rules() {
        let mut c = Command::new("x");
        if let Some(p) = std::env::var_os("PATH") {
            assert_eq!(c.path_var(), p);
        }
        c.env_clear();
        assert_eq!(c.path_var(), DEFAULT_PATH);
        c.env("PATH", "/opt/bin");
        assert_eq!(c.path_var(), "/opt/bin");
        let mut d = Command::new("x");
        d.env_remove("PATH");
        assert_eq!(d.path_var(), DEFAULT_PATH);
    }

    #[test]
    fn resolve_finds_executables_and_reports_missing_ones() {
        let sh = resolve_program(OsStr::new("sh"), || "/nonexistent:/bin".into(), None).unwrap();
        assert_eq!(sh.to_bytes(), b"/bin/sh");
        let e =
            resolve_program(OsStr::new("no-such-program-x"), || "/bin".into(), None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        // A directory named like the program is skipped, as execvp would.
        let e = resolve_program(OsStr::new("bin"), || "/".into(), None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
