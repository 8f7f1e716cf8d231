//! [`describe`]: one model file or folder as the library shows it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::convert::{self, Source as TensorSource};
use crate::gguf::{GgufFile, Value, MAGIC};
use crate::hf::{self, Checkpoint, Dtype};
use crate::model::Arch;
use crate::quant::GgmlType;
use crate::quantize::source::meta_to_value;
use crate::summary::{Summary, TensorEntry};

use super::naming::{family_key, family_name, file_type_label_from_text, file_type_name};
use super::{Format, LibraryError, ModelInfo};

/// Items of a long metadata array shown, as `pocketlm inspect` shows them by default.
pub const METADATA_ARRAY_ITEMS: usize = 8;

/// The architectures the chat engine runs ([`crate::model`]); a GGUF of another is listed but not runnable.
pub const RUNNABLE_ARCHITECTURES: [Arch; 2] = [Arch::Llama, Arch::Qwen2];

/// Files of a Hugging Face folder that count toward its size besides the weights.
const HF_SIDE_FILES: &[&str] = &[
    "config.json",
    "generation_config.json",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
];

/// Describes the model at `path`: a GGUF file, a Hugging Face checkpoint folder, or a Hugging Face cache
/// repository folder (`models--ORG--NAME`) or snapshot. Reads headers only (GGUF metadata and tensor infos, the
/// checkpoint's config, tokenizer and safetensors headers), never the weights.
pub fn describe(path: &Path) -> Result<ModelInfo, LibraryError> {
    let meta = std::fs::metadata(path).map_err(|e| LibraryError::io(path, e))?;
    if meta.is_dir() {
        return describe_folder(path);
    }
    if !meta.is_file() {
        return Err(LibraryError::not_a_model(path, "neither a file nor a folder"));
    }
    // A cheap look at the magic first, so that a stray file is "not a model" rather than a GGUF parse error.
    let mut head = [0u8; 4];
    let n = std::fs::File::open(path).and_then(|mut f| read_up_to(&mut f, &mut head)).map_err(|e| LibraryError::io(path, e))?;
    if n < 4 || head != MAGIC {
        let reason = if n == 0 {
            "an empty file, not a GGUF model".to_string()
        } else if n < 4 {
            format!("{n} bytes: too short to be a GGUF model")
        } else {
            format!("not a GGUF model (it starts with {head:02x?}, not \"GGUF\")")
        };
        return Err(LibraryError::not_a_model(path, reason));
    }
    let f = GgufFile::open(path)?;
    Ok(describe_gguf(&f, path))
}

fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

/// Metadata as `pocketlm inspect` prints it: every key in file order, long arrays and strings summarised.
pub fn render_metadata(metadata: &[(String, Value)]) -> Vec<(String, String)> {
    metadata.iter().map(|(k, v)| (k.clone(), v.summary(METADATA_ARRAY_ITEMS))).collect()
}

fn describe_gguf(f: &GgufFile, path: &Path) -> ModelInfo {
    let entries = TensorEntry::all_of(f);
    let summary = Summary::new(&entries);
    let architecture = f.architecture().map(str::to_string);
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = gguf_name(f).unwrap_or_else(|| stem.clone());
    let type_label = match f.get("general.file_type") {
        Some(Value::String(s)) => Some(file_type_label_from_text(s)),
        Some(v) => v.as_u64().and_then(|ft| u32::try_from(ft).ok()).and_then(file_type_name).map(str::to_string),
        None => None,
    }
    .or_else(|| dominant_type(&entries).map(|t| t.to_string()))
    .unwrap_or_default();
    let arch_key = |k: &str| architecture.as_deref().and_then(|a| f.get_u64(&format!("{a}.{k}")));
    let runnable = architecture.as_deref().is_some_and(|a| RUNNABLE_ARCHITECTURES.iter().any(|r| r.name() == a))
        && arch_key("expert_count").unwrap_or(0) == 0;
    let family = family_name(gguf_family_source(&stem, &name));
    ModelInfo {
        family_key: family_key(&family),
        family,
        name,
        path: canonical(path),
        format: Format::Gguf,
        architecture: architecture.clone(),
        parameters: (!entries.is_empty()).then_some(summary.total.params),
        type_label,
        size_on_disk: f.file_size(),
        runnable,
        context_length: arch_key("context_length"),
        layers: arch_key("block_count"),
        metadata: render_metadata(f.metadata()),
        bits_per_weight: (summary.total.params > 0).then(|| summary.total.bits_per_weight()),
        summary,
        repo_id: None,
    }
}

