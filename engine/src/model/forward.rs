//! One forward pass over a batch of tokens at consecutive positions: llama.cpp's `build_llama` / `build_qwen2`.
//!
//! Per block: x += Wo·attention(rope(Wq·n + bq), rope(Wk·n + bk), Wv·n + bv) with n = rms_norm(x)·attn_norm,
//! then x += W_down·(silu(W_gate·n') ⊙ W_up·n') with n' = rms_norm(x)·ffn_norm. Finally logits = W_out·
//! (rms_norm(x)·output_norm). Attention is causal over the cache, scaled by 1/√head_dim, with query head h reading
//! key/value head h / (n_head / n_head_kv) (grouped-query attention).
//!
//! Activations are token-major: row t of a buffer is token t. Time goes to the weight matmuls (the kernels, which
//! split rows across threads); attention splits its heads across threads, in runs that share a KV head. The
//! threads are the context's [`Team`](crate::team::Team), whose workers spin between the pass's many small steps.
//! For a generated token, gate and up are cut by rows, and each thread applies SwiGLU to its own rows and quantizes
//! them for down ([`matmul_rows_then`]): no thread does that for the whole row while the others wait. On AMD Zen 5,
//! 2 threads, SmolLM2-135M Q4_K_M, the two ways in turn in one process (8 series of 512 tokens each way): 0.974–1.009
//! of the time, 0.982 in the middle, with a fast hand-off between the threads (47 ns); 0.980–1.005, 0.995 in the
//! middle, with a slow one (400 ns). The 1B-shaped file: 0.984–1.007 (4 series). Likewise each run of attention
//! heads quantizes its own output for the attention output's product, where the runs start at whole blocks
//! ([`runs_start_at_blocks`]): no copy into `att_tok` and no conversion of the row while the other threads wait.
//! SmolLM2, 16 series: 0.944–1.020 of the time, 0.984 in the middle; the 1B-shaped file 0.991–1.004 (4 series).

use std::ops::Range;

use super::context::Buffers;
use super::kv::KvCache;
use super::load::Model;
use super::ops;
use super::ModelError;
use crate::kernels::act::ActRow;
use crate::kernels::{active, get_row, matmul_group_then, matmul_quantized_then, matmul_rows_then, matmul_then};
use crate::kernels::{rows_fit, vec_dot_type, Next, Weight};
use crate::quant::GgmlType;
use crate::team::{Chunks, Parallel};

/// A kernel refusal (a bug: the loader checked every weight), as an error rather than a panic.
fn kernel(e: impl std::fmt::Display) -> ModelError {
    ModelError::Kernel(e.to_string())
}

