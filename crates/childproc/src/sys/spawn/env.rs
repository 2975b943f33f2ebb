//! The child's environment as `execve` takes it: one buffer of `KEY=VALUE` strings, or the
//! parent's own `environ` passed as it is.

use std::os::unix::ffi::OsStrExt;
use std::ptr;

/// An environment for `execve`: every `KEY=VALUE` string, NUL-terminated, in one buffer — or
/// the parent's own environment, passed as it is.
///
/// One allocation for the whole environment instead of one per variable. And when the child
/// inherits the environment unchanged (the common case), nothing is copied at all on Linux:
/// `execve` gets the process's own `environ` array, as std does. Like every read of the
/// environment outside `std::env`, that is raced only by a `set_var`/`remove_var` on another
/// thread, which Rust requires its (unsafe) caller to rule out.
#[derive(Debug, Default)]
pub(crate) struct EnvBlock {
    bytes: Vec<u8>,
    starts: Vec<usize>,
    /// `Some`: the parent's environment as it is when the child is created, without these
    /// variables; `bytes` and `starts` are unused.
    inherit: Option<&'static [&'static str]>,
}

impl EnvBlock {
    /// An empty block with room for about `vars` variables.
    pub(crate) fn with_capacity(vars: usize) -> EnvBlock {
        EnvBlock {
            bytes: Vec::with_capacity(vars * 48),
            starts: Vec::with_capacity(vars + 2),
            inherit: None,
        }
    }

    /// The parent's environment as it is when the child is created, without the variables
    /// named in `skip`.
    pub(crate) fn inherited(skip: &'static [&'static str]) -> EnvBlock {
        let block = EnvBlock {
            inherit: Some(skip),
            ..EnvBlock::default()
        };
        if cfg!(target_os = "linux") {
            block
        } else {
            // Elsewhere `environ` is not always reachable from a library (macOS): copy it.
            block.into_copy()
        }
    }

    /// A copy of the parent's environment now, without the variables in `skip`.
    fn copy_of_parent(skip: &[&str]) -> EnvBlock {
        let vars = std::env::vars_os();
        let mut block = EnvBlock::with_capacity(vars.size_hint().0);
        for (k, v) in vars.filter(|(k, _)| !skip.iter().any(|s| k == *s)) {
            block.push(k.as_bytes(), v.as_bytes());
        }
        block
    }

    /// An inherited block turned into a copy of the parent's environment; others unchanged.
    fn into_copy(self) -> EnvBlock {
        match self.inherit {
            Some(skip) => EnvBlock::copy_of_parent(skip),
            None => self,
        }
    }

    /// Appends `key=value` (to a copy of the parent's environment if the block inherits it).
    /// The caller has checked that neither holds a NUL and that the key holds no `=`.
    pub(crate) fn push(&mut self, key: &[u8], value: &[u8]) {
        debug_assert!(!key.contains(&0) && !value.contains(&0) && !key.contains(&b'='));
        if self.inherit.is_some() {
            *self = std::mem::take(self).into_copy();
        }
        self.starts.push(self.bytes.len());
        self.bytes.reserve(key.len() + value.len() + 2);
        self.bytes.extend_from_slice(key);
        self.bytes.push(b'=');
        self.bytes.extend_from_slice(value);
        self.bytes.push(0);
    }

    /// The variables as `KEY=VALUE` byte strings (without their NUL), in order.
    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.starts.iter().enumerate().map(|(i, &start)| {
            let end = self
                .starts
                .get(i + 1)
                .map_or(self.bytes.len(), |&next| next);
            &self.bytes[start..end - 1]
        })
    }

    /// `execve`'s envp: a pointer to each string, then NULL. Valid while `self` is neither
    /// changed nor dropped.
    fn pointers(&self) -> Vec<*const libc::c_char> {
        self.starts
            .iter()
            .map(|&start| self.bytes[start..].as_ptr().cast())
            .chain(std::iter::once(ptr::null()))
            .collect()
    }
}

/// What `execve` gets as its environment, prepared before the child exists.
pub(super) struct Envp {
    /// The copy `pointers` points into, when the plan's block could not be used as it is.
    _copy: Option<EnvBlock>,
    /// Pointers into a block, then NULL (empty when `array` is the parent's `environ`).
    _pointers: Vec<*const libc::c_char>,
    /// The array `execve` receives.
    pub(super) array: *const *const libc::c_char,
}

impl Envp {
    pub(super) fn new(block: &EnvBlock) -> Envp {
        let Some(skip) = block.inherit else {
            return Envp::of(None, block);
        };
        #[cfg(target_os = "linux")]
        if let Some(array) = parent_environ(skip) {
            return Envp {
                _copy: None,
                _pointers: Vec::new(),
                array,
            };
        }
        let copy = EnvBlock::copy_of_parent(skip);
        Envp::of(Some(copy), block)
    }

