//! Node parity at the edges: each test pins one behaviour measured on Node 20 (the Node
//! one-liner that shows it is in the comment) where childproc used to differ.

mod common;

use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use childproc::{
    exec, exec_file_sync, exec_sync, spawn_sync, Command, Encoding, Error, ExecFailure,
    ExecSyncFailure, Signal, StdStream, Stdio, SyncFailure,
};
use common::guard;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Whether the open file description behind `fd` is `O_NONBLOCK` (from /proc's fdinfo).
fn nonblocking(fd: &impl AsFd) -> bool {
    let raw = fd.as_fd().as_raw_fd();
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{raw}")).unwrap();
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .map(|f| i64::from_str_radix(f.trim(), 8).unwrap())
        .unwrap();
    flags & i64::from(libc::O_NONBLOCK) != 0
}

#[tokio::test]
async fn a_pipe_end_handed_to_another_child_arrives_blocking() {
    // node -e "const cat = spawn('cat'); const head = spawn('head', ['-n1'],
    //   { stdio: [cat.stdout, 'pipe', 'pipe'] }); head.stdout.on('data', d => …);
    //   setTimeout(() => cat.stdin.write('line\n'), 100)" prints "line": libuv gives the
    // child blocking fds 0–2. Here head starts reading before any data is there: on a
    // non-blocking fd it would fail at once with EAGAIN.
    let mut cat = Command::new("cat").spawn().unwrap();
    let cat_out = cat.stdout.as_ref().unwrap();
    assert!(nonblocking(cat_out), "the parent's end is a tokio pipe");
    let mut head = Command::new("head")
        .arg("-n1")
        .stdin(Stdio::dup(cat_out).unwrap())
        .spawn()
        .unwrap();
    // The parent's own end is untouched.
    assert!(nonblocking(cat.stdout.as_ref().unwrap()));
    let mut stdin = cat.stdin.take().unwrap();
    // head has the fd and waits in read(2); nothing has been written yet.
    let mut out = head.stdout.take().unwrap();
    let read = tokio::spawn(async move {
        let mut s = Vec::new();
        out.read_to_end(&mut s).await.map(|_| s)
    });
    stdin.write_all(b"line\n").await.unwrap();
    let printed = guard(read).await.unwrap().unwrap();
    assert_eq!(printed, b"line\n");
    let mut err = String::new();
    head.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .await
        .unwrap();
    assert_eq!(err, "", "head must not see EAGAIN");
    assert!(guard(head.wait()).await.unwrap().success());
    drop(stdin);
    guard(cat.wait()).await.unwrap();
}

#[tokio::test]
async fn a_writer_handed_a_non_blocking_pipe_end_writes_it_all() {
    // The same for a writer: a child whose stdout is a duplicate of another child's tokio
    // stdin writes far more than a pipe holds, blocking as it goes, never EAGAIN.
    let mut cat = Command::new("cat").spawn().unwrap();
    let cat_in = cat.stdin.as_ref().unwrap();
    assert!(nonblocking(cat_in));
    let writer = Command::new("head")
        .args(["-c", "1000000", "/dev/zero"])
        .stdout(Stdio::dup(cat_in).unwrap())
        .stderr(Stdio::Inherit)
        .spawn()
        .unwrap();
    assert!(nonblocking(cat.stdin.as_ref().unwrap()));
    drop(cat.stdin.take());
    let mut got = Vec::new();
    guard(cat.stdout.take().unwrap().read_to_end(&mut got))
        .await
        .unwrap();
    assert_eq!(got.len(), 1_000_000);
    assert!(guard(writer.wait()).await.unwrap().success());
}

#[tokio::test]
async fn exec_max_buffer_cuts_decoded_text_in_characters() {
    // node -e "exec(\"printf '中文测试\\n'\", {maxBuffer: 10}, (e, o) => …)": stdout is the
    // whole "中文测试\n" (13 bytes, but Node slices the decoded chunk to 10 characters);
    // with `>&2` and maxBuffer 3, stderr is "中文测".
    let err = guard(exec("printf '中文测试\\n'").max_buffer(10))
        .await
        .unwrap_err();
    assert!(matches!(
        err.reason,
        ExecFailure::MaxBuffer(StdStream::Stdout)
    ));
    assert_eq!(err.stdout, "中文测试\n");
    let err = guard(exec("printf '中文测试\\n' >&2").max_buffer(3))
        .await
        .unwrap_err();
    assert_eq!(err.stderr, "中文测");
    // node: printf 'abcdefghij' with maxBuffer 3 keeps "616" (hex), "YWJ" (base64),
    // "扡摣晥" (utf16le) and exactly 3 bytes as a Buffer.
    for (encoding, want) in [("hex", "616"), ("base64", "YWJ"), ("utf16le", "扡摣晥")] {
        let err = guard(exec("printf 'abcdefghij'").max_buffer(3).encoding(encoding))
            .await
            .unwrap_err();
        assert_eq!(err.stdout, want, "{encoding}");
    }
    let err = guard(
        exec("printf 'abcdefghij'")
            .max_buffer(3)
            .encoding(Encoding::Buffer),
    )
    .await
    .unwrap_err();
    assert_eq!(err.stdout.as_bytes(), b"abc");
}

#[test]
fn kill_signal_takes_any_case_and_refuses_what_node_refuses() {
    // node -e "spawnSync('sleep', ['5'], {timeout: 50, killSignal: 'sigkill'}).signal" is
    // SIGKILL; killSignal 0, 500 and 'SIGNOPE' throw ERR_UNKNOWN_SIGNAL ("Unknown signal: 0").
    let r = spawn_sync("sleep", ["5"])
        .timeout(Duration::from_millis(50))
        .kill_signal("sigkill")
        .run();
    assert_eq!(r.signal, Some(Signal::SIGKILL));
    for bad in [0, 500] {
        let r = spawn_sync("true", [] as [&str; 0]).kill_signal(bad).run();
        match r.error {
            Some(SyncFailure::Spawn { message, .. }) => {
                assert_eq!(message, format!("Unknown signal: {bad}"))
            }
            other => panic!("{other:?}"),
        }
    }
    let r = spawn_sync("true", [] as [&str; 0])
        .kill_signal("SIGNOPE")
        .run();
    assert!(
        matches!(&r.error, Some(SyncFailure::Spawn { message, .. }) if message == "Unknown signal: SIGNOPE"),
        "{r:?}"
    );
}

#[tokio::test]
async fn kill_takes_names_in_any_case() {
    // node -e "spawn('sleep', ['5']).kill('sigint')" is true and ends it with SIGINT.
    let child = Command::new("sleep").arg("5").spawn().unwrap();
    assert!(child.kill("sigint".parse().unwrap()));
    let status = guard(child.wait()).await.unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGINT));
    assert_eq!(
        "SIGNOPE".parse::<Signal>().unwrap_err().to_string(),
        "Unknown signal: SIGNOPE"
    );
}

