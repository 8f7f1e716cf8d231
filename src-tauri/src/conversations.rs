//! Conversations saved in the app data folder, one JSON file each (`conversations/<id>.json`), written whole to a
//! temporary file and renamed so a crash never leaves half a conversation.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::dto::{Conversation, ConversationSummary};
use crate::error::{AppError, AppResult, Code};

/// Largest conversation file read back (a runaway file is refused, not loaded).
const MAX_FILE_BYTES: u64 = 32 << 20;

pub struct Conversations {
    dir: PathBuf,
}

impl Conversations {
    pub fn new(dir: PathBuf) -> Conversations {
        Conversations { dir }
    }

    fn path(&self, id: &str) -> AppResult<PathBuf> {
        // Ids come from the UI: letters, digits and dashes only, so a file name cannot escape the folder.
        let ok = !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(AppError::new(Code::NotFound, format!("{id:?} is not a conversation id")));
        }
        Ok(self.dir.join(format!("{id}.json")))
    }

    pub fn save(&self, c: &Conversation) -> AppResult<ConversationSummary> {
        let path = self.path(&c.id)?;
        fs::create_dir_all(&self.dir).map_err(|e| AppError::io(self.dir.display(), e))?;
        let json = serde_json::to_vec_pretty(c).map_err(|e| AppError::new(Code::Internal, e.to_string()))?;
        write_atomic(&path, &json)?;
        Ok(summary(c))
    }

    pub fn get(&self, id: &str) -> AppResult<Conversation> {
        let path = self.path(id)?;
        read(&path)
    }

    pub fn delete(&self, id: &str) -> AppResult<()> {
        let path = self.path(id)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(AppError::not_found(format!("conversation {id} does not exist")))
            }
            Err(e) => Err(AppError::io(path.display(), e)),
        }
    }

    /// Every readable conversation, newest first; unreadable files are skipped.
    pub fn list(&self) -> Vec<ConversationSummary> {
        let Ok(dir) = fs::read_dir(&self.dir) else { return Vec::new() };
        let mut out: Vec<ConversationSummary> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| read(&p).ok())
            .map(|c| summary(&c))
            .collect();
        out.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then_with(|| a.id.cmp(&b.id)));
        out
    }
}

fn read(path: &Path) -> AppResult<Conversation> {
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => AppError::not_found(format!("{}: no such conversation", path.display())),
        _ => AppError::io(path.display(), e),
    })?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(AppError::new(Code::Io, format!("{}: {} bytes is too large for a conversation", path.display(), meta.len())));
    }
    let bytes = fs::read(path).map_err(|e| AppError::io(path.display(), e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| AppError::new(Code::Io, format!("{}: not a PocketLM conversation ({e})", path.display())))
}

fn summary(c: &Conversation) -> ConversationSummary {
    ConversationSummary {
        id: c.id.clone(),
        title: c.title.clone(),
        model_id: c.model_id.clone(),
        model_name: c.model_name.clone(),
        messages: c.messages.len(),
        updated_at: c.updated_at.clone(),
    }
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> AppResult<()> {
    let mut f = pocketlm::atomic::AtomicFile::create(path).map_err(|e| AppError::io(path.display(), e))?;
    f.write_all(bytes).map_err(|e| AppError::io(path.display(), e))?;
    f.commit().map_err(|e| AppError::io(path.display(), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dto::{ChatMessage, SamplingSettings};

    fn conv(id: &str, updated: &str) -> Conversation {
        Conversation {
            id: id.into(),
            title: format!("about {id}"),
            model_id: Some("/m/a.gguf".into()),
            model_name: Some("a".into()),
            system: "be brief".into(),
            settings: SamplingSettings {
                temperature: 0.7,
                top_k: 40,
                top_p: 0.95,
                min_p: 0.05,
                repeat_penalty: 1.0,
                max_tokens: 256,
                seed: Some(7),
            },
            messages: vec![
                ChatMessage { role: "user".into(), content: "hi".into(), stats: None },
                ChatMessage { role: "assistant".into(), content: "hello ✓".into(), stats: None },
            ],
            created_at: "2026-12-01T10:00:00Z".into(),
            updated_at: updated.into(),
        }
    }

    #[test]
    fn save_list_get_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Conversations::new(dir.path().join("conversations"));
        assert!(store.list().is_empty(), "no folder yet is an empty list");
        store.save(&conv("a-1", "2026-12-01T10:00:00Z")).unwrap();
        store.save(&conv("b-2", "2026-12-02T10:00:00Z")).unwrap();
        fs::write(dir.path().join("conversations/broken.json"), b"{not json").unwrap();
        let list = store.list();
        assert_eq!(list.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["b-2", "a-1"], "newest first, broken skipped");
        assert_eq!(list[0].messages, 2);
        assert_eq!(store.get("a-1").unwrap(), conv("a-1", "2026-12-01T10:00:00Z"));
        store.delete("a-1").unwrap();
        assert_eq!(store.get("a-1").unwrap_err().code, Code::NotFound);
        assert_eq!(store.delete("a-1").unwrap_err().code, Code::NotFound);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("conversations")).unwrap().flatten().collect();
        assert_eq!(leftovers.len(), 2, "b-2 and broken.json; no temporary files");
    }

    #[test]
    fn ids_cannot_escape_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let store = Conversations::new(dir.path().to_path_buf());
        for bad in ["../x", "a/b", "", "a.json", &"x".repeat(65)] {
            assert_eq!(store.get(bad).unwrap_err().code, Code::NotFound, "{bad:?}");
            assert!(store.save(&conv(bad, "t")).is_err());
        }
    }
}
