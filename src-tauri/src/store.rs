//! What the app remembers between launches (`library.json` in the app data folder): models the user added, files
//! the app made and what they were made from, discovered models the user removed, and perplexity measurements.
//! Written whole through a temporary file; an unreadable file is set aside and the app starts with an empty one.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::conversations::write_atomic;
use crate::dto::PerplexityResult;
use crate::error::AppResult;
use crate::state::file_stamp;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Stored {
    /// Paths added by the user, in the order added.
    pub added: Vec<String>,
    /// Files the app wrote → the id of their source.
    pub made: BTreeMap<String, String>,
    /// Discovered paths the user removed from the library.
    pub hidden: Vec<String>,
    /// Perplexity by path, valid while the file keeps its size and modification time.
    pub perplexity: BTreeMap<String, Measured>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Measured {
    pub result: PerplexityResult,
    pub file_bytes: u64,
    pub modified: u64,
}

pub struct Store {
    path: PathBuf,
    pub data: Stored,
}

impl Store {
    pub fn open(path: PathBuf) -> Store {
        let data = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                let aside = path.with_extension("json.unreadable");
                eprintln!("{}: {e}; kept as {} and starting afresh", path.display(), aside.display());
                let _ = fs::rename(&path, &aside);
                Stored::default()
            }),
            Err(_) => Stored::default(),
        };
        Store { path, data }
    }

    pub fn save(&self) -> AppResult<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(|e| crate::error::AppError::io(dir.display(), e))?;
        }
        let json = serde_json::to_vec_pretty(&self.data).expect("the store serialises");
        write_atomic(&self.path, &json)
    }

    pub fn add(&mut self, id: &str) {
        self.data.hidden.retain(|h| h != id);
        if !self.data.added.iter().any(|a| a == id) {
            self.data.added.push(id.to_string());
        }
    }

    pub fn record_made(&mut self, id: &str, source: &str) {
        self.data.hidden.retain(|h| h != id);
        self.data.made.insert(id.to_string(), source.to_string());
    }

    /// Forgets `id`: it leaves the added list, and discovered copies stay hidden.
    pub fn remove(&mut self, id: &str) {
        self.data.added.retain(|a| a != id);
        self.data.made.remove(id);
        self.data.perplexity.remove(id);
        if !self.data.hidden.iter().any(|h| h == id) {
            self.data.hidden.push(id.to_string());
        }
    }

    pub fn is_hidden(&self, id: &str) -> bool {
        self.data.hidden.iter().any(|h| h == id)
    }

    pub fn set_perplexity(&mut self, id: &str, result: PerplexityResult) {
        let (file_bytes, modified) = file_stamp(Path::new(id));
        self.data.perplexity.insert(id.to_string(), Measured { result, file_bytes, modified });
    }

    /// The stored measurement, if the file has not changed since.
    pub fn perplexity(&self, id: &str) -> Option<PerplexityResult> {
        let m = self.data.perplexity.get(id)?;
        (file_stamp(Path::new(id)) == (m.file_bytes, m.modified)).then(|| m.result.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ppl() -> PerplexityResult {
        PerplexityResult { perplexity: 12.5, stderr: 0.4, chunks: 2, tokens: 510, context_size: 512, seconds: 3.0 }
    }

    #[test]
    fn round_trips_and_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.gguf");
        fs::write(&model, b"GGUF....").unwrap();
        let id = model.to_str().unwrap();
        let mut s = Store::open(dir.path().join("library.json"));
        s.add(id);
        s.add(id);
        s.record_made("/out.gguf", id);
        s.set_perplexity(id, ppl());
        s.save().unwrap();
        let mut s = Store::open(dir.path().join("library.json"));
        assert_eq!(s.data.added, [id], "added once");
        assert_eq!(s.data.made.get("/out.gguf").map(String::as_str), Some(id));
        assert_eq!(s.perplexity(id), Some(ppl()));
        fs::write(&model, b"GGUF.... changed").unwrap();
        assert_eq!(s.perplexity(id), None, "a changed file's measurement is stale");
        s.remove(id);
        assert!(s.is_hidden(id) && s.data.added.is_empty());
        s.add(id);
        assert!(!s.is_hidden(id), "adding again unhides");
    }

    #[test]
    fn a_corrupt_store_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("library.json");
        fs::write(&path, b"[1,2").unwrap();
        let s = Store::open(path.clone());
        assert_eq!(s.data, Stored::default());
        assert!(dir.path().join("library.json.unreadable").exists());
    }
}
