//! Hyperparameters from GGUF metadata, under the keys llama.cpp reads (`src/llama-model.cpp`, `load_hparams`).

use std::path::Path;

use super::ModelError;
use crate::gguf::GgufFile;

/// The architectures PocketLM runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// Llama 2/3, SmolLM, TinyLlama, Mistral: RoPE on adjacent pairs (the converter permuted q/k), optional
    /// `rope_freqs` (Llama 3 scaling), optional output matrix (tied embeddings).
    Llama,
    /// Qwen2 / Qwen2.5: q/k/v biases, NEOX RoPE (halves of the head rotate together).
    Qwen2,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
        }
    }
}

/// How RoPE pairs the dimensions of a head (ggml's `GGML_ROPE_TYPE_NORM` and `GGML_ROPE_TYPE_NEOX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeMode {
    /// Dimensions (2i, 2i+1) rotate by angle θ_i.
    Norm,
    /// Dimensions (i, i + n_rot/2) rotate by angle θ_i.
    Neox,
}

/// What the forward pass needs to know about a model's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct HParams {
    pub arch: Arch,
    /// Rows of `token_embd.weight`.
    pub n_vocab: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    /// Width of one attention head (keys, queries and values alike).
    pub head_dim: usize,
    pub n_ff: usize,
    /// Context length the model was trained for (`ARCH.context_length`): the largest context a session may ask for.
    pub n_ctx_train: usize,
    /// Dimensions of a head that RoPE rotates (`ARCH.rope.dimension_count`, default all).
    pub n_rot: usize,
    pub rope_mode: RopeMode,
    /// RoPE base θ (`ARCH.rope.freq_base`, default 10000).
    pub rope_theta: f32,
    /// Linear RoPE scaling: positions are multiplied by this (1 / `ARCH.rope.scaling.factor`; 1 without scaling).
    pub rope_freq_scale: f32,
    /// RMSNorm ε (`ARCH.attention.layer_norm_rms_epsilon`).
    pub eps: f32,
}

/// Limits on what metadata may ask for, so that a hostile file fails here instead of allocating without bound.
const MAX_WIDTH: usize = 1 << 20;
const MAX_LAYERS: usize = 4096;
const MAX_HEADS: usize = 1 << 14;

