use tauri::State;

use crate::dto::{Conversation, ConversationSummary};
use crate::error::AppResult;
use crate::state::AppState;

#[tauri::command]
pub fn conversations_list(state: State<'_, AppState>) -> Vec<ConversationSummary> {
    state.conversations.list()
}

#[tauri::command]
pub fn conversation_get(state: State<'_, AppState>, id: String) -> AppResult<Conversation> {
    state.conversations.get(&id)
}

#[tauri::command]
pub fn conversation_save(state: State<'_, AppState>, conversation: Conversation) -> AppResult<ConversationSummary> {
    state.conversations.save(&conversation)
}

#[tauri::command]
pub fn conversation_delete(state: State<'_, AppState>, id: String) -> AppResult<()> {
    state.conversations.delete(&id)
}
