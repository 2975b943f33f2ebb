//! Reading libtest's human output (what `cargo test` prints): which tests passed, which
//! failed, and what each failed test printed.

use std::collections::BTreeMap;

/// What one run of a test binary said about its tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Report {
    /// How many `test NAME ... ok` lines.
    pub(crate) passed: usize,
    /// The names of the `test NAME ... FAILED` lines, in the order printed.
    pub(crate) failed: Vec<String>,
    /// Each failed test's captured output: the text of its `---- NAME stdout ----` block.
    pub(crate) output: BTreeMap<String, String>,
    /// The tests libtest said were `running for over 60 seconds` (the names of a hang).
    pub(crate) slow: Vec<String>,
    /// Whether a `test result:` line was printed (the binary ran to its end).
    pub(crate) finished: bool,
}

/// Parses libtest's output. Several `running N tests` sections (as `cargo test --doc`
/// prints, one per crate) add up.
pub(crate) fn parse(stdout: &str) -> Report {
    let mut report = Report::default();
    let mut block: Option<(String, Vec<&str>)> = None;
    for line in stdout.lines() {
        if let Some(name) = block_header(line) {
            close(&mut report, block.take());
            block = Some((name.to_owned(), Vec::new()));
            continue;
        }
        if let Some((_, lines)) = block.as_mut() {
            // The block ends at the `failures:` list that follows the last block, or at the
            // next section's result line.
            if line == "failures:" || line.starts_with("test result: ") {
                close(&mut report, block.take());
            } else {
                lines.push(line);
                continue;
            }
        }
        if line.starts_with("test result: ") {
            report.finished = true;
        } else if let Some(rest) = line.strip_prefix("test ") {
            if rest.ends_with(" ... ok") {
                report.passed += 1;
            } else if let Some(name) = rest.strip_suffix(" ... FAILED") {
                report.failed.push(strip_variant(name).to_owned());
            } else if let Some(name) = rest.strip_suffix(" has been running for over 60 seconds") {
                report.slow.push(name.to_owned());
            }
        }
    }
    close(&mut report, block);
    report
}

/// `---- NAME stdout ----` → NAME.
fn block_header(line: &str) -> Option<&str> {
    line.strip_prefix("---- ")?.strip_suffix(" stdout ----")
}

/// Drops libtest's ` - should panic` tag, which the `---- NAME stdout ----` header lacks.
fn strip_variant(name: &str) -> &str {
    name.strip_suffix(" - should panic").unwrap_or(name)
}

/// Stores a finished block, trimmed of the blank lines around it.
fn close(report: &mut Report, block: Option<(String, Vec<&str>)>) {
    if let Some((name, lines)) = block {
        let text = lines.join("\n").trim_matches('\n').to_owned();
        report.output.entry(name).or_insert(text);
    }
}

/// How many lines of a panic message the gist keeps (`assert_eq!`'s header, left, right).
const GIST_LINES: usize = 3;

/// How many characters of a panic message the gist keeps.
const GIST_CHARS: usize = 200;

/// The one-line gist of a failed test's output: where it panicked and the first lines of
/// the panic message, joined (`tests/tests/spawn.rs:12:5: assertion failed: ok`); without a
/// panic line (a test returning `Err`), the first non-blank line.
pub(crate) fn gist(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if let Some(at) = line.find(" panicked at ") {
            let place = line[at + " panicked at ".len()..].trim_end_matches(':');
            let message: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| **l != "stack backtrace:" && !l.starts_with("note: "))
                .map(|l| l.trim())
                .filter(|l| !l.is_empty())
                .take(GIST_LINES)
                .collect();
            let mut message = message.join("; ");
            if message.chars().count() > GIST_CHARS {
                message = message.chars().take(GIST_CHARS).collect::<String>() + "…";
            }
            return format!("{place}: {message}");
        }
    }
    lines
        .iter()
        .map(|l| l.trim())
        .find(|l| !l.is_empty())
        .unwrap_or("(no output)")
        .to_owned()
}

