//! Spawn options, observed from inside a real child.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use childproc::ipc::Value;
use childproc::{fork_exe, Command, Event, Stdio};
use futures_util::StreamExt;

use super::output;
use crate::common::{describe, guard, stdout_string, FIXTURE};

/// Arguments reach the child verbatim and argv0 is settable (`options.rs`).
pub async fn argv_and_argv0() {
    let out = output(Command::new(FIXTURE).args(["argv", "a b", "$HOME", "'; rm -rf /"])).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, [FIXTURE, "argv", "a b", "$HOME", "'; rm -rf /"]);

    let mut cmd = Command::new(FIXTURE);
    cmd.arg("argv").argv0("custom-name");
    let mut child = cmd.spawn().unwrap();
    assert_eq!(child.spawnfile(), FIXTURE);
    assert_eq!(child.spawnargs(), ["custom-name", "argv"]);
    assert_eq!(stdout_string(&mut child).await, "custom-name\nargv\n");
}

/// The cwd is the child's working directory (`options.rs`).
pub async fn cwd() {
    let out = output(Command::new(FIXTURE).arg("cwd").current_dir("/usr")).await;
    assert_eq!(out.trim(), "/usr");
    // A relative program path resolves against the child's cwd, as execvp does.
    let out = output(
        Command::new("./bin/true")
            .current_dir("/usr")
            .stdout(Stdio::Pipe),
    )
    .await;
    assert_eq!(out, "");
}

/// Env inherits by default and an explicit env replaces it (`options.rs`).
pub async fn env() {
    std::env::set_var("CHILDPROC_TEST_INHERITED", "from-parent");
    let out = output(
        Command::new(FIXTURE)
            .args(["env", "CHILDPROC_TEST_INHERITED", "EXTRA"])
            .env("EXTRA", "1"),
    )
    .await;
    assert_eq!(out, "CHILDPROC_TEST_INHERITED=from-parent\nEXTRA=1\n");

    // Node's `env: {ONLY: 'x'}`: nothing else, not even PATH.
    let out = output(
        Command::new(FIXTURE)
            .args(["env", "ONLY", "PATH", "CHILDPROC_TEST_INHERITED"])
            .env_clear()
            .env("ONLY", "x"),
    )
    .await;
    assert_eq!(out, "ONLY=x\nPATH unset\nCHILDPROC_TEST_INHERITED unset\n");
    let out = output(Command::new(FIXTURE).arg("env-count").env_clear()).await;
    assert_eq!(out.trim(), "0");

    let out = output(
        Command::new(FIXTURE)
            .args(["env", "CHILDPROC_TEST_INHERITED"])
            .env_remove("CHILDPROC_TEST_INHERITED"),
    )
    .await;
    assert_eq!(out, "CHILDPROC_TEST_INHERITED unset\n");
}

/// `shell(true)` runs through `/bin/sh`, and a shell path is honoured (`options.rs`).
pub async fn shell() {
    let mut child = Command::new("echo")
        .args(["$((1+2))", "|", "tr", "3", "x"])
        .shell(true)
        .spawn()
        .unwrap();
    assert_eq!(child.spawnfile(), "/bin/sh");
    assert_eq!(
        child.spawnargs(),
        ["/bin/sh", "-c", "echo $((1+2)) | tr 3 x"]
    );
    assert_eq!(stdout_string(&mut child).await, "x\n");

    let out = output(Command::new("echo $0").shell_path("/bin/bash")).await;
    assert_eq!(out, "/bin/bash\n");
}

/// Uid and gid drop privileges (`options.rs`).
pub async fn uid_and_gid() {
    // SAFETY-free check that we can test this: the suite runs as root.
    let out = output(Command::new(FIXTURE).arg("ids").uid(65534).gid(65534)).await;
    assert_eq!(out.trim(), "uid=65534 gid=65534 groups=0");
    let out = output(Command::new(FIXTURE).arg("ids").gid(123)).await;
    assert!(out.starts_with("uid=0 gid=123 groups=0"), "{out}");
}

/// Detached children lead a new session (`spawn.rs`).
pub async fn detached() {
    let mut child = Command::new(FIXTURE)
        .arg("sid")
        .detached(true)
        .spawn()
        .unwrap();
    let pid = child.pid();
    let out = stdout_string(&mut child).await;
    assert_eq!(out.trim(), format!("pid={pid} sid={pid} pgid={pid}"));
    let mut attached = Command::new(FIXTURE).arg("sid").spawn().unwrap();
    let out = stdout_string(&mut attached).await;
    assert!(!out.contains(&format!("sid={}", attached.pid())), "{out}");
}

