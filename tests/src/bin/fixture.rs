//! The fixture child for childproc's tests: one small binary, many roles (`fixture <role> …`).
//! Each role prints what a test asserts on.

#![allow(clippy::print_stdout, unsafe_code)]

use std::io::{Read, Write};
use std::time::Duration;

/// Children with a known cost.
#[path = "fixture/cost.rs"]
mod cost;
/// The pool worker roles with several tasks in flight or a quick death.
#[path = "fixture/pool_roles.rs"]
mod pool_roles;
/// A stand-in for `ssh host cmd`.
#[path = "fixture/relay.rs"]
mod relay;
/// What the child sees of its terminal.
#[path = "fixture/tty.rs"]
mod tty;

fn main() {
    same_engine_as_the_test();
    let args: Vec<String> = std::env::args().collect();
    let role = args.get(1).map(String::as_str).unwrap_or("");
    let rest = &args[2.min(args.len())..];
    match role {
        "fds" => println!("{}", open_fds().join(" ")),
        "relay" => relay::relay(rest),
        "burn" => cost::burn(rest[0].parse().unwrap()),
        "touch" => cost::touch(rest[0].parse().unwrap()),
        "tty" => tty::tty(),
        "argv" => std::env::args_os().for_each(|a| println!("{}", a.to_string_lossy())),
        "env" => {
            for k in rest {
                match std::env::var_os(k) {
                    Some(v) => println!("{k}={}", v.to_string_lossy()),
                    None => println!("{k} unset"),
                }
            }
        }
        "env-count" => println!("{}", std::env::vars_os().count()),
        "cwd" => println!("{}", std::env::current_dir().unwrap().display()),
        "ids" => {
            // SAFETY: plain getters.
            let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
            // SAFETY: a zero-length query returns the group count.
            let ngroups = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
            println!("uid={uid} gid={gid} groups={ngroups}");
        }
        "sid" => {
            // SAFETY: plain getters.
            let (pid, sid, pgid) = unsafe { (libc::getpid(), libc::getsid(0), libc::getpgid(0)) };
            println!("pid={pid} sid={sid} pgid={pgid}");
        }
        "signals" => {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            for line in status
                .lines()
                .filter(|l| l.starts_with("SigBlk") || l.starts_with("SigIgn"))
            {
                println!("{line}");
            }
        }
        "cat" => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).unwrap();
            std::io::stdout().write_all(&buf).unwrap();
        }
        "out-err" => {
            println!("{}", rest.first().map_or("out", String::as_str));
            eprintln!("{}", rest.get(1).map_or("err", String::as_str));
        }
        "write-fd" => {
            let fd: i32 = rest[0].parse().unwrap();
            let msg = rest[1].as_bytes();
            // SAFETY: writes a live buffer to an fd the test configured.
            let n = unsafe { libc::write(fd, msg.as_ptr().cast(), msg.len()) };
            assert_eq!(
                n,
                msg.len() as isize,
                "write to fd {fd}: {}",
                std::io::Error::last_os_error()
            );
        }
        "read-fd" => {
            let fd: i32 = rest[0].parse().unwrap();
            let mut buf = [0u8; 4096];
            let mut out = Vec::new();
            loop {
                // SAFETY: reads into a live buffer from an fd the test configured.
                let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                if n <= 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n as usize]);
            }
            std::io::stdout().write_all(&out).unwrap();
        }
        "spew" => {
            spew_x(rest[0].parse().unwrap());
        }
        "spew-both" => {
            // N bytes to stdout and N to stderr, interleaved in 64 KiB chunks.
            let n: usize = rest[0].parse().unwrap();
            let (out_chunk, err_chunk) = (vec![b'o'; 64 * 1024], vec![b'e'; 64 * 1024]);
            let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
            let mut left = n;
            while left > 0 {
                let k = left.min(out_chunk.len());
                out.write_all(&out_chunk[..k]).unwrap();
                err.write_all(&err_chunk[..k]).unwrap();
                left -= k;
            }
        }
        "split-euro" => {
            // "€" written in two writes with a pause between: a character split across reads.
            let mut out = std::io::stdout().lock();
            out.write_all(&[0xe2]).unwrap();
            out.flush().unwrap();
            std::thread::sleep(Duration::from_millis(50));
            out.write_all(&[0x82, 0xac]).unwrap();
        }
        "count" => {
            // The number of bytes on stdin, read to EOF in 64 KiB chunks (nothing kept).
            let (mut buf, mut total) = (vec![0u8; 64 * 1024], 0u64);
            let mut stdin = std::io::stdin().lock();
            loop {
                match stdin.read(&mut buf).unwrap() {
                    0 => break,
                    n => total += n as u64,
                }
            }
            println!("{total}");
        }
        "wait-then-spew" => {
            // Waits for EOF on stdin (the test's go), then writes N bytes of 'x' to stdout.
            std::io::stdin().read_to_end(&mut Vec::new()).unwrap();
            spew_x(rest[0].parse().unwrap());
        }
        "cat-then-fds" => {
            // Copies stdin to stdout, then prints this process's open fds.
            std::io::copy(&mut std::io::stdin().lock(), &mut std::io::stdout().lock()).unwrap();
            println!("{}", open_fds().join(" "));
        }
        "write-acked" => write_acked(rest),
        "alternate" => {
            // `out i` to stdout and `err i` to stderr, alternately, each written at once.
            let n: usize = rest[0].parse().unwrap();
            let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
            for i in 0..n {
                out.write_all(format!("out {i}\n").as_bytes()).unwrap();
                out.flush().unwrap();
                err.write_all(format!("err {i}\n").as_bytes()).unwrap();
            }
        }
        "sleep" => std::thread::sleep(Duration::from_millis(rest[0].parse().unwrap())),
        "ignore-term" => {
            // SAFETY: setting SIGTERM to SIG_IGN before any other thread exists.
            unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
            println!("ready");
            std::io::stdout().flush().unwrap();
            std::thread::sleep(Duration::from_millis(rest[0].parse().unwrap()));
        }
        "exit" => std::process::exit(rest[0].parse().unwrap()),
        "kill-as-nobody" => kill_as_nobody(),
        "orphan-maker" => orphan_maker(),
        "ipc-echo" => ipc_echo(),
        "ipc-held" => ipc_held(),
        "ipc-handles" => ipc_handles(),
        "fib-child" => ipc_serve(
            |m| {
                // seeds/002's fork-child in Rust: one answer, then disconnect.
                let n = m
                    .get("n")
                    .and_then(childproc_ipc::Value::as_f64)
                    .unwrap_or(0.0) as u32;
                Some(childproc_ipc::Value::object([
                    ("fib", childproc_ipc::Value::from(fib(n) as f64)),
                    ("n", childproc_ipc::Value::from(n as f64)),
                ]))
            },
            true,
        ),
        "sum-worker" => ipc_serve(sum_worker, false),
        "pool-worker" => pool_worker(),
        "exec-sync" => {
            // Runs exec_sync with default stdio: the child's stderr must reach ours.
            let out = childproc::exec_sync(&rest[0]).run();
            println!(
                "result={:?}",
                out.map(|d| d.to_string()).map_err(|e| e.to_string())
            );
        }
        "spawn-as-root-from-nobody" => spawn_as_root_from_nobody(),
        "pool-worker-once" => pool_roles::pool_worker_once(),
        "pool-worker-garbage" => pool_roles::pool_worker_garbage(),
        "pool-worker-concurrent" => pool_roles::pool_worker_concurrent(&rest[0], rest.get(1)),
        "ipc-flood" => ipc_flood(rest[0].parse().unwrap(), rest[1].parse().unwrap()),
        "ipc-hold" => ipc_hold(),
        _ => {
            eprintln!("fixture: unknown role {role:?}");
            std::process::exit(2);
        }
    }
}

