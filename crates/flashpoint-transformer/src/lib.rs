//! The transformer sentiment backend: a sentence encoder (all-MiniLM-L6-v2, run by rust-bert on libtorch) with a
//! small linear classification head on top, behind the same batched [`Scorer`](flashpoint_core::sentiment::Scorer) trait as the lexicon scorer.
//!
//! It exists for what a lexicon cannot see (context, negation scope, slang, some sarcasm) and costs three to four
//! orders of magnitude more CPU per post, so it is opt-in per deployment (`scorer.kind = "transformer"`). On the
//! CPU it runs by default with int8 linear layers ([`int8`]: this crate's own forward pass over rust-bert's
//! tokenizer, about 4x faster at the same accuracy); `Precision::Fp32` runs rust-bert's encoder unchanged. It lives
//! in its own crate because it needs libtorch: the core, the default build and `replay` need none. The libtorch
//! code sits behind this crate's `libtorch` feature (which the `flashpoint` binary's `transformer` feature turns
//! on), so `cargo build --workspace` still works on a machine without libtorch.
//!
//! The model is a directory (see [`model_files`]): the encoder's files as sentence-transformers saves them, plus
//! `head.safetensors` (`weight` `[3, dim]`, `bias` `[3]`; classes negative, neutral, positive) and `head.json`.
//! `scripts/libtorch.sh` assembles the default one under `~/.cache/flashpoint/models/minilm-sentiment`: the
//! encoder with its top layers replaced by the fine-tuned ones of `models/minilm-sentiment-finetuned/` (merged into
//! `model.safetensors` there, so the loader reads one ordinary checkpoint) and that model's head.

use flashpoint_core::sentiment::{Label, Sentiment};
use std::borrow::Cow;
use std::path::{Path, PathBuf};

#[cfg(feature = "libtorch")]
pub mod int8;
#[cfg(feature = "libtorch")]
mod scorer;
#[cfg(feature = "libtorch")]
pub use scorer::TransformerScorer;

/// Where the model runs. One type for the config file (`scorer.device`), the command line (`--device`) and the
/// backend, so no layer keeps a copy to map by hand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    #[default]
    Cpu,
    /// The first CUDA device; falls back to the CPU (with a warning) where none is usable.
    Cuda,
}

/// The arithmetic of the encoder's linear layers (`scorer.precision`, `--precision`); a GPU always runs fp32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Weights quantised to int8 at load, activations per call (CPU only; about 4x the fp32 throughput on a
    /// VNNI CPU with the same TweetEval macro recall, see the README). On CUDA the encoder runs in fp32.
    #[default]
    Int8,
    /// rust-bert's fp32 encoder, exactly the published model.
    Fp32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TransformerConfig {
    pub model_dir: PathBuf,
    pub device: DeviceChoice,
    pub precision: Precision,
    /// Texts per forward pass. Larger batches amortise per-call overhead; past ~64 on a CPU they only add
    /// padding and latency.
    pub batch_size: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("model directory {0} does not exist or is not a directory (run scripts/libtorch.sh to install the default model)")]
    NoModelDir(PathBuf),
    #[error("model directory {dir} has no {file}: {what} (run scripts/libtorch.sh to install the default model)")]
    MissingFile { dir: PathBuf, file: &'static str, what: &'static str },
    #[error("{path}: {msg}")]
    BadFile { path: PathBuf, msg: String },
    #[error("batch_size must be at least 1")]
    BatchSize,
    #[error("loading the encoder from {dir}: {msg}")]
    Encoder { dir: PathBuf, msg: String },
}

/// The files a model directory must hold, with what each is for (used to name what is missing).
pub fn model_files() -> &'static [(&'static str, &'static str)] {
    &[
        ("config.json", "the BERT encoder's configuration"),
        ("model.safetensors", "the encoder's weights"),
        ("vocab.txt", "the WordPiece vocabulary"),
        ("tokenizer_config.json", "the tokenizer's settings"),
        ("sentence_bert_config.json", "sentence-transformers' max_seq_length and casing"),
        ("modules.json", "sentence-transformers' module list (pooling, normalisation)"),
        ("1_Pooling/config.json", "the pooling layer's configuration"),
        ("head.safetensors", "the sentiment head's weights (scripts/finetune_sentiment.py)"),
        ("head.json", "the sentiment head's metadata (scripts/finetune_sentiment.py)"),
    ]
}

/// Checks that `dir` holds every file the scorer needs, so a wrong path fails with the file's name instead of a
/// panic deep inside the model loader.
pub fn check_model_dir(dir: &Path) -> Result<(), LoadError> {
    if !dir.is_dir() {
        return Err(LoadError::NoModelDir(dir.to_path_buf()));
    }
    for (file, what) in model_files() {
        if !dir.join(file).is_file() {
            return Err(LoadError::MissingFile { dir: dir.to_path_buf(), file, what });
        }
    }
    Ok(())
}

/// `head.json`: what the head was trained for. The class order is checked because a head saved in another
/// order would silently swap positive and negative.
#[derive(Debug, serde::Deserialize)]
pub struct HeadMeta {
    pub labels: Vec<String>,
    pub embedding_dim: usize,
    #[serde(default)]
    pub encoder: String,
}

