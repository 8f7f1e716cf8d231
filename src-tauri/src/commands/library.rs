use std::path::PathBuf;

use tauri::State;

use super::blocking;
use crate::dto::{ModelDetails, ModelEntry};
use crate::error::AppResult;
use crate::library;
use crate::state::AppState;

#[tauri::command]
pub async fn library_list(state: State<'_, AppState>) -> AppResult<Vec<ModelEntry>> {
    let state = state.inner().clone();
    blocking(move || Ok(library::list(&state))).await
}

#[tauri::command]
pub async fn library_add(state: State<'_, AppState>, path: String) -> AppResult<ModelEntry> {
    let state = state.inner().clone();
    blocking(move || library::add(&state, &PathBuf::from(path))).await
}

#[tauri::command]
pub async fn library_remove(state: State<'_, AppState>, id: String) -> AppResult<()> {
    let state = state.inner().clone();
    blocking(move || library::remove(&state, &id)).await
}

#[tauri::command]
pub async fn library_details(state: State<'_, AppState>, id: String) -> AppResult<ModelDetails> {
    let state = state.inner().clone();
    blocking(move || library::details(&state, &id)).await
}