/// Which logits a pass produces.
pub(super) enum Output<'a> {
    /// None (a prompt batch that is not the last).
    Nothing,
    /// The last token's, into a slice of n_vocab.
    Last(&'a mut [f32]),
    /// Every token's, into a slice of n_tokens × n_vocab.
    All(&'a mut [f32]),
}

/// For a generated token (one in `tokens`), `plan` ([`plan_next`], or nothing) says which weights each product's
/// threads ask for once done.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward(
    par: &dyn Parallel,
    model: &Model,
    kv: &mut KvCache,
    b: &mut Buffers,
    tokens: &[u32],
    pos0: usize,
    out: Output<'_>,
    plan: &[Next],
) -> Result<(), ModelError> {
    let hp = model.hparams();
    let (n, e, nq, nkv, ff, hd) = (tokens.len(), hp.n_embd, hp.n_q(), hp.n_kv(), hp.n_ff, hp.head_dim);
    let rope = &model.rope;
    let rot = 2 * rope.half();
    // One weight matrix times the batch's activations, on the team, with the kernel set in use.
    let isa = active();
    let product = |w: &Weight<'_>, x: &[f32], y: &mut [f32], scratch: &mut Vec<u8>, next: &Next| {
        matmul_then(par, isa, w, x, n, y, scratch, next).map_err(kernel)
    };
    // What a step's threads ask for once they are done: for a generated token, the next product's weights.
    let none = Next::NONE;
    let next = |l: usize, step: usize| if n == 1 { plan.get(4 * l + step).unwrap_or(&none) } else { &none };

    // Token embeddings: one row each, dequantized from the file.
    let embd = model.w(&model.tok_embd);
    for (t, &tok) in tokens.iter().enumerate() {
        get_row(&embd, tok as usize, &mut b.x[t * e..(t + 1) * e]).map_err(kernel)?;
    }
    // cos/sin of every token's position, shared by all layers and heads.
    for t in 0..n {
        rope.angles((pos0 + t) as i64, &mut b.cs[t * rot..(t + 1) * rot]);
    }

    for (l, layer) in model.layers.iter().enumerate() {
        // For a generated token, ask for what this layer's steps between products touch first, which the weights
        // streaming by have pushed out of the caches: the feed-forward norm's weights and the next layer's
        // attention norm's, and the cache lines this token's keys and values go to (f32). Those steps (norms, RoPE, the
        // cache writes, SwiGLU, the residual adds), during which the other threads wait, took 42 rather than 57 µs
        // of a SmolLM2-135M token (the products and attention as long).
        if n == 1 {
            ops::ask_for(&layer.ffn_norm);
            if let Some(next) = model.layers.get(l + 1) {
                ops::ask_for(&next.attn_norm);
            }
            if let (Some(k), Some(v)) = (kv.k.f32s(), kv.v.f32s()) {
                for h in 0..hp.n_head_kv {
                    let at = kv.offset(l, h, pos0);
                    ops::ask_for(&k[at..at + hd]);
                    ops::ask_for(&v[at..at + hd]);
                }
            }
        }
        // Attention.
        for t in 0..n {
            ops::rms_norm(&b.x[t * e..(t + 1) * e], &layer.attn_norm, hp.eps, &mut b.xn[t * e..(t + 1) * e]);
        }
        let xn = &b.xn[..n * e];
        let qkv = [model.w(&layer.wq), model.w(&layer.wk), model.w(&layer.wv)];
        let outs: &mut [&mut [f32]] = &mut [&mut b.q[..n * nq], &mut b.k[..n * nkv], &mut b.v[..n * nkv]];
        matmul_group_then(par, &qkv, outs, xn, n, &mut b.scratch, next(l, 0)).map_err(kernel)?;
        for (buf, bias, w) in [(&mut b.q, &layer.bq, nq), (&mut b.k, &layer.bk, nkv), (&mut b.v, &layer.bv, nkv)] {
            if let Some(bias) = bias {
                buf[..n * w].chunks_exact_mut(w).for_each(|row| ops::add(row, bias));
            }
        }
        for t in 0..n {
            let cs = &b.cs[t * rot..(t + 1) * rot];
            rope.apply(&mut b.q[t * nq..(t + 1) * nq], cs);
            rope.apply(&mut b.k[t * nkv..(t + 1) * nkv], cs);
        }
        for t in 0..n {
            for h in 0..hp.n_head_kv {
                let at = kv.offset(l, h, pos0 + t);
                kv.k.write(at, &b.k[t * nkv + h * hd..][..hd]);
                kv.v.write(at, &b.v[t * nkv + h * hd..][..hd]);
            }
        }
        let wo = model.w(&layer.wo);
        if let Some(ty) = fused_attention_out(par, model, n, &wo).filter(|_| layer.bo.is_none()) {
            // A generated token: each thread quantizes its heads' output for the attention output's product.
            let mut buf = std::mem::take(&mut b.wo_acts);
            let acts = ActRow::new(isa, ty, nq, &mut buf);
            attention(par, model, kv, b, l, n, pos0, Some(&acts));
            matmul_quantized_then(par, &wo, acts.bytes(), &mut b.tmp[..e], next(l, 1)).map_err(kernel)?;
            b.wo_acts = buf;
        } else {
            attention(par, model, kv, b, l, n, pos0, None);
            product(&wo, &b.att_tok[..n * nq], &mut b.tmp[..n * e], &mut b.scratch, next(l, 1))?;
        }
        if let Some(bo) = &layer.bo {
            b.tmp[..n * e].chunks_exact_mut(e).for_each(|row| ops::add(row, bo));
        }
        ops::add(&mut b.x[..n * e], &b.tmp[..n * e]);

        // Feed-forward (SwiGLU).
        for t in 0..n {
            ops::rms_norm(&b.x[t * e..(t + 1) * e], &layer.ffn_norm, hp.eps, &mut b.xn[t * e..(t + 1) * e]);
        }
        let xn = &b.xn[..n * e];
        let (gate_up, down) = ([model.w(&layer.w_gate), model.w(&layer.w_up)], model.w(&layer.w_down));
        let gate_up_out: &mut [&mut [f32]] = &mut [&mut b.gate[..n * ff], &mut b.up[..n * ff]];
        if let Some(acts_ty) = fused_ffn(n, &gate_up, &down) {
            // A generated token: each thread applies SwiGLU to its own rows of gate and up and quantizes them for
            // down (see `kernels::matmul_rows_then`).
            let acts = ActRow::new(isa, acts_ty, ff, &mut b.down_acts);
            let glu = |rows: Range<usize>, outs: &mut [&mut [f32]]| {
                if let [g, u] = outs {
                    ops::swiglu(g, u, rows.len());
                    // SAFETY: the pieces' rows do not overlap, and they start at multiples of the block.
                    unsafe { acts.write(rows.start, g) };
                }
            };
            matmul_rows_then(par, &gate_up, gate_up_out, xn, &mut b.scratch, next(l, 2), acts.block(), &glu)
                .map_err(kernel)?;
            let acts = acts.bytes();
            matmul_quantized_then(par, &down, acts, &mut b.tmp[..e], next(l, 3)).map_err(kernel)?;
        } else {
            matmul_group_then(par, &gate_up, gate_up_out, xn, n, &mut b.scratch, next(l, 2)).map_err(kernel)?;
            ops::swiglu(&mut b.gate[..n * ff], &b.up[..n * ff], ff);
            product(&down, &b.gate[..n * ff], &mut b.tmp[..n * e], &mut b.scratch, next(l, 3))?;
        }
        ops::add(&mut b.x[..n * e], &b.tmp[..n * e]);
    }

    let (first, logits) = match out {
        Output::Nothing => return Ok(()),
        Output::Last(l) => (n - 1, l),
        Output::All(l) => (0, l),
    };
    let m = n - first;
    for t in first..n {
        let r = t - first;
        ops::rms_norm(&b.x[t * e..(t + 1) * e], &model.output_norm, hp.eps, &mut b.xn[r * e..(r + 1) * e]);
    }
    let (output, logits) = (model.w(&model.output), &mut logits[..m * hp.n_vocab]);
    matmul_then(par, isa, &output, &b.xn[..m * e], m, logits, &mut b.scratch, &none).map_err(kernel)
}

