//! What a pipeline ends with: every stage's status, the output, and the error.

use std::fmt;

use crate::encoding::Data;
use crate::error::Error;
use crate::exec::ExecFailure;
use crate::exit::ExitStatus;

use super::OutputOptions;

/// How every stage of a pipeline ended, left to right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineStatus(pub(super) Vec<ExitStatus>);

impl PipelineStatus {
    /// Every stage's status, left to right.
    pub fn stages(&self) -> &[ExitStatus] {
        &self.0
    }

    /// The last stage's status: a shell's `$?` for the pipeline.
    pub fn last(&self) -> Option<ExitStatus> {
        self.0.last().copied()
    }

    /// The shell's `pipefail` status: the rightmost stage that did not exit with 0, else the
    /// last stage (which succeeded).
    pub fn pipefail(&self) -> Option<ExitStatus> {
        self.0.get(self.pipefail_index()).copied()
    }

    pub(super) fn pipefail_index(&self) -> usize {
        self.0
            .iter()
            .rposition(|s| !s.success())
            .unwrap_or(self.0.len().saturating_sub(1))
    }
}

/// What a successful pipeline resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineOutput {
    /// The last stage's stdout, decoded.
    pub stdout: Data,
    /// Each stage's stderr, decoded, left to right (empty data for a stage whose stderr is
    /// not a pipe).
    pub stderr: Vec<Data>,
    /// Every stage's exit status.
    pub status: PipelineStatus,
    /// The pipes were closed before they reached end-of-file (a timeout, an abort, an
    /// overflow or the wait delay ended the reading): more output may have followed.
    pub pipes_closed_early: bool,
}

/// A failed pipeline: why, which stage decided it, and the output so far.
#[derive(Debug)]
pub struct PipelineError {
    /// Why it failed, as for exec.
    pub reason: ExecFailure,
    /// The stage that decided the failure: the one that overflowed `maxBuffer`, or the one
    /// whose status failed the pipeline. `None` when a stage could not be started: then
    /// `reason` is [`ExecFailure::Spawn`] with an [`Error::Pipeline`] naming the stage.
    pub stage: Option<usize>,
    /// The command lines joined with ` | `.
    pub cmd: String,
    /// The output up to the failure, and every stage's status (empty if none was spawned).
    pub output: PipelineOutput,
}

impl PipelineError {
    pub(super) fn spawn(e: Error, cmd: String, options: &OutputOptions) -> Self {
        let empty = options.encoding.decode(Vec::new());
        PipelineError {
            reason: ExecFailure::Spawn(e),
            stage: None,
            cmd,
            output: PipelineOutput {
                stdout: empty,
                stderr: Vec::new(),
                status: PipelineStatus(Vec::new()),
                pipes_closed_early: false,
            },
        }
    }

    /// The status of the stage that decided the failure, if it ran.
    pub fn status(&self) -> Option<ExitStatus> {
        self.stage
            .and_then(|i| self.output.status.stages().get(i).copied())
    }
}

impl fmt::Display for PipelineError {
    /// exec's messages: `Command failed: <cmd>` then the deciding stage's stderr; `stdout
    /// maxBuffer length exceeded`; `The operation was aborted`; the spawn error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            ExecFailure::Spawn(e) => write!(f, "{e}"),
            ExecFailure::MaxBuffer(s) => write!(f, "{s} maxBuffer length exceeded"),
            ExecFailure::Aborted => f.write_str("The operation was aborted"),
            _ => {
                write!(f, "Command failed: {}", self.cmd)?;
                match self.stage.and_then(|i| self.output.stderr.get(i)) {
                    Some(stderr) => write!(f, "\n{stderr}"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for PipelineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.reason {
            ExecFailure::Spawn(e) => Some(e),
            _ => None,
        }
    }
}
