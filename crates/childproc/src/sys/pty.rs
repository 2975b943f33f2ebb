//! Pseudo-terminals: opening a master/slave pair and the window size of one.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Opens a pseudo-terminal: `(master, slave)`, both close-on-exec and neither the caller's
/// controlling terminal; the master non-blocking, the window `rows` × `cols`.
pub(crate) fn open_pty(rows: u16, cols: u16) -> io::Result<(OwnedFd, OwnedFd)> {
    // Linux takes O_CLOEXEC here (atomic); elsewhere it is set right after, as for pipes on
    // Apple's systems.
    #[cfg(target_os = "linux")]
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    #[cfg(not(target_os = "linux"))]
    let flags = libc::O_RDWR | libc::O_NOCTTY;
    // SAFETY: posix_openpt returns a new fd or -1; nothing else is touched.
    let raw = unsafe { libc::posix_openpt(flags) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is the new fd, owned by nobody else.
    let master = unsafe { OwnedFd::from_raw_fd(raw) };
    set_cloexec(&master)?;
    // SAFETY: grantpt and unlockpt on the master fd we own.
    if unsafe { libc::grantpt(raw) } != 0 || unsafe { libc::unlockpt(raw) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let slave = open_slave(&master)?;
    super::set_nonblocking(master.as_fd())?;
    set_window_size(master.as_fd(), rows, cols)?;
    Ok((master, slave))
}

fn set_cloexec(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: F_SETFD on an fd we own.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The slave side of `master`, opened close-on-exec and without becoming our terminal.
#[cfg(target_os = "linux")]
fn open_slave(master: &OwnedFd) -> io::Result<OwnedFd> {
    // Linux 4.13+: the peer straight from the master, no path looked up.
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER on a master pty fd returns a new fd or -1.
    let raw = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER as _, flags) };
    if raw >= 0 {
        // SAFETY: a new fd, owned by nobody else.
        return Ok(unsafe { OwnedFd::from_raw_fd(raw) });
    }
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: ptsname_r writes a NUL-terminated name of at most `name.len()` bytes.
    if unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ptsname_r succeeded, so `name` holds a NUL-terminated string.
    open_path(unsafe { CStr::from_ptr(name.as_ptr()) })
}

/// The slave side of `master`, opened close-on-exec and without becoming our terminal.
#[cfg(not(target_os = "linux"))]
fn open_slave(master: &OwnedFd) -> io::Result<OwnedFd> {
    use std::sync::Mutex;
    // ptsname's result lives in a static buffer: one caller at a time, copied out at once.
    static PTSNAME: Mutex<()> = Mutex::new(());
    let _one = PTSNAME.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: ptsname returns NULL or a NUL-terminated string in a static buffer, which the
    // lock keeps ours until it is copied.
    let name = unsafe { libc::ptsname(master.as_raw_fd()) };
    if name.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: non-NULL: a NUL-terminated string, copied before the lock is released.
    let name = unsafe { CStr::from_ptr(name) }.to_owned();
    open_path(&name)
}

fn open_path(name: &CStr) -> io::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: open with a NUL-terminated path returns a new fd or -1.
    let raw = unsafe { libc::open(name.as_ptr(), flags) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// A pty master registered with tokio, as a `File` (reads and writes through `&File`).
pub(crate) fn async_master(master: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<File>> {
    let interest = tokio::io::Interest::READABLE | tokio::io::Interest::WRITABLE;
    // SAFETY: the AsyncFd takes ownership of the file, so its fd stays open and refers to the
    // same open file description for as long as it is registered.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(File::from(master), interest) }
        .map_err(io::Error::from)
}

/// Sets the window size of the terminal `fd` (master or slave): the foreground process group
/// gets SIGWINCH when it changes.
pub(crate) fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ as _, &size) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The window size of the terminal `fd`: `(rows, cols)`.
pub(crate) fn window_size(fd: BorrowedFd<'_>) -> io::Result<(u16, u16)> {
    // SAFETY: a plain C struct, all zeros is a valid value.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize through a valid pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ as _, &mut size) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((size.ws_row, size.ws_col))
}
