//! The encoder's forward pass with int8 weights, for the CPU.
//!
//! rust-bert runs BERT's linear layers in fp32, and so does the Python pipeline: both spend their time in the
//! same libtorch matrix products, which is why the fp32 backend is no faster than Python. About 95% of MiniLM's
//! arithmetic is in its 36 linear layers, and FBGEMM (inside every x86 libtorch) multiplies 8-bit integers
//! several times faster than floats (VNNI). So this module runs the same BERT (post-layer-norm, exact GELU,
//! mean pooling, L2 normalisation: what sentence-transformers' all-MiniLM-L6-v2 is) with each linear layer's
//! weights quantised once at load (per output row: each row scaled to [-1, 1], then FBGEMM's per-tensor
//! asymmetric parameters, and the product scaled back; see [`Linear::I8`]) and its activations
//! quantised per call (`fbgemm_linear_int8_weight_fp32_activation`: dynamic quantisation). Embeddings, layer
//! norms, attention products and softmax stay in fp32. Tokenisation stays rust-bert's.
//!
//! The same code runs in fp32 ([`Linear::F32`]), which is how a test pins this forward pass to rust-bert's.

use crate::model::LoadError;
use std::path::Path;
use tch::{Kind, Tensor};

/// One linear layer, `y = x Wᵀ + b`.
pub enum Linear {
    F32 {
        weight: Tensor,
        bias: Tensor,
    },
    I8 {
        weight: Tensor,
        packed: Tensor,
        col_offsets: Tensor,
        scale: f64,
        zero_point: i64,
        /// Each output row's scale: the weights are quantised as `W / row_scale` (every row spanning [-1, 1]),
        /// and the product is scaled back per output. FBGEMM's op takes one scale per tensor; one row with large
        /// weights would otherwise leave the small rows of the same matrix a few levels (per-channel quantisation
        /// by a diagonal factor: (x · (W/s)ᵀ) ⊙ s = x · Wᵀ).
        row_scale: Tensor,
        bias: Tensor,
        zero_bias: Tensor,
    },
}

impl Linear {
    /// Quantises `weight` ([out, in], fp32) to int8: each row divided by its largest magnitude, then the whole
    /// as FBGEMM's `fbgemm_linear_quantize_weight` does (checked to give the same bytes, scale and zero point):
    /// the range [min(w, 0), max(w, 0)] mapped onto [-128, 127], the zero point nudged to an integer from
    /// whichever end loses less. The row scales make it per-channel quantisation, which FBGEMM's dynamic op
    /// does not offer: on the fine-tuned model TweetEval macro recall 0.7353 → 0.7457 (fp32: 0.7414), for
    /// 5-7% of int8 throughput (the extra pass over each output).
    pub fn int8(weight: &Tensor, bias: Tensor) -> Linear {
        let w = weight.to_kind(Kind::Float).contiguous();
        let row_scale = w.abs().amax([1i64].as_slice(), false).clamp_min(1e-12);
        let w = (&w / row_scale.unsqueeze(1)).contiguous();
        let (lo, hi) = (w.min().double_value(&[]).min(0.0), w.max().double_value(&[]).max(0.0));
        let (qmin, qmax) = (-128.0f64, 127.0f64);
        let scale = if hi > lo { (hi - lo) / (qmax - qmin) } else { 1.0 };
        let (from_min, from_max) = (qmin - lo / scale, qmax - hi / scale);
        let (err_min, err_max) = (qmin.abs() + (lo / scale).abs(), qmax.abs() + (hi / scale).abs());
        let zero_point = (if err_min < err_max { from_min } else { from_max }).round().clamp(qmin, qmax) as i64;
        let q = ((&w / scale).round() + zero_point as f64).clamp(qmin, qmax).to_kind(Kind::Int8).contiguous();
        let k = w.size()[1];
        // Σ_k W_q[j, k] − K·zp per output j: the correction term FBGEMM's requantisation expects.
        let col_offsets = (q.to_kind(Kind::Int).sum_dim_intlist(Some(&[1i64][..]), false, Kind::Int) - zero_point * k)
            .to_kind(Kind::Int)
            .contiguous();
        // The packed copy is FBGEMM's own layout, held by the tensor; `q` is kept because the op takes both.
        let packed = q.copy().fbgemm_pack_quantized_matrix();
        let bias = bias.to_kind(Kind::Float).contiguous();
        let zero_bias = bias.zeros_like();
        Linear::I8 { weight: q, packed, col_offsets, scale, zero_point, row_scale, bias, zero_bias }
    }

