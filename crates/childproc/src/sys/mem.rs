//! Memory: faulting in a buffer's pages before a read fills it.

#[cfg(target_os = "linux")]
use std::io;
use std::mem::MaybeUninit;
#[cfg(target_os = "linux")]
use std::sync::atomic::{AtomicBool, Ordering};

/// Every page of `region` written at least once by [`prefault`]'s fallback (pages are at
/// least this big everywhere we build).
const TOUCH: usize = 4096;

/// `MADV_POPULATE_WRITE` was refused once (a kernel before 5.14): touch pages from then on.
#[cfg(target_os = "linux")]
static NO_POPULATE: AtomicBool = AtomicBool::new(false);

/// Faults in the pages of `region` now, so that a `read(2)` into it later does not fault them
/// in one by one while it holds the pipe's lock (and the child writing to the pipe waits).
/// Uses `MADV_POPULATE_WRITE` where the kernel has it, else writes a zero to each page;
/// `region` is uninitialised memory either way, to be filled by the read.
pub(crate) fn prefault(region: &mut [MaybeUninit<u8>]) {
    #[cfg(target_os = "linux")]
    if !NO_POPULATE.load(Ordering::Relaxed) && populate(region) {
        return;
    }
    touch(region);
}

/// Writes a zero to each page of `region`, faulting it in (the portable [`prefault`]).
fn touch(region: &mut [MaybeUninit<u8>]) {
    for byte in region.iter_mut().step_by(TOUCH) {
        byte.write(0);
    }
}

/// `MADV_POPULATE_WRITE` on every page that holds a byte of `region`; false if the kernel
/// refused.
#[cfg(target_os = "linux")]
fn populate(region: &mut [MaybeUninit<u8>]) -> bool {
    if region.is_empty() {
        return true;
    }
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(TOUCH);
    let start = region.as_mut_ptr() as usize;
    let first = start / page * page;
    let Some(end) = (start + region.len()).checked_next_multiple_of(page) else {
        return false;
    };
    // SAFETY: every page of [first, end) holds a byte of `region`, so it is mapped (mappings
    // are whole pages). Populating a page only faults it in as if written, without writing:
    // what it holds, here or in the bytes of the page outside `region`, does not change.
    let done = unsafe {
        libc::madvise(
            first as *mut libc::c_void,
            end - first,
            libc::MADV_POPULATE_WRITE,
        )
    } == 0;
    if !done && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // An older kernel: it does not know the advice.
        NO_POPULATE.store(true, Ordering::Relaxed);
    }
    done
}

/// How many of the whole pages inside `region` are resident (Linux `mincore`), for tests.
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn resident_pages(region: &[MaybeUninit<u8>]) -> (usize, usize) {
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).expect("page size");
    let start = region.as_ptr() as usize;
    let first = start.next_multiple_of(page);
    let pages = (start + region.len()).saturating_sub(first) / page;
    let mut resident = vec![0u8; pages];
    // SAFETY: [first, first + pages * page) lies inside `region`; mincore only reads the
    // page tables and writes one byte per page into `resident`.
    let rc = unsafe {
        libc::mincore(
            first as *mut libc::c_void,
            pages * page,
            resident.as_mut_ptr().cast(),
        )
    };
    assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
    (resident.iter().filter(|r| *r & 1 == 1).count(), pages)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_prefaulted_buffer_is_resident_and_still_fills() {
        let mut v: Vec<u8> = Vec::with_capacity(8 << 20);
        let (before, pages) = resident_pages(&v.spare_capacity_mut()[..4 << 20]);
        assert!(before < pages, "a fresh allocation is not all resident yet");
        prefault(&mut v.spare_capacity_mut()[..4 << 20]);
        let (after, pages) = resident_pages(&v.spare_capacity_mut()[..4 << 20]);
        assert_eq!(after, pages, "every page resident");
        let (beyond, _) = resident_pages(&v.spare_capacity_mut()[5 << 20..]);
        assert!(beyond < pages, "the rest is left alone");
        v.extend_from_slice(&[7u8; 100]);
        assert_eq!(&v[..], &[7u8; 100][..]);
    }

    #[test]
    fn the_fallback_touches_every_page() {
        let mut v: Vec<u8> = Vec::with_capacity(4 << 20);
        touch(v.spare_capacity_mut());
        let (resident, pages) = resident_pages(v.spare_capacity_mut());
        assert_eq!(resident, pages);
    }
}
