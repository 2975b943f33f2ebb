//! `childproc::Pool` with several tasks in flight per worker (`concurrency`) and retries of
//! tasks whose worker died (`retry`), with Rust and Node.js workers.
//!
//! The workers hold a task `{hold: name}` until `{release: name}` comes, so which tasks are
//! in flight at once, and the order of the answers, are decided by the test: no timing.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use childproc::ipc::Value;
use childproc::{fork, fork_exe, Pool, PoolBuilder, PoolError, Signal};
use common::{guard, node, script, FIXTURE};
use tokio::task::JoinHandle;

/// Rust workers serving `limit` tasks at once; with `doomed`, `{exit: code}` exits.
fn rust_pool(limit: usize, doomed: bool) -> PoolBuilder {
    let limit = limit.to_string();
    Pool::builder(move || {
        let mut args = vec!["pool-worker-concurrent".to_owned(), limit.clone()];
        if doomed {
            args.push("doomed".into());
        }
        fork_exe(FIXTURE, args)
    })
}

fn hold(name: &str) -> Value {
    Value::object([("hold", Value::from(name))])
}

fn release(name: &str) -> Value {
    Value::object([("release", Value::from(name))])
}

fn exit(code: i32) -> Value {
    Value::object([("exit", Value::from(code))])
}

/// Queues `task` now (tasks queued one after the other reach the worker in that order) and
/// waits for its result in a task of its own.
fn queue(pool: &Pool, task: Value) -> JoinHandle<Result<Value, PoolError>> {
    tokio::spawn(pool.try_run(task).expect("room in the queue"))
}

async fn result_of(task: JoinHandle<Result<Value, PoolError>>) -> Result<Value, PoolError> {
    task.await.expect("the waiting task panicked")
}