/// Writes each chunk `o:<hex>` to stdout or `e:<hex>` to stderr with one `write(2)`; `c:`
/// closes stdout. After every chunk but the last (and a `c:`) it waits for one line on stdin
/// (the test's acknowledgement), so the test decides when the next write happens: no timing involved.
fn write_acked(chunks: &[String]) {
    let mut stdin = std::io::stdin().lock();
    for (i, chunk) in chunks.iter().enumerate() {
        let (to, hex) = chunk.split_once(':').expect("<o|e|c>:<hex>");
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|k| u8::from_str_radix(&hex[k..k + 2], 16).unwrap())
            .collect();
        let fd = match to {
            "o" => 1,
            "e" => 2,
            "c" => {
                // SAFETY: closes our stdout; nothing in this process writes it afterwards.
                unsafe { libc::close(1) };
                -1
            }
            other => panic!("unknown target {other:?}"),
        };
        if fd >= 0 {
            // SAFETY: writes a live buffer to fd 1 or 2.
            let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
            assert_eq!(n, bytes.len() as isize);
        }
        if i + 1 < chunks.len() && to != "c" {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut stdin, &mut line).unwrap();
        }
    }
}

/// Roles that spawn children of their own use the engine the test process uses: the test
/// names it in `CHILDPROC_FIXTURE_ENGINE` (see `tests/tests/scenarios`).
fn same_engine_as_the_test() {
    let Some(engine) = std::env::var_os("CHILDPROC_FIXTURE_ENGINE") else {
        return;
    };
    childproc::__force_portable_engine(engine == "fork");
    assert_eq!(
        childproc::__engine_stats().0,
        engine,
        "the fixture cannot use the test's engine"
    );
}