/// For a generated token, the weights that each product's threads ask for once they are done (`Next`), four per
/// layer: after Q, K and V the attention output's (attention, which reads no weights, runs in between), after it
/// gate and up, after those down, and after down the next layer's Q, K and V, or the output's. A step's threads
/// otherwise all wait at its end with nothing in flight, then each waits again for the first bytes of its share of
/// the next step.
pub(super) fn plan_next(par: &dyn Parallel, model: &Model) -> Vec<Next> {
    let layers = &model.layers;
    let mut plan = Vec::with_capacity(4 * layers.len());
    for (l, layer) in layers.iter().enumerate() {
        plan.push(Next::of(par, &[model.w(&layer.wo)]));
        let (gate_up, down) = ([model.w(&layer.w_gate), model.w(&layer.w_up)], model.w(&layer.w_down));
        plan.push(match fused_ffn(1, &gate_up, &down) {
            Some(ty) => Next::of_rows(par, &gate_up, ty.block_size()),
            None => Next::of(par, &gate_up),
        });
        plan.push(Next::of(par, &[model.w(&layer.w_down)]));
        plan.push(match layers.get(l + 1) {
            Some(nx) => Next::of(par, &[model.w(&nx.wq), model.w(&nx.wk), model.w(&nx.wv)]),
            None => Next::of(par, &[model.w(&model.output)]),
        });
    }
    plan
}

