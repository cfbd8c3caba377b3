//! The libtorch half: loading the encoder and head, and scoring batches.

use crate::int8::Encoder;
use crate::model::{check_model_dir, read_head_meta, DeviceChoice, LoadError, Precision, TransformerConfig};
use crate::text::{length_order, spell_out_emoji, to_sentiment};
use flashpoint_core::sentiment::{ScoreError, Scorer, Sentiment};
use rust_bert::pipelines::common::ModelType;
use rust_bert::pipelines::sentence_embeddings::{SentenceEmbeddingsConfig, SentenceEmbeddingsModel};
use rust_bert::resources::LocalResource;
use std::borrow::Cow;
use std::path::Path;
use std::sync::Mutex;
use tch::{Device, Kind, Tensor};

struct Model {
    /// rust-bert's model: the fp32 encoder, and the tokenizer for both precisions.
    encoder: SentenceEmbeddingsModel,
    /// The int8 forward pass, when `scorer.precision = "int8"` on the CPU.
    int8: Option<Encoder>,
    /// [dim, 3], transposed once at load so each batch is one matmul.
    weight_t: Tensor,
    bias: Tensor,
}

/// Transformer scorer: MiniLM sentence embeddings → linear head → softmax over (negative, neutral, positive).
pub struct TransformerScorer {
    // tch tensors are Send but not Sync; the Scorer trait needs Sync. One forward pass already uses every core
    // through libtorch's intra-op threads, so serialising callers costs little throughput.
    model: Mutex<Model>,
    batch_size: usize,
    device: Device,
    precision: Precision,
    /// Only `compare_encoders` loads the model a second time.
    #[cfg(feature = "testing")]
    model_dir: std::path::PathBuf,
}

fn resource(dir: &Path, file: &str) -> Box<LocalResource> {
    Box::new(LocalResource { local_path: dir.join(file) })
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

/// Keeps libtorch's activation buffers in the malloc heap.
///
/// A forward pass allocates and frees tensors of a few MB per layer (batch × tokens × 1536 floats). glibc serves
/// those with fresh mmaps and returns them at free, so every pass page-faults its memory in again: about a million
/// minor faults per 500 tweets at batch 32, a quarter of the scoring time (measured: 78 → 98 texts/s on one core).
/// Raising the mmap threshold to its maximum (32 MB) and the trim threshold past a pass's peak lets freed buffers be
/// reused; peak RSS did not change. Process-wide, but harmless for the rest of the pipeline, which allocates little.
fn tune_malloc_for_libtorch() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes allocator parameters; it is called once, before the model allocates.
            let ok = unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                    && libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20) == 1
            };
            if !ok {
                tracing::debug!("mallopt refused the thresholds; scoring works, with more page faults");
            }
        });
    }
}

