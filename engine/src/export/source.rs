//! The GGUF side of an export: hyperparameters from the `{arch}.*` keys, and every tensor with its Hugging Face
//! name, shape and the row transform that undoes the converter's.
//!
//! Names come from the converter's own table ([`crate::convert::names::map_name`]): we list the Hugging Face names a
//! Llama or Qwen2 checkpoint can have, map each forward, and invert — so the two directions cannot drift apart.

use std::collections::{BTreeSet, HashMap};

use super::ExportError;
use crate::convert::names::{map_name, Mapping, Role};
use crate::convert::Architecture;
use crate::gguf::{GgufFile, TensorInfo};
use crate::hf::config::MAX_LAYERS;

/// The tensor llama.cpp's converter generates for Llama 3.1+ RoPE scaling; it becomes `rope_scaling` in config.json.
pub const ROPE_FREQS: &str = "rope_freqs.weight";

/// Hyperparameters of the model, as a Hugging Face config states them.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelParams {
    /// Rows of `token_embd.weight` (the config's `vocab_size`).
    pub n_vocab: u64,
    pub hidden_size: u64,
    pub intermediate_size: u64,
    pub n_layers: u64,
    pub n_head: u64,
    pub n_head_kv: u64,
    /// Per-head dimension: `attention.key_length`, else hidden / heads.
    pub head_dim: u64,
    /// Whether config.json needs `head_dim` (it differs from hidden / heads).
    pub head_dim_explicit: bool,
    pub context_length: u64,
    pub rms_norm_eps: f32,
    pub rope_theta: Option<f32>,
    /// No `output.weight`: the output projection is the embedding.
    pub tie_word_embeddings: bool,
    /// Llama only: q, k, v and o projections carry biases (`attention_bias`).
    pub attention_bias: bool,
    /// Llama only: gate, up and down projections carry biases (`mlp_bias`).
    pub mlp_bias: bool,
}

/// One tensor to write.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportTensor {
    /// Hugging Face name (`model.layers.0.self_attn.q_proj.weight`).
    pub hf_name: String,
    /// The GGUF tensor it comes from.
    pub gguf: TensorInfo,
    /// PyTorch-order shape: the GGUF dims reversed.
    pub shape: Vec<u64>,
    /// For Llama q/k: the head count whose adjacent-pair rows go back to rotate-half order.
    pub unpermute_heads: Option<u64>,
}

