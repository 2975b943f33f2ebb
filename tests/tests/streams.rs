//! Reading a child's output beyond Node's `'data'` events: stderr merged into stdout at the
//! OS level (`Stdio::SameAs`, a shell's `2>&1`).

use childproc::{Command, Error, Stdio};
mod common;
use common::{guard, stdout_string, FIXTURE};

/// `2>&1`: one pipe carries both streams in exactly the order the child wrote them, however
/// fast it alternates, and there is no separate stderr pipe.
#[tokio::test]
async fn stderr_same_as_stdout_keeps_the_childs_write_order() {
    let mut child = Command::new(FIXTURE)
        .args(["alternate", "2000"])
        .stderr(Stdio::SameAs(1))
        .spawn()
        .unwrap();
    assert!(child.stderr.is_none());
    let out = stdout_string(&mut child).await;
    let expected: String = (0..2000).map(|i| format!("out {i}\nerr {i}\n")).collect();
    assert_eq!(out, expected);
    assert!(guard(child.closed()).await.unwrap().success());

    // Any fd can name another: fd 3 is the stdout pipe too.
    let mut child = Command::new(FIXTURE)
        .args(["write-fd", "3", "via fd 3"])
        .fd(3, Stdio::SameAs(1))
        .spawn()
        .unwrap();
    assert_eq!(stdout_string(&mut child).await, "via fd 3");
    assert!(guard(child.closed()).await.unwrap().success());

    // It follows whatever fd 1 is: ignored, so the stderr line goes nowhere either.
    let child = Command::new(FIXTURE)
        .args(["out-err", "o", "e"])
        .stdout(Stdio::Ignore)
        .stderr(Stdio::SameAs(1))
        .spawn()
        .unwrap();
    assert!(child.stdout.is_none() && child.stderr.is_none());
    assert!(guard(child.closed()).await.unwrap().success());

    for (fd, cfg) in [(2, Stdio::SameAs(2)), (2, Stdio::SameAs(-1))] {
        let err = Command::new(FIXTURE).fd(fd, cfg).spawn().unwrap_err();
        assert!(matches!(err, Error::Stdio(_)), "{err:?}");
    }
    let err = Command::new(FIXTURE)
        .stdout(Stdio::SameAs(2))
        .stderr(Stdio::SameAs(1))
        .spawn()
        .unwrap_err();
    assert!(err.to_string().contains("stdio[1]: SameAs(2)"), "{err}");
}
