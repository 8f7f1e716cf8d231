//! The transformer: a GGUF model run in place from its memory map, and per-session KV caches.
//!
//! [`Model::load`] maps a GGUF file, reads its hyperparameters ([`HParams`]) and checks every tensor the forward
//! pass needs — name, shape, type — so that evaluation cannot fail on the file later. Weight matrices stay in the
//! mapping in their stored type and go straight to the matmul kernels; embedding rows are dequantized one token at
//! a time. Only the 1-D tensors (norm weights, biases, rope factors: a few KB) are held as f32 copies.
//!
//! [`Context`] is one conversation: a KV cache of `n_ctx` positions (f32, or f16 on request: [`KvType`]) and every
//! buffer the forward pass writes, allocated once, so evaluating a token allocates nothing (only a request for
//! more all-token logits than before grows that buffer). A new turn reuses the cached prefix
//! ([`Context::truncate`]); when the context is full, [`Context::eval`] refuses with [`ModelError::ContextFull`]
//! and the caller chooses: stop, or [`Context::shift`] the window as llama.cpp's context shift does.
//!
//! Threads: the matmuls and attention run on the context's own team of threads ([`crate::team::Team`]), as many
//! as the rayon pool it was created in has, so creating it inside `pool.install(..)` picks a session's thread count.
//!
//! The math is llama.cpp's (`src/llama-model.cpp`, `build_llama` and `build_qwen2`; ggml's `rope` and `rms_norm`),
//! which for these architectures is the math of transformers' `LlamaForCausalLM` and `Qwen2ForCausalLM` on the
//! converted weights. `tests/model_logits.rs` holds the logits to transformers' within 1e-4, and
//! `tests/model_greedy.rs` holds greedy decoding of SmolLM2-135M-Instruct to transformers' token for token.

mod context;
mod forward;
mod hparams;
mod kv;
mod load;
mod ops;
#[cfg(test)]
pub(crate) use ops::swiglu;
#[cfg(target_arch = "x86_64")]
mod ops512;
mod rope;

use std::path::PathBuf;

pub use context::{Context, DEFAULT_BATCH};
pub use hparams::{Arch, HParams, RopeMode};
pub use kv::KvType;
pub use load::Model;

use crate::gguf::GgufError;
use crate::quant::GgmlType;

/// Why a model could not be loaded or evaluated. Load errors name the file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] GgufError),

    #[error("{}: architecture {arch:?} is not supported (PocketLM runs llama and qwen2)", file.display())]
    UnsupportedArchitecture { file: PathBuf, arch: String },

    #[error("{}: metadata key {key:?} is missing or not a {expected}", file.display())]
    MissingKey { file: PathBuf, key: String, expected: &'static str },

    #[error("{}: {reason}", file.display())]
    BadHParams { file: PathBuf, reason: String },

    #[error("{}: tensor {tensor:?} is missing", file.display())]
    MissingTensor { file: PathBuf, tensor: String },

    #[error("{}: tensor {tensor:?} has shape {got:?}, expected {expected:?}", file.display())]
    TensorShape { file: PathBuf, tensor: String, expected: Vec<u64>, got: Vec<u64> },

    #[error("{}: tensor {tensor:?} has type {ty}, which PocketLM cannot compute with", file.display())]
    UnsupportedType { file: PathBuf, tensor: String, ty: GgmlType },

    #[error("context of {n_ctx} positions is not allowed: {reason}")]
    BadContextSize { n_ctx: usize, reason: String },

    #[error(
        "context full: {n_past} positions are cached and {n_tokens} more do not fit in the context of {n_ctx} \
         (start a new conversation, or shift the context)"
    )]
    ContextFull { n_past: usize, n_tokens: usize, n_ctx: usize },

    #[error("token id {token} is out of range: the model's vocabulary has {n_vocab} tokens")]
    TokenOutOfRange { token: u32, n_vocab: usize },

    #[error("nothing to evaluate: no tokens given")]
    NoTokens,

    #[error("not enough memory for {what}")]
    OutOfMemory { what: String },

    #[error("internal error in a kernel: {0}")]
    Kernel(String),

    #[error("cannot shift: keep {n_keep} and discard {n_discard} of {n_past} cached positions")]
    BadShift { n_keep: usize, n_discard: usize, n_past: usize },
}
