//! The library as the UI sees it: the user's added models, the files the app made, and what the engine's scanners
//! find on the machine (the app's models folder, the Hugging Face cache, Ollama, LM Studio), each described by
//! `pocketlm::library::describe` and turned into the UI's `ModelEntry`. Descriptions are cached by path, size and
//! modification time, so listing stays cheap.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pocketlm::library::{self as lib, Found, ModelInfo, Origin};
use pocketlm::summary::Summary;

use crate::dto::{GroupTally, MetadataItem, ModelDetails, ModelEntry, Tally, TypeTally};
use crate::error::{AppError, AppResult, Code};
use crate::state::{file_stamp, AppState};

/// A model's description, or why it could not be read.
pub type Described = Result<Arc<ModelInfo>, String>;

pub struct Memory {
    pub total: u64,
    pub available: u64,
}

/// This device's memory now.
pub fn memory() -> Memory {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    Memory { total: sys.total_memory(), available: sys.available_memory() }
}

/// The canonical form of a path: the library's id for it.
pub fn canonical(path: &Path) -> AppResult<PathBuf> {
    std::fs::canonicalize(path)
        .map_err(|e| AppError::new(Code::InvalidModel, format!("{}: {e}", path.display())))
}

/// Describes `path`, from the cache when the file has not changed.
pub fn describe(state: &AppState, path: &Path) -> Described {
    let key = file_stamp(path);
    if let Some((k, d)) = state.described.lock().unwrap_or_else(|p| p.into_inner()).get(path) {
        if *k == key {
            return d.clone();
        }
    }
    let d: Described = lib::describe(path).map(Arc::new).map_err(|e| e.to_string());
    state.described.lock().unwrap_or_else(|p| p.into_inner()).insert(path.to_path_buf(), (key, d.clone()));
    d
}

fn origin_label(o: Origin) -> &'static str {
    match o {
        Origin::HfCache => "hf-cache",
        Origin::Ollama => "ollama",
        Origin::LmStudio => "lm-studio",
        // In the app's models folder but not written by the app (the demo placed by setup, a file copied there):
        // "added". "app" ("made here") is for the app's own quantizations, which `list` takes from the store.
        Origin::Folder => "added",
    }
}

/// The UI's entry for `path`: described, or with `error` set when it cannot be read.
pub fn entry(state: &AppState, path: &Path, origin: &'static str, name_hint: Option<&str>) -> ModelEntry {
    let id = path.display().to_string();
    let derived_from = state.store().data.made.get(&id).cloned();
    match describe(state, path) {
        Ok(info) => ModelEntry {
            id,
            // Ollama's `model:tag` is how its users know a model; elsewhere the file's own name reads better.
            name: match (origin, name_hint) {
                ("ollama", Some(h)) => h.to_string(),
                _ => info.name.clone(),
            },
            path: path.display().to_string(),
            format: if info.format == lib::Format::Gguf { "gguf" } else { "hf" },
            origin,
            architecture: info.architecture.clone(),
            parameters: info.parameters,
            ty: info.type_label.clone(),
            size_bytes: info.size_on_disk,
            family: info.family.clone(),
            derived_from,
            runnable: info.runnable,
            error: None,
        },
        Err(message) => {
            let name = name_hint
                .map(str::to_string)
                .or_else(|| path.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| id.clone());
            ModelEntry {
                id,
                family: name.clone(),
                name,
                path: path.display().to_string(),
                format: if path.is_dir() { "hf" } else { "gguf" },
                origin,
                architecture: None,
                parameters: None,
                ty: "unknown".into(),
                size_bytes: std::fs::metadata(path).map_or(0, |m| m.len()),
                derived_from,
                runnable: false,
                error: Some(message),
            }
        }
    }
}

/// Every model the library shows: added and made first, then discovered ones; each path once; removed ones not.
pub fn list(state: &AppState) -> Vec<ModelEntry> {
    let (added, made) = {
        let s = state.store();
        (s.data.added.clone(), s.data.made.keys().cloned().collect::<Vec<_>>())
    };
    let mut candidates: Vec<(PathBuf, &'static str, Option<String>)> = Vec::new();
    for p in added {
        candidates.push((PathBuf::from(p), "added", None));
    }
    for p in made {
        candidates.push((PathBuf::from(p), "app", None));
    }
    let mut roots = lib::default_roots();
    roots.folders.insert(0, state.paths.models_dir.clone());
    let found: Vec<Found> = lib::scan_all(&roots);
    for f in found {
        candidates.push((f.path, origin_label(f.origin), f.name_hint));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (path, origin, hint) in candidates {
        let Ok(id) = std::fs::canonicalize(&path) else { continue }; // gone from disk: not shown
        if !seen.insert(id.clone()) || state.store().is_hidden(&id.display().to_string()) {
            continue;
        }
        out.push(entry(state, &id, origin, hint.as_deref()));
    }
    out.sort_by(|a, b| a.family.to_lowercase().cmp(&b.family.to_lowercase()).then(b.size_bytes.cmp(&a.size_bytes)));
    out
}

/// The entry with this id, wherever it was found.
pub fn find(state: &AppState, id: &str) -> AppResult<ModelEntry> {
    list(state)
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| AppError::not_found(format!("{id}: not in the library (was it moved or deleted?)")))
}

/// Adds a file or folder the user picked; refuses what is not a readable model, naming the fault.
pub fn add(state: &AppState, path: &Path) -> AppResult<ModelEntry> {
    let id = canonical(path)?;
    describe(state, &id).map_err(|m| AppError::new(Code::InvalidModel, m))?;
    {
        let mut s = state.store();
        s.add(&id.display().to_string());
        s.save()?;
    }
    Ok(entry(state, &id, "added", None))
}

/// Forgets an entry; a file the app made is deleted from disk too.
pub fn remove(state: &AppState, id: &str) -> AppResult<()> {
    let made_here = {
        let s = state.store();
        s.data.made.contains_key(id)
    };
    if made_here && Path::new(id).is_file() {
        std::fs::remove_file(id).map_err(|e| AppError::io(id, e))?;
    }
    let mut s = state.store();
    s.remove(id);
    s.save()
}

pub fn tallies(summary: &Summary) -> (Vec<GroupTally>, Vec<TypeTally>, Tally) {
    let t = |x: &pocketlm::summary::Tally| Tally { tensors: x.tensors, parameters: x.params, bytes: x.bytes };
    (
        summary.by_group.iter().map(|(g, x)| GroupTally { group: g.label(), tally: t(x) }).collect(),
        summary.by_type.iter().map(|(ty, x)| TypeTally { ty: ty.to_string(), tally: t(x) }).collect(),
        t(&summary.total),
    )
}

pub fn details(state: &AppState, id: &str) -> AppResult<ModelDetails> {
    let entry = find(state, id)?;
    let info = describe(state, Path::new(id)).map_err(|m| AppError::new(Code::InvalidModel, m))?;
    let (by_group, by_type, total) = tallies(&info.summary);
    Ok(ModelDetails {
        entry,
        metadata: info.metadata.iter().map(|(k, v)| MetadataItem { key: k.clone(), value: v.clone() }).collect(),
        by_group,
        by_type,
        total,
        bits_per_weight: info.bits_per_weight.unwrap_or(0.0),
        context_length: info.context_length,
        layers: info.layers,
    })
}
