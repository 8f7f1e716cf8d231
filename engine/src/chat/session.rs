//! A conversation with a model: the KV cache, the tokens it holds, and streaming generation.
//!
//! [`Session::generate`] is the one entry point the CLI and the app use: a raw prompt or chat messages in, text
//! pieces out through a callback as they are decoded, [`GenerateStats`] back at the end. A new turn reuses the
//! cached prefix: the messages are rendered and tokenized again, and only what differs from the cached tokens is
//! evaluated (for a chat, everything but the previous turn's tail).
//!
//! When the context fills during a reply, [`OnContextFull`] decides: `Shift` drops the older half of the
//! conversation (after the first `keep` tokens) as llama.cpp's context shift does and carries on, `Stop` ends the
//! reply with [`StopReason::ContextFull`]. Either way the stats say so. A prompt that cannot fit at all is an error.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::template::{ChatTemplate, Message, TemplateError};
use crate::model::{Context, KvType, Model, ModelError};
use crate::quantize::CancelToken;
use crate::sample::{Sampler, SamplerParams};
use crate::tokenizer::{Detokenizer, Tokenizer, TokenizerError};

/// Why a generation could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("the prompt is empty: there is nothing to continue")]
    EmptyPrompt,
    #[error("the prompt is {n_tokens} tokens but the context holds {n_ctx}: shorten it or use a larger context")]
    PromptTooLong { n_tokens: usize, n_ctx: usize },
}

/// What to do when the reply reaches the end of the context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnContextFull {
    /// Forget the older half of the conversation (after `keep` tokens) and go on.
    Shift { keep: usize },
    /// End the reply.
    Stop,
}

/// Settings of one generation.
#[derive(Clone, Debug)]
pub struct GenerateParams {
    /// Most tokens to generate.
    pub max_tokens: usize,
    pub sampler: SamplerParams,
    pub on_full: OnContextFull,
}

impl Default for GenerateParams {
    fn default() -> Self {
        // Keep the first token (BOS) when shifting, as llama.cpp does by default.
        GenerateParams { max_tokens: 512, sampler: SamplerParams::default(), on_full: OnContextFull::Shift { keep: 1 } }
    }
}

/// The input of one generation.
#[derive(Clone, Copy, Debug)]
pub enum Prompt<'a> {
    /// Plain text to continue: BOS as the model wants it, special tokens spelled in the text are parsed.
    Text(&'a str),
    /// A conversation, rendered with the model's chat template and an assistant turn opened.
    Chat(&'a [Message]),
}

/// Why the reply ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced an end-of-generation token (EOS, `<|im_end|>`, `<|eot_id|>`…).
    EndOfGeneration,
    /// `max_tokens` were generated.
    MaxTokens,
    /// The context filled and [`OnContextFull::Stop`] was asked for.
    ContextFull,
    /// The cancel token was set.
    Cancelled,
}

/// Figures of one generation.
#[derive(Clone, Debug, Serialize)]
pub struct GenerateStats {
    /// Tokens of the prompt, all of them.
    pub prompt_tokens: usize,
    /// Of those, how many were already in the cache from an earlier turn and not evaluated again.
    pub reused_tokens: usize,
    pub prompt_seconds: f64,
    /// Evaluated prompt tokens per second (0 when nothing needed evaluating).
    pub prompt_tokens_per_second: f64,
    pub generated_tokens: usize,
    pub generation_seconds: f64,
    /// Generated tokens per second after the first one.
    pub generation_tokens_per_second: f64,
    /// From the call to the first piece of the reply.
    pub time_to_first_token_seconds: f64,
    /// Cached positions at the end, and the context size.
    pub context_used: usize,
    pub n_ctx: usize,
    /// How many times the context was shifted during this reply.
    pub context_shifts: usize,
    pub stop_reason: StopReason,
}

/// One conversation with a loaded model.
pub struct Session {
    ctx: Context,
    tokenizer: Arc<Tokenizer>,
    template: Arc<ChatTemplate>,
    /// The tokens whose keys and values are in `ctx`: `cached.len() == ctx.n_past()` between calls.
    cached: Vec<u32>,
}

impl Session {
    /// A session of `n_ctx` positions over `model`, with the tokenizer and chat template of its file.
    pub fn new(model: Arc<Model>, n_ctx: usize) -> Result<Session, ChatError> {
        Session::with_kv_type(model, n_ctx, KvType::F32)
    }

    /// [`Session::new`] with the KV cache stored as `kv_type` (F16: half the memory, see [`KvType`]).
    pub fn with_kv_type(model: Arc<Model>, n_ctx: usize, kv_type: KvType) -> Result<Session, ChatError> {
        let tokenizer = Arc::new(Tokenizer::from_gguf(model.gguf())?);
        let template = Arc::new(ChatTemplate::from_gguf(model.gguf())?);
        let ctx = Context::with_kv_type(model, n_ctx, kv_type)?;
        Ok(Session { ctx, tokenizer, template, cached: Vec::new() })
    }

    /// A session sharing an already built tokenizer and template (several sessions over one model).
    pub fn with_parts(
        model: Arc<Model>,
        n_ctx: usize,
        tokenizer: Arc<Tokenizer>,
        template: Arc<ChatTemplate>,
    ) -> Result<Session, ChatError> {
        let ctx = Context::new(model, n_ctx)?;
        Ok(Session { ctx, tokenizer, template, cached: Vec::new() })
    }

