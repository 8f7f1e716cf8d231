use tauri::State;

use crate::state::AppState;

/// Cancels a running job by the id the UI gave it; false when none runs under that id.
#[tauri::command]
pub fn job_cancel(state: State<'_, AppState>, job_id: String) -> bool {
    state.jobs.cancel(&job_id)
}
