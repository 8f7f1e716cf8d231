//! One session's state: the KV cache ([`super::kv`]), the buffers of the forward pass, and the logits of the last
//! evaluation.

use std::sync::Arc;

use super::forward::{forward, plan_next, Output, KV_CHUNK, Q_TILE};
use super::kv::{KvCache, KvType};
use super::load::Model;
use super::ops::WeightedSum;
use super::ModelError;
use crate::kernels::Next;
use crate::team::Team;

/// Prompt tokens go through the forward pass this many at a time: each weight matrix is read once per batch.
pub const DEFAULT_BATCH: usize = 64;

/// Largest KV cache a context may allocate, whatever the model claims (a hostile `context_length`).
const MAX_KV_BYTES: usize = 64 << 30;

/// Everything the forward pass writes, sized for one batch; allocated once per context.
pub(super) struct Buffers {
    /// Residual stream and its normalised copy: n_batch × n_embd.
    pub x: Vec<f32>,
    pub xn: Vec<f32>,
    /// n_batch × n_q, n_batch × n_kv, n_batch × n_kv.
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    /// Attention output, head-major (n_head × n_batch × head_dim) as the heads compute it, then token-major.
    pub att: Vec<f32>,
    pub att_tok: Vec<f32>,
    /// Scores of each head over the context, for a tile of query tokens: n_head × Q_TILE × n_ctx.
    pub scores: Vec<f32>,
    /// Each head's rows of an f16 cache converted to f32, a block at a time: n_head × KV_CHUNK × head_dim.
    pub kv_rows: Vec<f32>,
    /// Each head's weighted sums of value rows, one per query token of a tile: n_head × Q_TILE.
    pub sums: Vec<WeightedSum>,
    /// n_batch × n_ff.
    pub gate: Vec<f32>,
    pub up: Vec<f32>,
    /// Projection output before it is added to the residual: n_batch × n_embd.
    pub tmp: Vec<f32>,
    /// cos/sin per token: n_batch × n_rot.
    pub cs: Vec<f32>,
    /// The kernels' scratch (activations quantized for the dot products).
    pub scratch: Vec<u8>,
    /// A generated token's activations for down, quantized by the threads that computed gate and up.
    pub down_acts: Vec<u8>,
    /// A generated token's activations for the attention output's product, quantized by the threads of attention.
    pub wo_acts: Vec<u8>,
}

/// A conversation with a model: its KV cache and buffers. Positions 0..n_past are cached.
pub struct Context {
    model: Arc<Model>,
    n_past: usize,
    n_batch: usize,
    kv: KvCache,
    buf: Buffers,
    logits: Vec<f32>,
    n_logits: usize,
    /// The threads of the forward passes: as many as the rayon pool the context was made in has.
    team: Team,
    /// For a generated token, the weights each product's threads ask for next ([`plan_next`]): four per layer,
    /// made on the first such token.
    next: Vec<Next>,
}

impl Context {
    /// A context of `n_ctx` positions (at most the model's training context) with an f32 KV cache.
    pub fn new(model: Arc<Model>, n_ctx: usize) -> Result<Context, ModelError> {
        Context::with_kv_type(model, n_ctx, KvType::F32)
    }

    /// A context whose KV cache stores keys and values as `kv_type` (F16 halves its memory; see [`KvType`]).
    pub fn with_kv_type(model: Arc<Model>, n_ctx: usize, kv_type: KvType) -> Result<Context, ModelError> {
        let hp = model.hparams().clone();
        let bad = |reason: String| ModelError::BadContextSize { n_ctx, reason };
        if n_ctx == 0 {
            return Err(bad("a context needs at least one position".into()));
        }
        if n_ctx > hp.n_ctx_train {
            return Err(bad(format!("the model was trained for {} positions", hp.n_ctx_train)));
        }
        let kv = KvCache::new(kv_type, hp.n_layer, hp.n_head_kv, hp.head_dim, n_ctx, MAX_KV_BYTES)?;
        model.settle_page_cache();
        let nb = DEFAULT_BATCH.min(n_ctx);
        let buf = Buffers::new(&model, nb, n_ctx);
        let team = Team::new(rayon::current_num_threads());
        let logits = vec![0.0; hp.n_vocab];
        Ok(Context { model, n_past: 0, n_batch: nb, kv, buf, logits, n_logits: 0, team, next: Vec::new() })
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }
    pub fn n_ctx(&self) -> usize {
        self.kv.n_ctx
    }
    /// Positions cached so far; the next token is evaluated at this position.
    pub fn n_past(&self) -> usize {
        self.n_past
    }
    /// Bytes of the KV cache (keys and values of every position of every layer).
    pub fn kv_bytes(&self) -> usize {
        self.kv.bytes()
    }
    /// The share of the KV cache's memory mapped in huge pages so far (see [`KvCache::huge_page_share`]).
    pub fn kv_huge_page_share(&self) -> Option<f64> {
        self.kv.huge_page_share()
    }
    pub fn kv_type(&self) -> KvType {
        self.kv.ty
    }
    pub fn n_batch(&self) -> usize {
        self.n_batch
    }

    /// Sets how many prompt tokens go through one forward pass (1..=n_ctx). Reallocates the buffers.
    pub fn set_batch(&mut self, n_batch: usize) {
        let nb = n_batch.clamp(1, self.kv.n_ctx);
        if nb != self.n_batch {
            self.n_batch = nb;
            self.buf = Buffers::new(&self.model, nb, self.kv.n_ctx);
        }
    }