/// For a batch of `n` tokens, whether the feed-forward runs fused (a generated token whose gate and up fit
/// [`rows_fit`] and whose down has a kernel): then the activation type of down.
fn fused_ffn(n: usize, gate_up: &[Weight<'_>], down: &Weight<'_>) -> Option<GgmlType> {
    let ty = vec_dot_type(down.ty)?;
    (n == 1 && rows_fit(gate_up) && down.cols == gate_up[0].rows && gate_up[0].rows.is_multiple_of(ty.block_size()))
        .then_some(ty)
}

/// For a batch of `n` tokens, whether each thread quantizes its heads' attention output for `wo` itself: for a
/// generated token, when [`runs_start_at_blocks`] for wo's activation type. Then that type.
fn fused_attention_out(par: &dyn Parallel, model: &Model, n: usize, wo: &Weight<'_>) -> Option<GgmlType> {
    let hp = model.hparams();
    let ty = vec_dot_type(wo.ty)?;
    let (group, block) = (hp.n_head / hp.n_head_kv, ty.block_size());
    let aligned = runs_start_at_blocks(hp.n_head, group, hp.head_dim, block, par.threads());
    (n == 1 && wo.cols == hp.n_q() && aligned).then_some(ty)
}

/// Whether every run of heads that attention hands out ([`head_runs`]), on `threads` threads or on the calling
/// thread alone, starts at a whole `block` of the output's row: then each run can quantize its own values.
fn runs_start_at_blocks(n_head: usize, group: usize, head_dim: usize, block: usize, threads: usize) -> bool {
    let aligned = |t| head_runs(n_head, group, t).iter().all(|r| (r.start * head_dim).is_multiple_of(block));
    aligned(1) && aligned(threads)
}

/// Positions per block of keys or values that attention reads at a time (converted to f32 from an f16 cache): the
/// cache's blocks, whose rows are contiguous.
pub(super) const KV_CHUNK: usize = super::kv::BLOCK;

/// Attention with fewer multiply-adds than this (q·k plus p·v, all heads) stays on the calling thread. A step of
/// the team costs about a microsecond; from a few positions on, the second thread reading half the cache is worth
/// more (SmolLM2-135M, 128 tokens: 270 → 210 µs of attention per token, from 32K).
const SERIAL_MAX_MACS: usize = 4 * 1024;

/// Causal attention of the batch's queries over the cache (which already holds the batch's own keys and values).
/// Runs of query heads that share a KV head ([`head_runs`]) go in parallel; each head writes its n × head_dim block
/// of `b.att`, then the blocks are interleaved into token-major `b.att_tok` for the output projection; or, given
/// `acts` (one token), each run quantizes its block into them instead, on its own thread.
#[allow(clippy::too_many_arguments)]
fn attention(
    par: &dyn Parallel,
    model: &Model,
    kv: &KvCache,
    b: &mut Buffers,
    l: usize,
    n: usize,
    pos0: usize,
    acts: Option<&ActRow<'_>>,
) {
    let hp = model.hparams();
    let (hd, nq, group) = (hp.head_dim, hp.n_q(), hp.n_head / hp.n_head_kv);
    let q = &b.q;
    let avx2 = ops::avx2_fma();
    #[cfg(target_arch = "x86_64")]
    let avx512 = super::ops512::avx512();
    #[cfg(not(target_arch = "x86_64"))]
    let avx512 = false;
    // Head h writes its block of `att` and uses its own rows of `scores` and `sums`; a run of heads takes their
    // blocks and rows together, and the `kv_rows` of its first head.
    let outs = Chunks::new(&mut b.att[..hp.n_head * n * hd], n * hd);
    let scores = Chunks::new(&mut b.scores, Q_TILE * kv.n_ctx);
    let kv_rows = Chunks::new(&mut b.kv_rows, KV_CHUNK * hd);
    let sums = Chunks::new(&mut b.sums, Q_TILE);
    // Short contexts are less work than a hand-off: then all heads run on this thread.
    let serial = hp.n_head * n * (pos0 + n) * hd < SERIAL_MAX_MACS;
    let runs = head_runs(hp.n_head, group, if serial { 1 } else { par.threads() });
    let run = |r: usize| {
        let heads = runs[r].clone();
        // SAFETY: each run runs once (below), the runs do not overlap, and each takes only its own heads' chunks.
        let bufs = unsafe {
            let (out, scores, sums) = (outs.span(heads.clone()), scores.span(heads.clone()), sums.span(heads.clone()));
            HeadBuffers { out, scores, rows: kv_rows.get(heads.start), sums }
        };
        // For a generated token, ask for the first rows of the next run's keys and values, which a thread most
        // often runs next (each takes the runs of its range in order). SmolLM2-135M, the two ways in turn in one
        // process: attention 0.86–0.90 of the time at positions 0–63, 0.96–0.99 at 64–127 and as long from there
        // on (two identical builds: 1.03–1.05 and 1.00–1.02), where these first rows are much of a run's reads.
        if let (1, Some(next), Some(k), Some(v)) = (n, runs.get(r + 1), kv.k.f32s(), kv.v.f32s()) {
            let (at, len) = (kv.offset(l, next.start / group, 0), (pos0 + 1).min(KV_CHUNK) * hd);
            ops::ask_first(&k[at..at + len]);
            ops::ask_first(&v[at..at + len]);
        }
        let (layer, kv_head, first, count) = (l, heads.start / group, heads.start, heads.len());
        let run = Heads { kv, layer, kv_head, q, first, count, nq, hd, n, pos0 };
        attend_on(&run, bufs, avx512, avx2);
        if let Some(acts) = acts {
            // SAFETY: the run's block of `att`, which it alone wrote (and `bufs` is gone); for one token it holds
            // heads `heads` in order, the values `heads.start · hd..` of the output's row.
            let out = unsafe { outs.span(heads.clone()) };
            // SAFETY: the runs do not overlap, and `fused_attention_out` checked that each starts at a whole block.
            unsafe { acts.write(heads.start * hd, out) };
        }
    };
    if serial {
        (0..runs.len()).for_each(run);
    } else {
        par.for_each(runs.len(), &run);
    }
    if acts.is_some() {
        return;
    }
    for h in 0..hp.n_head {
        for t in 0..n {
            b.att_tok[t * nq + h * hd..][..hd].copy_from_slice(&b.att[(h * n + t) * hd..][..hd]);
        }
    }
}

/// The runs of query heads that attention hands out, in order: heads that share a KV head (`group` of them), cut
/// where each of `threads` equal shares of the heads ends. A run reads each block of its KV head's keys and values
/// once for all its heads, while the block is in L1, instead of once per head (and converts an f16 cache once);
/// the cuts keep the threads' shares as even as one head per piece kept them. SmolLM2-135M (9 heads, 3 KV heads),
/// 2 threads, 1024 tokens generated one by one, three runs each in turn: 266–284 → 285–326 tok/s with an f32
/// cache, 235–253 → 278–300 with f16.
fn head_runs(n_head: usize, group: usize, threads: usize) -> Vec<Range<usize>> {
    let shares = (0..=threads).map(|k| k * n_head / threads);
    let mut cuts: Vec<usize> = (0..=n_head).step_by(group.max(1)).chain(shares).collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2).map(|w| w[0]..w[1]).collect()
}

