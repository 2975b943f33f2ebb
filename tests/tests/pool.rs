//! `childproc::Pool`: a pool of forked workers with correlation ids, restart on crash,
//! per-task timeouts, recycling and backpressure, with Rust and Node.js workers.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use childproc::ipc::Value;
use childproc::{fork, fork_exe, Pool, PoolError, Serialization};
use common::{guard, node, script, FIXTURE};

fn rust_pool() -> childproc::PoolBuilder {
    Pool::builder(|| fork_exe(FIXTURE, ["pool-worker"]))
}

fn echo(v: impl Into<Value>) -> Value {
    Value::object([("echo", v.into())])
}

fn pid_of(v: &Value) -> u32 {
    v.as_f64().expect("a pid") as u32
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_are_answered_by_id_across_workers_in_any_order() {
    guard(async {
        let pool = std::sync::Arc::new(rust_pool().size(3).build().unwrap());
        // Slow and fast tasks at once: answers come back out of order, each to its caller.
        let tasks = (0..30).map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let task = if i % 5 == 0 {
                    Value::object([("sleep", Value::from(30))])
                } else {
                    echo(i)
                };
                (i, pool.run(task).await)
            })
        });
        for t in futures_util::future::join_all(tasks).await {
            let (i, answer) = t.unwrap();
            let want = if i % 5 == 0 {
                Value::from("slept")
            } else {
                Value::from(i)
            };
            assert_eq!(answer.unwrap(), want, "task {i}");
        }
        let stats = pool.stats();
        assert_eq!((stats.started, stats.answered, stats.crashed), (3, 30, 0));
        // The work was spread: several distinct workers answered "pid".
        let pids: HashSet<u32> = futures_util::future::join_all((0..12).map(|_| {
            let pool = pool.clone();
            async move { pid_of(&pool.run("pid").await.unwrap()) }
        }))
        .await
        .into_iter()
        .collect();
        assert!(pids.len() > 1, "one worker did everything: {pids:?}");
        std::sync::Arc::into_inner(pool).unwrap().close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_error_is_the_callers_and_the_worker_goes_on() {
    guard(async {
        let pool = rust_pool().size(1).build().unwrap();
        let before = pid_of(&pool.run("pid").await.unwrap());
        let err = pool
            .run(Value::object([("fail", Value::from("bad input"))]))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PoolError::Task(v) if v.as_str() == Some("bad input")),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "the task failed in its worker: bad input");
        assert_eq!(pid_of(&pool.run("pid").await.unwrap()), before);
        // A handler that returns undefined: the answer is `{ id }` alone on the wire.
        assert_eq!(pool.run("nothing").await.unwrap(), Value::Undefined);
        pool.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_worker_fails_its_task_and_is_replaced() {
    guard(async {
        let pool = rust_pool().size(1).build().unwrap();
        let first = pid_of(&pool.run("pid").await.unwrap());
        let err = pool
            .run(Value::object([("exit", Value::from(3))]))
            .await
            .unwrap_err();
        match &err {
            PoolError::WorkerExited(Some(status)) => assert_eq!(status.code(), Some(3)),
            other => panic!("expected WorkerExited with its status, got {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "the worker ended before answering (code 3)"
        );
        let second = pid_of(&pool.run("pid").await.unwrap());
        assert_ne!(first, second, "the crashed worker is still answering");
        let stats = pool.stats();
        assert_eq!((stats.started, stats.crashed), (2, 1));
        // The dead worker was reaped: no zombie under our pid.
        assert!(!std::path::Path::new(&format!("/proc/{first}")).exists());
        pool.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_past_its_timeout_gets_its_worker_killed_and_replaced() {
    guard(async {
        let pool = rust_pool()
            .size(1)
            .task_timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let first = pid_of(&pool.run("pid").await.unwrap());
        let err = pool
            .run(Value::object([("sleep", Value::from(60_000))]))
            .await
            .unwrap_err();
        assert!(
            matches!(err, PoolError::Timeout(d) if d == Duration::from_millis(200)),
            "{err:?}"
        );
        let second = pid_of(&pool.run("pid").await.unwrap());
        assert_ne!(first, second);
        // A task's own timeout wins over the pool's.
        let slow = Value::object([("sleep", Value::from(400))]);
        let answer = pool.run_timeout(slow, Duration::from_secs(20)).await;
        assert_eq!(answer.unwrap(), Value::from("slept"));
        assert_eq!(pool.stats().timed_out, 1);
        pool.close().await;
        assert!(!std::path::Path::new(&format!("/proc/{first}")).exists());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_are_recycled_after_their_share_of_tasks() {
    guard(async {
        let pool = rust_pool().size(1).max_tasks_per_worker(3).build().unwrap();
        let mut pids = Vec::new();
        for _ in 0..7 {
            pids.push(pid_of(&pool.run("pid").await.unwrap()));
        }
        // Three tasks per worker: 3 + 3 + 1.
        assert_eq!(pids[0], pids[2]);
        assert_ne!(pids[2], pids[3]);
        assert_eq!(pids[3], pids[5]);
        assert_ne!(pids[5], pids[6]);
        let stats = pool.stats();
        assert_eq!((stats.started, stats.recycled, stats.crashed), (3, 2, 0));
        pool.close().await;
        for pid in pids {
            assert!(
                !std::path::Path::new(&format!("/proc/{pid}")).exists(),
                "{pid} is left"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_pushes_back() {
    guard(async {
        let pool = std::sync::Arc::new(rust_pool().size(1).queue(2).build().unwrap());
        // One task occupies the worker, two fill the queue.
        let busy = {
            let pool = pool.clone();
            tokio::spawn(
                async move { pool.run(Value::object([("sleep", Value::from(300))])).await },
            )
        };
        let mut queued = Vec::new();
        let mut full = None;
        for i in 0..10 {
            match pool.try_run(echo(i)) {
                Ok(pending) => queued.push((i, tokio::spawn(pending))),
                Err(e) => {
                    full = Some(e);
                    break;
                }
            }
        }
        assert!(matches!(full, Some(PoolError::Full)), "{full:?}");
        assert!(
            queued.len() <= 3,
            "{} tasks got in past a queue of 2",
            queued.len()
        );
        // `run` waits for room instead, and everything is answered in the end.
        let waited = pool.run(echo("late")).await.unwrap();
        assert_eq!(waited, Value::from("late"));
        assert_eq!(busy.await.unwrap().unwrap(), Value::from("slept"));
        for (i, task) in queued {
            assert_eq!(task.await.unwrap().unwrap(), Value::from(i));
        }
        std::sync::Arc::into_inner(pool).unwrap().close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pool_refuses_tasks_and_leaves_no_worker() {
    guard(async {
        let pool = rust_pool().size(2).build().unwrap();
        let pids: Vec<u32> = vec![
            pid_of(&pool.run("pid").await.unwrap()),
            pid_of(&pool.run("pid").await.unwrap()),
        ];
        pool.close().await;
        for pid in pids {
            assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
        }
        // A worker that cannot start fails the build, naming the program.
        let err = Pool::builder(|| fork_exe("/no/such/worker", Vec::<String>::new()))
            .size(1)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("/no/such/worker"), "{err}");
        // So does a worker configured without a channel.
        let no_channel = || fork_exe(FIXTURE, ["pool-worker"]).stdio([childproc::Stdio::Ignore]);
        let err = Pool::builder(no_channel).size(1).build().unwrap_err();
        assert!(err.to_string().to_lowercase().contains("ipc"), "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_calls_decode_the_result() {
    guard(async {
        let pool = rust_pool().size(1).build().unwrap();
        let list = Value::Array(vec![Value::from(1), Value::from(2)]);
        let got: Vec<u32> = pool.call(echo(list)).await.unwrap();
        assert_eq!(got, [1, 2]);
        let err = pool.call::<Vec<u32>>(echo("not a list")).await.unwrap_err();
        assert!(matches!(err, PoolError::Decode(_)), "{err:?}");
        pool.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_workers_speak_the_same_protocol() {
    if !node() {
        return;
    }
    guard(async {
        let pool = Pool::builder(|| fork(script("pool-worker.js"), Vec::<String>::new()))
            .size(2)
            .max_tasks_per_worker(4)
            .build()
            .unwrap();
        for i in 0..10 {
            let answer = pool.run(Value::object([("double", Value::from(i))])).await;
            assert_eq!(answer.unwrap(), Value::from(2 * i));
        }
        let err = pool
            .run(Value::object([("fail", Value::from("nope"))]))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PoolError::Task(v) if v.as_str() == Some("nope")),
            "{err:?}"
        );
        // `{ id, result: undefined }` reaches us as `{ id }`.
        let nothing = Value::object([("nothing", Value::Bool(true))]);
        assert_eq!(pool.run(nothing).await.unwrap(), Value::Undefined);
        assert!(pool.stats().recycled >= 2);
        pool.close().await;
    })
    .await;
}

/// An answer is an answer whatever its shape, and whatever it carries: the pool reads
/// `{ id, result }` as JSON.stringify writes it without building the object around the
/// result, and every other shape whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_read_in_any_shape_and_may_hold_anything() {
    guard(async {
        // One of Node's internal messages as a task and as a result: the worker's channel and
        // the pool's take it for the user's value, not for Node's.
        let internal = Value::object([("cmd", Value::from("NODE_HANDLE")), ("msg", 1.into())]);
        let pool = rust_pool().size(1).build().unwrap();
        assert_eq!(pool.run(echo(internal.clone())).await.unwrap(), internal);
        pool.close().await;
        if !node() {
            return;
        }
        let pool = Pool::builder(|| fork(script("pool-worker.js"), Vec::<String>::new()))
            .size(1)
            .build()
            .unwrap();
        assert_eq!(pool.run(echo(internal.clone())).await.unwrap(), internal);
        let value = Value::object([("a", Value::Array(vec![1.into(), "x".into()]))]);
        for shape in ["reversed", "extra", "echo"] {
            let task = Value::object([(shape, value.clone())]);
            assert_eq!(pool.run(task).await.unwrap(), value, "{shape}");
        }
        pool.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_workers_work_in_every_serialization() {
    guard(async {
        let modes = [
            Serialization::MsgPack,
            Serialization::Advanced,
            Serialization::LengthJson,
        ];
        for mode in modes {
            let pool =
                Pool::builder(move || fork_exe(FIXTURE, ["pool-worker"]).serialization(mode))
                    .size(1)
                    .build()
                    .unwrap();
            let bytes = Value::Bytes(vec![0, 1, 255]);
            let want = if mode != Serialization::LengthJson {
                bytes.clone()
            } else {
                // JSON carries a Buffer as Node's `buffer.toJSON()` does.
                let data = [0, 1, 255].map(Value::from).to_vec();
                Value::object([
                    ("type", Value::from("Buffer")),
                    ("data", Value::Array(data)),
                ])
            };
            assert_eq!(pool.run(echo(bytes)).await.unwrap(), want, "{mode:?}");
            pool.close().await;
        }
    })
    .await;
}

/// Whether `result` is the failure of a task that met a worker exiting with `code`.
fn exited_with(result: &Result<Value, PoolError>, code: i32) -> bool {
    matches!(result, Err(PoolError::WorkerExited(Some(s))) if s.code() == Some(code))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_that_die_at_start_fail_tasks_instead_of_looping() {
    guard(async {
        // Each worker exits with code 7 before reading anything: the pool backs off between
        // restarts (50 ms, doubling) and, after three in a row, starts a worker only for a
        // task, failing the tasks that come while it backs off with that status.
        let pool = Pool::builder(|| fork_exe(FIXTURE, ["exit", "7"]))
            .size(1)
            .build()
            .unwrap();
        // Three workers die before any task comes; then the slot waits for a task (no
        // fourth start while idle).
        while pool.stats().crashed < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(pool.stats().started, 3, "{:?}", pool.stats());
        // Every task fails with the status of a worker that really exited, whether it met
        // one in its dying moments (the write to it may fail, or it may exit before
        // answering) or came during a backoff.
        // One after the other, so that a restart without a pause would show: each task
        // would get a worker of its own.
        let since = std::time::Instant::now();
        for i in 0..100 {
            let result = pool.run(echo(i)).await;
            assert!(exited_with(&result, 7), "task {i}: {result:?}");
        }
        // Restarts obey the backoff: from the fourth start on, each follows a pause of at
        // least 400 ms.
        let restarts = u128::from(pool.stats().started - 3);
        let bound = 1 + since.elapsed().as_millis() / 400;
        assert!(
            restarts <= bound,
            "{restarts} restarts in {:?}",
            since.elapsed()
        );
        // And all at once.
        let results = futures_util::future::join_all((0..100).map(|i| pool.run(echo(i)))).await;
        for (i, result) in results.iter().enumerate() {
            assert!(exited_with(result, 7), "task {i}: {result:?}");
        }
        let stats = pool.stats();
        assert_eq!(stats.answered, 0, "{stats:?}");
        assert_eq!(stats.crashed, stats.started, "{stats:?}");
        pool.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_meets_a_dying_worker_fails_with_its_exit_status() {
    guard(async {
        // Each worker answers one task, then exits with code 7 at once: the next task is
        // often given to it while it dies. A worker that answered is replaced without a
        // pause, so this is quick.
        let pool = Pool::builder(|| fork_exe(FIXTURE, ["pool-worker-once"]))
            .size(1)
            .build()
            .unwrap();
        let results = futures_util::future::join_all((0..40).map(|i| pool.run(echo(i)))).await;
        let mut pids = HashSet::new();
        for (i, result) in results.iter().enumerate() {
            match result {
                Ok(pid) => assert!(pids.insert(pid_of(pid)), "a worker answered twice"),
                other => assert!(exited_with(other, 7), "task {i}: {other:?}"),
            }
        }
        let stats = pool.stats();
        assert_eq!(stats.answered, pids.len() as u64, "{stats:?}");
        assert!(!pids.is_empty(), "{stats:?}");
        pool.close().await;

        // With a retry, a task that met a dying worker runs on the next one: all succeed.
        let pool = Pool::builder(|| fork_exe(FIXTURE, ["pool-worker-once"]))
            .size(1)
            .retry(1)
            .build()
            .unwrap();
        let results = futures_util::future::join_all((0..20).map(|i| pool.run(echo(i)))).await;
        let pids: HashSet<u32> = results
            .iter()
            .map(|r| pid_of(r.as_ref().unwrap()))
            .collect();
        assert_eq!(pids.len(), 20, "one worker per task");
        assert_eq!(pool.stats().answered, 20);
        pool.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_answers_with_a_broken_frame_is_replaced() {
    guard(async {
        // The worker's second answer is not JSON: its channel is closed, its task fails
        // with the exit status it then ends with (3, at the end of its channel), and the
        // next worker answers the next task.
        let pool = Pool::builder(|| fork_exe(FIXTURE, ["pool-worker-garbage"]))
            .size(1)
            .build()
            .unwrap();
        assert_eq!(pool.run(echo(1)).await.unwrap(), Value::from("first"));
        let broken = pool.run(echo(2)).await;
        assert!(exited_with(&broken, 3), "{broken:?}");
        assert_eq!(pool.run(echo(3)).await.unwrap(), Value::from("first"));
        let stats = pool.stats();
        assert_eq!(
            (stats.crashed, stats.started, stats.answered),
            (1, 2, 2),
            "{stats:?}"
        );
        pool.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_the_channel_cannot_carry_fails_alone() {
    guard(async {
        let pool = rust_pool().size(1).build().unwrap();
        let before = pid_of(&pool.run("pid").await.unwrap());
        // JSON has no BigInt: nothing is written, the worker is fine.
        let err = pool
            .run(echo(Value::BigInt("12345678901234567890".into())))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PoolError::Worker(e) if matches!(**e, childproc::Error::Ipc(childproc::ipc::IpcError::Unsupported { .. }))),
            "{err:?}"
        );
        assert_eq!(pid_of(&pool.run("pid").await.unwrap()), before);
        let stats = pool.stats();
        assert_eq!((stats.started, stats.crashed), (1, 0), "{stats:?}");
        pool.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_cannot_be_restarted_fails_tasks_with_the_start_error() {
    guard(async {
        // The first worker starts; every later start fails (the program is gone).
        let starts = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counted = starts.clone();
        let pool = Pool::builder(move || {
            match counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => fork_exe(FIXTURE, ["pool-worker"]),
                _ => fork_exe("/no/such/worker", Vec::<String>::new()),
            }
        })
        .size(1)
        .build()
        .unwrap();
        pool.run("pid").await.unwrap();
        let err = pool
            .run(Value::object([("exit", Value::from(3))]))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PoolError::WorkerExited(Some(s)) if s.code() == Some(3)),
            "{err:?}"
        );
        // From now on no worker can be started: each task fails with why, without waiting
        // out the backoff.
        for i in 0..20 {
            match pool.run(echo(i)).await {
                Err(PoolError::Worker(e)) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
                }
                other => panic!("task {i}: expected the start error, got {other:?}"),
            }
        }
        let stats = pool.stats();
        assert_eq!((stats.started, stats.crashed), (1, 1), "{stats:?}");
        assert!(starts.load(std::sync::atomic::Ordering::SeqCst) >= 2);
        pool.close().await;
    })
    .await;
}

/// A pool whose runtime shut down (its slots' tasks dropped with it) is used from another:
/// the task that was running, the one still queued and every later one fail with
/// `Closed` at once instead of waiting for a worker that will never come.
#[test]
fn a_pool_whose_runtime_shut_down_fails_its_tasks_instead_of_hanging() {
    let runtime = common::runtime;
    let first = runtime();
    let (pool, running, queued) = first.block_on(async {
        let pool = rust_pool().size(1).build().unwrap();
        assert_eq!(guard(pool.run(echo(1))).await.unwrap(), Value::from(1));
        let sleep = Value::object([("sleep", Value::from(30_000))]);
        let running = pool.try_run(sleep).unwrap();
        let queued = pool.try_run(echo(2)).unwrap();
        tokio::task::yield_now().await; // the slot gives the worker its task
        (pool, running, queued)
    });
    drop(first);
    runtime().block_on(async {
        assert!(matches!(guard(running).await, Err(PoolError::Closed)));
        assert!(matches!(guard(queued).await, Err(PoolError::Closed)));
        assert!(matches!(
            guard(pool.run(echo(3))).await,
            Err(PoolError::Closed)
        ));
        assert!(matches!(
            pool.try_run(echo(4)).err(),
            Some(PoolError::Closed)
        ));
        guard(pool.close()).await;
    });
    // Built and given up before its slots ever ran: the same.
    let first = runtime();
    let pool = first.block_on(async { rust_pool().size(2).build().unwrap() });
    drop(first);
    runtime().block_on(async {
        assert!(matches!(
            guard(pool.run(echo(5))).await,
            Err(PoolError::Closed)
        ));
    });
}
