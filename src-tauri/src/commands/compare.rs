use std::path::Path;
use std::sync::Arc;

use pocketlm::eval::{self, EvalParams};
use pocketlm::model::Model;
use pocketlm::quantize::{Job, Preset, QuantizeOptions};
use tauri::ipc::Channel;
use tauri::State;

use super::{blocking, reduction_percent};
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
                let reduction_percent = reduction_percent(base, entry.size_bytes);
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
        let runs = |arch: &Option<String>| {
            pocketlm::library::RUNNABLE_ARCHITECTURES.iter().any(|a| Some(a.name()) == arch.as_deref())
        };
        let measurable_folder = entry.format == "hf" && entry.error.is_none() && runs(&entry.architecture);
        if !(entry.runnable || measurable_folder) {
            return Err(AppError::new(
                Code::Unsupported,
                format!(
                    "{}: a {} model of architecture {} cannot be run here (PocketLM runs llama and qwen2)",
                    entry.name,
                    entry.format,
                    entry.architecture.as_deref().unwrap_or("unknown")
                ),
            ));
        }
        let guard = state.jobs.start(&job_id)?;
        // A Hugging Face folder is measured through a temporary BF16 GGUF of it: the same weights, as the engine
        // reads them. It is deleted when the measurement ends, whatever the outcome.
        let temp = if entry.format == "hf" {
            let dir = state.paths.data_dir.join("tmp");
            std::fs::create_dir_all(&dir).map_err(|e| AppError::io(dir.display(), e))?;
            let file = TempFile(dir.join(format!("perplexity-{}.gguf", std::process::id())));
            let opts = QuantizeOptions { preset: Preset::BF16, ..Default::default() };
            Job::plan(Path::new(&id), &opts)?.run(&file.0, &mut |_| {}, &guard.token)?;
            Some(file)
        } else {
            None
        };
        let model = Arc::new(Model::load(temp.as_ref().map_or(Path::new(&id), |t| t.0.as_path()))?);
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

/// A file removed when dropped.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
