//! A Rust twin of every example in Node's `child_process` manual that needs neither `exec`
//! nor IPC. Each test quotes the JavaScript it mirrors and asserts what Node prints or does.
//!
//! `wait_referenced` counts every referenced child of this test binary, so every test here
//! waits for `Close` of each child it spawns (a child left running would hold that count).

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::time::Duration;

use childproc::{CancellationToken, Command, Event, Signal, Stdio, StdioShorthand};
use futures_util::StreamExt;
mod common;
use common::{describe, guard, stdout_string, timeline, FIXTURE};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};

/// Everything a readable end delivers until EOF, chunk by chunk (Node's `'data'` handlers).
async fn data(mut r: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut all = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = r.read(&mut chunk).await.expect("read a chunk");
        if n == 0 {
            return all;
        }
        all.extend_from_slice(&chunk[..n]);
    }
}

/// A scratch path for this test process (under cargo's per-target tmp dir).
fn scratch(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("manual-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    let _ = std::fs::remove_dir_all(&p);
    p
}

/// `(state, pgrp, session)` from `/proc/<pid>/stat`, or `None` once the pid is gone.
fn proc_stat(pid: u32) -> Option<(char, u32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid pgrp session …": comm may hold spaces, so split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    Some((f[0].chars().next()?, f[2].parse().ok()?, f[3].parse().ok()?))
}

/// The pid runs (exists and is not a zombie).
fn running(pid: u32) -> bool {
    matches!(proc_stat(pid), Some((state, _, _)) if state != 'Z' && state != 'X')
}

/// What fd `fd` of `pid` (`"self"` for this process) refers to: a path, `pipe:[…]`, a tty.
fn fd_target(pid: &str, fd: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()
}

/// SIGKILLs a process this test started indirectly (a grandchild childproc has no handle for).
#[allow(unsafe_code)]
fn sigkill(pid: u32) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) takes plain integers; the pid is a grandchild this test created and
    // checked to be running just before.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Kills the grandchild if the test fails before it does, so no sleeper outlives the test.
struct KillOnDrop(Option<u32>);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            if running(pid) {
                sigkill(pid);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// child_process.spawn(): `ls -lh /usr`, and the 'close' / 'exit' example of class ChildProcess
// ---------------------------------------------------------------------------------------------

/// ```js
/// const ls = spawn('ls', ['-lh', '/usr']);
/// ls.stdout.on('data', (data) => console.log(`stdout: ${data}`));
/// ls.stderr.on('data', (data) => console.error(`stderr: ${data}`));
/// ls.on('close', (code) => console.log(`child process exited with code ${code}`));
/// ls.on('exit', (code) => console.log(`child process exited with code ${code}`));
/// ```
#[tokio::test]
async fn ls_lh_usr_prints_the_listing_then_exit_then_close_with_code_0() {
    let mut ls = Command::new("ls").args(["-lh", "/usr"]).spawn().unwrap();
    let stdout = ls.stdout.take().unwrap();
    let stderr = ls.stderr.take().unwrap();
    let (out, err) = guard(async { tokio::join!(data(stdout), data(stderr)) }).await;
    let out = String::from_utf8(out).unwrap();

    assert!(out.starts_with("total "), "{out}");
    let listed: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split(" -> ").next().unwrap().rsplit(' ').next().unwrap())
        .collect();
    for must in ["bin", "lib"] {
        assert!(listed.contains(&must), "{must} missing from {out}");
    }
    for entry in std::fs::read_dir("/usr").unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.starts_with('.') {
            assert!(listed.contains(&name.as_str()), "{name} missing from {out}");
        }
    }
    assert_eq!(String::from_utf8(err).unwrap(), "", "nothing on stderr");

    let status = guard(ls.closed()).await.unwrap();
    assert_eq!(
        format!("child process exited with code {}", status.code().unwrap()),
        "child process exited with code 0"
    );
    // 'exit' before 'close', both with code 0.
    assert_eq!(
        timeline(&ls).await,
        ["spawn", "exit code 0", "close code 0"]
    );
}