    /// Evaluates `tokens` at positions n_past.., appends their keys and values to the cache, and returns the
    /// logits of the last token (n_vocab values) or, with `all_logits`, of every token (tokens.len() × n_vocab).
    /// Nothing is evaluated, and the cache is unchanged, when the tokens do not fit or an id is out of range.
    pub fn eval(&mut self, tokens: &[u32], all_logits: bool) -> Result<&[f32], ModelError> {
        let n_vocab = self.model.hparams().n_vocab;
        if tokens.is_empty() {
            return Err(ModelError::NoTokens);
        }
        if let Some(&token) = tokens.iter().find(|&&t| t as usize >= n_vocab) {
            return Err(ModelError::TokenOutOfRange { token, n_vocab });
        }
        if tokens.len() > self.kv.n_ctx - self.n_past {
            return Err(ModelError::ContextFull { n_past: self.n_past, n_tokens: tokens.len(), n_ctx: self.kv.n_ctx });
        }
        let n_out = if all_logits { tokens.len() } else { 1 };
        if self.logits.len() < n_out * n_vocab {
            let more = n_out * n_vocab - self.logits.len();
            self.logits.try_reserve_exact(more).map_err(|_| ModelError::OutOfMemory {
                what: format!("the logits of {n_out} tokens ({} MiB)", (n_out * n_vocab * 4) >> 20),
            })?;
            self.logits.resize(n_out * n_vocab, 0.0);
        }
        let n_chunks = tokens.len().div_ceil(self.n_batch);
        for (i, chunk) in tokens.chunks(self.n_batch).enumerate() {
            let done = i * self.n_batch;
            let out = if all_logits {
                Output::All(&mut self.logits[done * n_vocab..(done + chunk.len()) * n_vocab])
            } else if i + 1 == n_chunks {
                Output::Last(&mut self.logits[..n_vocab])
            } else {
                Output::Nothing
            };
            if chunk.len() == 1 && self.next.is_empty() {
                self.next = plan_next(&self.team, &self.model);
            }
            let (kv, buf) = (&mut self.kv, &mut self.buf);
            let pass = forward(&self.team, &self.model, kv, buf, chunk, self.n_past, out, &self.next);
            // A failed pass may have written part of the chunk: those positions are not cached.
            self.n_logits = 0;
            pass?;
            self.n_past += chunk.len();
        }
        self.n_logits = n_out * n_vocab;
        Ok(&self.logits[..self.n_logits])
    }

    /// The logits the last [`Context::eval`] returned (empty before the first).
    pub fn logits(&self) -> &[f32] {
        &self.logits[..self.n_logits]
    }

    /// Keeps the first `n` cached positions and forgets the rest: the next turn re-evaluates from there.
    pub fn truncate(&mut self, n: usize) {
        self.n_past = self.n_past.min(n);
    }

    /// Drops cached positions n_keep..n_keep+n_discard and moves the later ones down, turning their keys back by
    /// n_discard positions (RoPE is a rotation, so this equals computing them at their new positions; the values
    /// and deeper layers keep what they saw of the dropped tokens, as in llama.cpp's context shift).
    pub fn shift(&mut self, n_keep: usize, n_discard: usize) -> Result<(), ModelError> {
        let n_past = self.n_past;
        if n_keep.checked_add(n_discard).is_none_or(|end| end > n_past) {
            return Err(ModelError::BadShift { n_keep, n_discard, n_past });
        }
        if n_discard == 0 {
            return Ok(());
        }
        let rope = &self.model.rope;
        let mut cs = vec![0f32; 2 * rope.half()];
        rope.angles(-(n_discard as i64), &mut cs);
        let n_move = n_past - n_keep - n_discard;
        self.kv.move_positions(n_keep + n_discard, n_keep, n_move, |keys| rope.apply(keys, &cs));
        self.n_past -= n_discard;
        Ok(())
    }

    /// The cached key of (layer, kv head, position), after RoPE: for tests of the cache itself.
    #[doc(hidden)]
    pub fn cached_key(&self, layer: usize, head: usize, pos: usize) -> Vec<f32> {
        let hd = self.model.hparams().head_dim;
        let mut scratch = vec![0f32; hd];
        self.kv.k.rows(self.kv.offset(layer, head, pos), hd, &mut scratch).to_vec()
    }
}

impl Buffers {
    fn new(model: &Model, nb: usize, n_ctx: usize) -> Buffers {
        let hp = model.hparams();
        let z = |n: usize| vec![0f32; n];
        Buffers {
            x: z(nb * hp.n_embd),
            xn: z(nb * hp.n_embd),
            q: z(nb * hp.n_q()),
            k: z(nb * hp.n_kv()),
            v: z(nb * hp.n_kv()),
            att: z(nb * hp.n_q()),
            att_tok: z(nb * hp.n_q()),
            scores: z(hp.n_head * Q_TILE * n_ctx),
            kv_rows: z(hp.n_head * KV_CHUNK * hp.head_dim),
            sums: (0..hp.n_head * Q_TILE).map(|_| WeightedSum::new(hp.head_dim)).collect(),
            gate: z(nb * hp.n_ff),
            up: z(nb * hp.n_ff),
            tmp: z(nb * hp.n_embd),
            cs: z(nb * hp.n_rot),
            scratch: Vec::new(),
            down_acts: Vec::new(),
            wo_acts: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    /// The app shares one model between sessions and runs each session on a worker thread.
    #[test]
    fn model_and_context_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<super::Model>();
        send_sync::<super::Context>();
    }
}