impl HParams {
    pub(super) fn read(f: &GgufFile) -> Result<HParams, ModelError> {
        let file = f.path();
        let arch_name = f.architecture().ok_or_else(|| missing(file, "general.architecture", "string"))?;
        let arch = match arch_name {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            other => return Err(ModelError::UnsupportedArchitecture { file: file.into(), arch: other.into() }),
        };
        let key = |k: &str| format!("{arch_name}.{k}");
        let get = |k: &str| -> Result<usize, ModelError> {
            let v = f.get_u64(&key(k)).ok_or_else(|| missing(file, &key(k), "unsigned integer"))?;
            usize::try_from(v).map_err(|_| bad(file, format!("{} = {v} is too large", key(k))))
        };
        let opt = |k: &str| f.get_u64(&key(k)).map(|v| usize::try_from(v).unwrap_or(usize::MAX));

        if opt("expert_count").is_some_and(|n| n > 0) {
            return Err(bad(file, format!("{arch_name} with a mixture of experts (Mixtral-style) is not supported")));
        }
        let n_embd = get("embedding_length")?;
        let n_layer = get("block_count")?;
        let n_head = get("attention.head_count")?;
        let n_head_kv = opt("attention.head_count_kv").unwrap_or(n_head);
        let n_ff = get("feed_forward_length")?;
        let n_ctx_train = get("context_length")?;
        let eps = f
            .get_f32(&key("attention.layer_norm_rms_epsilon"))
            .ok_or_else(|| missing(file, &key("attention.layer_norm_rms_epsilon"), "float"))?;
        for (what, v, max) in [
            ("embedding_length", n_embd, MAX_WIDTH),
            ("feed_forward_length", n_ff, MAX_WIDTH),
            ("block_count", n_layer, MAX_LAYERS),
            ("attention.head_count", n_head, MAX_HEADS),
            ("attention.head_count_kv", n_head_kv, MAX_HEADS),
        ] {
            if v == 0 || v > max {
                return Err(bad(file, format!("{} = {v} is outside 1..={max}", key(what))));
            }
        }
        if n_head % n_head_kv != 0 {
            return Err(bad(file, format!("{n_head} attention heads cannot share {n_head_kv} key/value heads evenly")));
        }
        if n_embd % n_head != 0 && opt("attention.key_length").is_none() {
            return Err(bad(file, format!("embedding width {n_embd} is not a multiple of {n_head} heads")));
        }
        let head_dim = opt("attention.key_length").unwrap_or(n_embd / n_head);
        if opt("attention.value_length").unwrap_or(head_dim) != head_dim {
            return Err(bad(file, "keys and values of different widths are not supported".into()));
        }
        if head_dim == 0 || head_dim > MAX_WIDTH / 4 || head_dim % 2 != 0 {
            return Err(bad(file, format!("head width {head_dim} must be even and at most {}", MAX_WIDTH / 4)));
        }
        let n_rot = opt("rope.dimension_count").unwrap_or(head_dim);
        if n_rot == 0 || n_rot > head_dim || n_rot % 2 != 0 {
            return Err(bad(
                file,
                format!("rope.dimension_count {n_rot} must be even and at most the head width {head_dim}"),
            ));
        }
        let rope_theta = f.get_f32(&key("rope.freq_base")).unwrap_or(10000.0);
        if !(rope_theta.is_finite() && rope_theta > 1.0) {
            return Err(bad(file, format!("rope.freq_base {rope_theta} must be a finite number above 1")));
        }
        let rope_freq_scale = match f.get_str(&key("rope.scaling.type")).unwrap_or("none") {
            "none" => 1.0,
            "linear" => {
                let factor = f.get_f32(&key("rope.scaling.factor")).unwrap_or(1.0);
                if !(factor.is_finite() && factor > 0.0) {
                    return Err(bad(file, format!("rope.scaling.factor {factor} must be positive")));
                }
                1.0 / factor
            }
            other => return Err(bad(file, format!("RoPE scaling {other:?} is not supported (none and linear are)"))),
        };
        if !(eps.is_finite() && eps > 0.0) {
            return Err(bad(file, format!("layer_norm_rms_epsilon {eps} must be positive")));
        }
        let n_vocab = match f.tensor("token_embd.weight") {
            Some(t) if t.dims.len() == 2 => usize::try_from(t.dims[1]).unwrap_or(usize::MAX),
            _ => return Err(ModelError::MissingTensor { file: file.into(), tensor: "token_embd.weight".into() }),
        };
        if n_vocab == 0 || n_vocab > u32::MAX as usize {
            return Err(bad(file, format!("vocabulary of {n_vocab} tokens")));
        }
        let rope_mode = match arch {
            Arch::Llama => RopeMode::Norm,
            Arch::Qwen2 => RopeMode::Neox,
        };
        Ok(HParams {
            arch,
            n_vocab,
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            head_dim,
            n_ff,
            n_ctx_train,
            n_rot,
            rope_mode,
            rope_theta,
            rope_freq_scale,
            eps,
        })
    }

    /// Width of all query heads together.
    /// Bytes of a KV cache of `n_ctx` positions with elements of `elem_bytes` (keys and values, every layer).
    pub fn kv_bytes(&self, n_ctx: usize, elem_bytes: usize) -> u64 {
        2 * (self.n_layer * self.n_head_kv * self.head_dim) as u64 * n_ctx as u64 * elem_bytes as u64
    }

    pub fn n_q(&self) -> usize {
        self.n_head * self.head_dim
    }
    /// Width of all key (or value) heads together.
    pub fn n_kv(&self) -> usize {
        self.n_head_kv * self.head_dim
    }
}

fn missing(file: &Path, key: &str, expected: &'static str) -> ModelError {
    ModelError::MissingKey { file: file.into(), key: key.into(), expected }
}

fn bad(file: &Path, reason: String) -> ModelError {
    ModelError::BadHParams { file: file.into(), reason }
}