#[test]
fn ipc_is_refused_by_the_whole_sync_trio() {
    // node -e "spawnSync('true', [], {stdio: ['pipe', 'pipe', 'pipe', 'ipc']})" throws
    // ERR_IPC_SYNC_FORK "IPC cannot be used with synchronous forks"; so do execSync and
    // execFileSync. Nothing is started.
    let marker = std::env::temp_dir().join(format!("childproc-ipc-sync-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let touch = format!("touch {}", marker.display());
    let r = spawn_sync("sh", ["-c", &touch]).fd(3, Stdio::Ipc).run();
    assert_eq!(r.pid, 0);
    assert!(
        matches!(&r.error, Some(SyncFailure::Spawn { message, kind })
            if message == "IPC cannot be used with synchronous forks"
                && *kind == std::io::ErrorKind::InvalidInput),
        "{r:?}"
    );
    let err = exec_sync(&touch).fd(3, Stdio::Ipc).run().unwrap_err();
    assert_eq!(err.reason, ExecSyncFailure::Spawn);
    assert_eq!(err.to_string(), "IPC cannot be used with synchronous forks");
    let err = exec_file_sync("sh", ["-c", &touch])
        .fd(3, Stdio::Ipc)
        .run()
        .unwrap_err();
    assert_eq!(err.reason, ExecSyncFailure::Spawn);
    assert!(!marker.exists(), "a child was started");
}

#[test]
fn sync_max_buffer_keeps_the_read_that_passed_it() {
    // node -e "spawnSync('sh', ['-c', 'echo this is stdout; echo this is stderr >&2'],
    //   {maxBuffer: 1})" gives ENOBUFS with stdout "this is stdout\n" and stderr "" (the
    // pipes closed with the kill). execSync the same.
    let r = spawn_sync(
        "sh",
        [
            "-c",
            "echo this is stdout; sleep 1; echo this is stderr >&2",
        ],
    )
    .max_buffer(1)
    .run();
    assert_eq!(r.error, Some(SyncFailure::MaxBuffer(StdStream::Stdout)));
    assert_eq!(r.stdout.unwrap().to_string(), "this is stdout\n");
    assert_eq!(r.stderr.unwrap().to_string(), "");
    let err = exec_sync("echo this is stdout")
        .max_buffer(1)
        .run()
        .unwrap_err();
    assert_eq!(err.reason, ExecSyncFailure::MaxBuffer(StdStream::Stdout));
    assert_eq!(err.to_string(), "spawnSync /bin/sh ENOBUFS");
    assert_eq!(err.result.stdout.unwrap().to_string(), "this is stdout\n");
}

#[tokio::test]
async fn a_missing_shell_is_named_as_the_missing_file() {
    // node -e "execSync('echo hi', {shell: 'bad_shell'})" throws "spawnSync bad_shell
    // ENOENT" (path 'bad_shell'); spawn('echo hi', {shell: 'bad_shell'}) emits "spawn
    // bad_shell ENOENT".
    let err = exec_sync("echo hi")
        .shell_path("bad_shell")
        .run()
        .unwrap_err();
    assert_eq!(err.reason, ExecSyncFailure::Spawn);
    assert!(err.to_string().starts_with("spawn bad_shell:"), "{err}");
    let err = Command::new("echo hi")
        .shell_path("bad_shell")
        .spawn()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Spawn { program, .. } if program == "bad_shell"),
        "{err:?}"
    );
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    let err = guard(exec("echo hi").shell_path("bad_shell"))
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("spawn bad_shell:"), "{err}");
    assert_eq!(err.cmd, "echo hi");
}

