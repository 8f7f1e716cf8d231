use std::path::Path;
use std::sync::Arc;

use pocketlm::chat::{GenerateParams, Message, Prompt, Session, StopReason};
use pocketlm::model::{KvType, Model};
use pocketlm::sample::SamplerParams;
use tauri::ipc::Channel;
use tauri::State;

use super::blocking;
use crate::dto::{ChatEvent, ChatMessage, GenerationStats, LoadedModel, MemoryCheck, SamplingSettings};
use crate::error::{AppError, AppResult, Code};
use crate::library;
use crate::state::{AppState, Loaded};

/// Working memory beside the weights and the KV cache: activations, logits, the tokenizer (a margin).
const WORKING_BYTES: u64 = 192 << 20;

fn check(model: &Model, file_bytes: u64, n_ctx: usize) -> MemoryCheck {
    let kv = model.hparams().kv_bytes(n_ctx, KvType::F32.bytes());
    let needed = file_bytes + kv + WORKING_BYTES;
    let available = library::memory().available;
    MemoryCheck { model_bytes: file_bytes, kv_bytes: kv, needed_bytes: needed, available_bytes: available, fits: needed <= available }
}

/// Opens a runnable library entry (mmap: cheap) with its context size clamped to what it was trained for.
fn open(state: &AppState, id: &str, context_size: usize) -> AppResult<(crate::dto::ModelEntry, Model, usize)> {
    let entry = library::find(state, id)?;
    if let Some(e) = &entry.error {
        return Err(AppError::new(Code::InvalidModel, e.clone()));
    }
    if !entry.runnable {
        return Err(AppError::new(
            Code::Unsupported,
            format!("{} is a {} {} model; chat runs GGUF files of llama or qwen2 models — quantize it first", entry.name, entry.format, entry.architecture.as_deref().unwrap_or("unknown")),
        ));
    }
    let model = Model::load(Path::new(id))?;
    let n_ctx = context_size.clamp(64, model.hparams().n_ctx_train.max(64));
    Ok((entry, model, n_ctx))
}

#[tauri::command]
pub async fn chat_memory_check(state: State<'_, AppState>, id: String, context_size: usize) -> AppResult<MemoryCheck> {
    let state = state.inner().clone();
    blocking(move || {
        let (entry, model, n_ctx) = open(&state, &id, context_size)?;
        Ok(check(&model, entry.size_bytes, n_ctx))
    })
    .await
}

/// Loads a model for chat, replacing the one loaded; refuses with `insufficient_memory` unless `force`.
#[tauri::command]
pub async fn chat_load(state: State<'_, AppState>, id: String, context_size: usize, force: bool) -> AppResult<LoadedModel> {
    let state = state.inner().clone();
    blocking(move || {
        let (entry, model, n_ctx) = open(&state, &id, context_size)?;
        let memory = check(&model, entry.size_bytes, n_ctx);
        if !memory.fits && !force {
            return Err(AppError::new(
                Code::InsufficientMemory,
                format!(
                    "{} needs about {} (weights {} + context {}) but {} is free",
                    entry.name,
                    pocketlm::summary::human_bytes(memory.needed_bytes),
                    pocketlm::summary::human_bytes(memory.model_bytes),
                    pocketlm::summary::human_bytes(memory.kv_bytes),
                    pocketlm::summary::human_bytes(memory.available_bytes)
                ),
            ));
        }
        *state.chat() = None; // free the old model's cache first
        let session = Session::new(Arc::new(model), n_ctx)?;
        let chat_template = !session.template().is_fallback();
        *state.chat() = Some(Loaded { entry: entry.clone(), session });
        Ok(LoadedModel { entry, context_size: n_ctx, memory, chat_template })
    })
    .await
}

/// Frees the loaded model and its KV cache (after any reply in progress ends: the UI stops it first).
#[tauri::command]
pub async fn chat_unload(state: State<'_, AppState>) -> AppResult<()> {
    let state = state.inner().clone();
    blocking(move || {
        *state.chat() = None;
        Ok(())
    })
    .await
}

fn sampler(s: &SamplingSettings) -> SamplerParams {
    let seed = s.seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        t.as_nanos() as u64 ^ 0x9e37_79b9_7f4a_7c15
    });
    SamplerParams {
        temperature: s.temperature,
        top_k: s.top_k,
        top_p: s.top_p,
        min_p: s.min_p,
        repeat_penalty: s.repeat_penalty,
        seed,
        ..SamplerParams::default()
    }
}

fn stop_reason(r: StopReason) -> &'static str {
    match r {
        StopReason::EndOfGeneration => "eos",
        StopReason::MaxTokens => "max_tokens",
        StopReason::ContextFull => "context_full",
        StopReason::Cancelled => "cancelled",
    }
}

/// Answers the last user message of `messages` with the loaded model, streaming text over `on_event`. The KV cache
/// keeps the conversation, so a follow-up only evaluates the new turn; `job_cancel` stops the reply.
#[tauri::command]
pub async fn chat_generate(
    state: State<'_, AppState>,
    job_id: String,
    system: String,
    messages: Vec<ChatMessage>,
    settings: SamplingSettings,
    on_event: Channel<ChatEvent>,
) -> AppResult<GenerationStats> {
    let state = state.inner().clone();
    blocking(move || {
        if messages.last().is_none_or(|m| m.role != "user") {
            return Err(AppError::new(Code::Internal, "the conversation must end with a user message to answer"));
        }
        let guard = state.jobs.start(&job_id)?;
        let mut chat = state.chat();
        let loaded = chat
            .as_mut()
            .ok_or_else(|| AppError::new(Code::NoModelLoaded, "load a model to chat with first"))?;
        let mut turns = Vec::with_capacity(messages.len() + 1);
        if !system.trim().is_empty() {
            turns.push(Message::new("system", system));
        }
        turns.extend(messages.iter().map(|m| Message::new(m.role.clone(), m.content.clone())));
        let params = GenerateParams { max_tokens: settings.max_tokens.max(1), sampler: sampler(&settings), ..Default::default() };
        let stats = loaded.session.generate(
            Prompt::Chat(&turns),
            &params,
            &mut |text| {
                let _ = on_event.send(ChatEvent::Token { text: text.to_string() });
            },
            &guard.token,
        )?;
        let out = GenerationStats {
            prompt_tokens: stats.prompt_tokens,
            reused_tokens: stats.reused_tokens,
            prompt_tokens_per_second: stats.prompt_tokens_per_second,
            generated_tokens: stats.generated_tokens,
            tokens_per_second: stats.generation_tokens_per_second,
            time_to_first_token_ms: stats.time_to_first_token_seconds * 1000.0,
            stop_reason: stop_reason(stats.stop_reason).to_string(),
            context_used: stats.context_used,
            context_size: stats.n_ctx,
            shifted: stats.context_shifts > 0,
        };
        let _ = on_event.send(ChatEvent::Done { stats: out.clone() });
        Ok(out)
    })
    .await
}