/// `subprocess.stdout`:
/// ```js
/// const subprocess = spawn('ls');
/// subprocess.stdout.on('data', (data) => console.log(`Received chunk ${data}`));
/// ```
/// (run in a directory whose listing is known).
#[tokio::test]
async fn plain_ls_stdout_chunks_are_the_listing() {
    let dir = scratch("ls-dir");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["alpha.txt", "beta.txt"] {
        std::fs::write(dir.join(f), "").unwrap();
    }
    let mut ls = Command::new("ls").current_dir(&dir).spawn().unwrap();
    let out = guard(data(ls.stdout.take().unwrap())).await;
    assert_eq!(String::from_utf8(out).unwrap(), "alpha.txt\nbeta.txt\n");
    assert_eq!(guard(ls.closed()).await.unwrap().code(), Some(0));
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// "A very elaborate way to run ps ax | grep ssh"
// ---------------------------------------------------------------------------------------------

/// A child whose command line contains "ssh", so `ps ax | grep ssh` always has a match.
fn ssh_marker() -> childproc::ChildProcess {
    Command::new(FIXTURE)
        .argv0("ssh-manual-twin-marker")
        .args(["sleep", "60000"])
        .stdio_all(StdioShorthand::Ignore)
        .spawn()
        .unwrap()
}

async fn end_marker(marker: childproc::ChildProcess) {
    assert!(marker.kill(Signal::SIGTERM));
    let status = guard(marker.closed()).await.unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGTERM));
}

/// ```js
/// const ps = spawn('ps', ['ax']);
/// const grep = spawn('grep', ['ssh']);
/// ps.stdout.on('data', (data) => { grep.stdin.write(data); });
/// ps.on('close', (code) => { if (code !== 0) console.log(…); grep.stdin.end(); });
/// grep.stdout.on('data', (data) => { console.log(data.toString()); });
/// grep.on('close', (code) => { if (code !== 0) console.log(…); });
/// ```
#[tokio::test]
async fn ps_ax_piped_into_grep_ssh_through_the_parent() {
    let marker = ssh_marker();
    let mut ps = Command::new("ps").arg("ax").spawn().unwrap();
    let mut grep = Command::new("grep").arg("ssh").spawn().unwrap();

    let mut ps_stdout = ps.stdout.take().unwrap();
    let ps_stderr = ps.stderr.take().unwrap();
    let mut grep_stdin = grep.stdin.take().unwrap();
    let grep_stdout = grep.stdout.take().unwrap();
    let grep_stderr = grep.stderr.take().unwrap();

    let ps_ref = &ps;
    let pump = async move {
        // ps.stdout.on('data', data => grep.stdin.write(data)), chunk by chunk.
        let mut seen = Vec::new();
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            let n = ps_stdout.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            grep_stdin.write_all(&chunk[..n]).await.unwrap();
            seen.extend_from_slice(&chunk[..n]);
        }
        // ps.on('close', …) → grep.stdin.end()
        let ps_status = ps_ref.closed().await.unwrap();
        drop(grep_stdin);
        (seen, ps_status)
    };
    let ((ps_out, ps_status), grep_out, ps_err, grep_err) =
        guard(async { tokio::join!(pump, data(grep_stdout), data(ps_stderr), data(grep_stderr)) })
            .await;
    let grep_status = guard(grep.closed()).await.unwrap();

    // What grep should print, computed from what ps printed.
    let expected: Vec<u8> = ps_out
        .split_inclusive(|&b| b == b'\n')
        .filter(|line| line.windows(3).any(|w| w == b"ssh"))
        .flatten()
        .copied()
        .collect();
    let grep_out = String::from_utf8(grep_out).unwrap();
    assert_eq!(grep_out, String::from_utf8(expected.clone()).unwrap());
    assert!(grep_out.lines().all(|l| l.contains("ssh")), "{grep_out}");
    assert!(
        grep_out.contains("ssh-manual-twin-marker sleep 60000"),
        "{grep_out}"
    );
    assert_eq!(ps_status.code(), Some(0));
    // grep exits 1 when no line matched, 0 otherwise.
    let want = if expected.is_empty() { 1 } else { 0 };
    assert_eq!(grep_status.code(), Some(want));
    assert_eq!(String::from_utf8(ps_err).unwrap(), "");
    assert_eq!(String::from_utf8(grep_err).unwrap(), "");
    end_marker(marker).await;
}

