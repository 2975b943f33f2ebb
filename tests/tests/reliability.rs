//! Thousands of spawns with failures mixed in leave no zombie and no fd behind; every option
//! goes through the vfork-class engine. One test binary, run alone, so the counts are exact.

mod common;
mod scenarios;

// The two parts share one test so nothing else in this process spawns while they count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability() {
    scenarios::spawns_with_failures_leave_nothing_behind(10_000).await;
    scenarios::every_option_goes_through("clone-vfork").await;
}
