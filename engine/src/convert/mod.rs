//! Hugging Face checkpoint → GGUF description, as llama.cpp's `convert_hf_to_gguf.py` would write it (llama.cpp
//! from llama-cpp-python 0.3.36; `LlamaModel`, `Qwen2Model`, `TextModel`, gguf-py `SpecialVocab`).
//!
//! [`plan`] reads configs, tokenizer and safetensors headers — never weights — and returns a [`ConversionPlan`]:
//! every metadata key in the converter's order, and every tensor with its GGUF name, GGUF dims (`ne`, innermost
//! first) and where its data comes from. [`load_tensor`] then produces one tensor's f32 data in GGUF layout,
//! transform applied, so a writer can stream a model tensor by tensor:
//!
//! - names: `model.embed_tokens` → `token_embd`, `model.layers.N.self_attn.q_proj` → `blk.N.attn_q`, … ([`names`]);
//! - Llama q/k rows are permuted from Hugging Face's rotate-half RoPE layout to llama.cpp's adjacent pairs
//!   ([`permute_rows`]); Qwen2 uses NEOX RoPE and is left alone;
//! - Llama 3.1+ (`rope_type: llama3`) gets a generated F32 `rope_freqs.weight` [head_dim/2], first ([`rope`]);
//! - tied embeddings: `output.weight` exists only when the checkpoint has `lm_head.weight`;
//! - tensors come in the converter's order: generated first, then shards by file name, tensors by name.

pub mod metadata;
pub mod names;
mod pre_hashes;
pub mod rope;
mod sha256;
pub mod vocab;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::hf::{Checkpoint, Dtype, HParams, HfError};
pub use metadata::{MetaValue, Metadata};
use names::{Mapping, Role};

/// Model architectures we convert, by their GGUF name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Architecture {
    /// `llama`: Llama 1–3, SmolLM/SmolLM2, TinyLlama, Mistral-style dense models.
    Llama,
    /// `qwen2`: Qwen1.5, Qwen2, Qwen2.5.
    Qwen2,
}

/// Hugging Face `architectures[0]` values we accept, and what they convert to. `LlamaModel` and `Qwen2Model`
/// (headless checkpoints, names without `model.`) are not included.
pub const SUPPORTED: &[(&str, Architecture)] = &[
    ("LlamaForCausalLM", Architecture::Llama),
    ("LLaMAForCausalLM", Architecture::Llama),
    ("MistralForCausalLM", Architecture::Llama),
    ("Qwen2ForCausalLM", Architecture::Qwen2),
];

impl Architecture {
    pub fn from_hf(name: &str) -> Option<Architecture> {
        SUPPORTED.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
    }

    /// `general.architecture`, and the prefix of the architecture's keys.
    pub fn gguf_name(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
        }
    }

    /// Whether q/k rows are permuted (`LlamaModel.undo_permute`).
    pub fn permutes_qk(self) -> bool {
        self == Architecture::Llama
    }
}

/// What can go wrong planning or loading a conversion.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(transparent)]
    Hf(#[from] HfError),

    #[error("{}: architecture {found:?} is not supported (supported: {})", file.display(), supported_list())]
    UnsupportedArchitecture { file: PathBuf, found: String },

    #[error("{}: no \"architectures\" entry (supported: {})", file.display(), supported_list())]
    NoArchitecture { file: PathBuf },

    #[error("tensor {tensor:?} (in {}) has no GGUF name for this architecture", file.display())]
    UnknownTensor { file: PathBuf, tensor: String },

    #[error("{}: tensor {tensor:?} is missing", dir.display())]
    MissingTensor { dir: PathBuf, tensor: String },

    #[error("tensor {tensor:?} (in {}) has shape {found:?}, but config.json implies {expected:?}", file.display())]
    Shape { file: PathBuf, tensor: String, found: Vec<u64>, expected: Vec<u64> },

    #[error("tensors {first:?} and {second:?} both map to {gguf:?}")]
    DuplicateTensor { gguf: String, first: String, second: String },

    #[error("{}: {reason}", file.display())]
    Tokenizer { file: PathBuf, reason: String },

    #[error("{}: {reason}", file.display())]
    UnsupportedTokenizer { file: PathBuf, reason: String },

    #[error(
        "{}: BPE pre-tokenizer not recognized (fingerprint {hash}); llama.cpp's converter refuses it too, as its \
         pre-tokenizer would be unknown to llama.cpp",
        file.display()
    )]
    UnknownPreTokenizer { file: PathBuf, hash: String },

    #[error("tensor {tensor:?} (from {source_name:?}) has a non-finite value {value} at element {index}")]
    NonFinite { tensor: String, source_name: String, index: u64, value: f32 },
}