#[test]
fn exec_sync_timeout_names_the_spawned_file() {
    // node -e "execSync('sleep 5', {timeout: 100})" throws "spawnSync /bin/sh ETIMEDOUT";
    // execFileSync('sleep', ['5'], {timeout: 100}) "spawnSync sleep ETIMEDOUT".
    let err = exec_sync("sleep 5")
        .timeout(Duration::from_millis(100))
        .run()
        .unwrap_err();
    assert_eq!(err.to_string(), "spawnSync /bin/sh ETIMEDOUT");
    assert_eq!(
        (err.cmd.as_str(), err.path.as_str()),
        ("sleep 5", "/bin/sh")
    );
    let err = exec_file_sync("sleep", ["5"])
        .timeout(Duration::from_millis(100))
        .run()
        .unwrap_err();
    assert_eq!(err.to_string(), "spawnSync sleep ETIMEDOUT");
}

#[tokio::test]
async fn a_script_without_a_shebang_runs_through_bin_sh() {
    // A 0755 file holding `echo from-noshebang $0`: node -e "execFileSync(path)" prints
    // "from-noshebang <path>" (execvp's ENOEXEC fallback), on both engines here.
    let dir = std::env::temp_dir().join(format!("childproc-noshebang-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("noshebang");
    std::fs::write(&script, "echo from-noshebang $0 \"$@\"\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = script.to_str().unwrap();
    let out = exec_file_sync(path, ["a b", "c"]).run().unwrap();
    assert_eq!(out.to_string(), format!("from-noshebang {path} a b c\n"));
    let out = guard(childproc::exec_file(path, ["x"])).await.unwrap();
    assert_eq!(out.stdout, format!("from-noshebang {path} x\n").as_str());
    childproc::__force_portable_engine(true);
    let portable = exec_file_sync(path, [] as [&str; 0]).run();
    childproc::__force_portable_engine(false);
    assert_eq!(
        portable.unwrap().to_string(),
        format!("from-noshebang {path}\n")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