/// What a GGUF's family is read from: its file name, which names the base model the way its folder on the Hub does
/// (`SmolLM2-135M-Instruct.Q4_1.gguf`; `general.name` is often a training run's name), unless the file name says
/// nothing — an Ollama blob (`sha256-…`) or a generic `model.gguf` — and then the model's own name.
fn gguf_family_source<'a>(stem: &'a str, name: &'a str) -> &'a str {
    let base = family_name(stem).to_ascii_lowercase();
    let is_digest = base.split_once('-').is_some_and(|(algo, hex)| {
        algo.starts_with("sha") && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
    });
    let generic = matches!(base.as_str(), "" | "model" | "ggml-model" | "ggml_model" | "gguf-model" | "unsloth");
    if is_digest || generic {
        name
    } else {
        stem
    }
}

/// `general.name`, else `general.basename` with `general.size_label` (and `general.finetune`) as llama.cpp's
/// naming convention joins them.
fn gguf_name(f: &GgufFile) -> Option<String> {
    let nonempty = |k: &str| f.get_str(k).map(str::trim).filter(|s| !s.is_empty());
    if let Some(n) = nonempty("general.name") {
        return Some(n.to_string());
    }
    let base = nonempty("general.basename")?;
    let parts: Vec<&str> =
        [Some(base), nonempty("general.size_label"), nonempty("general.finetune")].into_iter().flatten().collect();
    Some(parts.join("-"))
}

/// The type that holds the most weights among the matrices (all tensors when there are none).
fn dominant_type(entries: &[TensorEntry]) -> Option<GgmlType> {
    let mut by_type: BTreeMap<u32, (GgmlType, u64)> = BTreeMap::new();
    let matrices: Vec<&TensorEntry> = entries.iter().filter(|t| t.dims.iter().filter(|&&d| d > 1).count() >= 2).collect();
    let pool: Vec<&TensorEntry> = if matrices.is_empty() { entries.iter().collect() } else { matrices };
    for t in pool {
        by_type.entry(t.ty.id()).or_insert((t.ty, 0)).1 += t.n_elements();
    }
    // Ties go to the lower ggml id, so the answer does not depend on tensor order.
    by_type.values().max_by(|a, b| a.1.cmp(&b.1).then(b.0.id().cmp(&a.0.id()))).map(|&(t, _)| t)
}

fn dtype_type(d: Dtype) -> GgmlType {
    match d {
        Dtype::F32 => GgmlType::F32,
        Dtype::F16 => GgmlType::F16,
        Dtype::BF16 => GgmlType::BF16,
    }
}