fn supported_list() -> String {
    SUPPORTED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// How a tensor's data is made.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// A checkpoint tensor, widened to f32, then transformed.
    Checkpoint { name: String, dtype: Dtype, transform: Transform },
    /// Computed by the converter (`rope_freqs.weight`).
    Generated(Vec<f32>),
}

/// Row transform applied to a checkpoint tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    None,
    /// Llama q/k: rows regrouped per head from rotate-half to adjacent-pair order. `n_head` is the head count
    /// of this projection (the KV head count for k).
    PermuteRows { n_head: u64 },
}

/// One tensor of the GGUF file to be.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedTensor {
    /// GGUF name (`blk.0.attn_q.weight`).
    pub name: String,
    /// GGUF dims, `ne` order: `dims[0]` is the row length.
    pub dims: Vec<u64>,
    pub source: Source,
}

impl PlannedTensor {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// The checkpoint dtype, or `None` for generated tensors.
    pub fn source_dtype(&self) -> Option<Dtype> {
        match &self.source {
            Source::Checkpoint { dtype, .. } => Some(*dtype),
            Source::Generated(_) => None,
        }
    }
}

/// Everything needed to write the GGUF, except the weights themselves.
#[derive(Clone, Debug)]
pub struct ConversionPlan {
    pub arch: Architecture,
    pub hparams: HParams,
    /// Keys in the converter's order. `general.file_type` holds what `--outtype auto` would pick (BF16 32, F16 1);
    /// a quantizing writer overwrites it in place with [`Metadata::set`].
    pub metadata: Metadata,
    pub tensors: Vec<PlannedTensor>,
}

impl ConversionPlan {
    /// Parameter count as gguf-py counts it (every tensor's elements, `rope_freqs` included).
    pub fn total_params(&self) -> u64 {
        self.tensors.iter().map(PlannedTensor::n_elements).sum()
    }
}

/// The PyTorch-order shape a tensor of `role` must have.
fn expected_shape(role: Role, bias: bool, hp: &HParams) -> Vec<u64> {
    let q = hp.n_head * hp.head_dim;
    let kv = hp.n_head_kv * hp.head_dim;
    let (rows, cols) = match role {
        Role::TokenEmbd | Role::Output => (hp.vocab_size, hp.hidden_size),
        Role::OutputNorm | Role::AttnNorm | Role::FfnNorm => return vec![hp.hidden_size],
        Role::AttnQ => (q, hp.hidden_size),
        Role::AttnK | Role::AttnV => (kv, hp.hidden_size),
        Role::AttnOutput => (hp.hidden_size, q),
        Role::FfnGate | Role::FfnUp => (hp.intermediate_size, hp.hidden_size),
        Role::FfnDown => (hp.hidden_size, hp.intermediate_size),
    };
    if bias {
        vec![rows]
    } else {
        vec![rows, cols]
    }
}

