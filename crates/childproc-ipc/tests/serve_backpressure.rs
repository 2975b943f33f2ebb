//! `serve` against a parent that sends tasks and does not read the answers: the worker queues
//! answers only up to `BACKLOG_LIMIT` (then it waits, and stops reading tasks), and once the
//! parent reads, every answer comes, in order.

use std::cell::Cell;
use std::rc::Rc;

use childproc_ipc::{serve, Channel, Serialization, Value, BACKLOG_LIMIT};
use futures_util::StreamExt;

/// Tasks sent: their answers are far more than the socket and the backlog limit hold.
const TASKS: usize = 4000;
/// The characters of each task's payload (echoed back).
const PAYLOAD: usize = 1024;

#[tokio::test]
async fn a_parent_that_does_not_read_bounds_the_workers_queue() {
    let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
    let codec = || Serialization::Json.codec().unwrap();
    let mut parent = Channel::new(ours, codec()).unwrap();
    let worker = Channel::new(theirs, codec()).unwrap();
    // A handle on the worker's sending side, to watch its queue.
    let answers = worker.sender();
    let handled = Rc::new(Cell::new(0usize));
    let counter = handled.clone();
    let serving = serve(worker, move |task| {
        counter.set(counter.get() + 1);
        async move { Ok::<_, &str>(task) }
    });
    let talk = async {
        let tx = parent.sender();
        let payload = Value::from("x".repeat(PAYLOAD));
        for id in 0..TASKS {
            let task = Value::object([("id", Value::from(id as f64)), ("task", payload.clone())]);
            tx.send_nowait(task).unwrap();
        }
        // Let the worker run as far as it can while nobody reads its answers.
        let mut peak = 0;
        for _ in 0..20_000 {
            tokio::task::yield_now().await;
            peak = peak.max(answers.backlog());
        }
        let bound = BACKLOG_LIMIT + 2 * PAYLOAD;
        assert!(peak <= bound, "the worker queued {peak} bytes of answers");
        let stopped_at = handled.get();
        assert!(
            stopped_at < TASKS,
            "every task was handled with nobody reading"
        );
        assert!(
            answers.is_stalled(),
            "the worker is not waiting for the parent"
        );
        // Now read: every answer, in order.
        for id in 0..TASKS {
            let answer = parent.next().await.unwrap().unwrap();
            assert_eq!(
                answer.get("id"),
                Some(&Value::from(id as f64)),
                "answer {id}"
            );
            assert_eq!(
                answer.get("result").and_then(Value::as_str).map(str::len),
                Some(PAYLOAD)
            );
        }
        parent.disconnect();
    };
    let (served, ()) = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        tokio::join!(serving, talk)
    })
    .await
    .expect("hung");
    served.unwrap();
    assert_eq!(handled.get(), TASKS);
}