impl ExportTensor {
    pub fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// A GGUF model ready to export: architecture, parameters, and tensors in Hugging Face name order.
pub struct SourceModel {
    pub arch: Architecture,
    pub params: ModelParams,
    pub tensors: Vec<ExportTensor>,
    /// `rope_freqs.weight`, dequantized, when the file has it.
    pub rope_freqs: Option<Vec<f32>>,
}

/// Reads a required unsigned integer key.
pub(super) fn req_u64(f: &GgufFile, key: &str) -> Result<u64, ExportError> {
    let v = f.get(key).ok_or_else(|| ExportError::MissingKey { file: f.path().into(), key: key.into() })?;
    v.as_u64().ok_or_else(|| bad_key(f, key, format!("expected a non-negative integer, found {}", v.type_label())))
}

/// Reads an optional unsigned integer key (present with another type is an error).
pub(super) fn opt_u64(f: &GgufFile, key: &str) -> Result<Option<u64>, ExportError> {
    f.get(key).map(|_| req_u64(f, key)).transpose()
}

/// Reads an optional float key.
pub(super) fn opt_f32(f: &GgufFile, key: &str) -> Result<Option<f32>, ExportError> {
    match f.get(key) {
        None => Ok(None),
        Some(v) => {
            v.as_f32().map(Some).ok_or_else(|| bad_key(f, key, format!("expected a float, found {}", v.type_label())))
        }
    }
}

pub(super) fn bad_key(f: &GgufFile, key: &str, reason: String) -> ExportError {
    ExportError::BadKey { file: f.path().into(), key: key.into(), reason }
}

fn bad_tensor(f: &GgufFile, tensor: &str, reason: String) -> ExportError {
    ExportError::Tensor { file: f.path().into(), tensor: tensor.into(), reason }
}

/// Every Hugging Face tensor name a Llama/Qwen2 checkpoint of `n_layers` blocks can have.
fn hf_candidates(n_layers: u64) -> Vec<String> {
    const GLOBAL: [&str; 3] = ["model.embed_tokens", "lm_head", "model.norm"];
    const BLOCK: [&str; 9] = [
        "input_layernorm",
        "post_attention_layernorm",
        "self_attn.q_proj",
        "self_attn.k_proj",
        "self_attn.v_proj",
        "self_attn.o_proj",
        "mlp.gate_proj",
        "mlp.up_proj",
        "mlp.down_proj",
    ];
    let stems = GLOBAL
        .iter()
        .map(|s| s.to_string())
        .chain((0..n_layers).flat_map(|i| BLOCK.iter().map(move |p| format!("model.layers.{i}.{p}"))));
    stems.flat_map(|s| [format!("{s}.weight"), format!("{s}.bias")]).collect()
}

/// GGUF name → (Hugging Face name, role, is bias), from the converter's forward table.
fn reverse_names(n_layers: u64) -> HashMap<String, (String, Role, bool)> {
    let mut map = HashMap::new();
    for hf in hf_candidates(n_layers) {
        if let Mapping::Tensor(m) = map_name(&hf, n_layers) {
            map.insert(m.gguf_name, (hf, m.role, m.bias));
        }
    }
    map
}

impl SourceModel {
    /// Reads and checks everything but the weights.
    pub fn read(f: &GgufFile) -> Result<SourceModel, ExportError> {
        let arch_name = f.architecture().ok_or_else(|| ExportError::MissingKey {
            file: f.path().into(),
            key: crate::gguf::KEY_ARCHITECTURE.into(),
        })?;
        let arch = match arch_name {
            "llama" => Architecture::Llama,
            "qwen2" => Architecture::Qwen2,
            other => return Err(ExportError::UnsupportedArchitecture { file: f.path().into(), found: other.into() }),
        };
        let k = |s: &str| format!("{arch_name}.{s}");

        let n_layers = req_u64(f, &k("block_count"))?;
        if n_layers == 0 || n_layers > MAX_LAYERS {
            return Err(bad_key(f, &k("block_count"), format!("{n_layers} is outside 1..={MAX_LAYERS}")));
        }
        let hidden_size = req_u64(f, &k("embedding_length"))?;
        let intermediate_size = req_u64(f, &k("feed_forward_length"))?;
        let n_head = req_u64(f, &k("attention.head_count"))?;
        let n_head_kv = opt_u64(f, &k("attention.head_count_kv"))?.unwrap_or(n_head);
        if hidden_size == 0 || n_head == 0 || n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(bad_key(
                f,
                &k("attention.head_count_kv"),
                format!("embedding_length {hidden_size}, head_count {n_head}, head_count_kv {n_head_kv}: none may be 0, and head_count must be a multiple of head_count_kv"),
            ));
        }
        let key_length = opt_u64(f, &k("attention.key_length"))?;
        let head_dim = match key_length {
            Some(h) => h,
            None if hidden_size % n_head == 0 => hidden_size / n_head,
            None => {
                return Err(bad_key(
                    f,
                    &k("attention.head_count"),
                    format!("embedding_length {hidden_size} is not a multiple of {n_head} heads and no attention.key_length says the head size"),
                ))
            }
        };
        // RoPE and the q/k permutation pair dimensions up.
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(bad_key(f, &k("attention.key_length"), format!("head size {head_dim} must be even and non-zero")));
        }
        if let Some(v) = opt_u64(f, &k("attention.value_length"))? {
            if v != head_dim {
                return Err(bad_key(
                    f,
                    &k("attention.value_length"),
                    format!("{v} differs from the key length {head_dim}; Llama and Qwen2 configs have one head size"),
                ));
            }
        }
        if let Some(n_rot) = opt_u64(f, &k("rope.dimension_count"))? {
            if n_rot != head_dim {
                return Err(bad_key(
                    f,
                    &k("rope.dimension_count"),
                    format!("{n_rot} rotated dimensions of {head_dim}: partial RoPE has no Llama/Qwen2 config field"),
                ));
            }
        }
        let context_length = req_u64(f, &k("context_length"))?;
        let rms_norm_eps = opt_f32(f, &k("attention.layer_norm_rms_epsilon"))?
            .ok_or_else(|| ExportError::MissingKey { file: f.path().into(), key: k("attention.layer_norm_rms_epsilon") })?;
        let rope_theta = opt_f32(f, &k("rope.freq_base"))?;

