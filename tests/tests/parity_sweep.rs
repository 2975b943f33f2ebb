//! Node parity at the edges, the sweep: every option of docs/node-mapping.md run with edge
//! values beside Node 20 (the table "Edge values compared with Node 20" there). Each test
//! pins what Node does (the one-liner and its output are in the comment): first the
//! differences that were fixed, then edge values that already matched, then the deliberate
//! differences, so that none of them changes unnoticed.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use childproc::{
    exec, exec_file, exec_file_sync, exec_sync, fork, spawn_sync, Command, Error, ExecFailure,
    StdStream, Stdio, SyncFailure,
};
use common::{guard, stdout_string};

const NO_ARGS: [&str; 0] = [];

#[tokio::test]
async fn exec_and_exec_sync_keep_bin_sh_when_shell_is_false() {
    // node -e "exec('echo hi', {shell: false}, (e, o) => console.log(o))" prints "hi":
    // normalizeExecArgs turns every non-string shell into true. So does execSync.
    let out = guard(exec("echo hi").shell(false)).await.unwrap();
    assert_eq!(out.stdout, "hi\n");
    let out = exec_sync("echo hi").shell(false).run().unwrap();
    assert_eq!(out.as_bytes(), b"hi\n");
    // execFile and spawn keep their meaning: shell(false) is no shell.
    let err = guard(exec_file("echo hi", NO_ARGS).shell(true).shell(false))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

#[tokio::test]
async fn an_empty_shell_path_means_no_shell() {
    // node -e "execFileSync('echo', ['hi'], {shell: ''})" prints "hi" ('' is falsy: no
    // shell); exec('echo hi', {shell: ''}) fails "spawn echo hi ENOENT", path 'echo hi';
    // spawnSync('echo hi', [], {shell: ''}) fails "spawnSync echo hi ENOENT".
    let out = exec_file_sync("echo", ["hi"]).shell_path("").run().unwrap();
    assert_eq!(out.as_bytes(), b"hi\n");
    let err = guard(exec("echo hi").shell_path("")).await.unwrap_err();
    assert!(
        matches!(&err.reason, ExecFailure::Spawn(Error::Spawn { program, .. }) if program == "echo hi"),
        "{err:?}"
    );
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    let r = spawn_sync("echo hi", NO_ARGS).shell_path("").run();
    assert!(
        matches!(&r.error, Some(SyncFailure::Spawn { message, kind })
            if message.starts_with("spawn echo hi:") && *kind == std::io::ErrorKind::NotFound),
        "{r:?}"
    );
    let mut child = Command::new("echo")
        .arg("hi")
        .shell(true)
        .shell_path("")
        .spawn()
        .unwrap();
    assert_eq!(stdout_string(&mut child).await, "hi\n");
    guard(child.wait()).await.unwrap();
}

#[tokio::test]
async fn sync_max_buffer_zero_is_no_limit_but_execs_allows_nothing() {
    // node -e "spawnSync('echo', ['a'], {maxBuffer: 0})" has no error and stdout "a\n";
    // execSync('head -c 2000000 /dev/zero', {maxBuffer: 0}) returns all 2000000 bytes. But
    // exec('echo a', {maxBuffer: 0}) fails "stdout maxBuffer length exceeded", stdout "".
    let r = spawn_sync("echo", ["a"]).max_buffer(0).run();
    assert_eq!((r.error, r.status), (None, Some(0)));
    assert_eq!(r.stdout.unwrap().as_bytes(), b"a\n");
    let out = exec_sync("head -c 2000000 /dev/zero")
        .max_buffer(0)
        .run()
        .unwrap();
    assert_eq!(out.len(), 2_000_000);
    let err = guard(exec("echo a").max_buffer(0)).await.unwrap_err();
    assert!(matches!(
        err.reason,
        ExecFailure::MaxBuffer(StdStream::Stdout)
    ));
    assert_eq!(err.stdout, "");
}

#[tokio::test]
async fn fork_with_an_empty_exec_path_runs_node() {
    // node -e "fork('-e', ['process.exit(7)'], {execPath: ''}).on('exit', c => …)" exits 7:
    // options.execPath || process.execPath.
    let child = fork("-e", ["process.exit(7)"])
        .exec_path("")
        .spawn()
        .unwrap();
    let status = guard(child.wait()).await.unwrap();
    assert_eq!(status.code(), Some(7));
}

#[test]
fn edge_values_that_already_match_node() {
    // node -e "spawnSync('myprog', [], {env: {PATH: ''}, cwd: dir})" finds ./myprog (an
    // empty PATH entry is the cwd), and PATH 'bin' with cwd its parent finds bin/myprog.
    let dir = std::env::temp_dir().join(format!("childproc-sweep-{}", std::process::id()));
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let prog = bin.join("myprog");
    std::fs::write(&prog, "#!/bin/sh\necho mine\n").unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (path, cwd) in [("", &bin), (":", &bin), ("bin", &dir)] {
        let r = spawn_sync("myprog", NO_ARGS)
            .env_clear()
            .env("PATH", path)
            .current_dir(cwd)
            .run();
        assert_eq!(r.stdout.unwrap().as_bytes(), b"mine\n", "PATH {path:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
    // argv0 '' reaches the child empty; argv0 with shell: true is the shell's $0.
    let r = spawn_sync("sh", ["-c", "echo \"[$0]\""]).argv0("").run();
    assert_eq!(r.stdout.unwrap().as_bytes(), b"[]\n");
    let r = spawn_sync("echo \"[$0]\"", NO_ARGS)
        .shell(true)
        .argv0("custom")
        .run();
    assert_eq!(r.stdout.unwrap().as_bytes(), b"[custom]\n");
    // env {A: ''} gives "A=\n"; env {path: ..} (wrong case) is not PATH: /usr/bin:/bin.
    let r = spawn_sync("env", NO_ARGS)
        .env_clear()
        .env("A", "")
        .env("path", "/nonexistent")
        .run();
    assert_eq!(r.stdout.unwrap().as_bytes(), b"A=\npath=/nonexistent\n");
    // Empty arguments are arguments: spawnSync('sh', ['-c', 'echo $#', 'x', '', '']) is 2.
    let r = spawn_sync("sh", ["-c", "echo $#", "x", "", ""]).run();
    assert_eq!(r.stdout.unwrap().as_bytes(), b"2\n");
    // A 3 MB argument: E2BIG, naming the program ("spawnSync true E2BIG").
    let r = spawn_sync("true", ["x".repeat(3_000_000)]).run();
    assert!(
        matches!(&r.error, Some(SyncFailure::Spawn { message, kind })
            if message.starts_with("spawn true:") && *kind == std::io::ErrorKind::ArgumentListTooLong),
        "{r:?}"
    );
    // A directory as the command: EACCES; a command with a space: ENOENT naming it whole.
    let r = spawn_sync("/tmp", NO_ARGS).run();
    assert!(
        matches!(&r.error, Some(SyncFailure::Spawn { kind, .. }) if *kind == std::io::ErrorKind::PermissionDenied)
    );
    let r = spawn_sync("ls -l", NO_ARGS).run();
    assert!(
        matches!(&r.error, Some(SyncFailure::Spawn { message, .. }) if message.starts_with("spawn ls -l:"))
    );
    // input with stdin 'ignore' or 'inherit' is not written (node: cat prints ""): the
    // child's stdin is /dev/null, or the parent's own stdin (not read here: it may be a tty).
    let r = spawn_sync("cat", NO_ARGS)
        .input("x")
        .fd(0, Stdio::Ignore)
        .run();
    assert_eq!(r.stdout.unwrap().as_bytes(), b"");
    let ours = std::fs::read_link("/proc/self/fd/0").ok();
    let r = spawn_sync("readlink", ["/proc/self/fd/0"])
        .input("x")
        .fd(0, Stdio::Inherit)
        .run();
    let theirs = r.stdout.unwrap().to_string();
    if let Some(ours) = ours {
        assert_eq!(
            theirs.trim_end(),
            ours.to_string_lossy(),
            "stdin is the parent's"
        );
    }
    // Encoding names in any case; 'latin-1', 'klingon', '' are not encodings: a Buffer.
    for (name, want) in [
        ("UTF8", Some("hé")),
        ("Hex", Some("68c3a9")),
        ("UCS-2", Some("써")),
        ("binary", Some("hÃ©")),
        ("ASCII", Some("hC)")),
        ("Base64", Some("aMOp")),
        ("latin-1", None),
        ("", None),
    ] {
        let out = exec_file_sync("printf", ["h\\303\\251"])
            .encoding(name)
            .run()
            .unwrap();
        assert_eq!(out.as_str(), want, "{name:?}");
    }
}

#[tokio::test]
async fn stdio_arrays_shorter_or_with_gaps_are_filled_as_node_fills_them() {
    // node -e "spawn('sh', ['-c', 'ls /proc/$$/fd'], {stdio: ['pipe', 'pipe', 'pipe', null,
    // 'pipe']})": fds 0, 1, 2 and 4 (null above 2 is closed); {stdio: ['pipe']}: 0, 1, 2
    // (missing entries are 'pipe' below 3).
    let mut child = Command::new(common::FIXTURE)
        .arg("fds")
        .stdio([Stdio::Pipe])
        .spawn()
        .unwrap();
    let out = stdout_string(&mut child).await;
    guard(child.wait()).await.unwrap();
    assert_eq!(out.trim(), "0 1 2");
    let mut child = Command::new(common::FIXTURE)
        .arg("fds")
        .stdio([
            Stdio::Pipe,
            Stdio::Pipe,
            Stdio::Pipe,
            Stdio::Default,
            Stdio::Pipe,
        ])
        .spawn()
        .unwrap();
    let out = stdout_string(&mut child).await;
    guard(child.wait()).await.unwrap();
    assert_eq!(out.trim(), "0 1 2 4");
}

#[tokio::test]
async fn deliberate_differences_are_clear_errors_or_closed_fds() {
    // node -e "spawn('sh', [..], {stdio: ['pipe', 'pipe', 'pipe', 'inherit']})" hands the
    // child Node's own fd 3 (libuv's epoll fd, "anon_inode:[eventpoll]"); here 'inherit'
    // above 2 is closed, as Node's manual says ('ignore').
    let mut child = Command::new(common::FIXTURE)
        .arg("fds")
        .stdio([Stdio::Pipe, Stdio::Pipe, Stdio::Pipe, Stdio::Inherit])
        .spawn()
        .unwrap();
    let out = stdout_string(&mut child).await;
    guard(child.wait()).await.unwrap();
    assert_eq!(out.trim(), "0 1 2");
    // stdio: [-1, ..] is a pipe in Node (a negative number is no fd); here an error naming it.
    let err = Command::new("true")
        .stdin(Stdio::parent_fd(-1))
        .spawn()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Stdio(m) if m.contains("parent fd -1")),
        "{err}"
    );
    // env {'A=B': 'c'} and {'': 'c'} reach Node's child as "A=B=c" and "=c"; here they are
    // refused, naming the key (a key with '=' cannot be read back).
    for key in ["A=B", ""] {
        let err = Command::new("true").env(key, "c").spawn().unwrap_err();
        assert!(
            matches!(&err, Error::InvalidOption { option: "env", .. }),
            "{err}"
        );
    }
    // cwd '' / a file: Node says "spawn pwd ENOENT" / "ENOTDIR"; here the cwd is named.
    let err = Command::new("pwd").current_dir("").spawn().unwrap_err();
    assert!(matches!(&err, Error::Cwd { .. }), "{err}");
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    // uid 4294967295 (-1 as uid_t): Node's -1 is EINVAL at spawn; here refused before.
    let r = spawn_sync("true", NO_ARGS).uid(u32::MAX).run();
    assert!(
        matches!(&r.error, Some(SyncFailure::Spawn { kind, .. }) if *kind == std::io::ErrorKind::InvalidInput)
    );
    // exec's input: Node's exec has none (stdin stays open: exec('cat') waits forever);
    // here it is written and stdin closed.
    let out = guard(exec("cat").input("fed")).await.unwrap();
    assert_eq!(out.stdout, "fed");
    // timeout 2**31 ms: Node's exec and spawn fire after 1 ms (TimeoutOverflowWarning) and
    // kill the child; spawnSync honours it. Here every runner honours it.
    let out = guard(exec("echo done").timeout(Duration::from_millis(1 << 31)))
        .await
        .unwrap();
    assert_eq!(out.stdout, "done\n");
    // stdio 'pipe' for fds 0-2: Node (libuv) makes socketpairs; here they are pipes, as a
    // shell's and std's are (a child testing `[ -p /dev/stdout ]` sees a pipe).
    let out = guard(exec("readlink /proc/self/fd/1")).await.unwrap();
    assert!(
        out.stdout.to_string().starts_with("pipe:["),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn a_huge_fd_number_is_an_error_naming_it_not_an_abort() {
    // Node has no way to ask for child fd 2**31-1: a sparse stdio array (`a[5000000] =
    // 'pipe'`) loses its holes (the entry becomes fd 3). Here `.fd(i32::MAX, ..)` used to
    // abort the whole process (a 32 GiB allocation, then an overflow in the fd plan); now
    // fds from 2^20 up are refused before anything is created, naming the fd.
    for fd in [i32::MAX, 5_000_000, 1 << 20] {
        let err = Command::new("true")
            .fd(fd, Stdio::Pipe)
            .spawn()
            .unwrap_err();
        assert!(
            matches!(&err, Error::Stdio(m) if m.contains(&format!("fd {fd} is above"))),
            "{err}"
        );
        let r = spawn_sync("true", NO_ARGS).fd(fd, Stdio::Pipe).run();
        assert!(matches!(r.error, Some(SyncFailure::Spawn { .. })), "{r:?}");
    }
    // Below 2^20 the kernel decides (past RLIMIT_NOFILE: EINVAL); either way no panic.
    if let Ok(child) = Command::new("true").fd((1 << 20) - 1, Stdio::Pipe).spawn() {
        guard(child.wait()).await.unwrap();
    }
}
