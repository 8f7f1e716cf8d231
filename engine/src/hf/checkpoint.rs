//! [`Checkpoint`]: a resolved checkpoint folder, its config, and its mapped weight files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::cache::{self, ResolvedDir};
use super::config::{GenerationConfig, HfConfig};
use super::safetensors::{widen_to_f32, SafetensorsFile, TensorInfo};
use super::HfError;

/// An opened Hugging Face checkpoint. Tensors are listed in the order llama.cpp's converter visits them: shard
/// files in name order, and inside each shard tensors in name order.
pub struct Checkpoint {
    dir: PathBuf,
    repo_id: Option<String>,
    config_path: PathBuf,
    config: HfConfig,
    generation: Option<GenerationConfig>,
    shards: Vec<SafetensorsFile>,
    /// Tensor name → index into `shards`.
    index: BTreeMap<String, usize>,
    /// Tensor names in converter order.
    order: Vec<String>,
}

#[derive(Deserialize)]
struct IndexFile {
    weight_map: BTreeMap<String, String>,
}

impl Checkpoint {
    /// Opens a checkpoint folder, a Hugging Face cache repository folder, or one of its snapshots.
    pub fn open(path: &Path) -> Result<Checkpoint, HfError> {
        let ResolvedDir { dir, repo_id } = cache::resolve(path)?;
        let config_path = dir.join("config.json");
        let config = HfConfig::load(&config_path)?;
        let generation = GenerationConfig::load(&dir.join("generation_config.json"));

        let index_path = dir.join("model.safetensors.index.json");
        let mut from_index: Option<BTreeMap<String, String>> = None;
        let part_names: Vec<String> = if index_path.is_file() {
            let index: IndexFile = super::read_json(&index_path)?;
            let parts: BTreeSet<String> = index.weight_map.values().cloned().collect();
            for p in &parts {
                // Shard names come from the file: keep them inside the folder.
                if p.is_empty() || p.contains('/') || p.contains('\\') || p == ".." || p == "." {
                    return Err(HfError::Config { file: index_path, reason: format!("bad shard file name {p:?}") });
                }
            }
            from_index = Some(index.weight_map);
            parts.into_iter().collect()
        } else {
            // As the converter does: every model*.safetensors in the folder, in name order.
            let mut parts = Vec::new();
            for entry in std::fs::read_dir(&dir).map_err(|e| HfError::io(&dir, e))? {
                let entry = entry.map_err(|e| HfError::io(&dir, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("model") && name.ends_with(".safetensors") {
                    parts.push(name);
                }
            }
            parts.sort();
            parts
        };
        if part_names.is_empty() {
            let reason = if dir.join("pytorch_model.bin").exists() || dir.join("pytorch_model.bin.index.json").exists()
            {
                "only PyTorch .bin weights: convert them to safetensors first (they are pickles, unsafe to load)"
            } else {
                "no model.safetensors or model.safetensors.index.json"
            };
            return Err(HfError::NotACheckpoint { path: dir, reason: reason.into() });
        }

        let mut shards = Vec::with_capacity(part_names.len());
        let mut index = BTreeMap::new();
        let mut order = Vec::new();
        for (i, part) in part_names.iter().enumerate() {
            let file = SafetensorsFile::open(&dir.join(part))?;
            for name in file.tensors().keys() {
                if let Some(&j) = index.get(name) {
                    let first: &SafetensorsFile = &shards[j];
                    return Err(HfError::DuplicateTensor {
                        name: name.clone(),
                        first: first.path().to_path_buf(),
                        second: file.path().to_path_buf(),
                    });
                }
                index.insert(name.clone(), i);
                order.push(name.clone());
            }
            shards.push(file);
        }

        if let Some(map) = from_index {
            let mut missing = Vec::new();
            let mut extra = Vec::new();
            for (name, part) in &map {
                match index.get(name) {
                    Some(&i) if part_names[i] == *part => {}
                    _ => missing.push(name.clone()),
                }
            }
            for name in index.keys() {
                if !map.contains_key(name) {
                    extra.push(name.clone());
                }
            }
            if !missing.is_empty() || !extra.is_empty() {
                // Keep the message readable when a whole shard is gone.
                missing.truncate(20);
                extra.truncate(20);
                return Err(HfError::IndexMismatch { file: index_path, missing, extra });
            }
        }

        Ok(Checkpoint { dir, repo_id, config_path, config, generation, shards, index, order })
    }

    /// The folder holding `config.json` (a snapshot folder for cached models).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `ORG/NAME` when the checkpoint came from the Hugging Face cache.
    pub fn repo_id(&self) -> Option<&str> {
        self.repo_id.as_deref()
    }

    pub fn config(&self) -> &HfConfig {
        &self.config
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn generation_config(&self) -> Option<&GenerationConfig> {
        self.generation.as_ref()
    }

    /// A file next to `config.json`, if present.
    pub fn file(&self, name: &str) -> Option<PathBuf> {
        let p = self.dir.join(name);
        p.is_file().then_some(p)
    }

    /// Tensor names in the order the converter visits them.
    pub fn tensor_names(&self) -> &[String] {
        &self.order
    }

    /// Where a tensor is and what it holds.
    pub fn tensor_info(&self, name: &str) -> Option<(&SafetensorsFile, &TensorInfo)> {
        let shard = &self.shards[*self.index.get(name)?];
        Some((shard, shard.get(name)?))
    }

    /// Reads one tensor widened to f32 (PyTorch order: last dimension contiguous) into `out`.
    pub fn read_f32(&self, name: &str, out: &mut Vec<f32>) -> Result<&TensorInfo, HfError> {
        let (shard, info) = self
            .tensor_info(name)
            .ok_or_else(|| HfError::NoSuchTensor { dir: self.dir.clone(), name: name.to_string() })?;
        widen_to_f32(info.dtype, shard.bytes(info), out);
        Ok(info)
    }

    /// Total size of the weight files, for progress and size reports.
    pub fn source_bytes(&self) -> u64 {
        self.shards.iter().map(SafetensorsFile::len).sum()
    }

    pub fn shards(&self) -> &[SafetensorsFile] {
        &self.shards
    }
}
