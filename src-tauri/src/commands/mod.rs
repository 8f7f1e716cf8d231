//! The commands the UI invokes, one module per domain as in `ui/src/ipc/`. Each is a thin translation: long work
//! goes to a blocking thread through [`blocking`], so the async runtime stays free for other commands.

pub mod chat;
pub mod compare;
pub mod conversations;
pub mod jobs;
pub mod library;
pub mod quantize;
pub mod system;

use crate::error::{AppError, AppResult, Code};

/// Runs `f` on the blocking pool and returns its result; a panic inside becomes an `internal` error.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> AppResult<T> + Send + 'static) -> AppResult<T> {
    tauri::async_runtime::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(AppError::new(Code::Internal, format!("the job stopped unexpectedly: {e}"))))
}
