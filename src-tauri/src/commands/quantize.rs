use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pocketlm::quantize::{Job, Preset, QuantizeOptions};
use tauri::ipc::Channel;
use tauri::State;

use super::{blocking, reduction_percent};
use crate::dto::{PresetOption, QuantizePlan, QuantizeProgress, QuantizeResult};
use crate::error::{AppError, AppResult, Code};
use crate::library;
use crate::state::AppState;

/// Room a quantized model needs beyond its file to run: KV cache, activations and the app (a rough margin).
const RUN_MARGIN: u64 = 512 << 20;

/// Every preset with its exact output size, before anything is written.
#[tauri::command]
pub async fn quantize_plan(state: State<'_, AppState>, id: String) -> AppResult<QuantizePlan> {
    let state = state.inner().clone();
    blocking(move || {
        let source = library::find(&state, &id)?;
        if let Some(e) = &source.error {
            return Err(AppError::new(Code::InvalidModel, e.clone()));
        }
        let available = library::memory().available;
        let mut warnings = Vec::new();
        let presets = Preset::ALL
            .iter()
            .map(|&p| match Job::plan(Path::new(&id), &QuantizeOptions { preset: p, ..Default::default() }) {
                Ok(job) => {
                    if warnings.is_empty() {
                        warnings = job.warnings().to_vec();
                    }
                    let size = job.predicted_file_bytes();
                    let params: u64 = job.source().tensors().iter().map(|t| t.dims.iter().product::<u64>()).sum();
                    PresetOption {
                        preset: p.to_string(),
                        description: p.description().to_string(),
                        size_bytes: size,
                        bits_per_weight: job.predicted_data_bytes() as f64 * 8.0 / params.max(1) as f64,
                        reduction_percent: reduction_percent(source.size_bytes, size),
                        fits_memory: size + RUN_MARGIN <= available,
                        recommended: p == Preset::Q4_K_M,
                        error: None,
                    }
                }
                Err(e) => PresetOption {
                    preset: p.to_string(),
                    description: p.description().to_string(),
                    size_bytes: 0,
                    bits_per_weight: 0.0,
                    reduction_percent: 0.0,
                    fits_memory: false,
                    recommended: false,
                    error: Some(e.to_string()),
                },
            })
            .collect();
        Ok(QuantizePlan { source, presets, output_dir: state.paths.models_dir.display().to_string(), warnings })
    })
    .await
}

/// `models/<family>-<PRESET>.gguf`, numbered when that name is taken.
fn output_path(dir: &Path, family: &str, preset: Preset) -> PathBuf {
    let stem: String = family
        .chars()
        .map(|c| if c.is_alphanumeric() || "-_.".contains(c) { c } else { '-' })
        .collect();
    let stem = stem.trim_matches(['-', '.']);
    let stem = if stem.is_empty() { "model" } else { stem };
    let mut path = dir.join(format!("{stem}-{preset}.gguf"));
    let mut n = 2;
    while path.exists() {
        path = dir.join(format!("{stem}-{preset}-{n}.gguf"));
        n += 1;
    }
    path
}

/// Quantizes a library entry to a preset in the app's models folder, streaming progress; the result joins the
/// library. A cancel (job_cancel) leaves no file behind.
#[tauri::command]
pub async fn quantize_run(
    state: State<'_, AppState>,
    job_id: String,
    id: String,
    preset: String,
    on_progress: Channel<QuantizeProgress>,
) -> AppResult<QuantizeResult> {
    let state = state.inner().clone();
    blocking(move || {
        let preset = Preset::from_name(&preset)
            .ok_or_else(|| AppError::new(Code::Unsupported, format!("{preset} is not a llama.cpp preset")))?;
        let source = library::find(&state, &id)?;
        let job_guard = state.jobs.start(&job_id)?;
        let job = Job::plan(Path::new(&id), &QuantizeOptions { preset, ..Default::default() })?;
        let predicted = job.predicted_file_bytes();
        let out = output_path(&state.paths.models_dir, &source.family, preset);
        let start = Instant::now();
        let mut last: Option<(Instant, usize)> = None;
        let report = job.run(
            &out,
            &mut |p| {
                // At most ~30 messages a second, but every new tensor and the last slice always go out.
                let now = Instant::now();
                let due = match last {
                    None => true,
                    Some((t, tensor)) => {
                        tensor != p.tensor || now - t >= Duration::from_millis(33) || p.bytes_done == p.bytes_total
                    }
                };
                if due {
                    last = Some((now, p.tensor));
                    let _ = on_progress.send(QuantizeProgress {
                        tensor: p.tensor,
                        tensors: p.tensors,
                        tensor_name: p.name.clone(),
                        ty: p.ty.to_string(),
                        bytes_done: p.bytes_done,
                        bytes_total: p.bytes_total,
                        bytes_per_second: p.rate(),
                        eta_seconds: p.eta().map(|d| d.as_secs_f64()),
                        elapsed_seconds: p.elapsed.as_secs_f64(),
                    });
                }
            },
            &job_guard.token,
        )?;
        let new_id = library::canonical(&out)?.display().to_string();
        {
            let mut s = state.store();
            s.record_made(&new_id, &id);
            s.save()?;
        }
        let entry = library::entry(&state, Path::new(&new_id), "app", None);
        Ok(QuantizeResult {
            entry,
            size_bytes: report.output_bytes,
            predicted_bytes: predicted,
            seconds: start.elapsed().as_secs_f64(),
            reduction_percent: reduction_percent(source.size_bytes, report.output_bytes),
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_are_safe_and_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = output_path(dir.path(), "SmolLM2 135M/Instruct", Preset::Q4_K_M);
        assert_eq!(p.file_name().unwrap(), "SmolLM2-135M-Instruct-Q4_K_M.gguf");
        std::fs::write(&p, b"x").unwrap();
        assert_eq!(output_path(dir.path(), "SmolLM2 135M/Instruct", Preset::Q4_K_M).file_name().unwrap(), "SmolLM2-135M-Instruct-Q4_K_M-2.gguf");
        assert_eq!(output_path(dir.path(), "../..", Preset::Q8_0).file_name().unwrap(), "model-Q8_0.gguf");
        assert!((reduction_percent(1000, 313) + 68.7).abs() < 1e-9);
    }
}
