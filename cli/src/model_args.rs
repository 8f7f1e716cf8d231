//! Options shared by the commands that run a model (`generate`, `chat`, `bench`): threads, context, sampling.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use pocketlm::chat::{GenerateParams, GenerateStats, OnContextFull, Session, StopReason};
use pocketlm::model::{KvType, Model};
use pocketlm::sample::SamplerParams;

#[derive(clap::Args, Clone, Debug)]
pub struct Threads {
    /// Threads for the matrix products and attention [default: every core].
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
}

impl Threads {
    /// Sizes the global thread pool once, before any work runs on it.
    pub fn apply(&self) -> Result<usize> {
        if let Some(n) = self.threads {
            anyhow::ensure!(n >= 1, "--threads must be at least 1");
            rayon::ThreadPoolBuilder::new().num_threads(n).build_global().context("setting up the thread pool")?;
        }
        Ok(rayon::current_num_threads())
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct Sampling {
    /// Temperature; 0 is greedy (always the most likely token).
    #[arg(long = "temp", default_value_t = 0.8)]
    pub temperature: f32,
    /// Keep the k most likely tokens (0: off).
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Keep the most likely tokens up to this total probability (1: off).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Drop tokens less likely than this fraction of the most likely one (0: off).
    #[arg(long, default_value_t = 0.05)]
    pub min_p: f32,
    /// Penalise tokens seen in the last --repeat-last-n tokens (1: off).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    #[arg(long, default_value_t = 64)]
    pub repeat_last_n: usize,
    /// Random seed: the same seed, model and prompt give the same text [default: from the clock].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Context size in tokens [default: the model's training context, at most 4096].
    #[arg(short = 'c', long)]
    pub ctx_size: Option<usize>,
    /// When the context fills during a reply: `shift` forgets the older half and goes on, `stop` ends the reply.
    #[arg(long, default_value = "shift", value_parser = ["shift", "stop"])]
    pub on_full: String,
    #[command(flatten)]
    pub cache: Cache,
}

/// How the KV cache stores keys and values.
#[derive(clap::Args, Clone, Debug)]
pub struct Cache {
    /// KV cache storage: `f32` (logits as transformers computes them) or `f16` (half the memory, llama.cpp's
    /// default; keys and values rounded to 11 significant bits).
    #[arg(long, value_enum, default_value_t = CacheType::F32)]
    pub cache_type: CacheType,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheType {
    F32,
    F16,
}

impl Cache {
    pub fn kv_type(&self) -> KvType {
        match self.cache_type {
            CacheType::F32 => KvType::F32,
            CacheType::F16 => KvType::F16,
        }
    }
}

impl Sampling {
    pub fn params(&self, max_tokens: usize) -> GenerateParams {
        let seed = self.seed.unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
        });
        GenerateParams {
            max_tokens,
            sampler: SamplerParams {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
                min_p: self.min_p,
                repeat_penalty: self.repeat_penalty,
                repeat_last_n: self.repeat_last_n,
                seed,
            },
            on_full: if self.on_full == "stop" { OnContextFull::Stop } else { OnContextFull::Shift { keep: 1 } },
        }
    }

    pub fn n_ctx(&self, model: &Model) -> usize {
        self.ctx_size.unwrap_or(model.hparams().n_ctx_train.min(4096))
    }
}

/// Loads a model, saying what it is on stderr.
pub fn load(path: &Path) -> Result<Arc<Model>> {
    let model = Model::load(path)?;
    Ok(Arc::new(model))
}

/// Sizes the thread pool, loads the model and opens a session with the sampling settings: what `generate` and
/// `chat` start with.
pub fn open_session(path: &Path, sampling: &Sampling, threads: &Threads, max_tokens: usize) -> Result<(Session, GenerateParams)> {
    threads.apply()?;
    let model = load(path)?;
    let n_ctx = sampling.n_ctx(&model);
    Ok((Session::with_kv_type(model, n_ctx, sampling.cache.kv_type())?, sampling.params(max_tokens)))
}

/// One line of figures after a reply, for stderr.
pub fn stats_line(s: &GenerateStats) -> String {
    let why = match s.stop_reason {
        StopReason::EndOfGeneration => "end of reply",
        StopReason::MaxTokens => "token limit",
        StopReason::ContextFull => "context full",
        StopReason::Cancelled => "stopped",
    };
    let mut line = format!(
        "[{} tokens at {:.1} tok/s · prompt {} tokens ({} reused) at {:.1} tok/s · first token after {:.2} s · context {}/{} · {}",
        s.generated_tokens,
        s.generation_tokens_per_second,
        s.prompt_tokens,
        s.reused_tokens,
        s.prompt_tokens_per_second,
        s.time_to_first_token_seconds,
        s.context_used,
        s.n_ctx,
        why
    );
    if s.context_shifts > 0 {
        line.push_str(&format!(" · context shifted {} time(s): the oldest part of the conversation was forgotten", s.context_shifts));
    }
    line.push(']');
    line
}
