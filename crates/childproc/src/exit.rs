//! How a child ended: [`ExitStatus`], the `(code, signal)` pair of Node's `'exit'` and
//! `'close'`. Below both the child and its events, which name it.

use std::fmt;

use crate::signal::Signal;
use crate::sys::RawStatus;

/// How a child ended: exactly one of [`code`](Self::code) or [`signal`](Self::signal) is set
/// (Node's `(code, signal)` pair of `'exit'` and `'close'`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExitStatus(RawStatus);

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
    pub(crate) fn from_raw(raw: RawStatus) -> Self {
        ExitStatus(raw)
    }
    #[cfg(test)]
    pub(crate) fn from_code(code: i32) -> Self {
        ExitStatus(RawStatus::Exited(code))
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