/// The fds open in this process, sorted, without the one reading the directory.
fn open_fds() -> Vec<String> {
    let dir = std::fs::read_dir("/proc/self/fd").unwrap();
    let mut fds: Vec<i32> = dir
        .filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read_link(e.path())
                .map(|t| !t.starts_with("/proc"))
                .unwrap_or(false)
        })
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    fds.iter().map(i32::to_string).collect()
}

/// Spawns a child as root, then drops this process to uid 65534 and tries to kill it: the
/// kill cannot be delivered (EPERM), so `kill` returns false and an Error event appears.
fn kill_as_nobody() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let child = childproc::Command::new("sleep")
            .arg("5")
            .stdio_all(childproc::StdioShorthand::Ignore)
            .spawn()
            .unwrap();
        // SAFETY: glibc applies setresuid to every thread of the process.
        let r = unsafe { libc::setresuid(65534, 65534, 65534) };
        assert_eq!(r, 0, "setresuid: {}", std::io::Error::last_os_error());
        let delivered = child.kill(childproc::Signal::SIGKILL);
        println!("delivered={delivered} killed={}", child.killed());
        use futures_util::StreamExt;
        let mut events = child.events();
        let spawn = events.next().await;
        let err = events.next().await;
        println!("first={spawn:?}");
        match err {
            Some(childproc::Event::Error(e)) => println!("error={e} kind={:?}", e.kind()),
            other => println!("unexpected={other:?}"),
        }
    });
}

/// Drops to uid 65534, then asks childproc for a child with uid 0: the kernel refuses.
fn spawn_as_root_from_nobody() {
    // SAFETY: single-threaded here (before the runtime); glibc applies it process-wide.
    let r = unsafe { libc::setresuid(65534, 65534, 65534) };
    assert_eq!(r, 0, "setresuid: {}", std::io::Error::last_os_error());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        match childproc::Command::new("true").uid(0).spawn() {
            Ok(_) => println!("unexpected success"),
            Err(e) => println!("kind={:?} message={e}", e.kind()),
        }
    });
}

/// Spawns `sleep` with kill_on_parent_death from a thread that then exits, reports whether
/// the child outlived that thread, prints the child's pid, and waits to be killed.
fn orphan_maker() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let child = std::thread::spawn(move || {
        let _guard = handle.enter();
        childproc::Command::new("sleep")
            .arg("30")
            .stdio_all(childproc::StdioShorthand::Ignore)
            .kill_on_parent_death(true)
            .spawn()
            .unwrap()
    })
    .join()
    .unwrap();
    // The creating thread is gone; a PR_SET_PDEATHSIG tied to it would have fired by now.
    std::thread::sleep(Duration::from_millis(200));
    println!("alive-after-thread-exit={}", child.try_status().is_none());
    println!("pid={}", child.pid());
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

/// The Rust twin of tests/node/echo.js: greets the parent over the inherited channel, echoes
/// each message as `{echo: m}`, and disconnects on "bye".
fn ipc_echo() {
    use childproc_ipc::Value;
    use futures_util::StreamExt;
    on_parent_channel(|mut channel| async move {
        let tx = channel.sender();
        let hello = Value::object([
            ("hello", Value::from("from rust")),
            ("pid", Value::from(std::process::id() as f64)),
        ]);
        tx.send(hello).await.unwrap();
        while let Some(message) = channel.next().await {
            let message = message.unwrap();
            if message == Value::from("bye") {
                break;
            }
            tx.send(Value::object([("echo", message)])).await.unwrap();
        }
        channel.disconnect();
        // The variables were removed: our own children never see them.
        assert!(std::env::var_os("NODE_CHANNEL_FD").is_none());
    });
}

