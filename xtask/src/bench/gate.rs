//! `cargo xtask bench --check`: the ratio gate. A short side-by-side pass (the sections'
//! `--quick` runs, docs/benchmarks.md left alone) of every section that has a gated row,
//! then each measured ratio against its floor in `xtask/bench/floors.txt`; a ratio below its
//! floor, or one that was not measured, fails the run and is named.
//!
//! Sections record the ratios the gate knows with [`record`] where they compute them, under
//! the names the floors file uses (`section.row`). Timings are noisy, so the gate is not part
//! of the CI test run; run it before resolving an issue that touches a hot path.
//!
//! A section with a row below its floor is measured once more, and a row counts with the
//! better of its two passes: on a 2-core machine one pass in a few dips a row by a few
//! percent below a floor it clears in every full run, while a change that lowers the row
//! fails both passes.

use std::fmt::Write as _;
use std::sync::Mutex;

use super::doc::Table;
use crate::BoxError;

/// The ratios measured in this process, by name, in the order they were recorded.
static GAUGES: Mutex<Vec<(String, f64)>> = Mutex::new(Vec::new());

/// Records the ratio `name` (`section.row`), if it was measured.
pub(crate) fn record(name: impl Into<String>, value: Option<f64>) {
    if let Some(value) = value.filter(|v| v.is_finite()) {
        let mut gauges = GAUGES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        gauges.push((name.into(), value));
    }
}

/// Every ratio recorded so far.
fn recorded() -> Vec<(String, f64)> {
    GAUGES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// One line of the floors file: a gated ratio and the least it may be.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Floor {
    /// `section.row`, as the section records it.
    pub(crate) name: String,
    /// The least the ratio may be.
    pub(crate) floor: f64,
    /// What the ratio is, for the report.
    pub(crate) what: String,
}

impl Floor {
    /// The section that measures this ratio.
    pub(crate) fn section(&self) -> &str {
        self.name.split('.').next().unwrap_or("")
    }
}

/// The floors file: `name floor what…` per line; `#` starts a comment, blank lines are
/// skipped. Errors name the line.
pub(crate) fn parse(text: &str) -> Result<Vec<Floor>, BoxError> {
    let mut floors = Vec::new();
    for (at, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let name = words.next().unwrap_or("");
        let floor = words.next().unwrap_or("");
        let what = words.collect::<Vec<_>>().join(" ");
        let floor: f64 = floor.parse().map_err(|_| {
            format!(
                "xtask/bench/floors.txt line {}: `{floor}` is not a number (expected `name floor what…`)",
                at + 1
            )
        })?;
        if !name.contains('.') {
            return Err(format!(
                "xtask/bench/floors.txt line {}: `{name}` is not `section.row`",
                at + 1
            )
            .into());
        }
        floors.push(Floor {
            name: name.to_string(),
            floor,
            what,
        });
    }
    Ok(floors)
}

/// The floors committed beside the harness.
pub(crate) fn floors() -> Result<Vec<Floor>, BoxError> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/floors.txt");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text)
}

/// Each floor against what this run recorded: the report, and the rows that failed.
pub(crate) fn verdict(floors: &[Floor], gauges: &[(String, f64)]) -> (String, Vec<String>) {
    let mut failed = Vec::new();
    let mut table = Table {
        header: ["row", "measured", "floor", "verdict", "what"]
            .map(String::from)
            .to_vec(),
        rows: Vec::new(),
    };
    for floor in floors {
        // The best pass counts (a section below a floor is measured again).
        let value = best(gauges, &floor.name);
        let (measured, verdict) = match value {
            Some(v) if v >= floor.floor => (format!("{v:.2}×"), "ok"),
            Some(v) => (format!("{v:.2}×"), "BELOW THE FLOOR"),
            None => ("—".into(), "NOT MEASURED"),
        };
        if verdict != "ok" {
            failed.push(format!("{} ({verdict})", floor.name));
        }
        table.rows.push(vec![
            floor.name.clone(),
            measured,
            format!("{:.2}×", floor.floor),
            verdict.into(),
            floor.what.clone(),
        ]);
    }
    let mut report = table.render();
    if !failed.is_empty() {
        let _ = write!(report, "\nfailed: {}\n", failed.join(", "));
    }
    (report, failed)
}