/// The same pipeline at the OS level: ps's stdout *is* grep's stdin, no bytes pass through
/// the parent (Node: `spawn('grep', ['ssh'], { stdio: [ps.stdout, 'pipe', 'pipe'] })`).
#[tokio::test]
async fn ps_ax_piped_into_grep_ssh_at_the_os_level() {
    let marker = ssh_marker();
    let mut ps = Command::new("ps").arg("ax").spawn().unwrap();
    let mut grep = Command::new("grep")
        .arg("ssh")
        .stdin(Stdio::from(ps.stdout.take().unwrap()))
        .spawn()
        .unwrap();
    assert!(grep.stdin.is_none(), "stdin is not a pipe to the parent");

    let grep_out = stdout_string(&mut grep).await;
    assert!(!grep_out.is_empty());
    assert!(grep_out.lines().all(|l| l.contains("ssh")), "{grep_out}");
    assert!(
        grep_out.contains("ssh-manual-twin-marker sleep 60000"),
        "{grep_out}"
    );
    assert_eq!(guard(grep.closed()).await.unwrap().code(), Some(0));
    assert_eq!(guard(ps.closed()).await.unwrap().code(), Some(0));
    end_marker(marker).await;
}

// ---------------------------------------------------------------------------------------------
// "Example of checking for failed spawn"
// ---------------------------------------------------------------------------------------------

/// ```js
/// const subprocess = spawn('bad_command');
/// subprocess.on('error', (err) => console.error('Failed to start subprocess.'));
/// ```
/// Node: `Error: spawn bad_command ENOENT`, code `'ENOENT'`, and no `'spawn'` event.
#[tokio::test]
async fn a_failed_spawn_is_an_error_naming_the_command() {
    let err = Command::new("bad_command").spawn().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    let msg = err.to_string();
    assert!(msg.starts_with("spawn bad_command"), "{msg}");
    match err {
        childproc::Error::Spawn { program, .. } => assert_eq!(program, "bad_command"),
        other => panic!("expected Error::Spawn, got {other:?}"),
    }
    // The same through the free function.
    let err = childproc::spawn("bad_command", std::iter::empty::<&str>()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

// ---------------------------------------------------------------------------------------------
// options.detached, subprocess.unref(), subprocess.ref()
// ---------------------------------------------------------------------------------------------

/// ```js
/// const subprocess = spawn(process.argv[0], ['child_program.js'], {
///   detached: true,
///   stdio: 'ignore',
/// });
/// subprocess.unref();
/// subprocess.ref();
/// ```
#[tokio::test]
async fn detached_ignored_and_unrefed_child_does_not_hold_the_parent() {
    let child = Command::new(FIXTURE)
        .args(["sleep", "600000"])
        .detached(true)
        .stdio_all(StdioShorthand::Ignore)
        .spawn()
        .unwrap();
    assert!(child.stdin.is_none() && child.stdout.is_none() && child.stderr.is_none());
    assert!(child.is_referenced());
    child.unref();
    assert!(!child.is_referenced());

    // The parent's "event loop" no longer waits for it (other tests' children here close
    // on their own, so this returns) — while the child still runs.
    guard(childproc::wait_referenced()).await;
    assert_eq!(child.try_status(), None);
    let pid = child.pid();
    assert!(running(pid));
    // setsid(2): the leader of a new session and process group.
    let (_, pgrp, session) = proc_stat(pid).unwrap();
    assert_eq!((pgrp, session), (pid, pid));

    // ref() restores the count.
    child.ref_();
    assert!(child.is_referenced());

    assert!(child.kill(Signal::SIGTERM));
    let status = guard(child.closed()).await.unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGTERM));
    assert!(!child.is_referenced(), "a closed child no longer counts");
    guard(childproc::wait_referenced()).await;
}

/// ```js
/// const out = fs.openSync('./out.log', 'a');
/// const err = fs.openSync('./out.log', 'a');
/// const subprocess = spawn('prg', [], { detached: true, stdio: [ 'ignore', out, err ] });
/// subprocess.unref();
/// ```
#[tokio::test]
async fn detached_child_writes_stdout_and_stderr_to_a_log_file() {
    let log = scratch("out.log");
    std::fs::write(&log, "earlier line\n").unwrap();
    let open = || {
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log)
            .unwrap()
    };
    let (out, err) = (open(), open());

    let child = Command::new(FIXTURE)
        .args(["out-err", "to the log", "errors too"])
        .detached(true)
        .stdio([Stdio::Ignore, Stdio::from(out), Stdio::from(err)])
        .spawn()
        .unwrap();
    child.unref();
    assert!(child.stdin.is_none() && child.stdout.is_none() && child.stderr.is_none());
    // Still observable though unreferenced.
    assert_eq!(guard(child.closed()).await.unwrap().code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "earlier line\nto the log\nerrors too\n"
    );
    std::fs::remove_file(&log).unwrap();
}

