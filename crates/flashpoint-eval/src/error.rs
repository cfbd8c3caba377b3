//! Why an evaluation could not run, and reading its input files.

use flashpoint_core::sentiment::ScoreError;
use std::path::PathBuf;

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("reading {}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("writing {}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    /// A line of an input file that is not what the corpus format says (`at` is `file:line`).
    #[error("{at}: {msg}")]
    Syntax { at: String, msg: String },
    /// A corpus that is readable but not usable (too small, no labelled series, mismatched files).
    #[error("{0}")]
    Corpus(String),
    /// The aggregator refused the configuration.
    #[error("config: {0}")]
    Config(String),
    #[error("{what}")]
    Score { what: &'static str, source: ScoreError },
}

pub type Result<T, E = EvalError> = std::result::Result<T, E>;

pub(crate) fn read(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| EvalError::Read { path: path.to_path_buf(), source })
}