/// `process.channel.ref()`/`unref()` in a Rust child: `main` ends when
/// `childproc_ipc::wait_referenced()` resolves, i.e. when the parent disconnects or when the
/// channel is unref'd. Messages are echoed by a task of their own; `"unref"` unrefs the
/// channel (after answering `"unref"`), so the child exits with the parent still connected.
fn ipc_held() {
    use childproc_ipc::Value;
    use futures_util::StreamExt;
    on_parent_channel(|mut channel| async move {
        assert!(channel.is_referenced());
        let tx = channel.sender();
        tokio::spawn(async move {
            while let Some(Ok(message)) = channel.next().await {
                tx.send(message.clone()).await.unwrap();
                if message == Value::from("unref") {
                    channel.unref();
                    assert!(!channel.is_referenced() && channel.connected());
                }
            }
        });
        childproc_ipc::wait_referenced().await;
    });
    println!("released");
}

/// Receives handles and reports each message back as `{got, kind}` (`kind`: the `Handle`
/// variant, or null): a `TcpListener` answers one connection with `hello from rust\n` (and
/// reports its `port`); a `UnixStream` or raw `Fd` gets `rust was here` written into it.
/// `"send-back"`: sends the parent a Unix socket and a pipe's write end, reads what comes
/// out of them and reports `{read: [..]}`. Ends when the parent disconnects.
fn ipc_handles() {
    use childproc_ipc::{Handle, Value};
    use std::io::{Read, Write};
    use tokio::io::AsyncWriteExt;
    on_parent_channel(|mut channel| async move {
        let tx = channel.sender();
        while let Some(Ok(incoming)) = channel.recv().await {
            let mut report = vec![("got".to_owned(), incoming.message.clone())];
            let kind = match incoming.handle {
                None => Value::Null,
                Some(Handle::TcpListener(l)) => {
                    let port = l.local_addr().unwrap().port();
                    report.push(("port".to_owned(), Value::from(f64::from(port))));
                    let l = Handle::from(l).into_tokio_tcp_listener().unwrap();
                    tokio::spawn(async move {
                        let (mut s, _) = l.accept().await.unwrap();
                        s.write_all(b"hello from rust\n").await.unwrap();
                    });
                    Value::from("TcpListener")
                }
                Some(Handle::UnixStream(mut s)) => {
                    s.write_all(b"rust was here").unwrap();
                    Value::from("UnixStream")
                }
                Some(Handle::Fd(fd)) => {
                    std::fs::File::from(fd).write_all(b"rust was here").unwrap();
                    Value::from("Fd")
                }
                Some(other) => Value::from(other.node_type()),
            };
            report.push(("kind".to_owned(), kind));
            tx.send(Value::Object(report)).await.unwrap();
            if incoming.message == Value::from("send-back") {
                // In a task: the second send waits for the parent's answer to the first,
                // which this loop must keep reading to receive.
                let tx = tx.clone();
                tokio::spawn(async move {
                    let (mine, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
                    let (mut pipe_r, pipe_w) = std::io::pipe().unwrap();
                    tx.send_handle(Value::from("unix"), theirs).await.unwrap();
                    let pipe_w = std::os::fd::OwnedFd::from(pipe_w);
                    tx.send_handle(Value::from("pipe"), pipe_w).await.unwrap();
                    // Our copies are closed once written: EOF comes when the parent drops its.
                    let read = tokio::task::spawn_blocking(move || {
                        let (mut a, mut b) = (String::new(), String::new());
                        (&mine).read_to_string(&mut a).unwrap();
                        pipe_r.read_to_string(&mut b).unwrap();
                        Value::Array(vec![Value::from(a), Value::from(b)])
                    })
                    .await
                    .unwrap();
                    tx.send(Value::object([("read", read)])).await.unwrap();
                });
            }
        }
    });
}

/// Runs `body` on a current-thread runtime with the channel to the parent.
fn on_parent_channel<F: std::future::Future<Output = ()>>(
    body: impl FnOnce(childproc_ipc::Channel<childproc_ipc::AnyCodec>) -> F,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let channel = childproc_ipc::from_env()
            .expect("started without a channel")
            .unwrap();
        body(channel).await;
    });
}

/// A `childproc::Pool` worker through `childproc_ipc::serve`. Tasks: `{echo: v}` → v;
/// `{sleep: ms}` → "slept" after that long; `{exit: code}` ends the process mid-task;
/// `{fail: text}` → an error; `"pid"` → this process's pid; `"nothing"` → undefined.
/// Writes `n` bytes of `x` to stdout in 64 KiB chunks.
fn spew_x(n: usize) {
    let chunk = vec![b'x'; 64 * 1024];
    let mut out = std::io::stdout().lock();
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len());
        out.write_all(&chunk[..k]).unwrap();
        left -= k;
    }
}