// ---------------------------------------------------------------------------------------------
// options.stdio
// ---------------------------------------------------------------------------------------------

/// ```js
/// // Child will use parent's stdios.
/// spawn('prg', [], { stdio: 'inherit' });
/// ```
#[tokio::test]
async fn stdio_inherit_gives_the_child_the_parents_stdio() {
    let child = Command::new(FIXTURE)
        .args(["sleep", "600000"])
        .stdio_all(StdioShorthand::Inherit)
        .spawn()
        .unwrap();
    assert!(child.stdin.is_none() && child.stdout.is_none() && child.stderr.is_none());
    let pid = child.pid().to_string();
    for fd in 0..3 {
        let parent = fd_target("self", fd).unwrap_or_else(|| "/dev/null".into());
        assert_eq!(fd_target(&pid, fd), Some(parent), "fd {fd}");
    }
    assert!(child.kill(Signal::SIGTERM));
    assert_eq!(
        timeline(&child).await,
        ["spawn", "exit signal SIGTERM", "close signal SIGTERM"]
    );
}

/// ```js
/// // Spawn child sharing only stderr.
/// spawn('prg', [], { stdio: ['pipe', 'pipe', process.stderr] });
/// ```
#[tokio::test]
async fn stdio_sharing_only_stderr() {
    let mut child = Command::new(FIXTURE)
        .arg("cat")
        .stdio([
            Stdio::Pipe,
            Stdio::Pipe,
            Stdio::dup(&std::io::stderr()).unwrap(),
        ])
        .spawn()
        .unwrap();
    assert!(child.stdin.is_some() && child.stdout.is_some());
    assert!(child.stderr.is_none());
    // While cat waits for input: its fd 2 is the parent's stderr, its fd 1 is not stdout.
    let pid = child.pid().to_string();
    assert_eq!(fd_target(&pid, 2), fd_target("self", 2));
    assert_ne!(fd_target(&pid, 1), fd_target("self", 1));

    let mut stdin = child.stdin.take().unwrap();
    guard(stdin.write_all(b"piped both ways")).await.unwrap();
    drop(stdin);
    assert_eq!(stdout_string(&mut child).await, "piped both ways");
    assert_eq!(guard(child.closed()).await.unwrap().code(), Some(0));
}

/// ```js
/// // Open an extra fd=4, to interact with programs presenting a
/// // startd-style interface.
/// spawn('prg', [], { stdio: ['pipe', null, null, null, 'pipe'] });
/// ```
/// The child writes to its fd 4; the parent reads `subprocess.stdio[4]`.
#[tokio::test]
async fn extra_fd_4_carries_the_childs_notification_to_the_parent() {
    let mut child = Command::new(FIXTURE)
        .args(["write-fd", "4", "READY=1\n"])
        .stdio([
            Stdio::Pipe,
            Stdio::Default,
            Stdio::Default,
            Stdio::Default,
            Stdio::Pipe,
        ])
        .spawn()
        .unwrap();
    // null at 1 and 2 are pipes; null at 3 is 'ignore' (closed), so stdio[3] is null.
    assert!(child.stdin.is_some() && child.stdout.is_some() && child.stderr.is_some());
    assert!(child.stdio(3).is_none());
    let fd4 = child.stdio(4).expect("stdio[4] is a pipe");
    let got = guard(data(fd4)).await;
    assert_eq!(got, b"READY=1\n");
    assert_eq!(guard(child.closed()).await.unwrap().code(), Some(0));
}

/// The same fd 4, the other way: the parent writes `subprocess.stdio[4]`, the child reads it.
#[tokio::test]
async fn extra_fd_4_carries_the_parents_bytes_to_the_child() {
    let mut child = Command::new(FIXTURE)
        .args(["read-fd", "4"])
        .stdio([
            Stdio::Pipe,
            Stdio::Default,
            Stdio::Default,
            Stdio::Default,
            Stdio::Pipe,
        ])
        .spawn()
        .unwrap();
    let fd4 = child.stdio(4).expect("stdio[4] is a pipe");
    guard(fd4.write_all(b"WATCHDOG=1\n")).await.unwrap();
    guard(fd4.shutdown()).await.unwrap();
    assert_eq!(stdout_string(&mut child).await, "WATCHDOG=1\n");
    assert_eq!(guard(child.closed()).await.unwrap().code(), Some(0));
}

