//! Discovery: where models live on a machine, found cheaply (directory listings and small manifests, no model
//! parsed). Every scanner skips what it cannot read; none fails.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;

use crate::hf::cache::{default_cache_root, repo_id_of};

/// Where a [`Found`] model came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    HfCache,
    Ollama,
    LmStudio,
    /// A folder scanned with [`scan_dir`] (the app's own models folder).
    Folder,
}

/// A model found on disk, not yet described: pass `path` to [`super::describe`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// A GGUF file (an Ollama blob has no extension) or a Hugging Face folder (a cache snapshot).
    pub path: PathBuf,
    /// What the place it was found calls it: `ORG/NAME` in the HF cache, `model:tag` in Ollama,
    /// `publisher/file-stem` in LM Studio, the file stem or folder name elsewhere.
    pub name_hint: Option<String>,
    pub origin: Origin,
}

/// The roots the scanners walk. [`default_roots`] fills it from the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roots {
    pub hf_cache: Option<PathBuf>,
    pub ollama: Option<PathBuf>,
    pub lm_studio: Vec<PathBuf>,
    /// Folders for [`scan_dir`] (the app adds its own).
    pub folders: Vec<PathBuf>,
}

/// Ollama manifests are a few hundred bytes; a larger file is not one.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// The media type of the layer that holds an Ollama model's GGUF.
pub const OLLAMA_MODEL_MEDIA_TYPE: &str = "application/vnd.ollama.image.model";

/// Ollama's default registry: its models are named without it.
const OLLAMA_DEFAULT_REGISTRY: &str = "registry.ollama.ai";

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")).filter(|h| !h.is_empty()).map(PathBuf::from)
}

/// The usual places, from the environment: `HF_HUB_CACHE`/`HF_HOME` (else `~/.cache/huggingface/hub`),
/// `OLLAMA_MODELS` (else `~/.ollama/models`), LM Studio's `~/.lmstudio/models` and `~/.cache/lm-studio/models`.
/// Roots that do not exist are kept: scanning them finds nothing.
pub fn default_roots() -> Roots {
    let home = home();
    let ollama = std::env::var_os("OLLAMA_MODELS")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".ollama").join("models")));
    let lm_studio = home
        .as_ref()
        .map(|h| vec![h.join(".lmstudio").join("models"), h.join(".cache").join("lm-studio").join("models")])
        .unwrap_or_default();
    Roots { hf_cache: default_cache_root(), ollama, lm_studio, folders: Vec::new() }
}

/// Every scanner over `roots`, in order: folders, Hugging Face cache, Ollama, LM Studio. A path found twice (a
/// folder that is also a root) is listed once.
pub fn scan_all(roots: &Roots) -> Vec<Found> {
    let mut all = Vec::new();
    for d in &roots.folders {
        all.extend(scan_dir(d));
    }
    if let Some(r) = &roots.hf_cache {
        all.extend(scan_hf_cache(r));
    }
    if let Some(r) = &roots.ollama {
        all.extend(scan_ollama(r));
    }
    for r in &roots.lm_studio {
        all.extend(scan_lm_studio(r));
    }
    let mut seen = std::collections::HashSet::new();
    all.retain(|f| seen.insert((f.path.clone(), f.name_hint.clone())));
    all
}

/// Entries of `dir` (name, path), sorted by name; nothing when it cannot be listed.
fn entries(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<(String, PathBuf)> =
        rd.filter_map(Result::ok).map(|e| (e.file_name().to_string_lossy().into_owned(), e.path())).collect();
    out.sort();
    out
}

fn is_gguf_name(name: &str) -> bool {
    // `get`, not indexing: a name may end in a multi-byte character.
    name.len() > 5 && name.get(name.len() - 5..).is_some_and(|ext| ext.eq_ignore_ascii_case(".gguf"))
}

fn stem_of(name: &str) -> String {
    if is_gguf_name(name) {
        name[..name.len() - 5].to_string()
    } else {
        name.to_string()
    }
}

/// A vision projector that ships beside a model (`mmproj-…gguf`), not a language model.
fn is_mmproj(name: &str) -> bool {
    name.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("mmproj"))
}

/// Whether `dir` looks like a Hugging Face checkpoint: `config.json` and at least one `*.safetensors`.
fn is_hf_folder(dir: &Path) -> bool {
    dir.join("config.json").is_file()
        && entries(dir).iter().any(|(n, p)| n.ends_with(".safetensors") && p.is_file())
}

/// The Hugging Face cache at `root`: one [`Found`] per `models--ORG--NAME` repository that has a usable snapshot
/// (`config.json` and `*.safetensors`) — the snapshot `refs/main` names if usable, else the most recently modified.
pub fn scan_hf_cache(root: &Path) -> Vec<Found> {
    let mut out = Vec::new();
    for (name, repo) in entries(root) {
        let Some(repo_id) = repo_id_of(&name) else { continue };
        if !repo.is_dir() {
            continue;
        }
        let snapshots = repo.join("snapshots");
        let usable: Vec<(String, PathBuf)> = entries(&snapshots).into_iter().filter(|(_, p)| is_hf_folder(p)).collect();
        if usable.is_empty() {
            continue;
        }
        let main = read_small(&repo.join("refs").join("main"), 1024).map(|t| t.trim().to_string());
        let chosen = main
            .and_then(|rev| usable.iter().find(|(n, _)| *n == rev).cloned())
            .or_else(|| usable.iter().max_by_key(|(n, p)| (modified(p), n.clone())).cloned());
        if let Some((_, path)) = chosen {
            out.push(Found { path, name_hint: Some(repo_id), origin: Origin::HfCache });
        }
    }
    out
}

