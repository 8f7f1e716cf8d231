//! The app's state, shared by every command: where its files live, the library store, running jobs, the loaded
//! chat model and the saved conversations. Cheap to clone (one Arc) so blocking jobs can own a handle.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use pocketlm::chat::Session;

use crate::conversations::Conversations;
use crate::dto::ModelEntry;
use crate::jobs::Jobs;
use crate::store::Store;

/// A file's size and modification time (ns since the epoch): when either changes, what was learnt of it is stale.
pub type FileStamp = (u64, u64);

/// The stamp of `path` now; (0, 0) when it cannot be read.
pub fn file_stamp(path: &std::path::Path) -> FileStamp {
    std::fs::metadata(path)
        .map(|m| {
            let t = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            (m.len(), t.map_or(0, |d| d.as_nanos() as u64))
        })
        .unwrap_or((0, 0))
}

pub struct Paths {
    pub data_dir: PathBuf,
    /// Where quantized files go, and a folder the library scans (the demo model is placed here by setup).
    pub models_dir: PathBuf,
}

/// The model chat runs on, with its session (KV cache and all).
pub struct Loaded {
    pub entry: ModelEntry,
    pub session: Session,
}

pub struct Inner {
    pub paths: Paths,
    pub store: Mutex<Store>,
    pub jobs: Jobs,
    pub conversations: Conversations,
    pub chat: Mutex<Option<Loaded>>,
    /// Descriptions of models by path, with the (size, mtime) they were made from.
    pub described: Mutex<HashMap<PathBuf, (FileStamp, crate::library::Described)>>,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(data_dir: PathBuf, models_dir: PathBuf) -> AppState {
        let store = Store::open(data_dir.join("library.json"));
        let conversations = Conversations::new(data_dir.join("conversations"));
        AppState(Arc::new(Inner {
            paths: Paths { data_dir, models_dir },
            store: Mutex::new(store),
            jobs: Jobs::default(),
            conversations,
            chat: Mutex::new(None),
            described: Mutex::new(HashMap::new()),
        }))
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn chat(&self) -> MutexGuard<'_, Option<Loaded>> {
        self.chat.lock().unwrap_or_else(|p| p.into_inner())
    }
}
