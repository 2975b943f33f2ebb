//! Bad input and refused spawns: a clear error naming the offending thing.

use std::io::ErrorKind;

use childproc::{Command, Error, Stdio};

use super::{engine, FIXTURE_ENGINE};
use crate::common::{stdout_string, FIXTURE};

/// A missing program is not found and named (`errors.rs`).
pub async fn missing_program() {
    let err = Command::new("no-such-program-xyz").spawn().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    assert!(
        err.to_string().starts_with("spawn no-such-program-xyz"),
        "{err}"
    );
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), ErrorKind::NotFound);

    let err = Command::new("/no/such/path").spawn().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("/no/such/path"), "{err}");
}

/// A bad cwd is named (`errors.rs`).
pub async fn bad_cwd() {
    let err = Command::new(FIXTURE)
        .current_dir("/no/such/dir")
        .spawn()
        .unwrap_err();
    assert!(matches!(err, Error::Cwd { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("/no/such/dir"), "{err}");

    let err = Command::new(FIXTURE)
        .current_dir("/etc/hostname")
        .spawn()
        .unwrap_err();
    assert!(err.to_string().contains("cwd /etc/hostname"), "{err}");
    assert_eq!(err.raw_os_error(), Some(libc::ENOTDIR));

    // A cwd that exists but that the child's uid cannot enter: chdir fails in the child, and
    // the error still names the cwd (the tests run as root; /root is 0700).
    let err = Command::new(FIXTURE)
        .uid(65534)
        .current_dir("/root")
        .spawn()
        .unwrap_err();
    assert!(matches!(err, Error::Cwd { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("cwd /root"), "{err}");
}

/// Interior NUL bytes are rejected naming the input (`errors.rs`).
pub async fn nul_bytes() {
    type Configure = fn(&mut Command);
    let build: [(Configure, &str); 5] = [
        (
            |c| {
                c.arg("x");
            },
            "program",
        ),
        (
            |c| {
                c.args(["ok", "bad\0arg"]);
            },
            "argument 2",
        ),
        (
            |c| {
                c.argv0("x\0");
            },
            "argv0",
        ),
        (
            |c| {
                c.env("K\0", "v");
            },
            "environment key",
        ),
        (
            |c| {
                c.env("K", "v\0");
            },
            "environment value of K",
        ),
    ];
    let cases = build.map(|(f, what)| {
        let mut cmd = Command::new(if what == "program" { "a\0b" } else { FIXTURE });
        f(&mut cmd);
        (cmd, what)
    });
    for (mut cmd, what) in cases {
        let err = cmd.spawn().unwrap_err();
        assert!(matches!(err, Error::Nul { .. }), "{err:?}");
        assert!(err.to_string().starts_with(what), "{what}: {err}");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
    let err = Command::new(FIXTURE)
        .current_dir("/tmp\0x")
        .spawn()
        .unwrap_err();
    assert!(err.to_string().starts_with("cwd contains a NUL"), "{err}");
    let err = Command::new(FIXTURE).env("A=B", "v").spawn().unwrap_err();
    assert!(err.to_string().contains("A=B"), "{err}");
    let err = Command::new("").spawn().unwrap_err();
    assert!(err.to_string().contains("program"), "{err}");
}

/// Bad stdio entries are named (`errors.rs`).
pub async fn bad_stdio() {
    let err = Command::new(FIXTURE)
        .fd(4, Stdio::Pipe)
        .fd(4, Stdio::Ignore)
        .spawn()
        .unwrap_err();
    assert_eq!(err.to_string(), "invalid stdio: fd 4 is configured twice");
    let err = Command::new(FIXTURE)
        .fd(-1, Stdio::Pipe)
        .spawn()
        .unwrap_err();
    assert_eq!(err.to_string(), "invalid stdio: fd -1 is negative");
    let err = Command::new(FIXTURE)
        .stdout(Stdio::parent_fd(987_654))
        .spawn()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid stdio: stdio[1]: parent fd 987654 cannot be used"),
        "{err}"
    );
}

/// Ids that cannot be set are named (`errors.rs`).
pub async fn ids_that_cannot_be_set() {
    let err = Command::new(FIXTURE).uid(u32::MAX).spawn().unwrap_err();
    assert!(err.to_string().contains("uid"), "{err}");
    // A non-root process cannot become root: EPERM, reported by the child side of spawn.
    let mut child = Command::new(FIXTURE)
        .arg("spawn-as-root-from-nobody")
        .env(FIXTURE_ENGINE, engine())
        .spawn()
        .unwrap();
    let out = stdout_string(&mut child).await;
    assert_eq!(out.trim(), "kind=PermissionDenied message=spawn true: cannot set uid 0: Operation not permitted (os error 1)");
}