/// Three tasks held at once on one worker, released last first: each answer reaches its
/// own caller, while the earlier tasks are still in flight.
async fn answers_out_of_order(pool: Pool) {
    let held: Vec<_> = ["a", "b", "c"].map(|n| queue(&pool, hold(n))).into();
    let [a, b, c]: [_; 3] = held.try_into().unwrap();
    assert_eq!(
        pool.run(release("c")).await.unwrap(),
        Value::from("released")
    );
    assert_eq!(result_of(c).await.unwrap(), Value::from("c"));
    // Nothing released them yet: with one task at a time, "c" would never have run.
    assert!(!a.is_finished() && !b.is_finished());
    assert_eq!(
        pool.run(release("b")).await.unwrap(),
        Value::from("released")
    );
    assert_eq!(result_of(b).await.unwrap(), Value::from("b"));
    assert!(!a.is_finished());
    assert_eq!(
        pool.run(release("a")).await.unwrap(),
        Value::from("released")
    );
    assert_eq!(result_of(a).await.unwrap(), Value::from("a"));
    let stats = pool.stats();
    assert_eq!((stats.started, stats.answered, stats.crashed), (1, 6, 0));
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_room_for_several_tasks_answers_them_in_any_order() {
    guard(async {
        answers_out_of_order(rust_pool(4, false).size(1).concurrency(4).build().unwrap()).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_workers_answer_concurrent_tasks_in_any_order() {
    if !node() {
        return;
    }
    guard(async {
        let pool = Pool::builder(|| fork(script("pool-worker.js"), Vec::<String>::new()))
            .size(1)
            .concurrency(4)
            .build()
            .unwrap();
        answers_out_of_order(pool).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_dies_fails_every_task_it_had_with_its_status() {
    guard(async {
        let pool = rust_pool(4, true).size(1).concurrency(4).build().unwrap();
        let mut tasks: Vec<_> = ["a", "b", "c"].map(|n| queue(&pool, hold(n))).into();
        tasks.push(queue(&pool, exit(3)));
        for (i, task) in tasks.into_iter().enumerate() {
            match result_of(task).await {
                Err(PoolError::WorkerExited(Some(s))) => assert_eq!(s.code(), Some(3), "{i}"),
                other => panic!("task {i}: expected WorkerExited(code 3), got {other:?}"),
            }
        }
        // The next worker serves as usual.
        assert!(pool.run("pid").await.unwrap().as_f64().is_some());
        let stats = pool.stats();
        assert_eq!((stats.started, stats.crashed, stats.retried), (2, 1, 0));
        pool.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_whose_worker_died_are_retried_on_the_next_one() {
    guard(async {
        // The first worker is doomed (`{exit}` kills it); its replacements survive it.
        let starts = Arc::new(AtomicU32::new(0));
        let counted = starts.clone();
        let pool = Pool::builder(move || {
            let doomed = counted.fetch_add(1, Ordering::SeqCst) == 0;
            let args = [
                "pool-worker-concurrent",
                "2",
                if doomed { "doomed" } else { "-" },
            ];
            fork_exe(FIXTURE, args)
        })
        .size(1)
        .concurrency(2)
        .retry(1)
        .build()
        .unwrap();
        // Both are in flight on the first worker when the second kills it: both run again,
        // on the second worker, where "exit" survives and "a" waits for its release.
        let a = queue(&pool, hold("a"));
        let killer = queue(&pool, exit(3));
        assert_eq!(result_of(killer).await.unwrap(), Value::from("survived"));
        assert_eq!(
            pool.run(release("a")).await.unwrap(),
            Value::from("released")
        );
        assert_eq!(result_of(a).await.unwrap(), Value::from("a"));
        let stats = pool.stats();
        assert_eq!((stats.started, stats.crashed, stats.retried), (2, 1, 2));
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        pool.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_run_out_and_never_repeat_an_answered_error() {
    guard(async {
        // Every worker is doomed: "exit" kills each one it reaches, one retry included.
        let pool = rust_pool(1, true).size(1).retry(1).build().unwrap();
        let err = pool.run(exit(5)).await.unwrap_err();
        assert!(
            matches!(&err, PoolError::WorkerExited(Some(s)) if s.code() == Some(5)),
            "{err:?}"
        );
        assert_eq!(pool.stats().retried, 1);
        // An error the worker answered is the caller's at once, with the same worker.
        let before = pool.run("pid").await.unwrap();
        let failing = Value::object([("fail", Value::from("bad input"))]);
        let err = pool.run(failing).await.unwrap_err();
        assert!(
            matches!(&err, PoolError::Task(v) if v.as_str() == Some("bad input")),
            "{err:?}"
        );
        assert_eq!(pool.run("pid").await.unwrap(), before);
        let stats = pool.stats();
        assert_eq!((stats.retried, stats.crashed), (1, 2), "{stats:?}");
        pool.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_the_worker_and_ends_its_other_tasks() {
    guard(async {
        let limit = Duration::from_millis(300);
        // Without retry: the task in flight beside the late one fails with the kill.
        let pool = rust_pool(2, false).size(1).concurrency(2).build().unwrap();
        let a = queue(&pool, hold("a"));
        let late = pool.run_timeout(hold("late"), limit).await;
        assert!(
            matches!(late, Err(PoolError::Timeout(d)) if d == limit),
            "{late:?}"
        );
        match result_of(a).await {
            Err(PoolError::WorkerExited(Some(s))) => assert_eq!(s.signal(), Some(Signal::SIGKILL)),
            other => panic!("expected WorkerExited(SIGKILL), got {other:?}"),
        }
        let stats = pool.stats();
        assert_eq!((stats.timed_out, stats.crashed, stats.retried), (1, 0, 0));
        pool.close().await;

        // With retry: the other task runs again on the next worker; the late one is not
        // retried (it timed out itself).
        let pool = rust_pool(2, false)
            .size(1)
            .concurrency(2)
            .retry(3)
            .build()
            .unwrap();
        let a = queue(&pool, hold("a"));
        let late = pool.run_timeout(hold("late"), limit).await;
        assert!(matches!(late, Err(PoolError::Timeout(_))), "{late:?}");
        assert_eq!(
            pool.run(release("a")).await.unwrap(),
            Value::from("released")
        );
        assert_eq!(result_of(a).await.unwrap(), Value::from("a"));
        let stats = pool.stats();
        assert_eq!((stats.started, stats.timed_out, stats.retried), (2, 1, 1));
        pool.close().await;
    })
    .await;
}
