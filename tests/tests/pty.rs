//! A pseudo-terminal for the child, with the default engine (the portable engine runs the
//! same scenarios in portable.rs).

mod common;
mod scenarios;

#[tokio::test]
async fn the_pty_is_the_childs_controlling_terminal() {
    scenarios::pty_is_the_controlling_terminal().await;
}

#[tokio::test]
async fn the_pty_has_a_size_and_a_resize_reaches_the_child() {
    scenarios::pty_size_and_resize().await;
}

#[tokio::test]
async fn an_interactive_shell_runs_on_the_pty() {
    scenarios::pty_interactive_shell().await;
}

#[tokio::test]
async fn output_left_on_the_pty_outlives_the_child() {
    scenarios::pty_output_outlives_the_child().await;
}

#[tokio::test]
async fn dropping_the_master_hangs_the_child_up() {
    scenarios::pty_dropped_first_hangs_up().await;
}

#[tokio::test]
async fn what_cannot_have_a_pty_says_so() {
    scenarios::pty_refusals().await;
}