        // Tensors.
        let names = reverse_names(n_layers);
        let q = n_head * head_dim;
        let kv = n_head_kv * head_dim;
        let embd = f.tensor("token_embd.weight").ok_or_else(|| ExportError::MissingTensor {
            file: f.path().into(),
            tensor: "token_embd.weight".into(),
        })?;
        let n_vocab = embd.dims.get(1).copied().unwrap_or(0);
        if let Some(v) = opt_u64(f, &k("vocab_size"))? {
            if v != n_vocab {
                return Err(bad_key(f, &k("vocab_size"), format!("{v}, but token_embd.weight has {n_vocab} rows")));
            }
        }
        let mut tensors = Vec::new();
        let mut rope_freqs = None;
        let mut present: BTreeSet<String> = BTreeSet::new();
        // (layer, role) of every bias, to check they form a pattern a config can state.
        let mut biases: Vec<(Option<u64>, Role)> = Vec::new();
        for t in f.tensors() {
            if t.ty.codec().is_none() {
                return Err(bad_tensor(f, &t.name, format!("type {} cannot be dequantized by PocketLM", t.ty)));
            }
            if t.name == ROPE_FREQS {
                if arch != Architecture::Llama || t.dims != [head_dim / 2] {
                    return Err(bad_tensor(
                        f,
                        &t.name,
                        format!("dims {:?} in a {arch_name} file (expected [{}], and on llama only)", t.dims, head_dim / 2),
                    ));
                }
                let mut v = vec![0f32; t.n_elements() as usize];
                crate::quant::dequantize(t.ty, f.tensor_data(t), &mut v)
                    .map_err(|e| bad_tensor(f, &t.name, e.to_string()))?;
                rope_freqs = Some(v);
                continue;
            }
            let Some((hf_name, role, bias)) = names.get(&t.name) else {
                return Err(bad_tensor(f, &t.name, format!("no Hugging Face name in a {arch_name} checkpoint")));
            };
            let (rows, cols) = match role {
                Role::TokenEmbd | Role::Output => (n_vocab, hidden_size),
                Role::OutputNorm | Role::AttnNorm | Role::FfnNorm => (hidden_size, 0),
                Role::AttnQ => (q, hidden_size),
                Role::AttnK | Role::AttnV => (kv, hidden_size),
                Role::AttnOutput => (hidden_size, q),
                Role::FfnGate | Role::FfnUp => (intermediate_size, hidden_size),
                Role::FfnDown => (hidden_size, intermediate_size),
            };
            let expected = if *bias || cols == 0 { vec![rows] } else { vec![rows, cols] };
            let shape: Vec<u64> = t.dims.iter().rev().copied().collect();
            if shape != expected {
                return Err(bad_tensor(
                    f,
                    &t.name,
                    format!("PyTorch shape {shape:?}, but the hyperparameters imply {expected:?}"),
                ));
            }
            if *bias {
                let layer = hf_name.strip_prefix("model.layers.").and_then(|r| r.split('.').next()?.parse().ok());
                biases.push((layer, *role));
            }
            let unpermute_heads = match role {
                Role::AttnQ if arch.permutes_qk() => Some(n_head),
                Role::AttnK if arch.permutes_qk() => Some(n_head_kv),
                _ => None,
            };
            present.insert(t.name.clone());
            tensors.push(ExportTensor { hf_name: hf_name.clone(), gguf: t.clone(), shape, unpermute_heads });
        }
        let mut required = vec!["token_embd.weight".to_string(), "output_norm.weight".to_string()];
        for i in 0..n_layers {
            for p in [
                "attn_norm", "ffn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down",
            ] {
                required.push(format!("blk.{i}.{p}.weight"));
            }
        }
        if let Some(missing) = required.into_iter().find(|r| !present.contains(r)) {
            return Err(ExportError::MissingTensor { file: f.path().into(), tensor: missing });
        }
        let (attention_bias, mlp_bias) = bias_flags(f, arch, n_layers, &biases)?;
        tensors.sort_by(|a, b| a.hf_name.cmp(&b.hf_name));

        Ok(SourceModel {
            arch,
            params: ModelParams {
                n_vocab,
                hidden_size,
                intermediate_size,
                n_layers,
                n_head,
                n_head_kv,
                head_dim,
                head_dim_explicit: key_length.is_some_and(|h| h * n_head != hidden_size),
                context_length,
                rms_norm_eps,
                rope_theta,
                tie_word_embeddings: !present.contains("output.weight"),
                attention_bias,
                mlp_bias,
            },
            tensors,
            rope_freqs,
        })
    }
}