/// [`attend`] in the build the CPU runs best: `avx512`, whether it has AVX-512 F ([`super::ops512::avx512`]),
/// `avx2` whether AVX2 and FMA ([`ops::avx2_fma`]).
fn attend_on(heads: &Heads<'_>, bufs: HeadBuffers<'_>, avx512: bool, avx2: bool) {
    #[cfg(target_arch = "x86_64")]
    if avx512 {
        // SAFETY: `ops512::avx512` checked that this CPU has AVX-512 F (and AVX2 and FMA).
        return unsafe { attend_avx512(heads, bufs) };
    }
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        // SAFETY: `ops::avx2_fma` checked that this CPU has AVX2 and FMA.
        return unsafe { attend_avx2(heads, bufs) };
    }
    let _ = (avx512, avx2);
    attend_n::<PORTABLE>(heads, bufs)
}

/// What a run of query heads writes: their blocks of the output (n × head_dim each), and their own working buffers
/// of `Buffers`: [`Q_TILE`] rows of scores and of weighted sums per head, and a block of converted cache rows.
struct HeadBuffers<'a> {
    out: &'a mut [f32],
    scores: &'a mut [f32],
    rows: &'a mut [f32],
    sums: &'a mut [ops::WeightedSum],
}

/// What a run of query heads reads: their KV head's cache rows (layer `layer`, KV head `kv_head`), and their slices
/// of each token's queries (heads `first..first + count`).
struct Heads<'a> {
    kv: &'a KvCache,
    layer: usize,
    kv_head: usize,
    q: &'a [f32],
    first: usize,
    count: usize,
    nq: usize,
    hd: usize,
    n: usize,
    pos0: usize,
}

/// Which build of [`attend`] runs: portable, AVX2 and FMA, or AVX-512 — the same operations (so the same results,
/// bit for bit), in wider registers.
const PORTABLE: u8 = 0;
#[cfg(target_arch = "x86_64")]
const AVX2: u8 = 1;
#[cfg(target_arch = "x86_64")]
const AVX512: u8 = 2;

/// [`attend`] compiled for AVX2 and FMA: the same operations (so the same results, bit for bit) in 256-bit
/// registers, and each `mul_add` one instruction — attention is a third of the work at a context of 1000.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn attend_avx2(h: &Heads<'_>, b: HeadBuffers<'_>) {
    attend_n::<AVX2>(h, b)
}