impl TransformerScorer {
    pub fn load(cfg: &TransformerConfig) -> Result<Self, LoadError> {
        if cfg.batch_size == 0 {
            return Err(LoadError::BatchSize);
        }
        tune_malloc_for_libtorch();
        let dir = cfg.model_dir.as_path();
        check_model_dir(dir)?;
        let meta = read_head_meta(dir)?;
        let device = match cfg.device {
            DeviceChoice::Cpu => Device::Cpu,
            DeviceChoice::Cuda if tch::Cuda::is_available() => Device::Cuda(0),
            DeviceChoice::Cuda => {
                tracing::warn!(
                    "scorer.device = \"cuda\" but libtorch sees no usable CUDA device (CPU-only libtorch, no GPU or no driver); running on the CPU"
                );
                Device::Cpu
            }
        };
        let config = SentenceEmbeddingsConfig {
            modules_config_resource: resource(dir, "modules.json"),
            transformer_type: ModelType::Bert,
            transformer_config_resource: resource(dir, "config.json"),
            // rust-bert's own loader looks for rust_model.ot; libtorch reads safetensors directly, so the file
            // sentence-transformers ships is used as is.
            transformer_weights_resource: resource(dir, "model.safetensors"),
            pooling_config_resource: resource(dir, "1_Pooling/config.json"),
            dense_config_resource: None,
            dense_weights_resource: None,
            sentence_bert_config_resource: resource(dir, "sentence_bert_config.json"),
            tokenizer_config_resource: resource(dir, "tokenizer_config.json"),
            tokenizer_vocab_resource: resource(dir, "vocab.txt"),
            tokenizer_merges_resource: None,
            device,
            kind: None,
        };
        // rust-bert panics (rather than returning an error) on some malformed config files; a bad model
        // directory must fail start-up with a message, not abort the process with a backtrace.
        let encoder = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| SentenceEmbeddingsModel::new(config)))
            .map_err(|p| LoadError::Encoder { dir: dir.to_path_buf(), msg: panic_message(p) })?
            .map_err(|e| LoadError::Encoder { dir: dir.to_path_buf(), msg: e.to_string() })?;
        let dim = encoder
            .get_embedding_dim()
            .map_err(|e| LoadError::Encoder { dir: dir.to_path_buf(), msg: e.to_string() })?;
        if dim as usize != meta.embedding_dim {
            return Err(LoadError::BadFile {
                path: dir.join("head.json"),
                msg: format!(
                    "the head was trained on {}-dimensional embeddings but the encoder produces {dim}",
                    meta.embedding_dim
                ),
            });
        }
        let (weight_t, bias) = load_head(&dir.join("head.safetensors"), dim, device)?;
        let precision = match (cfg.precision, device) {
            (Precision::Int8, Device::Cpu) => Precision::Int8,
            (Precision::Int8, _) => {
                tracing::info!(
                    "scorer.precision = \"int8\" is for the CPU (FBGEMM); the encoder runs in fp32 on the GPU"
                );
                Precision::Fp32
            }
            (Precision::Fp32, _) => Precision::Fp32,
        };
        let int8 = match precision {
            Precision::Int8 => Some(Encoder::load(dir, true)?),
            Precision::Fp32 => None,
        };
        tracing::info!(model_dir = %dir.display(), ?device, ?precision, batch_size = cfg.batch_size, threads = tch::get_num_threads(), encoder = %meta.encoder, "transformer scorer loaded");
        Ok(TransformerScorer {
            model: Mutex::new(Model { encoder, int8, weight_t, bias }),
            batch_size: cfg.batch_size,
            device,
            precision,
            #[cfg(feature = "testing")]
            model_dir: dir.to_path_buf(),
        })
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// The precision actually used (int8 asked for on a GPU runs in fp32).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Sentence embeddings of `texts` by rust-bert's fp32 encoder and by this crate's forward pass (`int8`:
    /// quantised or not), for tests that pin the one to the other.
    #[cfg(feature = "testing")]
    pub fn compare_encoders(&self, texts: &[&str], int8: bool) -> Result<(Tensor, Tensor), ScoreError> {
        let model = self.model.lock().map_err(|_| ScoreError::Backend("poisoned".into()))?;
        let reference =
            model.encoder.encode_as_tensor(texts).map_err(|e| ScoreError::Backend(e.to_string()))?.embeddings;
        let own = Encoder::load(&self.model_dir, int8).map_err(|e| ScoreError::Backend(e.to_string()))?;
        let (ids, mask) = tokens(&model.encoder, texts);
        Ok((reference, own.embed(&ids, &mask)))
    }

    /// Class probabilities [texts, 3] for one sub-batch, in the order given, left on the model's device: the
    /// caller copies every sub-batch's at once, so on a GPU the next sub-batch is tokenised while the kernels
    /// of the previous ones still run (a copy per sub-batch would wait for each).
    fn probabilities(model: &Model, texts: &[&str]) -> Result<Tensor, ScoreError> {
        let backend = |e: &dyn std::fmt::Display| ScoreError::Backend(e.to_string());
        // tch's tensor operations panic on a libtorch error; one bad batch must come back as an error, not
        // unwind through the worker (and poison the model's lock).
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let emb = match &model.int8 {
                Some(enc) => {
                    let (ids, mask) = tokens(&model.encoder, texts);
                    enc.embed(&ids, &mask)
                }
                None => model.encoder.encode_as_tensor(texts).map(|o| o.embeddings).map_err(|e| backend(&e))?,
            };
            Ok(tch::no_grad(|| {
                (emb.to_kind(Kind::Float).matmul(&model.weight_t) + &model.bias).softmax(-1, Kind::Float)
            }))
        }))
        .map_err(|p| ScoreError::Backend(panic_message(p)))?
    }
}