    /// Pointers into `copy` if there is one, else into `block`.
    fn of(copy: Option<EnvBlock>, block: &EnvBlock) -> Envp {
        let pointers = copy.as_ref().unwrap_or(block).pointers();
        Envp {
            array: pointers.as_ptr(),
            _copy: copy,
            _pointers: pointers,
        }
    }
}

/// The process's own `environ`, if it is set and holds none of the variables in `skip`.
#[cfg(target_os = "linux")]
fn parent_environ(skip: &[&str]) -> Option<*const *const libc::c_char> {
    extern "C" {
        static environ: *const *const libc::c_char;
    }
    // SAFETY: reads the C library's environment pointer. The array and its strings stay valid
    // until the environment is changed: childproc's own change (`from_env`) waits for the
    // lock the spawning caller holds until the child has exec'd, and any other `set_var` or
    // `remove_var` must by Rust's rules keep other threads from reading the environment.
    let array = unsafe { environ };
    if array.is_null() {
        return None;
    }
    let mut at = array;
    // SAFETY: `environ` is a NULL-terminated array of NUL-terminated strings (see above).
    unsafe {
        while !(*at).is_null() {
            let entry = *at;
            if skip
                .iter()
                .any(|key| starts_with_key(entry, key.as_bytes()))
            {
                return None;
            }
            at = at.add(1);
        }
    }
    Some(array)
}

/// Whether the C string at `entry` starts with `key=`.
///
/// # Safety
/// `entry` points at a NUL-terminated string.
#[cfg(target_os = "linux")]
unsafe fn starts_with_key(entry: *const libc::c_char, key: &[u8]) -> bool {
    for (i, &want) in key.iter().chain(b"=").enumerate() {
        // SAFETY: every byte before this one matched `key=`, which holds no NUL, so the string
        // has not ended before index `i`.
        if unsafe { *entry.add(i) } as u8 != want {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::{EnvBlock, Envp};
    use std::ffi::CStr;

    /// The strings an `Envp` hands to `execve`.
    fn strings(envp: &Envp) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = envp.array;
        // SAFETY: `array` is a NULL-terminated array of C strings, alive with `envp` (or the
        // process's environment, which this test does not change).
        unsafe {
            while !(*at).is_null() {
                out.push(CStr::from_ptr(*at).to_bytes().to_vec());
                at = at.add(1);
            }
        }
        out
    }

    #[test]
    fn an_inherited_block_is_the_parents_environment_minus_the_skipped_keys() {
        let parent: Vec<Vec<u8>> = std::env::vars_os()
            .map(|(k, v)| [k.as_encoded_bytes(), b"=", v.as_encoded_bytes()].concat())
            .collect();
        assert!(parent.iter().any(|e| e.starts_with(b"PATH=")));
        // Nothing skipped that the parent holds: the parent's variables, all of them.
        let all = Envp::new(&EnvBlock::inherited(&["CHILDPROC_NOT_SET_ANYWHERE"]));
        assert_eq!(strings(&all), parent);
        // A key the parent holds is left out.
        let without_path = Envp::new(&EnvBlock::inherited(&["PATH"]));
        let want: Vec<Vec<u8>> = parent
            .iter()
            .filter(|e| !e.starts_with(b"PATH="))
            .cloned()
            .collect();
        assert_eq!(strings(&without_path), want);
        // A pushed variable turns the block into a copy, skipped keys still left out.
        let mut pushed = EnvBlock::inherited(&["PATH"]);
        pushed.push(b"CHILDPROC_PUSHED", b"1");
        let mut want = want;
        want.push(b"CHILDPROC_PUSHED=1".to_vec());
        assert_eq!(strings(&Envp::new(&pushed)), want);
    }

    #[test]
    fn an_env_block_points_execve_at_each_variable_then_null() {
        let mut env = EnvBlock::with_capacity(0);
        env.push(b"A", b"1");
        env.push(b"EMPTY", b"");
        env.push(b"PATH", b"/usr/bin:/bin=x");
        let listed: Vec<&[u8]> = env.iter().collect();
        assert_eq!(listed, [&b"A=1"[..], b"EMPTY=", b"PATH=/usr/bin:/bin=x"]);
        let pointers = env.pointers();
        assert_eq!(pointers.len(), 4);
        assert!(pointers[3].is_null());
        for (p, want) in pointers.iter().zip(listed) {
            // SAFETY: each pointer is the start of a NUL-terminated string inside `env`, which
            // is alive and unchanged here.
            let got = unsafe { CStr::from_ptr(*p) };
            assert_eq!(got.to_bytes(), want);
        }
    }
}