/// A new fd, at 100 or above, without close-on-exec.
#[allow(unsafe_code)]
fn inheritable_fd() -> OwnedFd {
    let file = std::fs::File::open("/dev/null").unwrap();
    // SAFETY: F_DUPFD duplicates an open fd we own into a new one (close-on-exec clear).
    let fd = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_DUPFD, 100) };
    assert!(fd >= 100, "{}", std::io::Error::last_os_error());
    // SAFETY: fcntl returned a fresh fd that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The child gets exactly the configured fds (`spawn.rs`).
pub async fn exact_fds() {
    // An fd the parent left inheritable, as C code may: still not the child's.
    let _inheritable = inheritable_fd();
    // Default stdio: 0, 1, 2 and nothing else, whatever the test harness has open.
    let _leak_candidate = std::fs::File::open("/proc/self/status").unwrap();
    let mut child = Command::new(FIXTURE).arg("fds").spawn().unwrap();
    assert_eq!(stdout_string(&mut child).await.trim(), "0 1 2");

    // An extra pipe at fd 4 (Node's ['pipe', null, null, null, 'pipe']): fd 3 stays closed.
    let mut child = Command::new(FIXTURE)
        .arg("fds")
        .fd(4, Stdio::Pipe)
        .spawn()
        .unwrap();
    assert_eq!(stdout_string(&mut child).await.trim(), "0 1 2 4");

    // A user fd given at fd 3 and fd 7 (Node's positive integers / streams).
    let file = std::fs::File::open("/dev/zero").unwrap();
    let mut child = Command::new(FIXTURE)
        .arg("fds")
        .fd(3, Stdio::dup(&file).unwrap())
        .fd(7, file)
        .spawn()
        .unwrap();
    assert_eq!(stdout_string(&mut child).await.trim(), "0 1 2 3 7");
}

/// Signals are reset in the child (`spawn.rs`).
pub async fn signals_reset() {
    // grep, not the fixture: a Rust program ignores SIGPIPE itself at startup.
    let mut child = Command::new("grep")
        .args(["^Sig[BI]", "/proc/self/status"])
        .spawn()
        .unwrap();
    let out = stdout_string(&mut child).await;
    assert!(out.contains("SigBlk:\t0000000000000000"), "{out}");
    assert!(out.contains("SigIgn:\t0000000000000000"), "{out}");
}

/// Talks to an echo child (Node or Rust): the greeting, one echo per message, then 'bye'.
pub async fn echo_dialogue(child: &childproc::ChildProcess, greeting: &str) -> Vec<String> {
    let mut events = child.events();
    assert!(matches!(guard(events.next()).await, Some(Event::Spawn)));
    let hello = match guard(events.next()).await {
        Some(Event::Message(m)) => m,
        other => panic!("expected the greeting, got {other:?}"),
    };
    assert_eq!(hello.get("hello"), Some(&Value::from(greeting)));
    let payload = Value::object([
        ("n", Value::from(1)),
        ("s", Value::from("é€😀 \"quoted\"\n")),
        (
            "a",
            Value::Array(vec![Value::Bool(true), Value::Null, Value::from(1.5)]),
        ),
        (
            "o",
            Value::object([("nested", Value::object([("deep", Value::from(-2.5e-7))]))]),
        ),
    ]);
    child.send(payload.clone()).await.unwrap();
    assert!(child.send_nowait(Value::from("second")).unwrap());
    child.send(Value::from("bye")).await.unwrap();
    let rest: Vec<Event> = guard(events.collect()).await;
    let mut seen: Vec<String> = rest.iter().map(describe).collect();
    assert_eq!(
        rest.first()
            .map(|e| matches!(e, Event::Message(m) if m.get("echo") == Some(&payload))),
        Some(true)
    );
    seen[0] = "message echo(payload)".into();
    seen
}

/// A Rust parent forks a Rust child and talks to it over IPC (`ipc.rs`).
pub async fn ipc_fork_rust_child() {
    let child = fork_exe(FIXTURE, ["ipc-echo"]).spawn().unwrap();
    let seen = echo_dialogue(&child, "from rust").await;
    assert_eq!(
        seen[1..],
        [
            "message Object([(\"echo\", String(\"second\"))])",
            "disconnect",
            "exit code 0",
            "close code 0"
        ]
    );
}