/// Checks that the biases are a set the architecture's config can describe, and returns Llama's
/// `(attention_bias, mlp_bias)`. Qwen2 always has q/k/v biases and nothing else; Llama has q/k/v/o biases in every
/// layer or none, and gate/up/down biases in every layer or none.
fn bias_flags(
    f: &GgufFile,
    arch: Architecture,
    n_layers: u64,
    biases: &[(Option<u64>, Role)],
) -> Result<(bool, bool), ExportError> {
    let has = |role: Role| biases.iter().filter(|(_, r)| *r == role).count() as u64;
    let attn = [Role::AttnQ, Role::AttnK, Role::AttnV, Role::AttnOutput];
    let mlp = [Role::FfnGate, Role::FfnUp, Role::FfnDown];
    let other = biases.iter().find(|(_, r)| !attn.contains(r) && !mlp.contains(r));
    let describe = |roles: &[Role]| roles.iter().map(|r| format!("{r:?} {}/{n_layers}", has(*r))).collect::<Vec<_>>();
    let err = |reason: String| ExportError::Model { file: f.path().into(), reason };
    if let Some((_, role)) = other {
        return Err(err(format!("a {role:?} bias has no place in a {} config", arch.gguf_name())));
    }
    match arch {
        Architecture::Qwen2 => {
            let ok = [Role::AttnQ, Role::AttnK, Role::AttnV].iter().all(|r| has(*r) == n_layers)
                && has(Role::AttnOutput) == 0
                && mlp.iter().all(|r| has(*r) == 0);
            if !ok {
                return Err(err(format!(
                    "Qwen2 needs q/k/v biases in every layer and no others; found {:?}",
                    describe(&[attn.as_slice(), mlp.as_slice()].concat())
                )));
            }
            Ok((false, false))
        }
        Architecture::Llama => {
            let all_or_none = |roles: &[Role]| {
                let counts: BTreeSet<u64> = roles.iter().map(|r| has(*r)).collect();
                match counts.into_iter().collect::<Vec<_>>().as_slice() {
                    [0] => Ok(false),
                    [n] if *n == n_layers => Ok(true),
                    _ => Err(err(format!(
                        "Llama configs put biases on all of these in every layer or on none; found {:?}",
                        describe(roles)
                    ))),
                }
            };
            Ok((all_or_none(&attn)?, all_or_none(&mlp)?))
        }
    }
}

/// The inverse of [`crate::convert::permute_rows`]: rows of each head go from llama.cpp's adjacent pairs back to
/// Hugging Face's rotate-half order. Viewing a head's rows as `(head_dim/2, 2)`, swap the axes: row `2j + t` moves
/// to row `t*half + j`. `data` is row-major `[rows, cols]` holding whole heads of `head_dim` rows each.
pub fn unpermute_rows(data: &mut [f32], rows: usize, cols: usize, head_dim: usize, scratch: &mut Vec<f32>) {
    assert!(
        head_dim.is_multiple_of(2) && head_dim > 0 && rows.is_multiple_of(head_dim) && data.len() == rows * cols,
        "whole heads of an even size, checked when the model was read"
    );
    let half = head_dim / 2;
    scratch.clear();
    scratch.resize(head_dim * cols, 0.0);
    for head in data.chunks_exact_mut(head_dim * cols) {
        scratch.copy_from_slice(head);
        for j in 0..half {
            for t in 0..2 {
                let src = (2 * j + t) * cols;
                let dst = (t * half + j) * cols;
                head[dst..dst + cols].copy_from_slice(&scratch[src..src + cols]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_the_converter() {
        // 3 heads of 8 rows, 5 columns; the converter permutes with the head count, we undo per head size.
        let (rows, cols, heads) = (24usize, 5usize, 3usize);
        let orig: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let mut d = orig.clone();
        crate::convert::permute_rows(&mut d, rows, cols, heads);
        assert_ne!(d, orig);
        unpermute_rows(&mut d, rows, cols, rows / heads, &mut Vec::new());
        assert_eq!(d, orig);
        // A chunk of whole heads is undone on its own, as the streaming writer does it.
        let mut d = orig.clone();
        crate::convert::permute_rows(&mut d, rows, cols, heads);
        for chunk in d.chunks_mut(8 * cols) {
            unpermute_rows(chunk, 8, cols, 8, &mut Vec::new());
        }
        assert_eq!(d, orig);
    }

    #[test]
    fn names_invert_the_converter_table() {
        let m = reverse_names(2);
        assert_eq!(m["token_embd.weight"].0, "model.embed_tokens.weight");
        assert_eq!(m["output.weight"].0, "lm_head.weight");
        assert_eq!(m["blk.1.attn_k.bias"].0, "model.layers.1.self_attn.k_proj.bias");
        assert_eq!(m["blk.0.ffn_norm.weight"].0, "model.layers.0.post_attention_layernorm.weight");
        assert!(!m.contains_key("blk.2.attn_q.weight"));
        assert_eq!(m.len(), 2 * (3 + 2 * 9));
    }
}
