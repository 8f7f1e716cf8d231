//! The model library: what the app lists — every model on the machine, described from its headers — testable
//! without a window.
//!
//! Two steps, so that a long list appears at once and fills in as it is read:
//!
//! 1. **Discovery** ([`scan_hf_cache`], [`scan_ollama`], [`scan_lm_studio`], [`scan_dir`]; [`scan_all`] over the
//!    [`default_roots`]) walks the places models live and returns [`Found`] entries — a path, a name hint and where
//!    it came from — without parsing a model. Each scanner takes its root, so tests point it at a temporary tree.
//!    Nothing found is fatal: an unreadable folder, a malformed or oversized Ollama manifest, a manifest whose
//!    blob is gone — each is skipped.
//!    - Hugging Face cache (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`): every
//!      `models--ORG--NAME` repository with a snapshot holding `config.json` and `*.safetensors`; one snapshot per
//!      repository — the one `refs/main` names, else the most recently modified.
//!    - Ollama (`$OLLAMA_MODELS`, else `~/.ollama/models`): `manifests/<registry>/<namespace>/<model>/<tag>` JSON;
//!      the layer of media type `application/vnd.ollama.image.model` names a blob `sha256:<hex>` →
//!      `blobs/sha256-<hex>`, a GGUF. Named as `ollama list` names it: `model:tag`, with `namespace/` when it is
//!      not `library` and `registry/` when it is not `registry.ollama.ai`. Tags sharing a blob are listed each.
//!    - LM Studio (`~/.lmstudio/models`, `~/.cache/lm-studio/models`): `<publisher>/<repo>/*.gguf`, without the
//!      `mmproj-*` vision projectors.
//!    - A folder of our own ([`scan_dir`]): `*.gguf` files and Hugging Face folders directly inside it.
//! 2. **Description** ([`describe`]) reads one model's headers — GGUF metadata and tensor infos, or a checkpoint's
//!    config, tokenizer and safetensors headers, never the weights — into a [`ModelInfo`]: name, format,
//!    architecture, parameter count, type label (`Q4_K_M`, `BF16`), size on disk, [`family`](ModelInfo::family)
//!    (the base model, so that a model's quantizations group with its source: compare
//!    [`family_key`](ModelInfo::family_key)), whether the chat engine can run it, context length, layers,
//!    metadata as `pocketlm inspect` prints it, and the [`Summary`] by type and tensor group. A path that is not a
//!    model is a [`LibraryError`] naming it and the fault; nothing here panics on a hostile file.
//!
//! ```no_run
//! use pocketlm::library::{default_roots, describe, scan_all};
//!
//! for found in scan_all(&default_roots()) {
//!     match describe(&found.path) {
//!         Ok(m) => println!("{} — {} {}, {}", m.name, m.architecture.unwrap_or_default(), m.type_label, m.family),
//!         Err(e) => eprintln!("{e}"),
//!     }
//! }
//! ```

mod describe;
mod naming;
mod scan;

use std::path::{Path, PathBuf};

pub use describe::{describe, render_metadata, METADATA_ARRAY_ITEMS, RUNNABLE_ARCHITECTURES};
pub use naming::{family_key, family_name, file_type_label_from_text, file_type_name};
pub use scan::{
    default_roots, scan_all, scan_dir, scan_hf_cache, scan_lm_studio, scan_ollama, Found, Origin, Roots,
    MAX_MANIFEST_BYTES, OLLAMA_MODEL_MEDIA_TYPE,
};

use crate::summary::Summary;

/// How a model is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// One `.gguf` file.
    Gguf,
    /// A Hugging Face folder: `config.json`, safetensors weights, tokenizer files.
    HuggingFace,
}

impl Format {
    pub fn label(self) -> &'static str {
        match self {
            Format::Gguf => "GGUF",
            Format::HuggingFace => "Hugging Face",
        }
    }
}

/// One model as the library shows it.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    /// GGUF: `general.name`, else `general.basename` with its size label, else the file stem. Hugging Face: the
    /// last part of the repository id, else the folder's name.
    pub name: String,
    /// Canonical path: the file, or the folder holding `config.json` (a snapshot folder for the HF cache).
    pub path: PathBuf,
    pub format: Format,
    /// GGUF `general.architecture` (`"llama"`); for a checkpoint the GGUF name the converter would give it, else
    /// the config's `model_type`.
    pub architecture: Option<String>,
    /// Sum of the tensors' element counts (None when there are no tensors).
    pub parameters: Option<u64>,
    /// GGUF: `general.file_type` as llama.cpp names it (`"Q4_K_M"`, `"Q4_1"`, `"BF16"`), else the type holding most
    /// weights. Hugging Face: the safetensors dtype holding most bytes (`"BF16"`, `"F16"`, `"F32"`).
    pub type_label: String,
    /// Bytes on disk: the GGUF file; for a folder its safetensors files, config and tokenizer files.
    pub size_on_disk: u64,
    /// The base model: [`Self::name`] without quantization suffixes (`"SmolLM2-135M-Instruct"`).
    pub family: String,
    /// [`family_key`] of the family: equal for every spelling of one base model.
    pub family_key: String,
    /// A GGUF of an architecture the chat engine runs ([`RUNNABLE_ARCHITECTURES`], no mixture of experts).
    /// Hugging Face folders are never runnable as they are: they are quantized first.
    pub runnable: bool,
    /// `ARCH.context_length` (for a checkpoint, what the converter would write).
    pub context_length: Option<u64>,
    /// `ARCH.block_count`.
    pub layers: Option<u64>,
    /// Every metadata key with its value as `pocketlm inspect` prints it (long arrays and strings summarised). For
    /// a checkpoint, the metadata a conversion would write (or, for an architecture the converter does not know,
    /// `config.json`'s keys).
    pub metadata: Vec<(String, String)>,
    /// Bytes, parameters and tensors by type and by tensor group, with totals.
    pub summary: Summary,
    /// Bits per weight over all tensors (None when there are none).
    pub bits_per_weight: Option<f64>,
    /// `ORG/NAME` for a model in the Hugging Face cache.
    pub repo_id: Option<String>,
}

/// Why a path could not be described. Every variant names the path.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("{}: {reason}", path.display())]
    NotAModel { path: PathBuf, reason: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// A GGUF file that does not parse: truncated, corrupt, hostile.
    #[error(transparent)]
    Gguf(#[from] crate::gguf::GgufError),
    /// A Hugging Face folder that does not open: no config.json, bad JSON, missing or broken safetensors.
    #[error(transparent)]
    Hf(Box<crate::hf::HfError>),
}

impl LibraryError {
    fn not_a_model(path: &Path, reason: impl Into<String>) -> LibraryError {
        LibraryError::NotAModel { path: path.to_path_buf(), reason: reason.into() }
    }
    fn io(path: &Path, source: std::io::Error) -> LibraryError {
        LibraryError::Io { path: path.to_path_buf(), source }
    }
}
