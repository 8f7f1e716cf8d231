use tauri::State;

use super::blocking;
use crate::dto::{Conversation, ConversationSummary};
use crate::error::AppResult;
use crate::state::AppState;

// File work, so off the main thread like every other command that touches the disk.

#[tauri::command]
pub async fn conversations_list(state: State<'_, AppState>) -> AppResult<Vec<ConversationSummary>> {
    let state = state.inner().clone();
    blocking(move || Ok(state.conversations.list())).await
}

#[tauri::command]
pub async fn conversation_get(state: State<'_, AppState>, id: String) -> AppResult<Conversation> {
    let state = state.inner().clone();
    blocking(move || state.conversations.get(&id)).await
}

#[tauri::command]
pub async fn conversation_save(state: State<'_, AppState>, conversation: Conversation) -> AppResult<ConversationSummary> {
    let state = state.inner().clone();
    blocking(move || state.conversations.save(&conversation)).await
}

#[tauri::command]
pub async fn conversation_delete(state: State<'_, AppState>, id: String) -> AppResult<()> {
    let state = state.inner().clone();
    blocking(move || state.conversations.delete(&id)).await
}