    /// `x`: [batch, tokens, in]; `lengths`: each text's real tokens. The int8 path quantises each text's
    /// activations on their own (its real tokens only), so a text's result does not depend on the texts it is
    /// batched with or on their padding; the padded rows of the output are zeros (attention masks them out and
    /// pooling skips them).
    pub fn forward(&self, x: &Tensor, lengths: &[i64]) -> Tensor {
        match self {
            Linear::F32 { weight, bias } => x.linear(weight, Some(bias)),
            Linear::I8 { weight, packed, col_offsets, scale, zero_point, row_scale, bias, zero_bias } => {
                let t = x.size()[1];
                let rows: Vec<Tensor> = lengths
                    .iter()
                    .enumerate()
                    .map(|(b, &len)| {
                        let y =
                            x.get(b as i64).narrow(0, 0, len).contiguous().fbgemm_linear_int8_weight_fp32_activation(
                                weight,
                                packed,
                                col_offsets,
                                // The op wants a floating scale and an integral zero point (one generic type for both).
                                tch::Scalar::float(*scale),
                                tch::Scalar::int(*zero_point),
                                zero_bias,
                            );
                        // bias + y ⊙ row_scale in one pass over the output.
                        let y = bias.addcmul(&y, row_scale);
                        if len < t {
                            y.constant_pad_nd([0, 0, 0, t - len])
                        } else {
                            y
                        }
                    })
                    .collect();
                Tensor::stack(&rows, 0)
            }
        }
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor, eps: f64) -> Tensor {
        x.layer_norm([self.weight.size()[0]], Some(&self.weight), Some(&self.bias), eps, false)
    }
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// The parts of `config.json` the forward pass needs.
#[derive(serde::Deserialize)]
struct BertConfig {
    hidden_size: i64,
    num_attention_heads: i64,
    num_hidden_layers: usize,
    layer_norm_eps: f64,
    hidden_act: String,
    #[serde(default = "absolute")]
    position_embedding_type: String,
}

fn absolute() -> String {
    "absolute".into()
}

/// A BERT encoder with sentence-transformers' mean pooling and normalisation, on the CPU.
pub struct Encoder {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: i64,
    eps: f64,
}

impl Encoder {
    /// Loads `model.safetensors` and `config.json` from `dir`; `int8` quantises every linear layer.
    pub fn load(dir: &Path, int8: bool) -> Result<Encoder, LoadError> {
        let cfg_path = dir.join("config.json");
        let bad = |path: &Path, msg: String| LoadError::BadFile { path: path.to_path_buf(), msg };
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| bad(&cfg_path, e.to_string()))?;
        let cfg: BertConfig = serde_json::from_str(&text).map_err(|e| bad(&cfg_path, e.to_string()))?;
        if cfg.hidden_act != "gelu"
            || cfg.position_embedding_type != "absolute"
            || cfg.hidden_size % cfg.num_attention_heads != 0
        {
            return Err(bad(
                &cfg_path,
                format!(
                    "the int8 encoder implements BERT with hidden_act \"gelu\" and absolute positions (found {:?}, {:?}, {} heads of {}); use scorer.precision = \"fp32\"",
                    cfg.hidden_act, cfg.position_embedding_type, cfg.num_attention_heads, cfg.hidden_size
                ),
            ));
        }
        let weights_path = dir.join("model.safetensors");
        let tensors = Tensor::read_safetensors(&weights_path).map_err(|e| bad(&weights_path, e.to_string()))?;
        let mut w = Weights { by_name: tensors.into_iter().collect(), path: &weights_path, int8 };
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            layers.push(Layer {
                query: w.linear(&format!("{p}.attention.self.query"))?,
                key: w.linear(&format!("{p}.attention.self.key"))?,
                value: w.linear(&format!("{p}.attention.self.value"))?,
                attention_out: w.linear(&format!("{p}.attention.output.dense"))?,
                attention_norm: LayerNorm {
                    weight: w.take(&format!("{p}.attention.output.LayerNorm.weight"))?,
                    bias: w.take(&format!("{p}.attention.output.LayerNorm.bias"))?,
                },
                intermediate: w.linear(&format!("{p}.intermediate.dense"))?,
                output: w.linear(&format!("{p}.output.dense"))?,
                output_norm: LayerNorm {
                    weight: w.take(&format!("{p}.output.LayerNorm.weight"))?,
                    bias: w.take(&format!("{p}.output.LayerNorm.bias"))?,
                },
            });
        }
        Ok(Encoder {
            word: w.take("embeddings.word_embeddings.weight")?,
            position: w.take("embeddings.position_embeddings.weight")?,
            token_type: w.take("embeddings.token_type_embeddings.weight")?,
            embedding_norm: LayerNorm {
                weight: w.take("embeddings.LayerNorm.weight")?,
                bias: w.take("embeddings.LayerNorm.bias")?,
            },
            layers,
            heads: cfg.num_attention_heads,
            eps: cfg.layer_norm_eps,
        })
    }

    /// Sentence embeddings [batch, hidden] for token ids and attention mask [batch, tokens] (i64, 1 = real token).
    pub fn embed(&self, ids: &Tensor, mask: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let (b, t) = (ids.size()[0], ids.size()[1]);
            let positions = Tensor::arange(t, (Kind::Int64, ids.device()));
            let x = ids.embedding_ext(&self.word)
                + positions.embedding_ext(&self.position).unsqueeze(0)
                + self.token_type.get(0);
            let mut x = self.embedding_norm.forward(&x, self.eps);
            let hidden = x.size()[2];
            let d = hidden / self.heads;
            // Padding keys get a large negative score, as in BERT: they vanish in the softmax.
            let key_mask = ((mask.to_kind(Kind::Float) - 1.0) * 10000.0).view([b, 1, 1, t]);
            let scale = 1.0 / (d as f64).sqrt();
            let lengths: Vec<i64> =
                Vec::<i64>::try_from(mask.sum_dim_intlist(Some(&[1i64][..]), false, Kind::Int64)).expect("a 2-d mask");
            // A text of no tokens cannot happen (the tokenizer adds [CLS] and [SEP]), but one row of zero length
            // would make an empty matrix: give it one.
            let lengths: Vec<i64> = lengths.into_iter().map(|n| n.max(1)).collect();
            for l in &self.layers {
                let split = |y: Tensor| y.view([b, t, self.heads, d]).transpose(1, 2);
                let (q, k, v) = (
                    split(l.query.forward(&x, &lengths)),
                    split(l.key.forward(&x, &lengths)),
                    split(l.value.forward(&x, &lengths)),
                );
                let probs = (q.matmul(&k.transpose(-1, -2)) * scale + &key_mask).softmax(-1, Kind::Float);
                let context = probs.matmul(&v).transpose(1, 2).contiguous().view([b, t, hidden]);
                let a = l.attention_norm.forward(&(l.attention_out.forward(&context, &lengths) + &x), self.eps);
                let i = l.intermediate.forward(&a, &lengths).gelu("none");
                x = l.output_norm.forward(&(l.output.forward(&i, &lengths) + &a), self.eps);
            }
            let m = mask.to_kind(Kind::Float).unsqueeze(-1);
            let pooled = (x * &m).sum_dim_intlist(Some(&[1i64][..]), false, Kind::Float)
                / m.sum_dim_intlist(Some(&[1i64][..]), false, Kind::Float).clamp_min(1e-9);
            let norm = pooled.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12);
            pooled / norm
        })
    }
}