/// Plans the conversion of `ckpt`: reads configs, tokenizer files and safetensors headers, no weights.
pub fn plan(ckpt: &Checkpoint) -> Result<ConversionPlan, ConvertError> {
    let cfg = ckpt.config();
    let cfg_path = ckpt.config_path().to_path_buf();
    let hf_arch = cfg.architecture().ok_or_else(|| ConvertError::NoArchitecture { file: cfg_path.clone() })?;
    let arch = Architecture::from_hf(hf_arch)
        .ok_or_else(|| ConvertError::UnsupportedArchitecture { file: cfg_path.clone(), found: hf_arch.to_string() })?;
    let hp = cfg.hparams(&cfg_path)?;

    // Tensors, in the converter's order.
    let mut tensors = Vec::new();
    if arch == Architecture::Llama {
        if let Some(freqs) = rope::llama3_rope_freqs(&hp.rope, hp.head_dim) {
            tensors.push(PlannedTensor {
                name: "rope_freqs.weight".into(),
                dims: vec![freqs.len() as u64],
                source: Source::Generated(freqs),
            });
        }
    }
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut first_2d_dtype = None;
    for hf_name in ckpt.tensor_names() {
        let (file, info) = ckpt.tensor_info(hf_name).expect("listed by the checkpoint");
        if first_2d_dtype.is_none() && info.shape.len() >= 2 && info.dtype != Dtype::F32 {
            first_2d_dtype = Some(info.dtype);
        }
        let Some(filtered) = names::filter_name(hf_name, arch == Architecture::Llama) else { continue };
        let mapped = match names::map_name(&filtered, hp.n_layers) {
            Mapping::Tensor(m) => m,
            Mapping::Skip => continue,
            Mapping::Unknown => {
                return Err(ConvertError::UnknownTensor { file: file.path().to_path_buf(), tensor: hf_name.clone() })
            }
        };
        let expected = expected_shape(mapped.role, mapped.bias, &hp);
        if info.shape != expected {
            return Err(ConvertError::Shape {
                file: file.path().to_path_buf(),
                tensor: hf_name.clone(),
                found: info.shape.clone(),
                expected,
            });
        }
        if let Some(first) = seen.insert(mapped.gguf_name.clone(), hf_name.clone()) {
            return Err(ConvertError::DuplicateTensor { gguf: mapped.gguf_name, first, second: hf_name.clone() });
        }
        let transform = match mapped.role {
            Role::AttnQ if arch.permutes_qk() => Transform::PermuteRows { n_head: hp.n_head },
            Role::AttnK if arch.permutes_qk() => Transform::PermuteRows { n_head: hp.n_head_kv },
            _ => Transform::None,
        };
        tensors.push(PlannedTensor {
            name: mapped.gguf_name,
            dims: info.shape.iter().rev().copied().collect(),
            source: Source::Checkpoint { name: hf_name.clone(), dtype: info.dtype, transform },
        });
    }
    // Every block needs its weights (biases are optional; output.weight is absent when embeddings are tied).
    let mut required = vec!["token_embd.weight".to_string(), "output_norm.weight".to_string()];
    for i in 0..hp.n_layers {
        for t in ["attn_norm", "ffn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"] {
            required.push(format!("blk.{i}.{t}.weight"));
        }
    }
    for r in required {
        if !seen.contains_key(&r) {
            return Err(ConvertError::MissingTensor { dir: ckpt.dir().to_path_buf(), tensor: r });
        }
    }

    let total_params: u64 = tensors.iter().map(PlannedTensor::n_elements).sum();
    let metadata = build_metadata(ckpt, arch, &hp, total_params, first_2d_dtype)?;
    Ok(ConversionPlan { arch, hparams: hp, metadata, tensors })
}

/// `llama.cpp`'s file type numbers for what `--outtype auto` picks from the first 2-D non-F32 tensor.
fn auto_file_type(first_2d: Option<Dtype>) -> u32 {
    match first_2d {
        Some(Dtype::BF16) => 32, // MOSTLY_BF16
        _ => 1,                  // MOSTLY_F16, also the fallback
    }
}

