//! Quality of a model on a text: perplexity as llama.cpp's `perplexity` tool computes it, and the KL divergence
//! of a (quantized) model's next-token distributions from a base model's.
//!
//! The method (llama.cpp `tools/perplexity`): the text is tokenized once and cut into non-overlapping chunks of
//! `n_ctx` tokens (a partial last chunk is dropped). Each chunk is evaluated in a fresh context; when the model's
//! vocabulary adds BOS, the chunk's first token is replaced by BOS. Only the second half of each chunk is scored —
//! the token at position `i + 1` against the logits at `i`, for `i` from `n_ctx / 2` to `n_ctx − 2` — so every
//! scored token has at least half a context of history. Perplexity is `exp` of the mean negative log-likelihood.
//!
//! [`TEXT`] is a text bundled with the engine (written for PocketLM, about 1,500 tokens), so that the app and the
//! CLI can measure quality with nothing to download.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::model::{Context, Model, ModelError};
use crate::quantize::CancelToken;
use crate::tokenizer::{Tokenizer, TokenizerError};

/// The bundled evaluation text.
pub const TEXT: &str = include_str!("text.txt");

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("the text is {n_tokens} tokens: at least one chunk of n_ctx = {n_ctx} is needed (use a longer text or a smaller context)")]
    TextTooShort { n_tokens: usize, n_ctx: usize },
    #[error("n_ctx = {0}: a chunk needs at least 4 tokens")]
    BadContext(usize),
    #[error("the two models have different vocabularies ({0} and {1} tokens): their distributions cannot be compared")]
    VocabMismatch(usize, usize),
    #[error("cancelled")]
    Cancelled,
}

/// Settings of an evaluation.
#[derive(Clone, Debug)]
pub struct EvalParams {
    /// Tokens per chunk (llama.cpp's default 512).
    pub n_ctx: usize,
    /// Evaluate at most this many chunks.
    pub max_chunks: Option<usize>,
}

impl Default for EvalParams {
    fn default() -> Self {
        EvalParams { n_ctx: 512, max_chunks: None }
    }
}

/// Progress after each chunk.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct EvalProgress {
    pub chunk: usize,
    pub n_chunks: usize,
    /// Perplexity over the chunks so far (of the evaluated model; with a base, of the second model).
    pub perplexity: f64,
    pub seconds: f64,
}

/// Perplexity of one model.
#[derive(Clone, Debug, Serialize)]
pub struct Perplexity {
    pub perplexity: f64,
    /// One standard error of the perplexity estimate (llama.cpp's `±`).
    pub stderr: f64,
    pub n_ctx: usize,
    pub n_chunks: usize,
    pub scored_tokens: usize,
    pub seconds: f64,
}

/// KL divergence of a model's next-token distributions from a base's over the same scored tokens.
#[derive(Clone, Debug, Serialize)]
pub struct Divergence {
    pub base: Perplexity,
    pub model: Perplexity,
    pub kl_mean: f64,
    pub kl_median: f64,
    pub kl_p99: f64,
    pub kl_max: f64,
    /// How often the two models' most likely next tokens are the same.
    pub top1_agreement: f64,
}

/// The chunks of `text` as llama.cpp's perplexity tool cuts them.
fn chunks(tok: &Tokenizer, text: &str, p: &EvalParams) -> Result<Vec<Vec<u32>>, EvalError> {
    if p.n_ctx < 4 {
        return Err(EvalError::BadContext(p.n_ctx));
    }
    let ids = tok.encode(text, true, false)?;
    let mut n = ids.len() / p.n_ctx;
    if let Some(max) = p.max_chunks {
        n = n.min(max);
    }
    if n == 0 {
        return Err(EvalError::TextTooShort { n_tokens: ids.len(), n_ctx: p.n_ctx });
    }
    Ok((0..n)
        .map(|c| {
            let mut chunk = ids[c * p.n_ctx..(c + 1) * p.n_ctx].to_vec();
            if tok.add_bos() {
                if let Some(bos) = tok.bos() {
                    chunk[0] = bos;
                }
            }
            chunk
        })
        .collect())
}

/// Log-probabilities of a row of logits, in f64 (into `out`, which is cleared first).
pub fn log_softmax(logits: &[f32], out: &mut Vec<f64>) {
    let max = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let lse = max + logits.iter().map(|&l| (l as f64 - max).exp()).sum::<f64>().ln();
    out.clear();
    out.extend(logits.iter().map(|&l| l as f64 - lse));
}

/// Running sums of negative log-likelihoods.
#[derive(Default)]
struct Nll {
    sum: f64,
    sum2: f64,
    n: usize,
}

impl Nll {
    fn add(&mut self, nll: f64) {
        self.sum += nll;
        self.sum2 += nll * nll;
        self.n += 1;
    }
    fn perplexity(&self) -> f64 {
        (self.sum / self.n.max(1) as f64).exp()
    }
    fn report(&self, p: &EvalParams, n_chunks: usize, seconds: f64) -> Perplexity {
        let n = self.n.max(1) as f64;
        let mean = self.sum / n;
        let var = (self.sum2 / n - mean * mean).max(0.0);
        let ppl = mean.exp();
        let stderr = if self.n > 1 { ppl * (var / (n - 1.0)).sqrt() } else { 0.0 };
        Perplexity { perplexity: ppl, stderr, n_ctx: p.n_ctx, n_chunks, scored_tokens: self.n, seconds }
    }
}

