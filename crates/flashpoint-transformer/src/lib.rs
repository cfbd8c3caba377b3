//! The transformer sentiment backend: a sentence encoder (all-MiniLM-L6-v2, run by rust-bert on libtorch) with a
//! small linear classification head on top, behind the same batched [`Scorer`](flashpoint_core::sentiment::Scorer) trait as the lexicon scorer.
//!
//! It exists for what a lexicon cannot see (context, negation scope, slang, some sarcasm) and costs three to four
//! orders of magnitude more CPU per post, so it is opt-in per deployment (`scorer.kind = "transformer"`). On the
//! CPU it runs by default with int8 linear layers ([`int8`]: this crate's own forward pass over rust-bert's
//! tokenizer, faster at the same accuracy: figures in docs/sentiment.md); `Precision::Fp32` runs rust-bert's encoder unchanged. It lives
//! in its own crate because it needs libtorch: the core, the default build and `replay` need none. The libtorch
//! code sits behind this crate's `libtorch` feature (which the `flashpoint` binary's `transformer` feature turns
//! on), so `cargo build --workspace` still works on a machine without libtorch.
//!
//! The model is a directory (see [`model_files`]): the encoder's files as sentence-transformers saves them, plus
//! `head.safetensors` (`weight` `[3, dim]`, `bias` `[3]`; classes negative, neutral, positive) and `head.json`.
//! `scripts/libtorch.sh` assembles the default one under `~/.cache/flashpoint/models/minilm-sentiment`: the
//! encoder with its top layers replaced by the fine-tuned ones of `models/minilm-sentiment-finetuned/` (merged into
//! `model.safetensors` there, so the loader reads one ordinary checkpoint) and that model's head.

#[cfg(feature = "libtorch")]
pub mod int8;
mod model;
#[cfg(feature = "libtorch")]
mod scorer;
mod text;

pub use model::{
    check_model_dir, model_files, read_head_meta, DeviceChoice, HeadMeta, LoadError, Precision, TransformerConfig,
};
#[cfg(feature = "libtorch")]
pub use scorer::TransformerScorer;
pub use text::{length_order, spell_out_emoji, to_sentiment};
