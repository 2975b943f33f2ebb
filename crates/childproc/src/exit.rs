//! How a child ended: [`ExitStatus`], the `(code, signal)` pair of Node's `'exit'` and
//! `'close'`. Below both the child and its events, which name it.

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::signal::Signal;
use crate::sys::{RawStatus, RawUsage};
use crate::usage::ResourceUsage;

/// How a child ended: exactly one of [`code`](Self::code) or [`signal`](Self::signal) is set
/// (Node's `(code, signal)` pair of `'exit'` and `'close'`), and what it cost
/// ([`resource_usage`](Self::resource_usage)). Two statuses are equal when their code and
/// signal are.
#[derive(Clone, Copy)]
pub struct ExitStatus(RawStatus, Option<ResourceUsage>);

impl PartialEq for ExitStatus {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for ExitStatus {}

impl Hash for ExitStatus {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl ExitStatus {
    /// The exit code, if the child exited on its own.
    pub fn code(&self) -> Option<i32> {
        match self.0 {
            RawStatus::Exited(c) => Some(c),
            RawStatus::Signaled(_) => None,
        }
    }
    /// The signal that terminated the child, if one did.
    pub fn signal(&self) -> Option<Signal> {
        match self.0 {
            RawStatus::Signaled(s) => Signal::from_raw(s).ok(),
            RawStatus::Exited(_) => None,
        }
    }
    /// Exited with code 0.
    pub fn success(&self) -> bool {
        self.0 == RawStatus::Exited(0)
    }
    /// What the child cost: CPU time, maximum RSS, page faults, context switches (see
    /// [`ResourceUsage`]), gathered when it was reaped. `None` only for a child reaped by
    /// someone else (a stray `waitpid(-1)` in the process).
    pub fn resource_usage(&self) -> Option<ResourceUsage> {
        self.1
    }
    pub(crate) fn from_raw(raw: RawStatus, usage: Option<RawUsage>) -> Self {
        ExitStatus(raw, usage.map(ResourceUsage::from_raw))
    }
    #[cfg(test)]
    pub(crate) fn from_code(code: i32) -> Self {
        ExitStatus(RawStatus::Exited(code), None)
    }
}

impl fmt::Debug for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExitStatus({self})")
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            RawStatus::Exited(c) => write!(f, "code {c}"),
            RawStatus::Signaled(s) => match Signal::from_raw(s) {
                Ok(sig) => write!(f, "signal {sig}"),
                Err(_) => write!(f, "signal {s}"),
            },
        }
    }
}
