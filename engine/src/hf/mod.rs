//! Hugging Face checkpoints: find the folder, read its configs, and map its safetensors weights.
//!
//! A checkpoint folder holds `config.json` (hyperparameters), optionally `generation_config.json`, the tokenizer
//! files (`tokenizer.json`, `tokenizer_config.json`, read by [`crate::convert`]), and weights in `model.safetensors`
//! or in shards listed by `model.safetensors.index.json`. [`Checkpoint::open`] also accepts a repository folder of
//! the Hugging Face cache (`models--ORG--NAME`, whose `refs/main` names the snapshot to use) or one of its
//! snapshots (whose files are symlinks into `blobs/`).
//!
//! Nothing is read eagerly but headers: weights stay memory-mapped and [`Checkpoint::read_f32`] widens one tensor
//! at a time, so converting a model never needs more RAM than its largest tensor.

pub mod cache;
mod checkpoint;
pub mod config;
pub mod safetensors;

use std::path::{Path, PathBuf};

pub use checkpoint::Checkpoint;
pub use config::{GenerationConfig, HParams, HfConfig, RopeParams};
pub use safetensors::{Dtype, SafetensorsFile, TensorInfo};

/// Largest JSON file we read (config, tokenizer, index). Real `tokenizer.json` files reach ~30 MB (Gemma's, 34 MB);
/// the limit only stops a hostile or mistaken path from being read whole into memory.
pub const MAX_JSON_BYTES: u64 = 256 << 20;

/// What can go wrong reading a checkpoint. Every variant names the file, and the tensor where there is one.
#[derive(Debug, thiserror::Error)]
pub enum HfError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{}: invalid JSON: {source}", file.display())]
    Json { file: PathBuf, source: serde_json::Error },

    #[error("{}: {reason}", file.display())]
    Config { file: PathBuf, reason: String },

    #[error("{}{}: {reason}", file.display(), tensor.as_ref().map(|t| format!(", tensor {t:?}")).unwrap_or_default())]
    Safetensors { file: PathBuf, tensor: Option<String>, reason: String },

    #[error("{}, tensor {tensor:?}: dtype {dtype} is not supported (only F32, F16 and BF16 are)", file.display())]
    UnsupportedDtype { file: PathBuf, tensor: String, dtype: String },

    #[error("{}: {reason}", path.display())]
    NotACheckpoint { path: PathBuf, reason: String },

    #[error("{}: the index and the shards disagree: missing tensors {missing:?}, extra tensors {extra:?}", file.display())]
    IndexMismatch { file: PathBuf, missing: Vec<String>, extra: Vec<String> },

    #[error("tensor {name:?} appears in both {} and {}", first.display(), second.display())]
    DuplicateTensor { name: String, first: PathBuf, second: PathBuf },

    #[error("{}: no tensor named {name:?}", dir.display())]
    NoSuchTensor { dir: PathBuf, name: String },
}

impl HfError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> HfError {
        HfError::Io { path: path.to_path_buf(), source }
    }
}

/// Reads a JSON file as text, refusing files over [`MAX_JSON_BYTES`].
pub(crate) fn read_json_text(path: &Path) -> Result<String, HfError> {
    let len = std::fs::metadata(path).map_err(|e| HfError::io(path, e))?.len();
    if len > MAX_JSON_BYTES {
        return Err(HfError::Config {
            file: path.to_path_buf(),
            reason: format!("{len} bytes is larger than the {MAX_JSON_BYTES}-byte limit for JSON files"),
        });
    }
    std::fs::read_to_string(path).map_err(|e| HfError::io(path, e))
}

/// Parses a JSON file into `T`, naming the file on error.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, HfError> {
    let text = read_json_text(path)?;
    serde_json::from_str(&text).map_err(|e| HfError::Json { file: path.to_path_buf(), source: e })
}
