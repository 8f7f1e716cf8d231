//! The Hugging Face cache layout (`huggingface_hub` `file_download.py`):
//!
//! ```text
//! <cache root>/models--ORG--NAME/
//!     refs/main                 text file holding the commit hash that `main` pointed to when downloaded
//!     snapshots/<commit>/...    the repository's files, as symlinks into blobs/
//!     blobs/<sha>               the contents
//! ```
//!
//! The cache root is `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.

use std::path::{Path, PathBuf};

use super::HfError;

/// A checkpoint folder and, when it came from the cache, the repository id (`ORG/NAME`) it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedDir {
    pub dir: PathBuf,
    pub repo_id: Option<String>,
}

/// The repository id a cache folder name stands for: `models--HuggingFaceTB--SmolLM2-135M` →
/// `HuggingFaceTB/SmolLM2-135M`. Hugging Face writes `/` as `--`; ids without an organisation have one part.
pub fn repo_id_of(folder_name: &str) -> Option<String> {
    let rest = folder_name.strip_prefix("models--")?;
    if rest.is_empty() {
        return None;
    }
    Some(rest.replacen("--", "/", 1))
}

/// The cache folder name for a repository id: the inverse of [`repo_id_of`].
pub fn folder_of(repo_id: &str) -> String {
    format!("models--{}", repo_id.replace('/', "--"))
}

/// The default cache root, from the environment as `huggingface_hub` computes it.
pub fn default_cache_root() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE") {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("HF_HOME") {
        return Some(PathBuf::from(p).join("hub"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("huggingface").join("hub"))
}

/// Finds a repository's current snapshot in a cache root (`None`: the default root).
pub fn find_cached(repo_id: &str, cache_root: Option<&Path>) -> Result<ResolvedDir, HfError> {
    let root = match cache_root {
        Some(r) => r.to_path_buf(),
        None => default_cache_root().ok_or_else(|| HfError::NotACheckpoint {
            path: PathBuf::from(repo_id),
            reason: "no Hugging Face cache folder: set HF_HUB_CACHE or HF_HOME".into(),
        })?,
    };
    let repo = root.join(folder_of(repo_id));
    if !repo.is_dir() {
        return Err(HfError::NotACheckpoint {
            path: repo,
            reason: format!("{repo_id} is not in the Hugging Face cache"),
        });
    }
    resolve(&repo)
}

/// Resolves what the user pointed at into the folder that holds `config.json`:
/// - a folder with `config.json` is used as is (its repository id found if it is a cache snapshot);
/// - a cache repository folder (`models--ORG--NAME`, with `snapshots/`) resolves through `refs/main`, or through
///   its only snapshot when there is no ref.
pub fn resolve(path: &Path) -> Result<ResolvedDir, HfError> {
    if !path.is_dir() {
        return Err(HfError::NotACheckpoint { path: path.to_path_buf(), reason: "not a folder".into() });
    }
    if path.join("config.json").is_file() {
        // …/models--ORG--NAME/snapshots/<commit>: name the repository.
        let repo_id = path
            .parent()
            .filter(|p| p.file_name().is_some_and(|n| n == "snapshots"))
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .and_then(repo_id_of);
        return Ok(ResolvedDir { dir: path.to_path_buf(), repo_id });
    }
    let snapshots = path.join("snapshots");
    if !snapshots.is_dir() {
        return Err(HfError::NotACheckpoint {
            path: path.to_path_buf(),
            reason: "no config.json here, and not a Hugging Face cache folder (no snapshots/)".into(),
        });
    }
    let repo_id = path.file_name().and_then(|n| n.to_str()).and_then(repo_id_of);
    let ref_main = path.join("refs").join("main");
    let commit = if ref_main.is_file() {
        let text = std::fs::read_to_string(&ref_main).map_err(|e| HfError::io(&ref_main, e))?;
        let commit = text.trim().to_string();
        // A ref is a commit hash; anything else (a path, say) must not be joined onto snapshots/.
        if commit.is_empty() || commit.len() > 128 || !commit.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(HfError::NotACheckpoint { path: ref_main, reason: format!("{commit:?} is not a commit hash") });
        }
        commit
    } else {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&snapshots).map_err(|e| HfError::io(&snapshots, e))? {
            let entry = entry.map_err(|e| HfError::io(&snapshots, e))?;
            if entry.path().is_dir() {
                found.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        found.sort();
        match found.len() {
            1 => found.remove(0),
            0 => {
                return Err(HfError::NotACheckpoint { path: snapshots, reason: "no snapshots downloaded".into() });
            }
            _ => {
                return Err(HfError::NotACheckpoint {
                    path: snapshots,
                    reason: format!("no refs/main and several snapshots ({}): pick one", found.join(", ")),
                });
            }
        }
    };
    let dir = snapshots.join(&commit);
    if !dir.join("config.json").is_file() {
        return Err(HfError::NotACheckpoint { path: dir, reason: "snapshot has no config.json".into() });
    }
    Ok(ResolvedDir { dir, repo_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_round_trip() {
        assert_eq!(repo_id_of("models--HuggingFaceTB--SmolLM2-135M").as_deref(), Some("HuggingFaceTB/SmolLM2-135M"));
        assert_eq!(repo_id_of("models--gpt2").as_deref(), Some("gpt2"));
        assert_eq!(repo_id_of("datasets--x--y"), None);
        assert_eq!(folder_of("Qwen/Qwen2.5-0.5B"), "models--Qwen--Qwen2.5-0.5B");
    }
}
