//! `config.json` (LlamaForCausalLM / Qwen2ForCausalLM) and `generation_config.json` from GGUF metadata, and the
//! RoPE scaling block recovered from what the converter made of it.
//!
//! RoPE scaling: `linear` and `yarn` are stored as `{arch}.rope.scaling.*` keys and map back one to one. Llama 3's
//! `llama3` scaling is stored only as its result, the F32 `rope_freqs.weight` [head_dim/2]; we recover the four
//! parameters (factor, low/high frequency factors, original context length) from `{arch}.rope.scaling.*` keys when
//! the file has them, else from the tensor itself (its largest value is the factor) and the converter's defaults
//! (1, 4, 8192, which every Llama 3.1/3.2 uses), then run the converter's own [`llama3_rope_freqs`] on them and
//! require the result to equal the file's tensor bit for bit. Anything else is refused rather than guessed.

use super::json::{f32_number, J};
use super::source::{bad_key, opt_f32, opt_u64, ModelParams, ROPE_FREQS};
use super::ExportError;
use crate::convert::rope::llama3_rope_freqs;
use crate::convert::Architecture;
use crate::gguf::GgufFile;
use crate::hf::{Dtype, RopeParams};

/// The JSON number we write for `x`, as the f64 the converter will read back.
fn f64_of(x: f32) -> f64 {
    match f32_number(x) {
        J::F64(d) => d,
        _ => unreachable!("f32_number makes numbers"),
    }
}

/// The `rope_scaling` block, or `None` when the model has none.
pub fn rope_scaling(
    f: &GgufFile,
    arch: Architecture,
    p: &ModelParams,
    rope_freqs: Option<&[f32]>,
) -> Result<Option<J>, ExportError> {
    let a = arch.gguf_name();
    let k = |s: &str| format!("{a}.rope.scaling.{s}");
    let kind = f.get_str(&k("type"));
    let factor = opt_f32(f, &k("factor"))?;
    let original = opt_u64(f, &k("original_context_length"))?;
    let rope_err = |reason: String| ExportError::RopeScaling { file: f.path().into(), reason };

    if let Some(freqs) = rope_freqs {
        if kind.is_some_and(|t| t != "llama3" && t != "none") {
            return Err(rope_err(format!("{ROPE_FREQS} together with {} = {kind:?}", k("type"))));
        }
        let factor = match factor {
            Some(x) => x,
            None => freqs.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        };
        let low = opt_f32(f, &k("low_freq_factor"))?.unwrap_or(1.0);
        let high = opt_f32(f, &k("high_freq_factor"))?.unwrap_or(4.0);
        let original = original.unwrap_or(8192);
        let params = RopeParams {
            rope_type: Some("llama3".into()),
            rope_theta: Some(f64_of(p.rope_theta.unwrap_or(10000.0))),
            factor: Some(f64_of(factor)),
            low_freq_factor: Some(f64_of(low)),
            high_freq_factor: Some(f64_of(high)),
            original_max_position_embeddings: Some(original),
            ..RopeParams::default()
        };
        let regenerated = llama3_rope_freqs(&params, p.head_dim).expect("llama3 type set above");
        let same = regenerated.len() == freqs.len()
            && regenerated.iter().zip(freqs).all(|(a, b)| a.to_bits() == b.to_bits());
        if !same {
            let first = regenerated.iter().zip(freqs).position(|(a, b)| a.to_bits() != b.to_bits()).unwrap_or(0);
            return Err(rope_err(format!(
                "{ROPE_FREQS} is not llama3 RoPE scaling with factor {factor}, low_freq_factor {low}, high_freq_factor \
                 {high}, original_max_position_embeddings {original} (element {first}: file {}, llama3 {}); config.json \
                 cannot express it",
                freqs.get(first).copied().unwrap_or(f32::NAN),
                regenerated.get(first).copied().unwrap_or(f32::NAN),
            )));
        }
        return Ok(Some(J::obj([
            ("factor", f32_number(factor)),
            ("high_freq_factor", f32_number(high)),
            ("low_freq_factor", f32_number(low)),
            ("original_max_position_embeddings", J::U64(original)),
            ("rope_type", J::str("llama3")),
        ])));
    }

    match kind {
        None | Some("none") => Ok(None),
        Some(t @ ("linear" | "yarn")) => {
            let factor = factor.ok_or_else(|| ExportError::MissingKey { file: f.path().into(), key: k("factor") })?;
            let mut block = vec![("factor".to_string(), f32_number(factor))];
            if t == "yarn" {
                let original = original
                    .ok_or_else(|| ExportError::MissingKey { file: f.path().into(), key: k("original_context_length") })?;
                // Config names the converter reads each yarn key from.
                for (name, key) in [
                    ("attention_factor", "yarn_attn_factor"),
                    ("beta_fast", "yarn_beta_fast"),
                    ("beta_slow", "yarn_beta_slow"),
                    ("extrapolation_factor", "yarn_ext_factor"),
                ] {
                    if let Some(v) = opt_f32(f, &k(key))? {
                        block.push((name.into(), f32_number(v)));
                    }
                }
                block.push(("original_max_position_embeddings".into(), J::U64(original)));
            }
            block.push(("rope_type".into(), J::str(t)));
            block.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(Some(J::Obj(block)))
        }
        Some(other) => Err(bad_key(f, &k("type"), format!("RoPE scaling {other:?} is not supported (none, linear, yarn, llama3)"))),
    }
}