/// Token ids and attention mask [texts, tokens] by rust-bert's tokenizer (its truncation and padding).
fn tokens(encoder: &SentenceEmbeddingsModel, texts: &[&str]) -> (Tensor, Tensor) {
    let t = encoder.tokenize(texts);
    (Tensor::stack(&t.tokens_ids, 0), Tensor::stack(&t.tokens_masks, 0))
}

fn load_head(path: &Path, dim: i64, device: Device) -> Result<(Tensor, Tensor), LoadError> {
    let bad = |msg: String| LoadError::BadFile { path: path.to_path_buf(), msg };
    let tensors = Tensor::read_safetensors(path).map_err(|e| bad(e.to_string()))?;
    let get = |name: &str| {
        tensors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.shallow_clone())
            .ok_or_else(|| bad(format!("no tensor named `{name}`")))
    };
    let (weight, bias) = (get("weight")?, get("bias")?);
    if weight.size() != [3, dim] || bias.size() != [3] {
        return Err(bad(format!(
            "expected weight [3, {dim}] and bias [3], found {:?} and {:?}",
            weight.size(),
            bias.size()
        )));
    }
    // Shipped as fp16 to stay small; computed in fp32 because the logits feed a softmax whose small differences
    // are the neg/pos scores.
    Ok((weight.to_kind(Kind::Float).tr().contiguous().to_device(device), bias.to_kind(Kind::Float).to_device(device)))
}

impl Scorer for TransformerScorer {
    fn name(&self) -> &'static str {
        "transformer"
    }

    /// all-MiniLM-L6-v2 was trained on English text, and the sentiment head on English tweets.
    fn languages(&self) -> &'static [&'static str] {
        &["en"]
    }

    fn score_batch(&self, texts: &[&str], out: &mut Vec<Sentiment>) -> Result<(), ScoreError> {
        if texts.is_empty() {
            return Ok(());
        }
        let model = self
            .model
            .lock()
            .map_err(|_| ScoreError::Backend("the model lock is poisoned by an earlier panic".into()))?;
        let spelled: Vec<Cow<'_, str>> = texts.iter().map(|t| spell_out_emoji(t)).collect();
        let spelled: Vec<&str> = spelled.iter().map(|t| t.as_ref()).collect();
        let order = length_order(&spelled);
        let mut sub: Vec<&str> = Vec::with_capacity(self.batch_size);
        let mut parts: Vec<Tensor> = Vec::with_capacity(order.len().div_ceil(self.batch_size));
        for chunk in order.chunks(self.batch_size) {
            sub.clear();
            sub.extend(chunk.iter().map(|&i| spelled[i]));
            parts.push(Self::probabilities(&model, &sub)?);
        }
        let flat = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Tensor::cat(&parts, 0).to_device(Device::Cpu).contiguous().view([-1])
        }))
        .map_err(|p| ScoreError::Backend(panic_message(p)))?;
        let flat = Vec::<f32>::try_from(&flat).map_err(|e| ScoreError::Backend(e.to_string()))?;
        if flat.len() != texts.len() * 3 {
            return Err(ScoreError::Backend(format!("model returned {} values for {} texts", flat.len(), texts.len())));
        }
        // Nothing is appended before every sub-batch succeeded: all or nothing, never a misaligned partial batch.
        let start = out.len();
        out.resize(start + texts.len(), to_sentiment([0.0, 1.0, 0.0]));
        for (&i, p) in order.iter().zip(flat.chunks_exact(3)) {
            out[start + i] = to_sentiment([p[0], p[1], p[2]]);
        }
        Ok(())
    }
}