/// A failed test's output without the backtrace frames: the lines from `stack backtrace:`
/// up to the `note:` after them are dropped, the rest is kept, at most `max_lines` lines.
pub(crate) fn without_backtrace(output: &str, max_lines: usize) -> String {
    let mut kept = Vec::new();
    let mut in_trace = false;
    for line in output.lines() {
        if line == "stack backtrace:" {
            in_trace = true;
            continue;
        }
        if in_trace {
            if line.starts_with("note: ") {
                in_trace = false;
            }
            continue;
        }
        kept.push(line);
    }
    let total = kept.len();
    kept.truncate(max_lines);
    let mut text = kept.join("\n");
    if total > max_lines {
        text.push_str(&format!("\n… ({} more lines)", total - max_lines));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What rustc 1.95's libtest prints for two failures (one with a backtrace) and a pass.
    const OUTPUT: &str = "
running 4 tests
test a ... FAILED
test c ... ok
test b ... FAILED
test p - should panic ... FAILED
test slow has been running for over 60 seconds

failures:

---- a stdout ----

thread 'a' (27499) panicked at t.rs:1:18:
assertion `left == right` failed: custom msg
  left: 1
 right: 2
stack backtrace:
   0: __rustc::rust_begin_unwind
             at /rustc/library/std/src/panicking.rs:689:5
note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.

---- b stdout ----
hello out
Error: \"spawn failed\"
---- p stdout ----
note: test did not panic as expected

failures:
    a
    b
    p

test result: FAILED. 1 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.07s
";

    #[test]
    fn failures_and_their_output_are_found() {
        let r = parse(OUTPUT);
        assert_eq!(r.passed, 1);
        assert_eq!(r.failed, ["a", "b", "p"]);
        assert_eq!(r.slow, ["slow"]);
        assert!(r.finished);
        assert_eq!(
            r.output["b"], "hello out\nError: \"spawn failed\"",
            "a block ends at the next header"
        );
        assert_eq!(r.output["p"], "note: test did not panic as expected");
        assert!(r.output["a"].starts_with("thread 'a' (27499) panicked at t.rs:1:18:"));
        assert!(r.output["a"].ends_with("verbose backtrace."));
    }

    #[test]
    fn an_output_cut_short_is_not_finished() {
        let r = parse("\nrunning 2 tests\ntest a ... ok\n");
        assert_eq!((r.passed, r.finished), (1, false));
        assert!(r.failed.is_empty());
    }

    #[test]
    fn sections_add_up() {
        let two = "running 1 test\ntest x - (line 3) ... ok\n\ntest result: ok. 1 passed\n\
                   running 1 test\ntest y - (line 9) ... FAILED\n\nfailures:\n\n\
                   ---- y - (line 9) stdout ----\nboom\n\nfailures:\n    y - (line 9)\n\n\
                   test result: FAILED. 0 passed; 1 failed\n";
        let r = parse(two);
        assert_eq!(r.passed, 1);
        assert_eq!(r.failed, ["y - (line 9)"]);
        assert_eq!(r.output["y - (line 9)"], "boom");
    }

    #[test]
    fn the_gist_is_the_panic_place_and_first_message_line() {
        let r = parse(OUTPUT);
        assert_eq!(
            gist(&r.output["a"]),
            "t.rs:1:18: assertion `left == right` failed: custom msg; left: 1; right: 2"
        );
        let long = format!("thread 'x' panicked at a.rs:1:1:\n{}", "y".repeat(500));
        assert_eq!(
            gist(&long).chars().count(),
            "a.rs:1:1: ".len() + GIST_CHARS + 1
        );
        assert_eq!(gist(&r.output["b"]), "hello out");
        assert_eq!(gist(""), "(no output)");
    }

    #[test]
    fn the_backtrace_is_dropped_and_long_output_cut() {
        let r = parse(OUTPUT);
        let short = without_backtrace(&r.output["a"], 100);
        assert!(!short.contains("rust_begin_unwind"), "{short}");
        assert!(short.ends_with(" right: 2"), "{short}");
        assert_eq!(without_backtrace("1\n2\n3\n4", 2), "1\n2\n… (2 more lines)");
    }
}
