//! The export checks itself with the converter: it plans a conversion of the folder it is writing (configs,
//! tokenizer, safetensors header — no weights) and compares the result with the GGUF it came from: every tensor's
//! name and shape, `rope_freqs` bit for bit, the architecture's hyperparameters and the whole tokenizer (tokens,
//! types, merges, pre-tokenizer fingerprint, special ids, add-BOS/EOS flags, chat templates). A folder that would
//! not convert back to the same model is never published.

use std::collections::BTreeMap;
use std::path::Path;

use super::source::{SourceModel, ROPE_FREQS};
use super::ExportError;
use crate::convert::{self, Architecture, MetaValue, Source};
use crate::gguf::{GgufFile, Value};
use crate::hf::Checkpoint;

/// What the converter's metadata must hold for a key the GGUF lacks.
enum IfMissing {
    /// Nothing either.
    Nothing,
    /// Absent, or this value (a default the converter states explicitly).
    Default(MetaValue),
}

/// Keys compared, with the rule for when the GGUF lacks them.
fn compared_keys(g: &GgufFile, src: &SourceModel) -> Vec<(String, IfMissing)> {
    let a = src.arch.gguf_name();
    let p = &src.params;
    let u = |v: u64| IfMissing::Default(MetaValue::U32(v as u32));
    let mut keys = vec![
        (format!("{a}.block_count"), IfMissing::Nothing),
        (format!("{a}.context_length"), IfMissing::Nothing),
        (format!("{a}.embedding_length"), IfMissing::Nothing),
        (format!("{a}.feed_forward_length"), IfMissing::Nothing),
        (format!("{a}.attention.head_count"), IfMissing::Nothing),
        (format!("{a}.attention.head_count_kv"), u(p.n_head)),
        (format!("{a}.attention.layer_norm_rms_epsilon"), IfMissing::Nothing),
        (format!("{a}.rope.freq_base"), IfMissing::Default(MetaValue::F32(10000.0))),
        (format!("{a}.attention.key_length"), u(p.head_dim)),
        (format!("{a}.attention.value_length"), u(p.head_dim)),
        (format!("{a}.rope.dimension_count"), u(p.head_dim)),
        (format!("{a}.vocab_size"), u(p.n_vocab)),
        ("tokenizer.ggml.model".into(), IfMissing::Nothing),
        ("tokenizer.ggml.pre".into(), IfMissing::Nothing),
        ("tokenizer.ggml.tokens".into(), IfMissing::Nothing),
        ("tokenizer.ggml.token_type".into(), IfMissing::Nothing),
        ("tokenizer.ggml.merges".into(), IfMissing::Nothing),
        ("tokenizer.ggml.bos_token_id".into(), IfMissing::Nothing),
        ("tokenizer.ggml.eos_token_id".into(), IfMissing::Nothing),
        ("tokenizer.ggml.unknown_token_id".into(), IfMissing::Nothing),
        ("tokenizer.ggml.seperator_token_id".into(), IfMissing::Nothing),
        ("tokenizer.ggml.padding_token_id".into(), IfMissing::Nothing),
        ("tokenizer.ggml.mask_token_id".into(), IfMissing::Nothing),
        ("tokenizer.ggml.add_bos_token".into(), IfMissing::Default(MetaValue::Bool(false))),
        ("tokenizer.ggml.add_eos_token".into(), IfMissing::Default(MetaValue::Bool(false))),
        ("tokenizer.ggml.add_sep_token".into(), IfMissing::Default(MetaValue::Bool(false))),
        ("tokenizer.chat_template".into(), IfMissing::Nothing),
        ("tokenizer.chat_templates".into(), IfMissing::Nothing),
    ];
    if src.arch == Architecture::Llama {
        keys.push(("tokenizer.ggml.add_space_prefix".into(), IfMissing::Nothing));
    }
    // Linear and yarn scaling are keys; llama3 scaling is rope_freqs.weight, compared as a tensor.
    if matches!(g.get_str(&format!("{a}.rope.scaling.type")), Some("linear" | "yarn")) {
        for s in ["type", "factor", "original_context_length", "yarn_ext_factor", "yarn_attn_factor", "yarn_beta_fast", "yarn_beta_slow"] {
            keys.push((format!("{a}.rope.scaling.{s}"), IfMissing::Nothing));
        }
    }
    for name in g.get("tokenizer.chat_templates").and_then(Value::as_str_array).unwrap_or_default() {
        keys.push((format!("tokenizer.chat_template.{name}"), IfMissing::Nothing));
    }
    keys
}