/// `subprocess.stdio`:
/// ```js
/// const subprocess = child_process.spawn('ls', {
///   stdio: [
///     0, // Use parent's stdin for child.
///     'pipe', // Pipe child's stdout to parent.
///     fs.openSync('err.out', 'w'), // Direct child's stderr to a file.
///   ],
/// });
/// assert.strictEqual(subprocess.stdio[0], null);
/// assert(subprocess.stdout);
/// assert.strictEqual(subprocess.stdio[2], null);
/// ```
#[tokio::test]
async fn stdio_array_with_parent_stdin_a_pipe_and_a_file_for_stderr() {
    let err_out = scratch("err.out");
    let file = std::fs::File::create(&err_out).unwrap();
    let mut child = Command::new(FIXTURE)
        .args(["out-err", "listing", "complaint"])
        // `0` and 'inherit' are the same thing in the first three positions.
        .stdio([Stdio::Inherit, Stdio::Pipe, Stdio::from(file)])
        .spawn()
        .unwrap();
    assert!(child.stdin.is_none(), "stdio[0] is null");
    assert!(child.stdout.is_some(), "stdio[1] is the stdout pipe");
    assert!(child.stderr.is_none(), "stdio[2] is null");
    assert_eq!(stdout_string(&mut child).await, "listing\n");
    assert_eq!(guard(child.closed()).await.unwrap().code(), Some(0));
    assert_eq!(std::fs::read_to_string(&err_out).unwrap(), "complaint\n");
    std::fs::remove_file(&err_out).unwrap();
}

// ---------------------------------------------------------------------------------------------
// subprocess.pid, subprocess.kill()
// ---------------------------------------------------------------------------------------------

/// ```js
/// const grep = spawn('grep', ['ssh']);
/// console.log(`Spawned child pid: ${grep.pid}`);
/// grep.stdin.end();
/// ```
#[tokio::test]
async fn grep_pid_is_the_running_grep_and_ending_stdin_ends_it() {
    let mut grep = Command::new("grep").arg("ssh").spawn().unwrap();
    let pid = grep.pid();
    assert!(pid > 0);
    assert_eq!(
        format!("Spawned child pid: {}", grep.pid()),
        format!("Spawned child pid: {pid}")
    );
    // The pid is grep's, while grep waits for input. (`exe`, not `comm`: the kernel lets the
    // parent go on at the point of no return of execve, and sets `comm` a moment later.)
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(exe.file_name().unwrap(), "grep", "{}", exe.display());
    drop(grep.stdin.take()); // grep.stdin.end()
                             // No input, so no line matched: grep exits 1.
    assert_eq!(
        timeline(&grep).await,
        ["spawn", "exit code 1", "close code 1"]
    );
}

/// ```js
/// const grep = spawn('grep', ['ssh']);
/// grep.on('close', (code, signal) => {
///   console.log(`child process terminated due to receipt of signal ${signal}`);
/// });
/// // Send SIGHUP to process.
/// grep.kill('SIGHUP');
/// ```
#[tokio::test]
async fn grep_kill_sighup_terminates_it_with_sighup() {
    let grep = Command::new("grep").arg("ssh").spawn().unwrap();
    let pid = grep.pid();
    assert!(pid > 0, "Spawned child pid: {pid}");
    assert!(grep.kill(Signal::SIGHUP));
    assert!(grep.killed());
    let status = guard(grep.closed()).await.unwrap();
    assert_eq!(status.code(), None);
    assert_eq!(
        format!(
            "child process terminated due to receipt of signal {}",
            status.signal().unwrap()
        ),
        "child process terminated due to receipt of signal SIGHUP"
    );
    assert_eq!(grep.signal_code(), Some(Signal::SIGHUP));
    assert_eq!(grep.exit_code(), None);
    assert_eq!(
        timeline(&grep).await,
        ["spawn", "exit signal SIGHUP", "close signal SIGHUP"]
    );
}