pub fn read_head_meta(dir: &Path) -> Result<HeadMeta, LoadError> {
    let path = dir.join("head.json");
    let text =
        std::fs::read_to_string(&path).map_err(|e| LoadError::BadFile { path: path.clone(), msg: e.to_string() })?;
    let meta: HeadMeta =
        serde_json::from_str(&text).map_err(|e| LoadError::BadFile { path: path.clone(), msg: e.to_string() })?;
    if meta.labels != ["negative", "neutral", "positive"] {
        return Err(LoadError::BadFile {
            path,
            msg: format!(
                "labels must be [\"negative\", \"neutral\", \"positive\"] in that order, found {:?}",
                meta.labels
            ),
        });
    }
    Ok(meta)
}

/// Class probabilities (negative, neutral, positive) to a [`Sentiment`].
///
/// `compound = pos - neg`, so it stays in [-1, 1] and keeps the lexicon scorer's meaning (sign = polarity, size =
/// confidence), which the detector's negative-share signal relies on. The label is the most probable class, not
/// a threshold on `compound`: the head was trained for argmax, and thresholds tuned for VADER's compound do not
/// transfer (a confident neutral with a slight negative lean would become negative).
pub fn to_sentiment(p: [f32; 3]) -> Sentiment {
    let (neg, neu, pos) = (p[0] as f64, p[1] as f64, p[2] as f64);
    let label = if neg > neu && neg >= pos {
        Label::Negative
    } else if pos > neu && pos > neg {
        Label::Positive
    } else {
        Label::Neutral
    };
    Sentiment { neg, neu, pos, compound: (pos - neg).clamp(-1.0, 1.0), label }
}

/// Emoji spelled out in words ("😍" → " smiling face with heart-eyes "), with the descriptions of VADER's emoji
/// lexicon (the one the lexicon scorer uses).
///
/// MiniLM's WordPiece vocabulary has no emoji: a run of them becomes one `[UNK]` token, so "landed 😍" and
/// "landed 😡" would read the same. The words are in the vocabulary and the encoder knows what they mean. The
/// SemEval training tweets hold no emoji at all, so this changes nothing the model was trained or checked on; it
/// only gives the encoder something to read where it would see `[UNK]`. Skin-tone modifiers and the emoji
/// variation selector carry no sentiment and are dropped. Text without emoji is returned borrowed.
pub fn spell_out_emoji(text: &str) -> Cow<'_, str> {
    let lex = flashpoint_core::sentiment::vader::Lexicon::builtin();
    let dropped = |c: char| c == '\u{FE0F}' || ('\u{1F3FB}'..='\u{1F3FF}').contains(&c);
    // ASCII never holds an emoji: most posts return here without a lookup.
    if text.is_ascii() || !text.chars().any(|c| dropped(c) || lex.emoji_description(c).is_some()) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 32);
    for c in text.chars() {
        if dropped(c) {
            continue;
        }
        match lex.emoji_description(c) {
            Some(desc) => {
                out.push(' ');
                out.push_str(desc);
                out.push(' ');
            }
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Indices of `texts` sorted by length (stable), so each sub-batch pads to similar lengths. Byte length is a
/// proxy for token count that costs nothing; tokenising twice to sort exactly would cost more than it saves.
pub fn length_order(texts: &[&str]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].len());
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_label_and_compound() {
        let s = to_sentiment([0.7, 0.2, 0.1]);
        assert_eq!(s.label, Label::Negative);
        assert!((s.compound + 0.6).abs() < 1e-6);
        assert_eq!(to_sentiment([0.1, 0.2, 0.7]).label, Label::Positive);
        assert_eq!(to_sentiment([0.3, 0.4, 0.3]).label, Label::Neutral);
        // Ties go to neutral: the label the detector treats as "no signal".
        assert_eq!(to_sentiment([0.4, 0.4, 0.2]).label, Label::Neutral);
    }

    #[test]
    fn emoji_are_spelled_out() {
        assert!(matches!(spell_out_emoji("plain text :)"), Cow::Borrowed(_)));
        assert!(matches!(spell_out_emoji("café au lait"), Cow::Borrowed(_)));
        assert_eq!(spell_out_emoji("landed😍"), "landed smiling face with heart-eyes ");
        assert_eq!(spell_out_emoji("no 😡😡"), "no  pouting face  pouting face ");
        // Skin tone and variation selector go; the hand stays.
        assert_eq!(spell_out_emoji("ok 👍🏽"), "ok  thumbs up ");
        assert_eq!(spell_out_emoji("❤\u{FE0F}"), " red heart ");
    }

    #[test]
    fn length_order_is_stable() {
        assert_eq!(length_order(&["ccc", "a", "bb", "d", ""]), vec![4, 1, 3, 2, 0]);
    }

    #[test]
    fn missing_model_dir_names_the_path() {
        let e = check_model_dir(Path::new("/nonexistent/flashpoint-model")).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/flashpoint-model") && e.contains("scripts/libtorch.sh"), "{e}");
    }

    #[test]
    fn missing_file_is_named() {
        let dir = std::env::temp_dir().join(format!("fp-transformer-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), "{}").unwrap();
        let e = check_model_dir(&dir).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(e.contains("model.safetensors"), "{e}");
    }
}
