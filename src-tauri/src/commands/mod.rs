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

/// How much smaller (negative) or larger `to` bytes are than `from`, in percent; 0 when `from` is 0.
pub fn reduction_percent(from: u64, to: u64) -> f64 {
    if from == 0 {
        0.0
    } else {
        (to as f64 / from as f64 - 1.0) * 100.0
    }
}

/// Runs `f` on the blocking pool and returns its result; a panic inside becomes an `internal` error.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> AppResult<T> + Send + 'static) -> AppResult<T> {
    tauri::async_runtime::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(AppError::new(Code::Internal, format!("the job stopped unexpectedly: {e}"))))
}