    pub fn model(&self) -> &Arc<Model> {
        self.ctx.model()
    }
    pub fn tokenizer(&self) -> &Arc<Tokenizer> {
        &self.tokenizer
    }
    pub fn template(&self) -> &Arc<ChatTemplate> {
        &self.template
    }
    pub fn n_ctx(&self) -> usize {
        self.ctx.n_ctx()
    }
    /// Positions of the context in use.
    pub fn context_used(&self) -> usize {
        self.cached.len()
    }
    /// Bytes of the KV cache.
    pub fn kv_bytes(&self) -> usize {
        self.ctx.kv_bytes()
    }

    /// Forgets the conversation: the next call evaluates its prompt from scratch.
    pub fn reset(&mut self) {
        self.ctx.truncate(0);
        self.cached.clear();
    }

    /// The token ids `prompt` becomes.
    pub fn tokenize(&self, prompt: Prompt<'_>) -> Result<Vec<u32>, ChatError> {
        Ok(match prompt {
            Prompt::Text(text) => self.tokenizer.encode(text, true, true)?,
            Prompt::Chat(messages) => self.tokenizer.encode_prompt(&self.template.render(messages, true)?)?,
        })
    }

    /// Generates a reply to `prompt`, passing each decoded piece of text to `on_text` as soon as it forms whole
    /// characters. Stops at an end-of-generation token, after `max_tokens`, when `cancel` is set (checked between
    /// prompt batches and between tokens) or when the context is full and `on_full` is `Stop`.
    pub fn generate(
        &mut self,
        prompt: Prompt<'_>,
        params: &GenerateParams,
        on_text: &mut dyn FnMut(&str),
        cancel: &CancelToken,
    ) -> Result<GenerateStats, ChatError> {
        let start = Instant::now();
        let tokens = self.tokenize(prompt)?;
        let n_ctx = self.ctx.n_ctx();
        if tokens.is_empty() {
            return Err(ChatError::EmptyPrompt);
        }
        if tokens.len() >= n_ctx {
            // Room for at least one generated token.
            return Err(ChatError::PromptTooLong { n_tokens: tokens.len(), n_ctx });
        }

        // Reuse the cached prefix, but always evaluate at least the last prompt token: its logits come next.
        let common = self.cached.iter().zip(&tokens).take_while(|(a, b)| a == b).count();
        let reused = common.min(tokens.len() - 1);
        self.ctx.truncate(reused);
        self.cached.truncate(reused);

        let mut stats = GenerateStats {
            prompt_tokens: tokens.len(),
            reused_tokens: reused,
            prompt_seconds: 0.0,
            prompt_tokens_per_second: 0.0,
            generated_tokens: 0,
            generation_seconds: 0.0,
            generation_tokens_per_second: 0.0,
            time_to_first_token_seconds: 0.0,
            context_used: 0,
            n_ctx,
            context_shifts: 0,
            stop_reason: StopReason::Cancelled,
        };

        // The prompt, batch by batch so that a cancel takes effect within one batch.
        let batch = self.ctx.n_batch().max(1);
        for chunk in tokens[reused..].chunks(batch) {
            if cancel.is_cancelled() {
                return Ok(self.finish(stats, start));
            }
            self.ctx.eval(chunk, false)?;
            self.cached.extend_from_slice(chunk);
        }
        stats.prompt_seconds = start.elapsed().as_secs_f64();
        let evaluated = tokens.len() - reused;
        stats.prompt_tokens_per_second = evaluated as f64 / stats.prompt_seconds.max(1e-9);

        let tokenizer = Arc::clone(&self.tokenizer);
        let mut detok = Detokenizer::new(&tokenizer);
        let mut sampler = Sampler::new(params.sampler.clone());
        let mut gen_start = None;
        stats.stop_reason = loop {
            if cancel.is_cancelled() {
                break StopReason::Cancelled;
            }
            if stats.generated_tokens >= params.max_tokens {
                break StopReason::MaxTokens;
            }
            let token = sampler.sample(self.ctx.logits(), &self.cached);
            if stats.generated_tokens == 0 {
                gen_start = Some(Instant::now());
                stats.time_to_first_token_seconds = start.elapsed().as_secs_f64();
            }
            if tokenizer.is_end_of_generation(token) {
                break StopReason::EndOfGeneration;
            }
            stats.generated_tokens += 1;
            let piece = detok.push(token);
            if !piece.is_empty() {
                on_text(&piece);
            }
            if stats.generated_tokens >= params.max_tokens {
                // The last token is not evaluated: nothing would read its logits. The next turn re-evaluates it.
                break StopReason::MaxTokens;
            }
            if self.ctx.n_past() == n_ctx {
                match params.on_full {
                    OnContextFull::Stop => break StopReason::ContextFull,
                    OnContextFull::Shift { keep } => {
                        let keep = keep.min(n_ctx - 1);
                        let discard = ((n_ctx - keep) / 2).max(1);
                        self.ctx.shift(keep, discard)?;
                        self.cached.drain(keep..keep + discard);
                        stats.context_shifts += 1;
                    }
                }
            }
            self.ctx.eval(&[token], false)?;
            self.cached.push(token);
        };
        let tail = detok.flush();
        if !tail.is_empty() {
            on_text(&tail);
        }
        if let Some(t) = gen_start {
            stats.generation_seconds = t.elapsed().as_secs_f64();
            let steps = stats.generated_tokens.saturating_sub(1);
            if steps > 0 {
                stats.generation_tokens_per_second = steps as f64 / stats.generation_seconds.max(1e-9);
            }
        }
        Ok(self.finish(stats, start))
    }

    fn finish(&self, mut stats: GenerateStats, start: Instant) -> GenerateStats {
        if stats.prompt_seconds == 0.0 {
            stats.prompt_seconds = start.elapsed().as_secs_f64();
        }
        stats.context_used = self.cached.len();
        stats
    }
}