/// `torch_dtype` spelling of a dtype.
pub fn torch_dtype(d: Dtype) -> &'static str {
    match d {
        Dtype::BF16 => "bfloat16",
        Dtype::F16 => "float16",
        Dtype::F32 => "float32",
    }
}

/// config.json, keys sorted as transformers writes them.
pub fn config_json(
    arch: Architecture,
    p: &ModelParams,
    rope_scaling: Option<J>,
    special_ids: &[(&str, u32)],
    dtype: Dtype,
) -> J {
    let id = |name: &str| special_ids.iter().find(|(n, _)| *n == name).map(|(_, id)| J::U64(u64::from(*id)));
    let mut c: Vec<(&str, J)> = Vec::new();
    let llama = arch == Architecture::Llama;
    let hf_arch = if llama { "LlamaForCausalLM" } else { "Qwen2ForCausalLM" };
    c.push(("architectures", J::Arr(vec![J::str(hf_arch)])));
    if llama {
        c.push(("attention_bias", J::Bool(p.attention_bias)));
    }
    c.push(("attention_dropout", J::F64(0.0)));
    c.push(("bos_token_id", J::opt(id("bos_token"))));
    c.push(("eos_token_id", J::opt(id("eos_token"))));
    if p.head_dim_explicit {
        c.push(("head_dim", J::U64(p.head_dim)));
    }
    c.push(("hidden_act", J::str("silu")));
    c.push(("hidden_size", J::U64(p.hidden_size)));
    c.push(("initializer_range", J::F64(0.02)));
    c.push(("intermediate_size", J::U64(p.intermediate_size)));
    c.push(("max_position_embeddings", J::U64(p.context_length)));
    if !llama {
        c.push(("max_window_layers", J::U64(p.n_layers)));
    }
    if llama {
        c.push(("mlp_bias", J::Bool(p.mlp_bias)));
    }
    c.push(("model_type", J::str(arch.gguf_name())));
    c.push(("num_attention_heads", J::U64(p.n_head)));
    c.push(("num_hidden_layers", J::U64(p.n_layers)));
    c.push(("num_key_value_heads", J::U64(p.n_head_kv)));
    if let Some(pad) = id("pad_token") {
        c.push(("pad_token_id", pad));
    }
    if llama {
        c.push(("pretraining_tp", J::U64(1)));
    }
    c.push(("rms_norm_eps", f32_number(p.rms_norm_eps)));
    c.push(("rope_scaling", J::opt(rope_scaling)));
    c.push(("rope_theta", f32_number(p.rope_theta.unwrap_or(10000.0))));
    if !llama {
        c.push(("sliding_window", J::Null));
    }
    c.push(("tie_word_embeddings", J::Bool(p.tie_word_embeddings)));
    c.push(("torch_dtype", J::str(torch_dtype(dtype))));
    c.push(("use_cache", J::Bool(true)));
    if !llama {
        c.push(("use_sliding_window", J::Bool(false)));
    }
    c.push(("vocab_size", J::U64(p.n_vocab)));
    J::obj(c)
}

/// generation_config.json: the special ids, and llama.cpp's `general.sampling.*` defaults under the names the
/// converter reads them from.
pub fn generation_config(f: &GgufFile, special_ids: &[(&str, u32)]) -> J {
    let mut g: Vec<(String, J)> = Vec::new();
    for (name, key) in [("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"), ("pad_token", "pad_token_id")] {
        if let Some((_, id)) = special_ids.iter().find(|(n, _)| *n == name) {
            g.push((key.into(), J::U64(u64::from(*id))));
        }
    }
    // (GGUF general.sampling.* suffix, generation_config name)
    const SAMPLING: [(&str, &str); 12] = [
        ("sequence", "sequence"),
        ("top_k", "top_k"),
        ("top_p", "top_p"),
        ("min_p", "min_p"),
        ("xtc_probability", "xtc_probability"),
        ("xtc_threshold", "xtc_threshold"),
        ("temp", "temperature"),
        ("penalty_last_n", "penalty_last_n"),
        ("penalty_repeat", "repetition_penalty"),
        ("mirostat", "mirostat"),
        ("mirostat_tau", "mirostat_tau"),
        ("mirostat_eta", "mirostat_eta"),
    ];
    let mut sampling = false;
    for (suffix, name) in SAMPLING {
        let Some(v) = f.get(&format!("general.sampling.{suffix}")) else { continue };
        let value = if let Some(s) = v.as_str() {
            J::str(s)
        } else if let Some(i) = v.as_i64() {
            J::I64(i)
        } else if let Some(x) = v.as_f32() {
            f32_number(x)
        } else {
            continue;
        };
        sampling |= matches!(suffix, "temp" | "top_k" | "top_p" | "min_p");
        g.push((name.into(), value));
    }
    if sampling {
        g.push(("do_sample".into(), J::Bool(true)));
    }
    g.sort_by(|a, b| a.0.cmp(&b.0));
    J::Obj(g)
}
