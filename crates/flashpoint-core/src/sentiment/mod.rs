//! The batched sentiment contract shared by every scorer.
//!
//! Scoring is the only CPU-heavy stage of the pipeline, and the transformer backend only reaches useful
//! throughput when it sees many texts at once. So the trait takes a *batch* and appends results to a
//! caller-owned vector: the lexicon scorer loses nothing by this (it reuses one scratch buffer across the
//! batch), and the pipeline can keep one allocation alive across batches.

mod pyround;
pub mod vader;

use serde::{Deserialize, Serialize};

pub use vader::LexiconScorer;

/// Three-way label, derived from a score by the scorer that produced it, or `Unscored` for a post in a language
/// the scorer does not read (see `lang`): such a post counts toward volume but never toward sentiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Negative,
    Neutral,
    Positive,
    Unscored,
}

impl Label {
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Negative => "negative",
            Label::Neutral => "neutral",
            Label::Positive => "positive",
            Label::Unscored => "unscored",
        }
    }

    pub fn is_scored(self) -> bool {
        self != Label::Unscored
    }
}

/// One text's sentiment. `neg + neu + pos` is (up to rounding) 1; `compound` is in [-1, 1].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    pub neg: f64,
    pub neu: f64,
    pub pos: f64,
    pub compound: f64,
    pub label: Label,
}

impl Sentiment {
    /// The placeholder for a post the scorer cannot read: all zeros, so that even a sum that forgot to skip it
    /// would not move; every aggregate skips it by its label.
    pub const UNSCORED: Sentiment = Sentiment { neg: 0.0, neu: 0.0, pos: 0.0, compound: 0.0, label: Label::Unscored };
}

/// Compound thresholds that turn a score into a label. VADER's authors recommend ±0.05.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelThresholds {
    /// `compound <= negative` is negative.
    pub negative: f64,
    /// `compound >= positive` is positive.
    pub positive: f64,
}

impl Default for LabelThresholds {
    fn default() -> Self {
        LabelThresholds { negative: -0.05, positive: 0.05 }
    }
}

impl LabelThresholds {
    pub fn label(&self, compound: f64) -> Label {
        if compound >= self.positive {
            Label::Positive
        } else if compound <= self.negative {
            Label::Negative
        } else {
            Label::Neutral
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(self.negative.is_finite() && self.positive.is_finite()) || self.negative > self.positive {
            return Err(format!(
                "thresholds must be finite with negative <= positive (got {} and {})",
                self.negative, self.positive
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// The backend could not score the batch (model failure, device error). The batch is retried or
    /// dead-lettered by the caller; the lexicon scorer never returns this.
    #[error("scoring backend failed: {0}")]
    Backend(String),
}

/// A sentiment backend that scores texts in batches.
///
/// Contract: on success exactly `texts.len()` results are appended to `out`, in input order. Implementations
/// must be deterministic for a given model so that a replay of the same records yields the same events.
pub trait Scorer: Send + Sync {
    /// Short name used in config, logs and metric labels (`lexicon`, `transformer`).
    fn name(&self) -> &'static str;
    /// The languages the scorer reads (ISO 639-1): the default of `scorer.languages`. Posts in others are
    /// unscored. Every backend Flashpoint ships reads English only.
    fn languages(&self) -> &'static [&'static str] {
        &["en"]
    }
    fn score_batch(&self, texts: &[&str], out: &mut Vec<Sentiment>) -> Result<(), ScoreError>;

    /// Convenience for single texts (tests, the CLI). Pipelines should batch.
    fn score_one(&self, text: &str) -> Result<Sentiment, ScoreError> {
        let mut out = Vec::with_capacity(1);
        self.score_batch(&[text], &mut out)?;
        Ok(out[0])
    }
}