/// A short, human description of a difference between a GGUF value and a converter value.
fn difference(g: &Value, m: &MetaValue) -> Option<String> {
    let show = |s: &str| format!("{s:?}");
    let scalar = |same: bool, x: &dyn std::fmt::Display| (!same).then(|| format!("{} vs {x}", g.summary(0)));
    // An if-chain rather than a match: MetaValue may grow variants we never compare.
    if let MetaValue::U32(x) = m {
        scalar(g.as_u64() == Some(u64::from(*x)), x)
    } else if let MetaValue::I32(x) = m {
        scalar(g.as_i64() == Some(i64::from(*x)), x)
    } else if let MetaValue::F32(x) = m {
        scalar(g.as_f32().map(f32::to_bits) == Some(x.to_bits()), x)
    } else if let MetaValue::Bool(x) = m {
        scalar(g.as_bool() == Some(*x), x)
    } else if let MetaValue::String(x) = m {
        (g.as_str() != Some(x.as_str())).then(|| {
            let short = |s: &str| show(&s.chars().take(60).collect::<String>());
            format!("{} vs {}", g.as_str().map(short).unwrap_or_else(|| g.summary(0)), short(x))
        })
    } else if let MetaValue::StringArray(x) = m {
        let Some(a) = g.as_str_array() else { return Some(format!("{} vs a string array", g.type_label())) };
        if a.len() != x.len() {
            return Some(format!("{} items vs {}", a.len(), x.len()));
        }
        let i = a.iter().zip(x).position(|(p, q)| *p != q.as_str())?;
        Some(format!("item {i}: {} vs {}", show(a[i]), show(&x[i])))
    } else if let MetaValue::I32Array(x) = m {
        let a: Vec<Option<i64>> = g.as_array().map(|(_, v)| v.iter().map(Value::as_i64).collect()).unwrap_or_default();
        if a.len() != x.len() {
            return Some(format!("{} items vs {}", a.len(), x.len()));
        }
        let i = a.iter().zip(x).position(|(p, q)| *p != Some(i64::from(*q)))?;
        Some(format!("item {i}: {:?} vs {}", a[i], x[i]))
    } else {
        Some(format!("{} vs {m:?}", g.type_label()))
    }
}

/// Plans a conversion of `dir` and lists every way it differs from the GGUF `g`; `Ok` means none.
pub fn check(dir: &Path, g: &GgufFile, src: &SourceModel) -> Result<(), ExportError> {
    let fail = |problems: Vec<String>| ExportError::Verify { file: g.path().into(), problems };
    let ckpt = Checkpoint::open(dir).map_err(|e| fail(vec![e.to_string()]))?;
    let plan = convert::plan(&ckpt).map_err(|e| fail(vec![e.to_string()]))?;
    let mut problems = Vec::new();

    // Tensors: the same names and GGUF shapes; rope_freqs regenerated bit for bit.
    let planned: BTreeMap<&str, &convert::PlannedTensor> = plan.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    for t in g.tensors() {
        match planned.get(t.name.as_str()) {
            None => problems.push(format!("tensor {}: missing after conversion", t.name)),
            Some(p) if p.dims != t.dims => problems.push(format!("tensor {}: dims {:?} vs {:?}", t.name, t.dims, p.dims)),
            Some(p) => {
                if let (Source::Generated(values), true) = (&p.source, t.name == ROPE_FREQS) {
                    let same = src.rope_freqs.as_ref().is_some_and(|v| {
                        v.len() == values.len() && v.iter().zip(values).all(|(a, b)| a.to_bits() == b.to_bits())
                    });
                    if !same {
                        problems.push(format!("tensor {ROPE_FREQS}: the converter generates other values"));
                    }
                }
            }
        }
    }
    for name in planned.keys() {
        if g.tensor(name).is_none() {
            problems.push(format!("tensor {name}: made by the converter, not in the file"));
        }
    }

    // Metadata.
    for (key, absent) in compared_keys(g, src) {
        match (g.get(&key), plan.metadata.get(&key)) {
            (Some(gv), Some(mv)) => {
                if let Some(d) = difference(gv, mv) {
                    problems.push(format!("{key}: {d}"));
                }
            }
            (Some(gv), None) => problems.push(format!("{key}: {} vs nothing", gv.summary(1))),
            (None, None) => {}
            (None, Some(mv)) => match absent {
                IfMissing::Default(default) if *mv == default => {}
                _ => problems.push(format!("{key}: nothing vs {}", describe(mv))),
            },
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(fail(problems))
    }
}

fn describe(m: &MetaValue) -> String {
    match m {
        MetaValue::StringArray(a) => format!("{} strings", a.len()),
        MetaValue::I32Array(a) => format!("{} integers", a.len()),
        MetaValue::String(s) => format!("{:?}", s.chars().take(60).collect::<String>()),
        other => format!("{other:?}"),
    }
}

/// GGUF keys the exported folder does not carry (besides `general.*`, which names rather than defines a model).
pub fn not_carried(g: &GgufFile, src: &SourceModel) -> Vec<String> {
    let compared: Vec<String> = compared_keys(g, src).into_iter().map(|(k, _)| k).collect();
    let a = src.arch.gguf_name();
    g.metadata()
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !k.starts_with("general.") && !compared.contains(k))
        // Read into config.json; compared through rope_freqs.weight.
        .filter(|k| !(src.rope_freqs.is_some() && k.starts_with(&format!("{a}.rope.scaling."))))
        .filter(|k| k.as_str() != format!("{a}.rope.scaling.type") || g.get_str(k) != Some("none"))
        .cloned()
        .collect()
}