fn pool_worker() {
    use childproc_ipc::Value;
    on_parent_channel(|channel| async move {
        childproc_ipc::serve(channel, |task| async move {
            if task.as_str() == Some("pid") {
                return Ok(Value::from(f64::from(std::process::id())));
            }
            if task.as_str() == Some("nothing") {
                return Ok(Value::Undefined);
            }
            if let Some(v) = task.get("echo") {
                return Ok(v.clone());
            }
            if let Some(ms) = task.get("sleep").and_then(Value::as_f64) {
                tokio::time::sleep(Duration::from_millis(ms as u64)).await;
                return Ok(Value::from("slept"));
            }
            if let Some(code) = task.get("exit").and_then(Value::as_f64) {
                std::process::exit(code as i32);
            }
            if let Some(text) = task.get("fail").and_then(Value::as_str) {
                return Err(text.to_owned());
            }
            Err(format!("unknown task {task:?}"))
        })
        .await
        .unwrap();
    });
}

fn fib(n: u32) -> u64 {
    if n <= 1 {
        1
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

/// seeds/001's worker.js in Rust: `{id, cmd: 'sum', data}` → `{id, result}` or `{id, error}`.
fn sum_worker(msg: &childproc_ipc::Value) -> Option<childproc_ipc::Value> {
    use childproc_ipc::Value;
    if msg.get("cmd") != Some(&Value::from("sum")) {
        return None;
    }
    let id = msg.get("id").cloned().unwrap_or(Value::Null);
    Some(match msg.get("data") {
        Some(Value::Array(items)) => {
            let sum: f64 = items.iter().filter_map(Value::as_f64).sum();
            Value::object([("id", id), ("result", Value::from(sum))])
        }
        _ => Value::object([
            ("id", id),
            ("error", Value::from("msg.data.reduce is not a function")),
        ]),
    })
}

/// Answers each message from the parent with `answer(message)`; with `once`, disconnects
/// after the first answer (as the seed's fork-child does).
fn ipc_serve(answer: impl Fn(&childproc_ipc::Value) -> Option<childproc_ipc::Value>, once: bool) {
    use futures_util::StreamExt;
    on_parent_channel(|mut channel| async move {
        let tx = channel.sender();
        while let Some(Ok(message)) = channel.next().await {
            if let Some(reply) = answer(&message) {
                tx.send(reply).await.unwrap();
                if once {
                    break;
                }
            }
        }
        channel.disconnect();
    });
}

/// Sends `n` messages `{i, pad}` (about 110 bytes of JSON each) on the parent's channel, each
/// send awaited (so it waits while the parent does not read), printing `sent <k>` after every
/// `every`-th; exits 0 after the last, 3 if a send failed.
fn ipc_flood(n: u64, every: u64) {
    use childproc_ipc::Value;
    on_parent_channel(|channel| async move {
        let tx = channel.sender();
        let pad = Value::from("x".repeat(90));
        for i in 0..n {
            let message = Value::object([("i", Value::from(i as f64)), ("pad", pad.clone())]);
            if tx.send(message).await.is_err() {
                std::process::exit(3);
            }
            if every > 0 && (i + 1) % every == 0 {
                let mut out = std::io::stdout().lock();
                writeln!(out, "sent {}", i + 1).unwrap();
                out.flush().unwrap();
            }
        }
    });
}

/// Reads one message from the parent's channel, prints `holding`, then reads nothing until a
/// line comes on stdin; then counts the messages up to the string `"end"` and answers
/// `{count}`. While it holds, the parent's sends must push back: the channel reads ahead of
/// its consumer by at most one buffer.
fn ipc_hold() {
    use childproc_ipc::Value;
    use futures_util::StreamExt;
    on_parent_channel(|mut channel| async move {
        let tx = channel.sender();
        channel.next().await.unwrap().unwrap();
        println!("holding");
        std::io::stdout().flush().unwrap();
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).unwrap();
        let mut count = 0u64;
        while let Some(message) = channel.next().await {
            if message.unwrap() == Value::from("end") {
                break;
            }
            count += 1;
        }
        let answer = Value::object([("count", Value::from(count as f64))]);
        tx.send(answer).await.unwrap();
        channel.disconnect();
    });
}