fn describe_folder(path: &Path) -> Result<ModelInfo, LibraryError> {
    let ckpt = Checkpoint::open(path)?;
    let dir = ckpt.dir().to_path_buf();
    // The converter's view gives GGUF tensor names (so the summary has groups) and the metadata a conversion would
    // write; an architecture it does not know still gets listed, from the checkpoint's own names.
    let plan = convert::plan(&ckpt).ok();
    let entries: Vec<TensorEntry> = match &plan {
        Some(plan) => plan
            .tensors
            .iter()
            .filter_map(|t| match &t.source {
                TensorSource::Checkpoint { dtype, .. } => Some(TensorEntry {
                    name: t.name.clone(),
                    dims: t.dims.clone(),
                    ty: dtype_type(*dtype),
                    bytes: t.n_elements() * dtype.size() as u64,
                }),
                TensorSource::Generated(_) => None, // rope_freqs: made by the converter, not on disk
            })
            .collect(),
        None => ckpt
            .tensor_names()
            .iter()
            .filter_map(|n| {
                let (_, info) = ckpt.tensor_info(n)?;
                Some(TensorEntry {
                    name: n.clone(),
                    dims: info.shape.iter().rev().copied().collect(),
                    ty: dtype_type(info.dtype),
                    bytes: (info.end - info.start) as u64,
                })
            })
            .collect(),
    };
    let summary = Summary::new(&entries);
    // Every checkpoint tensor counts, also those the converter skips (rotary caches and the like are not weights,
    // but they are in the folder): parameters are what the safetensors hold.
    let mut parameters = 0u64;
    let mut by_dtype: BTreeMap<&'static str, u64> = BTreeMap::new();
    for n in ckpt.tensor_names() {
        if let Some((_, info)) = ckpt.tensor_info(n) {
            parameters += info.n_elements();
            *by_dtype.entry(info.dtype.name()).or_default() += (info.end - info.start) as u64;
        }
    }
    let type_label = by_dtype.iter().max_by_key(|(_, &b)| b).map(|(d, _)| d.to_string()).unwrap_or_default();

    let repo_id = ckpt.repo_id().map(str::to_string);
    let name = repo_id
        .as_deref()
        .and_then(|r| r.rsplit('/').next())
        .map(str::to_string)
        .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();

    let cfg = ckpt.config();
    let (metadata, architecture, context_length, layers) = match &plan {
        Some(plan) => {
            let values: Vec<(String, Value)> =
                plan.metadata.entries().iter().map(|(k, v)| (k.clone(), meta_to_value(v))).collect();
            let arch = plan.arch.gguf_name().to_string();
            let get = |k: &str| values.iter().find(|(key, _)| *key == format!("{arch}.{k}")).and_then(|(_, v)| v.as_u64());
            let (ctx, layers) = (get("context_length"), get("block_count"));
            (render_metadata(&values), Some(arch), ctx, layers)
        }
        None => {
            // Unknown to the converter: the config's own words.
            let mut md: Vec<(String, String)> = Vec::new();
            let mut keys: Vec<(&String, &serde_json::Value)> = cfg.raw.iter().collect();
            keys.sort_by(|a, b| a.0.cmp(b.0));
            for (k, v) in keys {
                let mut text = v.to_string();
                if text.chars().count() > 120 {
                    text = text.chars().take(120).collect::<String>() + "…";
                }
                md.push((k.clone(), text));
            }
            let arch = cfg.model_type.clone().or_else(|| cfg.architecture().map(str::to_string));
            (md, arch, cfg.max_position_embeddings, cfg.num_hidden_layers)
        }
    };

    let mut size_on_disk = ckpt.source_bytes();
    for f in HF_SIDE_FILES {
        if let Ok(m) = std::fs::metadata(dir.join(f)) {
            size_on_disk += m.len();
        }
    }
    let family = family_name(&name);
    Ok(ModelInfo {
        family_key: family_key(&family),
        family,
        name,
        path: canonical(&dir),
        format: Format::HuggingFace,
        architecture,
        parameters: (!ckpt.tensor_names().is_empty()).then_some(parameters),
        type_label,
        size_on_disk,
        runnable: false,
        context_length,
        layers,
        metadata,
        bits_per_weight: (summary.total.params > 0).then(|| summary.total.bits_per_weight()),
        summary,
        repo_id,
    })
}

impl From<hf::HfError> for LibraryError {
    fn from(e: hf::HfError) -> Self {
        LibraryError::Hf(Box::new(e))
    }
}