/// The manual: "On Linux, child processes of child processes will not be terminated when
/// attempting to kill their parent."
/// ```js
/// const subprocess = spawn('sh', ['-c', `node -e "setInterval(…, 500);"`],
///   { stdio: ['inherit', 'inherit', 'inherit'] });
/// setTimeout(() => {
///   subprocess.kill(); // Does not terminate the Node.js process in the shell.
/// }, 2000);
/// ```
/// Here stdout is a pipe so the shell can tell us the grandchild's pid, which also shows
/// that `Close` waits for the grandchild: it holds the inherited stdout open.
///
/// Today only the grandchild's own death (we SIGKILL it by pid) lets `Close` arrive; the
/// tree-kill issue will make the whole tree killable with one call.
#[tokio::test]
async fn killing_sh_leaves_its_grandchild_running_and_close_waits_for_it() {
    let mut sh = Command::new("sh")
        .args(["-c", r#""$0" sleep 30000 & echo $!; wait"#, FIXTURE])
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(sh.stdout.take().unwrap());
    let mut line = String::new();
    guard(stdout.read_line(&mut line)).await.unwrap();
    let grandchild: u32 = line.trim().parse().unwrap();
    let mut cleanup = KillOnDrop(Some(grandchild));
    assert!(running(grandchild));

    assert!(sh.kill(Signal::SIGTERM)); // subprocess.kill()
    let status = guard(sh.wait()).await.unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGTERM), "'exit' is reported");
    assert_eq!(sh.signal_code(), Some(Signal::SIGTERM));
    assert!(running(grandchild), "the grandchild survives kill()");

    // 'close' does not come while the grandchild holds sh's stdout (one bounded check).
    let pending = tokio::time::timeout(Duration::from_millis(300), sh.closed()).await;
    assert!(pending.is_err(), "close arrived while the grandchild runs");
    let mut events = sh.events();
    let first: Vec<String> = guard((&mut events).take(2).collect::<Vec<_>>())
        .await
        .iter()
        .map(describe)
        .collect();
    assert_eq!(first, ["spawn", "exit signal SIGTERM"]);

    // Kill the grandchild ourselves: now the stdio closes and 'close' arrives.
    sigkill(grandchild);
    cleanup.0 = None;
    let status = guard(sh.closed()).await.unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGTERM));
    let rest: Vec<String> = guard(events.collect::<Vec<_>>())
        .await
        .iter()
        .map(describe)
        .collect();
    assert_eq!(rest, ["close signal SIGTERM"]);
    // Nothing more was written to the pipe.
    let mut tail = String::new();
    guard(stdout.read_to_string(&mut tail)).await.unwrap();
    assert_eq!(tail, "");
}

// ---------------------------------------------------------------------------------------------
// options.signal (AbortController)
// ---------------------------------------------------------------------------------------------

/// The events of a child until Close, with the abort error checked and named `abort`.
async fn abort_timeline(child: &childproc::ChildProcess) -> Vec<String> {
    let events: Vec<Event> = guard(child.events().collect()).await;
    events
        .iter()
        .map(|e| match e {
            Event::Error(err) if err.is_abort() => "abort".to_owned(),
            other => describe(other),
        })
        .collect()
}

/// ```js
/// const controller = new AbortController();
/// const { signal } = controller;
/// const grep = spawn('grep', ['ssh'], { signal });
/// grep.on('error', (err) => {
///   // This will be called with err being an AbortError if the controller aborts
/// });
/// controller.abort(); // Stops the child process
/// ```
/// In Node the synchronous `abort()` even emits `'error'` before the next-tick `'spawn'`;
/// childproc keeps the documented rule that `Spawn` comes before all other events.
#[tokio::test]
async fn aborting_grep_emits_an_abort_error_then_exit_sigterm() {
    let token = CancellationToken::new();
    let grep = Command::new("grep")
        .arg("ssh")
        .abort_signal(token.clone())
        .spawn()
        .unwrap();
    token.cancel();
    assert_eq!(
        abort_timeline(&grep).await,
        [
            "spawn",
            "abort",
            "exit signal SIGTERM",
            "close signal SIGTERM"
        ]
    );
    assert!(grep.killed());
    assert_eq!(grep.signal_code(), Some(Signal::SIGTERM));
}

/// An `AbortSignal` that is already aborted: Node spawns, then aborts on the next tick.
#[tokio::test]
async fn an_already_aborted_signal_kills_the_child_right_after_spawn() {
    let token = CancellationToken::new();
    token.cancel();
    let grep = Command::new("grep")
        .arg("ssh")
        .abort_signal(token)
        .spawn()
        .unwrap();
    assert!(grep.pid() > 0);
    assert_eq!(
        abort_timeline(&grep).await,
        [
            "spawn",
            "abort",
            "exit signal SIGTERM",
            "close signal SIGTERM"
        ]
    );
    assert!(grep.killed());
}