/// The checkpoint's tensors, taken by name.
struct Weights<'a> {
    by_name: std::collections::HashMap<String, Tensor>,
    path: &'a Path,
    int8: bool,
}

impl Weights<'_> {
    fn take(&mut self, name: &str) -> Result<Tensor, LoadError> {
        // Checkpoints saved from BertModel have no prefix; from a task model they have "bert.".
        self.by_name
            .remove(name)
            .or_else(|| self.by_name.remove(&format!("bert.{name}")))
            .map(|t| t.to_kind(Kind::Float))
            .ok_or_else(|| LoadError::BadFile {
                path: self.path.to_path_buf(),
                msg: format!("no tensor named `{name}`"),
            })
    }

    fn linear(&mut self, prefix: &str) -> Result<Linear, LoadError> {
        let (w, b) = (self.take(&format!("{prefix}.weight"))?, self.take(&format!("{prefix}.bias"))?);
        Ok(if self.int8 { Linear::int8(&w, b) } else { Linear::F32 { weight: w, bias: b } })
    }
}

/// `embedding` with the argument order of a lookup table.
trait EmbeddingExt {
    fn embedding_ext(&self, table: &Tensor) -> Tensor;
}

impl EmbeddingExt for Tensor {
    fn embedding_ext(&self, table: &Tensor) -> Tensor {
        Tensor::embedding(table, self, -1, false, false)
    }
}
