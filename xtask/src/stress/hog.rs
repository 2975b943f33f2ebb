//! The load: processes that spin on a CPU each, at the tests' own priority (not niced), as
//! the other jobs of a busy CI machine would.
//!
//! A hog is this xtask binary run as `xtask stress-hog`. It is killed three ways, so that none
//! outlives the stress run: [`Hogs`]' `Drop` kills and reaps them when the run ends or fails
//! (a panic too); Ctrl-C reaches them as members of the terminal's foreground process group;
//! and each hog checks its parent every few milliseconds and exits once the parent is gone
//! (xtask killed by a signal that runs no destructor).

use std::process::{Child, Command, Stdio};

use crate::BoxError;

/// The hidden subcommand a hog runs.
pub(crate) const SUBCOMMAND: &str = "stress-hog";

/// Running hog processes; dropping this kills them.
pub(crate) struct Hogs {
    children: Vec<Child>,
}

impl Hogs {
    /// Starts `count` hogs.
    pub(crate) fn start(count: usize) -> Result<Hogs, BoxError> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("stress: cannot find the xtask binary: {e}"))?;
        let mut hogs = Hogs {
            children: Vec::with_capacity(count),
        };
        for _ in 0..count {
            let child = Command::new(&exe)
                .arg(SUBCOMMAND)
                .arg(std::process::id().to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| format!("stress: cannot start a hog ({}): {e}", exe.display()))?;
            // Pushed at once: an error on the next one drops `hogs`, which kills this one.
            hogs.children.push(child);
        }
        Ok(hogs)
    }

    /// How many hogs are running (one that died is not replaced, but is counted out).
    pub(crate) fn alive(&mut self) -> usize {
        self.children
            .iter_mut()
            .map(|c| c.try_wait())
            .filter(|r| matches!(r, Ok(None)))
            .count()
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
    }
}

/// The body of `xtask stress-hog PARENT_PID`: spins until PARENT_PID is no longer its parent.
pub(crate) fn spin(args: &[String]) -> Result<(), BoxError> {
    let parent: u32 = match args {
        [pid] => pid
            .parse()
            .map_err(|_| format!("stress-hog: not a pid: `{pid}`"))?,
        _ => return Err("stress-hog: usage: xtask stress-hog PARENT_PID".into()),
    };
    let mut x: u64 = 0;
    while std::os::unix::process::parent_id() == parent {
        // A few milliseconds of arithmetic between the checks of the parent.
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
        }
    }
    Ok(())
}