/// [`attend`] with AVX-512 F as well: the keys' dot products sixteen at a time (`ops512::dots16`), the softmax and
/// the weighted sums in 512-bit registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn attend_avx512(h: &Heads<'_>, b: HeadBuffers<'_>) {
    attend_n::<AVX512>(h, b)
}

/// [`attend`] built apart for one generated token, which asks for the cache's rows ahead, and for a prompt's batch,
/// which does not: a prompt's tiles use each block for up to 8 tokens and read it no faster so, and with the asking
/// compiled in (though never done) a prompt's attention took 7% longer (pp2048 2–4% slower).
#[inline(always)]
fn attend_n<const MODE: u8>(h: &Heads<'_>, b: HeadBuffers<'_>) {
    if h.n == 1 {
        attend::<MODE, true>(h, b)
    } else {
        attend::<MODE, false>(h, b)
    }
}

/// Query tokens per pass over a head's keys and values: each block of keys, then of values, is read (and for an
/// f16 cache, converted) once for all of them while it is in L1, instead of once per token.
pub(super) const Q_TILE: usize = 8;

/// A run of heads' attention for every token of the batch, [`Q_TILE`] tokens at a time. Keys and values are read
/// in blocks of KV_CHUNK positions, so that an f16 cache is converted to f32 one block at a time, and each block
/// serves every head of the run and token of the tile. `scores` holds [`Q_TILE`] rows of scores per head (the
/// context's length each), `sums` [`Q_TILE`] weighted sums per head. Each head and token gets the same operations,
/// in the same order, as on its own.
///
/// For a generated token, the first head to use a block of keys of an f32 cache reads it from memory (the others
/// find it in L1): it asks for the rows [`ops::PREFETCH_ROWS`] bytes ahead as it goes ([`ops::Ahead`]), as the
/// one-token kernels do for weights, and for the first of them at once. The hardware prefetchers alone left these
/// reads at about half the speed of the weights' (12 GB/s per thread where the products read 20–25). SmolLM2-135M, 2
/// threads, 1024 tokens generated one by one, the two ways in turn in one process (ABBA, 8 tokens each): attention
/// with AVX-512 as fast at positions 0–63, 0.92–0.96 of the time at 64–127 and 0.82–0.92 from there on (tokens
/// 0.94 overall); with AVX2, 0.94 at 0–63, 0.86 at 64–127, then 0.69–0.81 (tokens 0.90).
///
/// That pass asks for the values at the same positions along with the keys, into L2, so that the pass over the
/// values, after the softmax, finds them there rather than starting a stream from memory anew (as it did when it
/// asked for them itself, reading them in order). Intel Xeon (family 6 model 167, 2 threads), SmolLM2-135M Q4_K_M
/// generating 1024 tokens, per-step timers (a throwaway), four pairs of runs in turn: attention 2.49–3.07 ms a token
/// at positions 896–1023 against 2.78–3.40, less in each pair; `bench -n 128` as fast (attention 331 against 350 µs
/// a token).
///
/// `MODE`: which build (see [`PORTABLE`]); the caller has the features it names. `ONE`: whether the batch is one
/// generated token (see [`attend_n`]).
#[inline(always)]
fn attend<'a, const MODE: u8, const ONE: bool>(h: &Heads<'a>, b: HeadBuffers<'_>) {
    let HeadBuffers { out, scores, rows, sums } = b;
    let hd = h.hd;
    let scale = 1.0 / (hd as f32).sqrt();
    let n_ctx = scores.len() / (Q_TILE * h.count);
    // For a generated token, an f32 cache's own rows, which a block's first pass reads from memory and asks for
    // ahead.
    let (k_rows, v_rows) = if ONE { (h.kv.k.f32s(), h.kv.v.f32s()) } else { (None, None) };
    // Row of `scores` and `sums` of head j of the run and token i of the tile.
    let at = |j: usize, i: usize| j * Q_TILE + i;
    for t0 in (0..h.n).step_by(Q_TILE) {
        let tn = Q_TILE.min(h.n - t0);
        // Token t0 + i sees positions 0..n_kv(i).
        let n_kv = |i: usize| h.pos0 + t0 + i + 1;
        let end = n_kv(tn - 1);
        // The cache rows of the block at position c (a multiple of KV_CHUNK) that the tile's tokens see.
        let block = |c: usize| {
            let at = h.kv.offset(h.layer, h.kv_head, c);
            at..at + KV_CHUNK.min(end - c) * hd
        };
        // For head j and token i, the first to read the block of keys at position c (tokens see it from the first
        // whose positions reach it on), the keys and values they may ask for ahead.
        let ahead = |c: usize, j: usize, i: usize| {
            let first = j == 0 && (i == 0 || c >= n_kv(i - 1));
            match (k_rows, v_rows) {
                (Some(k), Some(v)) if first => Some(ops::Ahead(&k[block(c)], &v[block(c)])),
                _ => None,
            }
        };
        // And the first keys and values of the block at c, which nothing asks for ahead of: the first block's at
        // the start, each next block's as the one before it starts.
        let start = |c: usize| {
            for rows in [k_rows, v_rows].into_iter().flatten().filter(|_| c < end) {
                ops::ask_first(&rows[block(c)]);
            }
        };
        start(0);
        for c in (0..end).step_by(KV_CHUNK) {
            let m = KV_CHUNK.min(end - c);
            start(c + KV_CHUNK);
            let keys = h.kv.k.rows(block(c).start, m * hd, rows);
            for j in 0..h.count {
                for i in (0..tn).filter(|&i| c < n_kv(i)) {
                    let mi = m.min(n_kv(i) - c);
                    let qt = &h.q[(t0 + i) * h.nq + (h.first + j) * hd..][..hd];
                    let (keys, s) = (&keys[..mi * hd], &mut scores[at(j, i) * n_ctx + c..][..mi]);
                    score_block::<MODE>(qt, keys, s, scale, ahead(c, j, i));
                }
            }
        }
        for j in 0..h.count {
            for i in 0..tn {
                softmax::<MODE>(&mut scores[at(j, i) * n_ctx..][..n_kv(i)]);
                sums[at(j, i)].clear();
            }
        }
        for c in (0..end).step_by(KV_CHUNK) {
            let m = KV_CHUNK.min(end - c);
            let values = h.kv.v.rows(block(c).start, m * hd, rows);
            for j in 0..h.count {
                for i in (0..tn).filter(|&i| c < n_kv(i)) {
                    let mi = m.min(n_kv(i) - c);
                    let (p, values) = (&scores[at(j, i) * n_ctx + c..][..mi], &values[..mi * hd]);
                    add_block::<MODE>(&mut sums[at(j, i)], p, values);
                }
            }
        }
        for j in 0..h.count {
            for i in 0..tn {
                sums[at(j, i)].finish(&mut out[(j * h.n + t0 + i) * hd..][..hd]);
            }
        }
    }
}