fn build_metadata(
    ckpt: &Checkpoint,
    arch: Architecture,
    hp: &HParams,
    total_params: u64,
    first_2d: Option<Dtype>,
) -> Result<Metadata, ConvertError> {
    let a = arch.gguf_name();
    let k = |s: &str| format!("{a}.{s}");
    let u32_of = |what: &str, v: u64| {
        u32::try_from(v).map_err(|_| HfError::Config {
            file: ckpt.config_path().to_path_buf(),
            reason: format!("{what} {v} does not fit the u32 GGUF field"),
        })
    };
    let mut m = Metadata::default();
    m.set("general.architecture", MetaValue::String(a.into()));
    m.set("general.type", MetaValue::String("model".into()));

    // Sampling defaults from generation_config.json (Metadata.load).
    if let Some(g) = ckpt.generation_config() {
        let int = |key: &str| g.get(key).and_then(|v| v.as_i64()).and_then(|v| i32::try_from(v).ok());
        let float = |key: &str| g.get(key).and_then(|v| v.as_f64()).map(|v| v as f32);
        if let Some(s) = g.get("sequence").and_then(|v| v.as_str()) {
            m.set("general.sampling.sequence", MetaValue::String(s.into()));
        }
        let penalty_repeat = float("penalty_repeat").or_else(|| float("repetition_penalty"));
        let fields: [(&str, Option<MetaValue>); 11] = [
            ("top_k", int("top_k").map(MetaValue::I32)),
            ("top_p", float("top_p").map(MetaValue::F32)),
            ("min_p", float("min_p").map(MetaValue::F32)),
            ("xtc_probability", float("xtc_probability").map(MetaValue::F32)),
            ("xtc_threshold", float("xtc_threshold").map(MetaValue::F32)),
            ("temp", float("temperature").map(MetaValue::F32)),
            ("penalty_last_n", int("penalty_last_n").map(MetaValue::I32)),
            ("penalty_repeat", penalty_repeat.map(MetaValue::F32)),
            ("mirostat", int("mirostat").map(MetaValue::I32)),
            ("mirostat_tau", float("mirostat_tau").map(MetaValue::F32)),
            ("mirostat_eta", float("mirostat_eta").map(MetaValue::F32)),
        ];
        for (key, v) in fields {
            if let Some(v) = v {
                m.set(&format!("general.sampling.{key}"), v);
            }
        }
    }

    let folder_id = match ckpt.repo_id() {
        Some(id) => id.to_string(),
        None => ckpt.dir().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
    };
    metadata::general_naming(ckpt.config().name_or_path.as_deref(), &folder_id, total_params, &mut m);

    // TextModel.set_gguf_parameters.
    m.set(&k("block_count"), MetaValue::U32(u32_of("num_hidden_layers", hp.n_layers)?));
    m.set(&k("context_length"), MetaValue::U32(u32_of("max_position_embeddings", hp.max_position_embeddings)?));
    m.set(&k("embedding_length"), MetaValue::U32(u32_of("hidden_size", hp.hidden_size)?));
    m.set(&k("feed_forward_length"), MetaValue::U32(u32_of("intermediate_size", hp.intermediate_size)?));
    m.set(&k("attention.head_count"), MetaValue::U32(u32_of("num_attention_heads", hp.n_head)?));
    m.set(&k("attention.head_count_kv"), MetaValue::U32(u32_of("num_key_value_heads", hp.n_head_kv)?));
    let rope = &hp.rope;
    match rope.rope_type.as_deref() {
        Some("linear") if rope.factor.is_some() => {
            m.set(&k("rope.scaling.type"), MetaValue::String("linear".into()));
            m.set(&k("rope.scaling.factor"), MetaValue::F32(rope.factor.unwrap_or(1.0) as f32));
        }
        Some("yarn") if rope.factor.is_some() => {
            m.set(&k("rope.scaling.type"), MetaValue::String("yarn".into()));
            m.set(&k("rope.scaling.factor"), MetaValue::F32(rope.factor.unwrap_or(1.0) as f32));
            let orig = rope.original_max_position_embeddings.ok_or_else(|| HfError::Config {
                file: ckpt.config_path().to_path_buf(),
                reason: "yarn rope scaling without original_max_position_embeddings".into(),
            })?;
            m.set(&k("rope.scaling.original_context_length"), MetaValue::U32(u32_of("original_max_position_embeddings", orig)?));
            for (key, v) in [
                ("rope.scaling.yarn_ext_factor", rope.extrapolation_factor),
                ("rope.scaling.yarn_attn_factor", rope.attention_factor),
                ("rope.scaling.yarn_beta_fast", rope.beta_fast),
                ("rope.scaling.yarn_beta_slow", rope.beta_slow),
            ] {
                if let Some(v) = v {
                    m.set(&k(key), MetaValue::F32(v as f32));
                }
            }
        }
        Some("su") | Some("longrope") => m.set(&k("rope.scaling.type"), MetaValue::String("longrope".into())),
        _ => {} // llama3 becomes rope_freqs.weight; dynamic, default and unknown types write nothing.
    }
    if let Some(theta) = rope.rope_theta {
        m.set(&k("rope.freq_base"), MetaValue::F32(theta as f32));
    }
    m.set(&k("attention.layer_norm_rms_epsilon"), MetaValue::F32(hp.rms_norm_eps as f32));
    let cfg = ckpt.config();
    if let Some(eps) = ["layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"].iter().find_map(|key| cfg.raw_f64(key)) {
        m.set(&k("attention.layer_norm_epsilon"), MetaValue::F32(eps as f32));
    }
    if let Some(hd) = hp.head_dim_field {
        m.set(&k("attention.key_length"), MetaValue::U32(u32_of("head_dim", hd)?));
        m.set(&k("attention.value_length"), MetaValue::U32(u32_of("head_dim", hd)?));
    }
    m.set("general.file_type", MetaValue::U32(auto_file_type(first_2d)));
    if arch == Architecture::Llama {
        m.set(&k("vocab_size"), MetaValue::U32(u32_of("vocab_size", hp.vocab_size)?));
        m.set(&k("rope.dimension_count"), MetaValue::U32(u32_of("head_dim", hp.head_dim)?));
    }
    m.set("general.quantization_version", MetaValue::U32(2));

    vocab::add_vocab(ckpt, arch, hp.vocab_size, &mut m)?;
    Ok(m)
}

