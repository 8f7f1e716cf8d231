//! PocketLM's app shell: Tauri commands over the engine (`pocketlm`), for the desktop and Android.
//!
//! Commands are thin: they translate between the UI's types (`dto`, mirroring `ui/src/ipc/types.ts`) and the
//! engine, run long work on blocking threads, stream progress and tokens over `Channel`s and register every job's
//! cancel token (`jobs`). What the app remembers lives in `store` (library) and `conversations`.

pub mod commands;
pub mod conversations;
pub mod dto;
pub mod error;
pub mod jobs;
pub mod library;
pub mod state;
pub mod store;

use std::path::PathBuf;

use tauri::Manager;

use state::AppState;

/// Where the app keeps its data and models: `POCKETLM_DATA_DIR` / `POCKETLM_MODELS_DIR` when set (tests, portable
/// installs), else the platform's app data folder and `models/` inside it.
fn app_dirs(app: &tauri::App) -> Result<(PathBuf, PathBuf), Box<dyn std::error::Error>> {
    let data = match std::env::var_os("POCKETLM_DATA_DIR") {
        Some(d) => PathBuf::from(d),
        None => app.path().app_data_dir()?,
    };
    let models = std::env::var_os("POCKETLM_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| data.join("models"));
    std::fs::create_dir_all(&data)?;
    std::fs::create_dir_all(&models)?;
    Ok((data, models))
}

#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .setup(|app| {
            let (data, models) = app_dirs(app)?;
            app.manage(AppState::new(data, models));
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::system::system_info,
            commands::library::library_list,
            commands::library::library_add,
            commands::library::library_remove,
            commands::library::library_details,
            commands::quantize::quantize_plan,
            commands::quantize::quantize_run,
            commands::compare::compare,
            commands::compare::perplexity_run,
            commands::chat::chat_memory_check,
            commands::chat::chat_load,
            commands::chat::chat_unload,
            commands::chat::chat_generate,
            commands::jobs::job_cancel,
            commands::conversations::conversations_list,
            commands::conversations::conversation_get,
            commands::conversations::conversation_save,
            commands::conversations::conversation_delete,
        ])
        .run(tauri::generate_context!())
        .expect("PocketLM could not start its window");
}