/// `scores[j] = (q · key j) · scale` for the keys of `keys` (`q.len()` apart), asking for the keys and values
/// `ahead` (if any) as it goes.
#[inline(always)]
fn score_block<const MODE: u8>(q: &[f32], keys: &[f32], scores: &mut [f32], scale: f32, ahead: Option<ops::Ahead>) {
    let hd = q.len();
    // Keys done sixteen at a time (AVX-512) or eight (AVX2); only x86-64 has those paths.
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if MODE == AVX512 && hd.is_multiple_of(64) {
        // SAFETY: AVX512 is only set by `attend_avx512`, which runs on a CPU with AVX-512 F.
        done = score_keys::<16>(q, keys, scores, scale, ahead, |q, k, d| unsafe { super::ops512::dots16(q, k, d) });
    }
    #[cfg(target_arch = "x86_64")]
    if MODE == AVX2 && hd.is_multiple_of(64) {
        // SAFETY: AVX2 is only set by `attend_avx2`, which runs on a CPU with AVX2 and FMA.
        done = score_keys::<8>(q, keys, scores, scale, ahead, |q, k, d| unsafe { ops::dots8_avx2(q, k, d) });
    }
    for (k, (s, key)) in scores[done..].iter_mut().zip(keys[done * hd..].chunks_exact(hd)).enumerate() {
        if let Some(ahead) = ahead {
            ahead.ask((done + k) * hd, hd);
        }
        #[cfg(target_arch = "x86_64")]
        let d = if MODE != PORTABLE {
            // SAFETY: AVX2 and AVX512 are only set by `attend_avx2` and `attend_avx512`, which run on a CPU with
            // AVX2 and FMA.
            unsafe { ops::dot_avx2(q, key) }
        } else {
            ops::dot(q, key)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let d = ops::dot(q, key);
        *s = d * scale;
    }
}

/// [`score_block`]'s scores `N` keys at a time with `dots` (the dot products of `q` with `N` keys, as `ops::dot`
/// gives them bit for bit), for as many whole groups of `N` as there are: how many keys it scored.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn score_keys<const N: usize>(
    q: &[f32],
    keys: &[f32],
    scores: &mut [f32],
    scale: f32,
    ahead: Option<ops::Ahead>,
    dots: impl Fn(&[f32], &[f32], &mut [f32; N]),
) -> usize {
    let hd = q.len();
    let (mut d, mut done) = ([0f32; N], 0);
    while done + N <= scores.len() {
        if let Some(ahead) = ahead {
            ahead.ask(done * hd, N * hd);
        }
        dots(q, &keys[done * hd..(done + N) * hd], &mut d);
        for (s, &d) in scores[done..done + N].iter_mut().zip(&d) {
            *s = d * scale;
        }
        done += N;
    }
    done
}

