//! The model directory and the options that choose how it runs: which files it must hold, its head's
//! metadata, the device and precision, and what can go wrong loading it. Plain Rust, so the binary checks a
//! configuration without libtorch.

use std::path::{Path, PathBuf};

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
    /// Weights quantised to int8 at load, activations per call (CPU only; about twice the fp32 throughput on a
    /// VNNI CPU with the same TweetEval macro recall, see docs/sentiment.md, "Throughput on the CPU"). On CUDA
    /// the encoder runs in fp32.
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

#[cfg(test)]
mod tests {
    use super::*;

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
