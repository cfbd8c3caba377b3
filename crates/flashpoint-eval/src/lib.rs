//! Flashpoint's offline evaluations, behind `flashpoint eval-nab`, `eval-detect` and `eval-sentiment`: they
//! read public corpora, drive the core's pipeline or aggregator over them, and report how well detection and
//! scoring keep their promises. Pure computation over files; the binary only parses flags and prints.
//!
//! - `corpus`: the corpora (NAB series and their labelled windows, SemEval texts labelled by VADER).
//! - `nab`: the NAB standard-profile score (`eval-nab`, and the first table of `eval-detect`).
//! - `injection`: what `eval-detect` injects into a background, where, and the evidence it carries.
//! - `simulate`: one series replayed through the aggregator, with or without injections.
//! - `analysis`: the runs of `eval-detect` and what is measured from them (`Report`).
//! - `report`: `eval-detect`'s Markdown, SVG and JSON.
//! - `sentiment`: a scorer's quality on TweetEval (`eval-sentiment`).
//!
//! Everything takes the core's configuration types (`AggregatorConfig`, `LabelThresholds`), so an evaluation
//! runs the detector exactly as a deployment with the same `[window]`, `[detection]` and `[limits]` would.

pub mod analysis;
pub mod corpus;
pub mod injection;
pub mod nab;
pub mod report;
pub mod sentiment;
pub mod simulate;

use flashpoint_core::sentiment::ScoreError;
use flashpoint_core::time::Millis;
use std::path::PathBuf;

pub use analysis::{run, DetectOptions, Report};

const MIN: Millis = 60_000;
const HOUR: Millis = 3_600_000;
const DAY: Millis = 86_400_000;
/// The NAB corpora's row: every series is a count per 5 minutes.
const STEP: Millis = 300_000;

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

fn read(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| EvalError::Read { path: path.to_path_buf(), source })
}