fn modified(p: &Path) -> SystemTime {
    std::fs::metadata(p).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Reads a file of at most `limit` bytes as text; None when larger, unreadable or not UTF-8.
fn read_small(path: &Path, limit: u64) -> Option<String> {
    let f = std::fs::File::open(path).ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut buf = Vec::new();
    // Read one byte past the limit to tell "exactly the limit" from "larger", whatever the metadata said.
    f.take(limit + 1).read_to_end(&mut buf).ok()?;
    if buf.len() as u64 > limit {
        return None;
    }
    String::from_utf8(buf).ok()
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct Layer {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    #[serde(default)]
    digest: String,
}

/// The blob file name a digest `sha256:<hex>` stands for, if the digest is well formed (it becomes part of a
/// path, so nothing but an algorithm name and hex digits passes).
fn blob_name(digest: &str) -> Option<String> {
    let (algo, hex) = digest.split_once(':')?;
    let ok = !algo.is_empty()
        && algo.bytes().all(|b| b.is_ascii_alphanumeric())
        && !hex.is_empty()
        && hex.len() <= 128
        && hex.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| format!("{algo}-{hex}"))
}

/// Ollama's model store at `root`: one [`Found`] per tag manifest whose model layer's blob exists.
pub fn scan_ollama(root: &Path) -> Vec<Found> {
    let mut out = Vec::new();
    let blobs = root.join("blobs");
    for (registry, reg_dir) in entries(&root.join("manifests")) {
        for (namespace, ns_dir) in entries(&reg_dir) {
            for (model, model_dir) in entries(&ns_dir) {
                for (tag, manifest) in entries(&model_dir) {
                    let Some(text) = read_small(&manifest, MAX_MANIFEST_BYTES) else { continue };
                    let Ok(m) = serde_json::from_str::<Manifest>(&text) else { continue };
                    let Some(layer) = m.layers.iter().find(|l| l.media_type == OLLAMA_MODEL_MEDIA_TYPE) else {
                        continue;
                    };
                    let Some(blob) = blob_name(&layer.digest).map(|b| blobs.join(b)) else { continue };
                    if !blob.is_file() {
                        continue;
                    }
                    let mut name = String::new();
                    if registry != OLLAMA_DEFAULT_REGISTRY {
                        name.push_str(&registry);
                        name.push('/');
                    }
                    if namespace != "library" || registry != OLLAMA_DEFAULT_REGISTRY {
                        name.push_str(&namespace);
                        name.push('/');
                    }
                    name.push_str(&format!("{model}:{tag}"));
                    out.push(Found { path: blob, name_hint: Some(name), origin: Origin::Ollama });
                }
            }
        }
    }
    out
}

/// LM Studio's models folder at `root`: `<publisher>/<repo>/*.gguf`, vision projectors (`mmproj-*`) left out.
pub fn scan_lm_studio(root: &Path) -> Vec<Found> {
    let mut out = Vec::new();
    for (publisher, pub_dir) in entries(root) {
        for (_repo, repo_dir) in entries(&pub_dir) {
            for (file, path) in entries(&repo_dir) {
                if !is_gguf_name(&file) || is_mmproj(&file) || file.starts_with('.') || !path.is_file() {
                    continue;
                }
                let hint = format!("{publisher}/{}", stem_of(&file));
                out.push(Found { path, name_hint: Some(hint), origin: Origin::LmStudio });
            }
        }
    }
    out
}

/// A folder of models (the app's own): `*.gguf` files and Hugging Face folders directly inside `dir`. Hidden
/// entries (a writer's `.name.partial-…` temporary files among them) and `mmproj-*` files are left out.
pub fn scan_dir(dir: &Path) -> Vec<Found> {
    let mut out = Vec::new();
    for (name, path) in entries(dir) {
        if name.starts_with('.') {
            continue;
        }
        if is_gguf_name(&name) && !is_mmproj(&name) && path.is_file() {
            out.push(Found { path, name_hint: Some(stem_of(&name)), origin: Origin::Folder });
        } else if path.is_dir() && is_hf_folder(&path) {
            out.push(Found { path, name_hint: Some(name), origin: Origin::Folder });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_become_blob_names_only_when_well_formed() {
        assert_eq!(blob_name("sha256:00ff").as_deref(), Some("sha256-00ff"));
        assert_eq!(blob_name("sha256:../../etc/passwd"), None);
        assert_eq!(blob_name("sha256:"), None);
        assert_eq!(blob_name("00ff"), None);
        assert_eq!(blob_name("sha/256:00ff"), None);
    }

    #[test]
    fn names() {
        assert!(is_gguf_name("a.GGUF") && !is_gguf_name(".gguf") && !is_gguf_name("a.gguf.partial"));
        assert!(is_mmproj("mmproj-model-f16.gguf") && is_mmproj("MMPROJ.gguf") && !is_mmproj("model.gguf"));
        assert_eq!(stem_of("x-Q4_K_M.gguf"), "x-Q4_K_M");
        assert!(!is_gguf_name("modèle-é") && !is_mmproj("mmpro€"), "multi-byte ends do not panic");
    }
}
