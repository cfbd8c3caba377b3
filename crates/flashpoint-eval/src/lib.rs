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
mod error;
pub mod injection;
pub mod nab;
pub mod report;
pub mod sentiment;
pub mod simulate;
mod time;

pub use analysis::{run, DetectOptions, Report};
pub use error::{EvalError, Result};
