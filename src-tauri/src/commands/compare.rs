use std::path::Path;
use std::sync::Arc;

use pocketlm::eval::{self, EvalParams};
use pocketlm::model::Model;
use tauri::ipc::Channel;
use tauri::State;

use super::blocking;
use crate::dto::{Comparison, PerplexityProgress, PerplexityResult, Version};
use crate::error::{AppError, AppResult, Code};
use crate::library;
use crate::state::AppState;

/// The versions of the entry's model: the same family in the library, largest (the original) first.
#[tauri::command]
pub async fn compare(state: State<'_, AppState>, id: String) -> AppResult<Comparison> {
    let state = state.inner().clone();
    blocking(move || {
        let all = library::list(&state);
        let me = all
            .iter()
            .find(|e| e.id == id)
            .ok_or_else(|| AppError::not_found(format!("{id}: not in the library")))?
            .clone();
        let key = pocketlm::library::family_key(&me.family);
        let mut members: Vec<_> = all
            .into_iter()
            .filter(|e| {
                e.error.is_none()
                    && (pocketlm::library::family_key(&e.family) == key
                        || e.derived_from.as_deref() == Some(me.id.as_str())
                        || me.derived_from.as_deref() == Some(e.id.as_str()))
            })
            .collect();
        members.sort_by(|a, b| b.size_bytes.cmp(&a.size_bytes).then_with(|| a.name.cmp(&b.name)));
        let base = members.first().map_or(0, |e| e.size_bytes);
        let versions = members
            .into_iter()
            .map(|entry| {
                let (by_group, by_type, _) = match library::describe(&state, Path::new(&entry.id)) {
                    Ok(info) => library::tallies(&info.summary),
                    Err(_) => (Vec::new(), Vec::new(), crate::dto::Tally { tensors: 0, parameters: 0, bytes: 0 }),
                };
                let perplexity = state.store().perplexity(&entry.id);
                let reduction_percent =
                    if base == 0 { 0.0 } else { (entry.size_bytes as f64 / base as f64 - 1.0) * 100.0 };
                Version { entry, reduction_percent, by_group, by_type, perplexity }
            })
            .collect();
        Ok(Comparison { family: me.family, versions })
    })
    .await
}

/// Perplexity of a GGUF on the engine's bundled text (llama.cpp's method), streamed chunk by chunk; kept in the
/// library so the compare view shows it next time.
#[tauri::command]
pub async fn perplexity_run(
    state: State<'_, AppState>,
    job_id: String,
    id: String,
    on_progress: Channel<PerplexityProgress>,
) -> AppResult<PerplexityResult> {
    let state = state.inner().clone();
    blocking(move || {
        let entry = library::find(&state, &id)?;
        if !entry.runnable {
            return Err(AppError::new(
                Code::Unsupported,
                format!("{}: perplexity runs on GGUF files; quantize this model (F16 or Q8_0 keep its quality) and measure that", entry.name),
            ));
        }
        let guard = state.jobs.start(&job_id)?;
        let model = Arc::new(Model::load(&id)?);
        let r = eval::perplexity(
            &model,
            eval::TEXT,
            &EvalParams::default(),
            &mut |p| {
                let _ = on_progress.send(PerplexityProgress {
                    chunk: p.chunk,
                    chunks: p.n_chunks,
                    perplexity: p.perplexity,
                    elapsed_seconds: p.seconds,
                });
            },
            &guard.token,
        )?;
        let result = PerplexityResult {
            perplexity: r.perplexity,
            stderr: r.stderr,
            chunks: r.n_chunks,
            tokens: r.scored_tokens,
            context_size: r.n_ctx,
            seconds: r.seconds,
        };
        let mut s = state.store();
        s.set_perplexity(&id, result.clone());
        s.save()?;
        Ok(result)
    })
    .await
}
