//! The CPU time this process has used, every thread together: what a peer cost the parent,
//! its children not counted (they are other processes).

use std::time::Duration;

/// The CPU time (user + system) of every thread of this process so far.
#[allow(unsafe_code)]
pub(crate) fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_PROCESS_CPUTIME_ID exists on every
    // platform the bench runs on, and the call writes nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// The parent's CPU time spent while `f` ran, with what `f` returned.
pub(crate) fn with_cpu<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let before = process_cpu();
    let out = f();
    (out, process_cpu().saturating_sub(before))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_shows_as_cpu_time() {
        let (sum, cpu) =
            with_cpu(|| (0..20_000_000u64).fold(0u64, |a, x| std::hint::black_box(a ^ x)));
        assert_eq!(sum, 0);
        assert!(cpu > Duration::ZERO, "{cpu:?}");
    }
}