/// Rearranges rows of a row-major `[rows, cols]` tensor from Hugging Face's rotate-half order to llama.cpp's
/// adjacent-pair order: viewing rows as `(n_head, 2, head_dim/2)`, swap the last two axes. Row `t*half + j` of
/// each head moves to row `2j + t`. Port of `LlamaModel.permute`.
pub fn permute_rows(data: &mut [f32], rows: usize, cols: usize, n_head: usize) {
    assert!(n_head > 0 && rows % (2 * n_head) == 0 && data.len() == rows * cols, "shape checked at plan time");
    let head_dim = rows / n_head;
    let half = head_dim / 2;
    let mut head = vec![0f32; head_dim * cols];
    for block in data.chunks_exact_mut(head_dim * cols) {
        head.copy_from_slice(block);
        for j in 0..half {
            for t in 0..2 {
                let src = (t * half + j) * cols;
                let dst = (2 * j + t) * cols;
                block[dst..dst + cols].copy_from_slice(&head[src..src + cols]);
            }
        }
    }
}

/// Produces one planned tensor's f32 data in GGUF layout into `out`, and checks every value is finite.
pub fn load_tensor(ckpt: &Checkpoint, t: &PlannedTensor, out: &mut Vec<f32>) -> Result<(), ConvertError> {
    let (name, transform) = match &t.source {
        Source::Generated(v) => {
            out.clear();
            out.extend_from_slice(v);
            return Ok(());
        }
        Source::Checkpoint { name, transform, .. } => (name, *transform),
    };
    let info = ckpt.read_f32(name, out)?;
    if let Transform::PermuteRows { n_head } = transform {
        let rows = info.shape[0] as usize;
        let cols = info.shape[1..].iter().product::<u64>() as usize;
        permute_rows(out, rows, cols, n_head as usize);
    }
    if let Some(i) = out.iter().position(|v| !v.is_finite()) {
        return Err(ConvertError::NonFinite {
            tensor: t.name.clone(),
            source_name: name.clone(),
            index: i as u64,
            value: out[i],
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_pairs_halves() {
        // One head of dim 4, 1 column: rows [a0 a1 | b0 b1] (rotate-half) → [a0 b0 a1 b1] (adjacent pairs).
        let mut d = vec![0.0, 1.0, 10.0, 11.0, 2.0, 3.0, 12.0, 13.0];
        permute_rows(&mut d, 8, 1, 2);
        assert_eq!(d, [0.0, 10.0, 1.0, 11.0, 2.0, 12.0, 3.0, 13.0]);
        // Two columns move together.
        let mut d = vec![1.0, 1.5, 2.0, 2.5];
        permute_rows(&mut d, 2, 2, 1);
        assert_eq!(d, [1.0, 1.5, 2.0, 2.5]);
    }

    #[test]
    fn architectures() {
        assert_eq!(Architecture::from_hf("MistralForCausalLM"), Some(Architecture::Llama));
        assert_eq!(Architecture::from_hf("Qwen2ForCausalLM").map(Architecture::gguf_name), Some("qwen2"));
        assert_eq!(Architecture::from_hf("GPT2LMHeadModel"), None);
        let e = ConvertError::UnsupportedArchitecture { file: "c.json".into(), found: "GPT2LMHeadModel".into() };
        let s = e.to_string();
        assert!(s.contains("GPT2LMHeadModel") && s.contains("LlamaForCausalLM") && s.contains("Qwen2ForCausalLM"));
    }
}
