//! A real `Channel` over a socketpair, its raw peer writing Node's handle protocol and
//! garbage with fds attached anywhere: every received fd is closed or handed out, every
//! handle frame answered, nothing lost, no hang (see `childproc_fuzz::control`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|script: childproc_fuzz::control::input::Script| {
    let _ = childproc_fuzz::control::run(script);
});
