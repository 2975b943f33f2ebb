//! Signals by name or number, as Node's `killSignal` and `subprocess.kill(signal)` take them.

use std::fmt;
use std::str::FromStr;

/// A signal name or number that Node does not accept: its `ERR_UNKNOWN_SIGNAL`, with the
/// same text (`Unknown signal: SIGNOPE`). It converts into
/// [`Error::UnknownSignal`](crate::Error::UnknownSignal), so `?` works in code returning
/// the crate's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unknown signal: {0}")]
pub struct UnknownSignal(pub String);

/// A POSIX signal. Parse one from Node's names (`"SIGTERM"`) or build it from a number.
///
/// ```
/// use childproc::Signal;
/// let s: Signal = "SIGHUP".parse()?;
/// assert_eq!(s, Signal::SIGHUP);
/// assert_eq!(s.name(), Some("SIGHUP"));
/// assert_eq!(Signal::from_raw(9)?, Signal::SIGKILL);
/// # Ok::<(), childproc::UnknownSignal>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(i32);

macro_rules! signals {
    ($($name:ident),* $(,)?) => {
        impl Signal {
            $(
                #[doc = concat!("`", stringify!($name), "`.")]
                pub const $name: Signal = Signal(libc::$name);
            )*
        }
        const NAMED: &[(&str, i32)] = &[$((stringify!($name), libc::$name)),*];
    };
}

signals!(
    SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGKILL, SIGUSR1, SIGSEGV,
    SIGUSR2, SIGPIPE, SIGALRM, SIGTERM, SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU,
    SIGURG, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGSYS,
);

#[cfg(any(target_os = "linux", target_os = "android"))]
const ALIASES: &[(&str, i32)] = &[
    ("SIGIOT", libc::SIGIOT),
    ("SIGPOLL", libc::SIGPOLL),
    ("SIGPWR", libc::SIGPWR),
    ("SIGSTKFLT", libc::SIGSTKFLT),
];
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const ALIASES: &[(&str, i32)] = &[("SIGIOT", libc::SIGIOT)];

/// The largest signal number accepted (Linux's `SIGRTMAX`; 64 covers every real-time signal).
const MAX_SIGNAL: i32 = 64;

impl Signal {
    /// The signal with number `n`. `0` is allowed (it checks that the process exists, as
    /// `kill(2)` does); numbers beyond the platform's range are an error naming them.
    pub fn from_raw(n: i32) -> Result<Signal, UnknownSignal> {
        if (0..=MAX_SIGNAL).contains(&n) {
            Ok(Signal(n))
        } else {
            Err(UnknownSignal(n.to_string()))
        }
    }

    /// The signal number.
    pub fn as_raw(self) -> i32 {
        self.0
    }

    /// Node's name for it (`"SIGTERM"`), if it has one.
    pub fn name(self) -> Option<&'static str> {
        NAMED
            .iter()
            .chain(ALIASES)
            .find(|(_, n)| *n == self.0)
            .map(|(name, _)| *name)
    }
}

impl Signal {
    /// Node's `convertToValidSignal` for a name: any case (`"sigkill"`, as Node upper-cases
    /// it), one of Node's `os.constants.signals` names (aliases such as `SIGIOT` included).
    fn from_node_name(s: &str) -> Option<Signal> {
        NAMED
            .iter()
            .chain(ALIASES)
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|&(_, n)| Signal(n))
    }

    /// Node's `convertToValidSignal` for a number: only the number of a named signal (so not
    /// `0`, nor a real-time signal, nor anything out of range).
    fn from_node_number(n: i32) -> Option<Signal> {
        NAMED
            .iter()
            .chain(ALIASES)
            .any(|&(_, m)| m == n)
            .then_some(Signal(n))
    }
}

impl FromStr for Signal {
    type Err = UnknownSignal;

    /// Parses a Node signal name in any case (`"SIGKILL"`, `"sigkill"`), or, beyond Node, a
    /// decimal number (`"9"`, any number [`from_raw`](Signal::from_raw) takes).
    fn from_str(s: &str) -> Result<Self, UnknownSignal> {
        if let Some(signal) = Signal::from_node_name(s) {
            return Ok(signal);
        }
        match s.parse::<i32>() {
            Ok(n) => Signal::from_raw(n),
            Err(_) => Err(UnknownSignal(s.to_owned())),
        }
    }
}

impl TryFrom<i32> for Signal {
    type Error = UnknownSignal;
    fn try_from(n: i32) -> Result<Self, UnknownSignal> {
        Signal::from_raw(n)
    }
}

