//! Scenarios that more than one test binary runs: each engine-relevant behaviour once, run by
//! the topical binaries (`options`, `spawn`, `errors`, `engine`, `ipc`, `reliability`) with
//! the default engine and by `portable` with the portable engine forced. A scenario spawns
//! with whatever engine the process uses; fixtures that spawn children of their own are told
//! to use the same one ([`FIXTURE_ENGINE`]).
#![allow(dead_code)]

mod errors;
mod options;
mod pty;
mod reliability;
mod termination;

// Each test binary uses some of them.
#[allow(unused_imports)]
pub use {errors::*, options::*, pty::*, reliability::*, termination::*};

use childproc::Command;

use crate::common::stdout_string;

/// The variable that tells the fixture which engine to spawn with (see `fixture.rs`).
pub const FIXTURE_ENGINE: &str = "CHILDPROC_FIXTURE_ENGINE";

/// The engine this process creates children with now.
pub fn engine() -> &'static str {
    childproc::__engine_stats().0
}

/// The child's whole stdout, as a string.
pub async fn output(cmd: &mut Command) -> String {
    let mut child = cmd.spawn().unwrap();
    stdout_string(&mut child).await
}