/// `ops::softmax(scores)` in the build `MODE` names.
#[inline(always)]
fn softmax<const MODE: u8>(scores: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if MODE == AVX512 {
        // SAFETY: AVX512 is only set by `attend_avx512`, which runs on a CPU with AVX-512 F.
        return unsafe { super::ops512::softmax(scores) };
    }
    ops::softmax(scores);
}

/// `sum.add_block(p, values)` in the build `MODE` names.
#[inline(always)]
fn add_block<const MODE: u8>(sum: &mut ops::WeightedSum, p: &[f32], values: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if MODE == AVX512 {
        // SAFETY: AVX512 is only set by `attend_avx512`, which runs on a CPU with AVX-512 F.
        return unsafe { sum.add_block_avx512(p, values) };
    }
    #[cfg(target_arch = "x86_64")]
    if MODE == AVX2 {
        // SAFETY: AVX2 is only set by `attend_avx2`, which runs on a CPU with AVX2 and FMA.
        return unsafe { sum.add_block_avx2(p, values) };
    }
    sum.add_block(p, values);
}

#[cfg(test)]
mod tests {
    /// A run of heads quantizes its own output only where every run starts at a whole block: SmolLM2-135M (9 heads
    /// of 64, 3 KV heads) for blocks of 32 (its attention output is Q5_0) on any number of threads, but not for
    /// Q8_K's 256; the 1B-shaped file (32 heads, 8 KV heads) for 256 on 2 threads, not on 3 (the second run starts
    /// at head 10); Qwen2-0.5B (14 heads, 2 KV heads) only for blocks of 32.
    #[test]
    fn runs_quantize_their_own_output_where_they_start_at_blocks() {
        use super::runs_start_at_blocks as fits;
        assert!((1..=8).all(|t| fits(9, 3, 64, 32, t)));
        assert!(!fits(9, 3, 64, 256, 2));
        assert!(fits(32, 4, 64, 256, 1) && fits(32, 4, 64, 256, 2) && fits(32, 4, 64, 256, 4));
        assert!(!fits(32, 4, 64, 256, 3));
        assert!(fits(14, 7, 64, 32, 2) && !fits(14, 7, 64, 256, 2) && !fits(14, 7, 64, 256, 1));
        assert!(fits(14, 7, 64, 1, 5));
    }

    /// The runs cover every head once, in order; none spans two KV heads; each thread's equal share of the heads
    /// ends where a run ends; and there are no more runs than those cuts make.
    #[test]
    fn head_runs_cut_at_kv_heads_and_thread_shares() {
        for (n_head, group) in [(9, 3), (32, 4), (14, 7), (8, 1), (4, 4), (1, 1)] {
            for threads in 1..=10 {
                let runs = super::head_runs(n_head, group, threads);
                let heads: Vec<usize> = runs.iter().flat_map(|r| r.clone()).collect();
                assert_eq!(heads, (0..n_head).collect::<Vec<_>>(), "{n_head}/{group} heads, {threads} threads");
                assert!(runs.iter().all(|r| !r.is_empty() && r.start / group == (r.end - 1) / group));
                for k in 1..threads {
                    let share_end = k * n_head / threads;
                    assert!(share_end == 0 || runs.iter().any(|r| r.end == share_end), "share {k} of {threads}");
                }
                assert!(runs.len() < n_head / group + threads, "{} runs", runs.len());
            }
        }
    }
}