impl TryFrom<&str> for Signal {
    type Error = UnknownSignal;
    fn try_from(s: &str) -> Result<Self, UnknownSignal> {
        s.parse()
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A kill signal as given to a builder: a checked [`Signal`], or a name or number checked
/// when the command spawns (so a bad name is reported by `spawn`, naming it).
///
/// Names and numbers follow Node's `killSignal` rule (`convertToValidSignal`): a name in any
/// case (`"sigkill"`), a number only if it is a named signal's (`9`, but not `0`, `34` or
/// `500`), and never a number written as text (`"9"`): each of those is
/// [`UnknownSignal`] naming it, as Node's `ERR_UNKNOWN_SIGNAL`. A [`Signal`] built
/// with [`Signal::from_raw`] (a real-time signal, say) is taken as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalSpec {
    /// Already a valid signal.
    Signal(Signal),
    /// A name such as `"SIGINT"`, or a number as text.
    Name(String),
    /// A number.
    Number(i32),
}

impl SignalSpec {
    pub(crate) fn resolve(&self) -> Result<Signal, UnknownSignal> {
        match self {
            SignalSpec::Signal(s) => Ok(*s),
            SignalSpec::Name(n) => {
                Signal::from_node_name(n).ok_or_else(|| UnknownSignal(n.clone()))
            }
            SignalSpec::Number(n) => {
                Signal::from_node_number(*n).ok_or_else(|| UnknownSignal(n.to_string()))
            }
        }
    }
}

impl From<Signal> for SignalSpec {
    fn from(s: Signal) -> Self {
        SignalSpec::Signal(s)
    }
}
impl From<&str> for SignalSpec {
    fn from(s: &str) -> Self {
        SignalSpec::Name(s.to_owned())
    }
}
impl From<String> for SignalSpec {
    fn from(s: String) -> Self {
        SignalSpec::Name(s)
    }
}
impl From<i32> for SignalSpec {
    fn from(n: i32) -> Self {
        SignalSpec::Number(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        for &(name, n) in NAMED {
            let s: Signal = name.parse().unwrap();
            assert_eq!(s.as_raw(), n);
            assert_eq!(s.to_string(), name);
        }
        assert_eq!("15".parse::<Signal>().unwrap(), Signal::SIGTERM);
        assert_eq!(Signal::from_raw(0).unwrap().to_string(), "0");
    }

    #[test]
    fn unknown_names_are_errors_naming_them() {
        let e = "SIGFOO".parse::<Signal>().unwrap_err();
        assert!(e.to_string().contains("SIGFOO"), "{e}");
        assert!(Signal::from_raw(65).unwrap_err().to_string().contains("65"));
        assert!(Signal::from_raw(-1).is_err());
        assert!(SignalSpec::from("TERM").resolve().is_err());
    }

    #[test]
    fn kill_signals_follow_nodes_convert_to_valid_signal() {
        // node -e "cp.spawnSync('sleep', ['5'], {timeout: 50, killSignal: S})" for each S:
        // 'sigkill' → SIGKILL, 'SigTerm' → SIGTERM, 'SIGIOT' → SIGABRT, 9 → SIGKILL;
        // 0, 500, -1, 34, 64, '9', 'SIGNOPE', 'SIGRTMIN', 'SIGCLD' → ERR_UNKNOWN_SIGNAL.
        let ok: [(SignalSpec, Signal); 5] = [
            ("sigkill".into(), Signal::SIGKILL),
            ("SigTerm".into(), Signal::SIGTERM),
            ("SIGIOT".into(), Signal::SIGABRT),
            (9.into(), Signal::SIGKILL),
            (
                Signal::from_raw(34).unwrap().into(),
                Signal::from_raw(34).unwrap(),
            ),
        ];
        for (spec, want) in ok {
            assert_eq!(spec.resolve().unwrap(), want, "{spec:?}");
        }
        let bad: [SignalSpec; 9] = [
            0.into(),
            500.into(),
            (-1).into(),
            34.into(),
            64.into(),
            "9".into(),
            "SIGNOPE".into(),
            "SIGRTMIN".into(),
            "SIGCLD".into(),
        ];
        for spec in bad {
            let e = spec.resolve().unwrap_err();
            let shown = match &spec {
                SignalSpec::Name(n) => n.clone(),
                SignalSpec::Number(n) => n.to_string(),
                SignalSpec::Signal(s) => s.to_string(),
            };
            assert_eq!(
                e.to_string(),
                format!("Unknown signal: {shown}"),
                "{spec:?}"
            );
        }
        // Parsing a `Signal` takes any case too (Node upper-cases names for `kill()`).
        assert_eq!("sigint".parse::<Signal>().unwrap(), Signal::SIGINT);
    }
}