/// The best value recorded for `name`, if any.
fn best(gauges: &[(String, f64)], name: &str) -> Option<f64> {
    gauges
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| *v)
        .reduce(f64::max)
}

/// The sections with a row that is below its floor (or not measured) so far, each once, in
/// the floors file's order: what [`run`](super::run) measures a second time.
pub(crate) fn to_measure_again(floors: &[Floor]) -> Vec<&str> {
    sections_below(floors, &recorded())
}

fn sections_below<'a>(floors: &'a [Floor], gauges: &[(String, f64)]) -> Vec<&'a str> {
    let mut sections: Vec<&str> = Vec::new();
    for floor in floors {
        let below = best(gauges, &floor.name).is_none_or(|v| v < floor.floor);
        if below && !sections.contains(&floor.section()) {
            sections.push(floor.section());
        }
    }
    sections
}

/// Prints the verdict on this run's ratios; an error names every row that failed.
pub(crate) fn judge(floors: &[Floor]) -> Result<(), BoxError> {
    let (report, failed) = verdict(floors, &recorded());
    println!("bench --check:\n\n{report}");
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("bench --check failed: {}", failed.join(", ")).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floors_file_parses() {
        let floors = floors().unwrap();
        assert!(!floors.is_empty());
        for f in &floors {
            assert!(f.floor > 0.0 && !f.what.is_empty(), "{f:?}");
            assert!(super::super::SECTIONS.contains(&f.section()), "{f:?}");
        }
    }

    #[test]
    fn bad_lines_are_named() {
        let err = parse("# c\n\nspawn.a 0.9 x\nexec.b nope y\n").unwrap_err();
        assert!(err.to_string().contains("line 4"), "{err}");
        let err = parse("nodot 1 x").unwrap_err();
        assert!(err.to_string().contains("`nodot`"), "{err}");
        assert_eq!(
            parse("a.b 2 what it is # why").unwrap()[0].what,
            "what it is"
        );
    }

    #[test]
    fn a_ratio_below_its_floor_or_missing_fails_by_name() {
        let floors = parse("a.x 1.0 x\na.y 2.0 y\na.z 1.0 z\n").unwrap();
        let gauges = vec![("a.x".to_string(), 1.2), ("a.y".to_string(), 1.5)];
        let (report, failed) = verdict(&floors, &gauges);
        assert_eq!(
            failed,
            ["a.y (BELOW THE FLOOR)", "a.z (NOT MEASURED)"],
            "{report}"
        );
        let (_, failed) = verdict(&floors[..1], &gauges);
        assert!(failed.is_empty());
    }

    #[test]
    fn a_row_counts_with_its_better_pass_and_its_section_is_measured_again() {
        let floors = parse(
            "a.x 1.0 x
b.y 1.0 y
b.z 1.0 z
c.w 1.0 w
",
        )
        .unwrap();
        let first = vec![
            ("a.x".to_string(), 0.97),
            ("b.y".to_string(), 0.9),
            ("b.z".to_string(), 0.8),
            ("c.w".to_string(), 1.1),
        ];
        assert_eq!(sections_below(&floors, &first), ["a", "b"]);
        // The second pass: a.x recovers (noise), b.y stays below (a regression), b.z
        // recovers although its later value is lower than the floor again.
        let mut both = first.clone();
        both.extend([
            ("a.x".to_string(), 1.02),
            ("b.y".to_string(), 0.92),
            ("b.z".to_string(), 1.05),
            ("b.z".to_string(), 0.7),
        ]);
        let (report, failed) = verdict(&floors, &both);
        assert_eq!(failed, ["b.y (BELOW THE FLOOR)"], "{report}");
        assert!(report.contains("1.02×"), "{report}");
        assert_eq!(sections_below(&floors, &both), ["b"]);
    }
}