/// Evaluates one chunk and hands the log-probabilities of each scored position, with the token that followed it,
/// to `each`.
fn score_chunk(ctx: &mut Context, chunk: &[u32], lp: &mut Vec<f64>, mut each: impl FnMut(&[f64], u32)) -> Result<(), EvalError> {
    ctx.truncate(0);
    let n_vocab = ctx.model().hparams().n_vocab;
    let logits = ctx.eval(chunk, true)?;
    let first = chunk.len() / 2;
    for i in first..chunk.len() - 1 {
        log_softmax(&logits[i * n_vocab..(i + 1) * n_vocab], lp);
        each(lp, chunk[i + 1]);
    }
    Ok(())
}

/// Perplexity of `model` on `text` (llama.cpp's method, see the module docs).
pub fn perplexity(
    model: &Arc<Model>,
    text: &str,
    params: &EvalParams,
    on_progress: &mut dyn FnMut(EvalProgress),
    cancel: &CancelToken,
) -> Result<Perplexity, EvalError> {
    let start = Instant::now();
    let tok = Tokenizer::from_gguf(model.gguf())?;
    let chunks = chunks(&tok, text, params)?;
    let mut ctx = Context::new(model.clone(), params.n_ctx)?;
    let (mut nll, mut lp) = (Nll::default(), Vec::new());
    for (c, chunk) in chunks.iter().enumerate() {
        if cancel.is_cancelled() {
            return Err(EvalError::Cancelled);
        }
        score_chunk(&mut ctx, chunk, &mut lp, |lp, next| nll.add(-lp[next as usize]))?;
        on_progress(EvalProgress {
            chunk: c + 1,
            n_chunks: chunks.len(),
            perplexity: nll.perplexity(),
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    Ok(nll.report(params, chunks.len(), start.elapsed().as_secs_f64()))
}

/// Perplexity of `base` and `model`, and the KL divergence KL(base ‖ model) per scored token, on `text` cut by
/// `base`'s tokenizer (the two must share a vocabulary: a model and its quantized versions do).
pub fn divergence(
    base: &Arc<Model>,
    model: &Arc<Model>,
    text: &str,
    params: &EvalParams,
    on_progress: &mut dyn FnMut(EvalProgress),
    cancel: &CancelToken,
) -> Result<Divergence, EvalError> {
    let start = Instant::now();
    let (nb, nm) = (base.hparams().n_vocab, model.hparams().n_vocab);
    if nb != nm {
        return Err(EvalError::VocabMismatch(nb, nm));
    }
    let tok = Tokenizer::from_gguf(base.gguf())?;
    let chunks = chunks(&tok, text, params)?;
    let mut base_ctx = Context::new(base.clone(), params.n_ctx)?;
    let mut ctx = Context::new(model.clone(), params.n_ctx)?;
    let (mut base_nll, mut nll, mut kls, mut agree) = (Nll::default(), Nll::default(), Vec::new(), 0usize);
    let (mut lp, mut lq) = (Vec::new(), Vec::new());
    let (mut base_secs, mut secs) = (0f64, 0f64);
    for (c, chunk) in chunks.iter().enumerate() {
        if cancel.is_cancelled() {
            return Err(EvalError::Cancelled);
        }
        // Both chunks whole, then the scored positions side by side: each context keeps its logits.
        let t = Instant::now();
        base_ctx.truncate(0);
        base_ctx.eval(chunk, true)?;
        base_secs += t.elapsed().as_secs_f64();
        let t = Instant::now();
        ctx.truncate(0);
        ctx.eval(chunk, true)?;
        secs += t.elapsed().as_secs_f64();
        let (bl, ml) = (base_ctx.logits(), ctx.logits());
        for i in chunk.len() / 2..chunk.len() - 1 {
            log_softmax(&bl[i * nb..(i + 1) * nb], &mut lp);
            log_softmax(&ml[i * nb..(i + 1) * nb], &mut lq);
            let next = chunk[i + 1] as usize;
            base_nll.add(-lp[next]);
            nll.add(-lq[next]);
            let kl: f64 = lp.iter().zip(&lq).map(|(&a, &b)| if a > -700.0 { a.exp() * (a - b) } else { 0.0 }).sum();
            kls.push(kl.max(0.0));
            agree += usize::from(argmax(&lp) == argmax(&lq));
        }
        on_progress(EvalProgress {
            chunk: c + 1,
            n_chunks: chunks.len(),
            perplexity: nll.perplexity(),
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    let n = kls.len().max(1);
    let kl_mean = kls.iter().sum::<f64>() / n as f64;
    kls.sort_by(f64::total_cmp);
    let at = |q: f64| kls[((q * (kls.len() - 1) as f64).round() as usize).min(kls.len() - 1)];
    Ok(Divergence {
        base: base_nll.report(params, chunks.len(), base_secs),
        model: nll.report(params, chunks.len(), secs),
        kl_mean,
        kl_median: at(0.5),
        kl_p99: at(0.99),
        kl_max: kls.last().copied().unwrap_or(0.0),
        top1_agreement: agree as f64 / n as f64,
    })
}

fn argmax(v: &[f64]) -> usize {
    v.iter().enumerate().fold(0, |b, (i, &x)| if x > v[b] { i } else { b })
}
