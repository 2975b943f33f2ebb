//! docs/benchmarks.md: tables, and rewriting only the sections a run produced.
//!
//! Each section lives between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`. Updating
//! replaces what is between a section's markers and keeps everything else, so sections
//! measured by other runs, and any prose written by hand outside the markers, survive. A
//! section the file does not have yet is appended at the end.

use std::fmt::Write as _;
use std::path::Path;

use crate::BoxError;

/// The start of a new docs/benchmarks.md, before any section.
const PREAMBLE: &str = "\
# Benchmarks

All numbers are measured by `cargo xtask bench` in one run on the same machine: childproc
side by side with tokio::process, std::process and Node.js's child_process doing the same
work. Ratios, not absolute numbers, are the claim: a ratio above 1 means childproc is faster.
The absolute numbers depend on the machine and on how busy it was.

## How to reproduce

```sh
cargo xtask bench           # full run; rewrites the measured sections of this file
cargo xtask bench --quick   # a smoke run: a tenth of the iterations, 64 MiB instead of 1 GiB
cargo xtask bench exec      # only the named sections (spawn, exec, engine, ipc, pipeline, pool,
                            # clone, typed, build); --quick works too
cargo xtask bench --check   # the ratio gate: a quick pass of the gated rows against
                            # xtask/bench/floors.txt; writes nothing, fails naming the row
```

The Node.js scripts live in `xtask/bench/`; they time themselves, so Node's startup is not
counted. If `node` is not on PATH the Node.js column is skipped.
";

/// One generated part of docs/benchmarks.md.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    /// The marker name: `spawn` is kept between `<!-- bench:spawn -->` and
    /// `<!-- /bench:spawn -->`.
    pub(crate) name: &'static str,
    /// The Markdown between the markers, starting with its `## ` heading.
    pub(crate) body: String,
}

/// Rewrites the given sections of the file at `path`, creating it if needed.
pub(crate) fn update_file(path: &Path, sections: &[Section]) -> Result<(), BoxError> {
    let mut doc = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => PREAMBLE.to_string(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display()).into()),
    };
    for section in sections {
        doc = replace_section(&doc, section);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, doc).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

/// `doc` with `section` between its markers, or appended if the markers are missing.
pub(crate) fn replace_section(doc: &str, section: &Section) -> String {
    let open = format!("<!-- bench:{} -->", section.name);
    let close = format!("<!-- /bench:{} -->", section.name);
    let body = section.body.trim_end();
    if let Some(start) = doc.find(&open) {
        let inner = start + open.len();
        if let Some(len) = doc[inner..].find(&close) {
            let end = inner + len;
            return format!("{}\n{body}\n{}", &doc[..inner], &doc[end..]);
        }
    }
    let mut out = doc.trim_end().to_string();
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    let _ = writeln!(out, "{open}\n{body}\n{close}");
    out
}

/// A Markdown table; columns are padded so it also reads well on a terminal.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    /// The header row.
    pub(crate) header: Vec<String>,
    /// The body rows, each as long as the header.
    pub(crate) rows: Vec<Vec<String>>,
}

impl Table {
    /// The table as Markdown, first column left-aligned and the others right-aligned.
    pub(crate) fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .chain(Some(&self.header[i]))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(3)
            })
            .collect();
        let line = |cells: &[String]| {
            let mut s = String::from("|");
            for (i, w) in widths.iter().enumerate() {
                let cell = cells.get(i).map_or("", String::as_str);
                if i == 0 {
                    let _ = write!(s, " {cell:<w$} |");
                } else {
                    let _ = write!(s, " {cell:>w$} |");
                }
            }
            s.push('\n');
            s
        };
        let mut out = line(&self.header);
        out.push('|');
        for (i, w) in widths.iter().enumerate() {
            if i == 0 {
                let _ = write!(out, " {} |", "-".repeat(*w));
            } else {
                let _ = write!(out, " {}: |", "-".repeat(w - 1));
            }
        }
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(name: &'static str, body: &str) -> Section {
        Section {
            name,
            body: body.to_string(),
        }
    }

    #[test]
    fn missing_section_is_appended() {
        let doc = replace_section("# Title\n\nintro\n", &section("spawn", "## Spawn\n\nA\n"));
        assert_eq!(
            doc,
            "# Title\n\nintro\n\n<!-- bench:spawn -->\n## Spawn\n\nA\n<!-- /bench:spawn -->\n"
        );
    }

    #[test]
    fn only_the_named_section_is_rewritten() {
        let doc =
            "# T\n\n<!-- bench:spawn -->\nold spawn\n<!-- /bench:spawn -->\n\nhand-written\n\n\
                   <!-- bench:exec -->\nold exec\n<!-- /bench:exec -->\n";
        let new = replace_section(doc, &section("spawn", "new spawn"));
        assert_eq!(
            new,
            "# T\n\n<!-- bench:spawn -->\nnew spawn\n<!-- /bench:spawn -->\n\nhand-written\n\n\
             <!-- bench:exec -->\nold exec\n<!-- /bench:exec -->\n"
        );
        // Rewriting again with the same body changes nothing.
        assert_eq!(replace_section(&new, &section("spawn", "new spawn")), new);
    }

    #[test]
    fn table_renders_aligned_markdown() {
        let t = Table {
            header: vec!["a".into(), "bee".into()],
            rows: vec![vec!["long cell".into(), "1".into()]],
        };
        assert_eq!(
            t.render(),
            "| a         | bee |\n| --------- | --: |\n| long cell |   1 |\n"
        );
    }
}
