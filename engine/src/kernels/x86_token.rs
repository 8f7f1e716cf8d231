//! Kernels for one token (a generated one) against Q4_K and Q6_K weights, the two types that carry almost all of a
//! Q4_K_M file, whose rows then stream from memory: in 512-bit registers (64 weights per instruction) for the
//! AVX-512 VNNI set and in 256-bit ones for the AVX2 sets. Each asks for the weights ahead of the block in hand
//! ([`prefetch_ahead`]); the hardware prefetchers alone left a good part of the bandwidth unused. The Q4_K kernels
//! rearrange the token's activations once per call, for all its rows.
//!
//! In 512-bit registers, the Q4_K kernel takes a row's blocks four at a time: their heads (`d`, `dmin`, scales)
//! are unpacked together, and their sums are reduced across lanes together, which took it from about 55 to 41
//! instructions a block (one thread, cached rows: 29 → 38 GB/s). Its byte products then went from `maddubs` and a
//! `vpdpwssd` by the sub-block's scale per 64 weights to one `vpdpbusd` (sums of 4 products in i32), with each two
//! registers of those packed to i16 and then multiplied by their scales in one `vpdpwssd`: on Zen 4, which runs a
//! 512-bit operation as two 256-bit halves, a third fewer multiplies and shuffles. One thread, 1024 rows of 2048
//! (in L2): 23.5 → 27.1 GB/s. Four rows in flight, as the legacy types' kernels
//! have, ran as fast on cached rows but slower in a model: the hardware prefetchers do not follow four interleaved
//! streams, so all rests on the software prefetch (without it, the 1B-shaped file generated 21 tok/s, not 46).
//! What did help was taking a call's rows from two places at once, a row from each in turn ([`in_streams`]): two
//! runs of whole rows, far apart, each followed by its own requests ahead.
//!
//! The sums are those of the row kernels of `x86` for one token, bit for bit. Their integer parts are exact,
//! whatever the grouping, and the float steps are kept as they are:
//! - Q4_K (rows a multiple of 8, `x86::REPACK`, llama.cpp's gemv of its interleaved rows): per block, the exact
//!   sum `S = Σ_j scale_j · Σ code·a` and the mins' `M = Σ_j min_j · bsum_j`, then `S` multiply-added by `d·d_a`
//!   and `M` by `dmin·d_a`, the two sums' difference at the end. Both multiply-adds run in one instruction, `S` and
//!   `M` in two lanes.
//! - Q6_K (`x86::VEC_DOT`, `ggml_vec_dot_q6_K_q8_K`): per block, 8 lanes of integer sums, each lane the products of
//!   the same 4 bytes of every 32 weights, times `d·d_a`, multiply-added into 8 float lanes, summed at the end as
//!   `x86::hsum` sums them. A 512-bit register holds two groups of 32, whose lanes are added at the end of the
//!   block, which gives each of the 8 lanes exactly its integer sum.
//!
//! Where the CPU has AVX-512 VBMI and GFNI and is not AMD Zen 4 (`x86_token_legacy::vbmi_preferred`, the set
//! `ZMM_VBMI`), the 512-bit kernels unpack with fewer instructions: GFNI's affine byte transform moves bits within
//! each byte in one instruction where a shift and a mask took two (Q4_K's high nibbles, Q6_K's two high bits), and
//! Q4_K's scales come from one word permute per 64 weights. What held them back on Intel was instructions for the
//! two vector ports, not loads: the transform, the permute and the fused `vpdpwssd` ([`dpwssd`]) took Q6_K from 32.2
//! to 37.6 GB/s on cached rows and Q4_K from 34.6 to 35.4 (one thread), and the 1B-shaped file's tokens from
//! 27.8–28.2 to 28.3–28.5 tok/s (two threads, four pairs in turn, faster in each).
//!
//! Elsewhere (Q6_K, and Q4_K in 256-bit registers without AVX-VNNI) the byte products go through `maddubs`
//! (unsigned codes by signed activations, pairs summed to i16, no saturation: at most 2·63·128), then in 512-bit
//! registers `vpdpwssd`, which multiplies those pairs by the sub-block's scale and adds them to the block's sums in
//! one instruction (`madd` and an add in 256-bit ones).

use std::arch::x86_64::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::scalar::{Q8K_BSUMS, Q8K_QS};
use super::x86::{dpbusd_acc, dpwssd_acc, hsum};
use super::x86_rows8::{with_buffer, PackedBlock, Q6K_BYTES, Q8K_BYTES, QK_BYTES};
use super::x86_token_legacy::{YMM_VNNI, ZMM, ZMM_VBMI};

/// How far ahead of the block in hand the kernels ask for weights (they stream from memory for a generated token), but
/// for the Q4_K and Q6_K kernels where the requests go to L2 ([`L2_AHEAD`] in each of their streams). On AMD Zen 5, one
/// thread, SmolLM2-135M Q4_K_M tokens took 3–5% less time with 8 KB than with 4 KB (two pairs of runs in turn; its Q6_K
/// feed-forward down 515 → 475 µs a token); 12 and 16 KB were no faster than 8. AMD Zen 3 asks nearer
/// ([`ZEN3_AHEAD`]).
pub(crate) const PREFETCH_AHEAD: usize = 8192;

/// How far ahead of the block in hand the kernels ask for weights into L1 on AMD Zen 3, whose L1 holds 32 KB (Zen
/// 5's 48): there 8 KB was too far. AMD EPYC (2 vCPUs, family 19h model 01h), `bench -n 128`, tok/s, runs in turn:
/// - the kernels' requests alone at each distance (a throwaway setting), three runs each: SmolLM2-135M Q4_K_M on two
///   threads 214 at 8 KB, 223 at 4, 227 at 3, 226–228 at 2, 226–227 at 1.5, 1 and 0.5, 207 asking for nothing; on
///   one thread 123 at 8 KB, 128 at 2; the 1B-shaped Q4_K_M file on two threads 39.7–40.0 at 8 KB, 40.8–41.5 at
///   2, 36.4 asking for nothing. Asking into L2 as on Intel (3 KB ahead, and 512 bytes into L1) came between (224,
///   40.0).
/// - with a range's first bytes asked for as far (2 KB, [`prefetch_start`] and `Next::ask`), against the build
///   before: SmolLM2 on two threads 205.4 → 221.1 on average (five pairs, faster in four, one even), on one thread
///   117.3 → 130.8 (three pairs); the 1B-shaped file 39.7 → 41.3 (three pairs); prompts (pp512) as fast.
const ZEN3_AHEAD: usize = 2048;

/// How far ahead the kernels ask for weights into L1 on this CPU ([`PREFETCH_AHEAD`] or [`ZEN3_AHEAD`]), and how
/// much of a range they ask for at its start ([`prefetch_start`]); set by [`choose_weights_hint`].
static AHEAD: AtomicUsize = AtomicUsize::new(PREFETCH_AHEAD);

/// How far ahead the kernels ask for weights into L1 (and how much of a range at its start): see [`AHEAD`].
#[inline(always)]
pub(crate) fn ahead() -> usize {
    AHEAD.load(Ordering::Relaxed)
}

/// [`ZEN3_AHEAD`] on AMD Zen 3 (family 19h, models 00h–0Fh and 20h–5Fh, as Linux tells Zen 3 from Zen 4), given
/// the CPU's AMD family and model if it is an AMD CPU; [`PREFETCH_AHEAD`] elsewhere.
fn l1_ahead(amd: Option<(u32, u32)>) -> usize {
    match amd {
        Some((0x19, 0x00..=0x0F | 0x20..=0x5F)) => ZEN3_AHEAD,
        _ => PREFETCH_AHEAD,
    }
}

/// Whether the kernels ask for the weights they stream into L2 (`prefetcht1`) rather than into L1 (`prefetcht0`):
/// see [`choose_weights_hint`].
static WEIGHTS_INTO_L2: AtomicBool = AtomicBool::new(false);

/// Chooses where the kernels ask for the weights ahead of them: into L2 on Intel CPUs, into L1 on others, unless
/// `POCKETLM_PREFETCH` says `l1` or `l2`. On an Intel Xeon (Emerald Rapids, 2 vCPUs), the kernel bench's products
/// from memory (604 MB, two threads) read Q4_K at 29.0–29.7 GB/s with `t1` against 27.2–28.2 with `t0` (Q6_K
/// 28.2–28.8 against 27.2–28.5), and the 1B-shaped file's tokens took ~0.96 of the time; on AMD Zen 5, `t1` made
/// SmolLM2-135M's tokens 4–10% slower. Only a hint, so a later change of mind is harmless. Also chooses how far
/// ahead the requests into L1 go ([`AHEAD`]).
pub(crate) fn choose_weights_hint() {
    AHEAD.store(l1_ahead(super::x86_token_legacy::amd_family_model()), Ordering::Relaxed);
    let env = std::env::var("POCKETLM_PREFETCH").ok();
    let intel = super::x86::cpu_vendor() == *b"GenuineIntel";
    let l2 = weights_into_l2(env.as_deref(), intel).unwrap_or_else(|e| {
        eprintln!("pocketlm: {e}");
        intel
    });
    WEIGHTS_INTO_L2.store(l2, Ordering::Relaxed);
}

/// Whether to ask for weights into L2, given `POCKETLM_PREFETCH` (if set) and the CPU's vendor; or why the setting
/// is not understood.
fn weights_into_l2(env: Option<&str>, intel: bool) -> Result<bool, String> {
    match env {
        None => Ok(intel),
        Some("l2") => Ok(true),
        Some("l1") => Ok(false),
        Some(other) => Err(format!("POCKETLM_PREFETCH={other} is neither l1 nor l2; using the CPU's default")),
    }
}

/// Asks for the cache lines of `len` weight bytes from `from`, where [`choose_weights_hint`] chose (a hint: it
/// never faults).
#[inline(always)]
pub(crate) fn prefetch_weights(from: *const u8, len: usize) {
    if WEIGHTS_INTO_L2.load(Ordering::Relaxed) {
        prefetch_lines_with::<_MM_HINT_T1>(from, len);
    } else {
        prefetch_lines_with::<_MM_HINT_T0>(from, len);
    }
}

/// Asks for the cache lines of the bytes that follow `block` in its stream, for the one-token Q4_K and Q6_K
/// kernels ([`prefetch_ahead_of`]).
#[inline(always)]
fn prefetch_ahead(block: &[u8]) {
    prefetch_ahead_of(block.as_ptr(), block.len());
}

/// Asks for the cache lines of `len` bytes of a stream of weights as far ahead of `at` as the one-token kernels
/// ask (a hint: it never faults, so the addresses may lie past the end of the weights): where
/// [`choose_weights_hint`] chose L1 (AMD), those [`ahead`] bytes after it; where it chose L2 (Intel), those
/// [`L2_AHEAD`] bytes after it into L2, and those [`NEAR_AHEAD`] bytes after it into L1.
#[inline(always)]
fn prefetch_ahead_of(at: *const u8, len: usize) {
    if WEIGHTS_INTO_L2.load(Ordering::Relaxed) {
        prefetch_lines_with::<_MM_HINT_T1>(at.wrapping_add(L2_AHEAD), len);
        prefetch_lines_with::<_MM_HINT_T0>(at.wrapping_add(NEAR_AHEAD), len);
    } else {
        prefetch_lines_with::<_MM_HINT_T0>(at.wrapping_add(ahead()), len);
    }
}

/// How far ahead of the block in hand the one-token kernels ask for weights into L2 (Intel), in each of their
/// [`STREAMS`]. Set when they took one stream a thread, [`PREFETCH_AHEAD`] (8 KB) was too far for
/// two: Intel Xeon (2 vCPUs, family 6 model 167), two threads, the 1B-shaped Q4_K_M file generated 29.9–30.2 tok/s
/// asking 8 KB ahead, 31.2–32.3 at 4 KB, 33.1–33.6 at 3 KB (four runs), 32.2–33.4 at 2 and 2.5 KB, 30.4–30.6 at
/// 1 KB; 6, 12 and 16 KB were slower than 8.
const L2_AHEAD: usize = 3072;

/// How far ahead of the block in hand the one-token kernels ask for weights into L1 when the requests
/// [`L2_AHEAD`] bytes ahead go to L2 (measured with those 8 KB ahead): the lines that those brought to L2 then reach L1
/// a few blocks early, where on their own they came in late, a few lines at a time, while the kernel waited. On an
/// Intel Xeon (Emerald Rapids, 2 vCPUs, 2 threads), the 1B-shaped Q4_K_M file generated 30.7–33.0 tok/s with it against
/// 28.7–31.2 without (five pairs of runs in turn, faster in each, at times when the machine was busy), and as fast
/// (34.3–34.7 against 34.3–34.4) when it was quiet; SmolLM2-135M, quiet, 300–306 against 295–296; the 1B-shaped file
/// with the AVX2 kernels (`POCKETLM_KERNELS=avx2+vnni`), quiet, 35.3 against 34.7. 256 bytes were no faster than none,
/// 1 KB and more a little slower than 512. What held the kernels back was their arithmetic between the loads: the same
/// products done as a pass that only read the weights (a throwaway) generated 36–39 tok/s; with 8 `vpdpbusd` per 64
/// bytes added to it, 31–33 asking 8 KB ahead into L2 alone, and 35–36 asking 2 KB ahead into L1 as well. The legacy
/// types' kernels, which keep four rows in flight, at first gained nothing measurable from it (the 1B-shaped file in
/// Q4_0, quiet: 34.1–34.8 tok/s asking 256 or 512 bytes ahead, 34.4 without); but asked for as these kernels ask,
/// 3 KB ahead into L2 and 512 bytes into L1 rather than 8 KB into L2 alone ([`prefetch_span`]), SmolLM2-135M
/// Q4_K_M (Q5_0 and Q8_0 but for its feed-forward down) generated faster on the same Xeon (family 6 model 167,
/// 2 threads, `bench -n 128`), in two series of four pairs of runs in turn: 185 → 197 tok/s on average in the first,
/// and faster in each pair of the second, 173–203 → 197–211, its Q5_0 and Q8_0 products 5–11% faster there
/// (per-step timers, a throwaway; the Q8_0 output 1106 → 1003 µs a token).
const NEAR_AHEAD: usize = 512;

/// For a kernel with rows in flight that lie one after the other, `span` bytes of blocks `ib` of them together:
/// asks for `span` bytes as far ahead of block `ib` of the last of them (at `last`) as [`prefetch_ahead_of`] asks,
/// a cache line at a time (a hint: it never faults). Block by block and group of rows by group, these cover every
/// byte that follows, at least that far ahead of any byte the kernel reads; counted from the first row, the lead
/// would shrink to nothing for the last rows of wide ones.
#[inline(always)]
pub(super) fn prefetch_span(last: *const u8, span: usize, ib: usize) {
    prefetch_ahead_of(last.wrapping_add(ib * span), span);
}

/// Asks for the cache lines of the `len` bytes from `from`, one request per 64 bytes (a hint: it never faults, so
/// the addresses may lie anywhere).
#[inline(always)]
pub(crate) fn prefetch_lines(from: *const u8, len: usize) {
    prefetch_lines_with::<_MM_HINT_T0>(from, len);
}

/// [`prefetch_lines`] into L2 only: for bytes wanted a little later, without taking the L1 fill buffers that the
/// kernel running now needs.
#[inline(always)]
pub(crate) fn prefetch_lines_l2(from: *const u8, len: usize) {
    prefetch_lines_with::<_MM_HINT_T1>(from, len);
}

/// [`prefetch_lines`] with the prefetch hint `HINT`.
#[inline(always)]
fn prefetch_lines_with<const HINT: i32>(from: *const u8, len: usize) {
    for line in (0..len).step_by(64) {
        // SAFETY: SSE is part of x86-64, and a prefetch reads nothing the program sees.
        unsafe { _mm_prefetch::<HINT>(from.wrapping_add(line).cast()) };
    }
}

/// Asks for the first [`ahead`] of the `len` bytes from `from` (a range of a product's rows, or a
/// kernel's stream of them, for one token), which the kernels' own requests, always that far ahead of the block in
/// hand, never cover. Without it a thread starting a range waited for those bytes a few lines at a time, and each
/// thread starts a range or more in each of a generated token's steps (SmolLM2-135M: about 150). Tokens with and
/// without it in alternation, in one process, took 1–5% less time with it (the medians of 8 series of 256 tokens;
/// 1.5% in the middle).
#[inline]
pub(super) fn prefetch_start(from: *const u8, len: usize) {
    prefetch_weights(from, len.min(ahead()));
}

/// The blocks of `block_bytes` in a row, after checking a one-token kernel's slices: `rows` whole rows of them in
/// `w`, one token's activations in `a` (`act_per_block` bytes per weight block), and room for `rows` results.
#[allow(clippy::too_many_arguments)]
pub(super) fn checked_blocks(
    block_bytes: usize,
    act_per_block: usize,
    w: &[u8],
    rows: usize,
    row_bytes: usize,
    a: &[u8],
    n: usize,
    out: &[f32],
) -> usize {
    let nb = row_bytes / block_bytes;
    assert!(n == 1 && row_bytes == nb * block_bytes && w.len() >= rows * row_bytes, "one token, whole rows");
    assert!(out.len() >= rows && a.len() >= nb * act_per_block, "short slices");
    nb
}

/// A Q8_K activation block rearranged for the Q4_K kernel, once per call for all its rows.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub(super) struct Q4kToken {
    /// The 256 codes, the sub-blocks of 32 in the order the kernel takes them: 0, 2, 1, 3, 4, 6, 5, 7. Q4_K keeps
    /// sub-blocks 2j and 2j + 1 in the low and the high nibbles of the same 32 bytes, so the low nibbles of a
    /// 64-byte run (j = 2h and 2h + 1) are sub-blocks 4h and 4h + 2, and its high nibbles 4h + 1 and 4h + 3.
    codes: [[u8; 64]; 4],
    /// The sums of each sub-block's 32 codes (pairs of the bsums of 16), as i16 (at most 32·127), of this block
    /// and of the three after it (zeros past the last block): the mins' factors of four blocks in one load.
    sums32: [i16; 32],
    /// The block's `d`.
    d: f32,
    /// The `d` of this block and of the three after it (as many as there are), each twice: the factors of the
    /// lanes `[S, M]` of four blocks.
    ds: [f32; 8],
    _pad: [u8; 28],
}

// SAFETY: integers and floats in arrays, `repr(C, align(64))`, 384 bytes (a multiple of 64).
unsafe impl PackedBlock for Q4kToken {
    const ROWS: usize = 1;
}

/// The one-token Q4_K kernel for `rows` rows (a multiple of 8): `out[r]`, in the `REPACK` arithmetic, in the
/// registers of `SET` (`x86_token_legacy`'s `ZMM`, `ZMM_VBMI`, `YMM_VNNI` or `YMM`).
///
/// # Safety
/// As for a [`Rows8Kernel`](super::Rows8Kernel) (with `n == 1`), on a CPU for which `x86_512::available` holds
/// with `ZMM` (and `x86_token_legacy::vbmi_available` with `ZMM_VBMI`), `x86::available` with the others (and
/// `x86::vnni_available` with `YMM_VNNI`).
pub(super) unsafe fn q4_k_q8_k<const SET: u8>(
    w: &[u8],
    rows: usize,
    row_bytes: usize,
    a: &[u8],
    _ar: usize,
    n: usize,
    out: &mut [f32],
) {
    let nb = checked_blocks(QK_BYTES, Q8K_BYTES, w, rows, row_bytes, a, n, out);
    with_buffer::<Q4kToken, _>(nb, |y| {
        for (p, b) in y.iter_mut().zip(a.chunks_exact(Q8K_BYTES)) {
            for (i, sb) in [0, 2, 1, 3, 4, 6, 5, 7].into_iter().enumerate() {
                p.codes[i / 2][32 * (i % 2)..][..32].copy_from_slice(&b[Q8K_QS + 32 * sb..][..32]);
            }
            let bsum = |i: usize| i16::from_le_bytes([b[Q8K_BSUMS + 2 * i], b[Q8K_BSUMS + 2 * i + 1]]);
            for k in 0..8 {
                p.sums32[k] = bsum(2 * k).wrapping_add(bsum(2 * k + 1));
            }
            p.d = f32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
        }
        for i in 0..nb {
            let ds: [f32; 8] = std::array::from_fn(|l| y.get(i + l / 2).map_or(0.0, |q| q.d));
            let sums32: [i16; 32] = std::array::from_fn(|l| y.get(i + l / 8).map_or(0, |q| q.sums32[l % 8]));
            (y[i].ds, y[i].sums32) = (ds, sums32);
        }
        let (w, out) = (&w[..rows * row_bytes], &mut out[..rows]);
        // SAFETY: the features are there (the caller's contract); the rows are whole and `y` has their blocks.
        unsafe {
            match SET {
                ZMM => q4_k_rows::<false>(w, row_bytes, y, out),
                ZMM_VBMI => q4_k_rows::<true>(w, row_bytes, y, out),
                YMM_VNNI => q4_k_rows_avx2::<true>(w, row_bytes, y, out),
                _ => q4_k_rows_avx2::<false>(w, row_bytes, y, out),
            }
        }
    })
}

/// [`q4_k_row`] for each row of `w` (`row_bytes` apart), into `out`, in [`STREAMS`] streams ([`in_streams`]). The
/// row kernels inline into one loop compiled with their features, so that their constants are set up once per
/// call, not once per row, and a row's final sums overlap the next row's blocks. As calls of their own, one per
/// row, they were slower: Zen 5, one thread, 256 cached rows of 2048 weights, Q4_K 47.6–48.4 → 49.9–51.1 GB/s and
/// Q6_K 53.2–53.4 → 55.9–56.1 (in 256-bit registers with AVX-VNNI, 27.4–28.5 → 29.5–29.6 and 36.2–36.6 →
/// 36.6–38.7).
///
/// # Safety
/// As for [`q4_k_q8_k`] with `ZMM` (with `ZMM_VBMI` if `GFNI`); `w` holds whole rows, as many as `out` has room for.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn q4_k_rows<const GFNI: bool>(w: &[u8], row_bytes: usize, y: &[Q4kToken], out: &mut [f32]) {
    in_streams(w.as_ptr(), out.len(), row_bytes, |r| {
        out[r] = q4_k_row::<GFNI>(&w[r * row_bytes..][..row_bytes], y);
    });
}

/// How many streams a one-token kernel reads its rows in (see [`in_streams`]).
const STREAMS: usize = 2;

/// Calls `each(u)` for every unit `u` in `0..units` (a row, or a group of rows, of `unit_bytes` each, one after
/// the other from `w`), with the units cut into [`STREAMS`] runs, nearly equal, taken a unit of each in turn: the
/// weights then stream from as many places at once, each with its own requests ahead of its block in hand
/// ([`prefetch_ahead`], [`prefetch_span`]). One stream per thread left a third of the bandwidth unused on an Intel
/// Xeon (2 vCPUs, family 6 model 167, 2 MB of L2 per core): two threads summing 512 MB read 32–35 GB/s, the Q4_K
/// kernel 23–24 on 302 MB of rows and 27 with two streams; Q6_K (the 1B-shaped file's 215 MB output) 25 → 29.5.
/// The 1B-shaped Q4_K_M file generated 27–28 tok/s with one stream, 28.6–29.5 with two, and as fast with three or
/// four (two series each way in turn); six and eight were slower. Each stream after the first asks for its first
/// bytes as the call starts ([`prefetch_start`], which `Job::run` does for the first): the 1B-shaped file is as fast
/// with it (three series in turn), and the legacy types' kernels, with SmolLM2-135M's smaller products, a little
/// faster. Each unit's sums are the same whichever stream reads it.
#[inline(always)]
pub(super) fn in_streams(w: *const u8, units: usize, unit_bytes: usize, mut each: impl FnMut(usize)) {
    let streams = STREAMS.clamp(1, units.max(1));
    let (per, longer) = (units / streams, units % streams);
    // Stream s runs over units start(s)..start(s + 1); the first `longer` streams have one unit more.
    let start = |s: usize| s * per + s.min(longer);
    // The first bytes of the streams after the first, which no request covers (the first's: `Job::run`'s).
    for s in 1..streams {
        prefetch_start(w.wrapping_add(start(s) * unit_bytes), (start(s + 1) - start(s)) * unit_bytes);
    }
    for i in 0..per + usize::from(longer > 0) {
        for s in 0..streams {
            let u = start(s) + i;
            if u < start(s + 1) {
                each(u);
            }
        }
    }
}

/// [`q4_k_row_avx2`] for each row of `w`, as [`q4_k_rows`].
///
/// # Safety
/// As for [`q4_k_q8_k`] without `ZMM`; `w` holds whole rows, as many as `out` has room for.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_k_rows_avx2<const VNNI: bool>(w: &[u8], row_bytes: usize, y: &[Q4kToken], out: &mut [f32]) {
    in_streams(w.as_ptr(), out.len(), row_bytes, |r| {
        out[r] = q4_k_row_avx2::<VNNI>(&w[r * row_bytes..][..row_bytes], y);
    });
}

/// The bit matrix (one per 64-bit lane) with which [`affine`] moves each byte's high nibble down to the low one:
/// byte `7 − i` of the matrix picks the source bits of result bit `i`.
pub(super) const HIGH_NIBBLE: i64 = 0x1020_4080_0000_0000;

/// GFNI's affine transform of each byte of `x` (`gf2p8affineqb` with no constant): result bit `i` of a byte is the
/// parity of the byte's bits that byte `7 − i` of `m`'s 64-bit lane selects. Written as `asm!` so that the kernels
/// around it keep the `ZMM` set's features: with `gfni` among them the compiler could use the instruction anywhere
/// in them, also for the CPUs without it (Intel's Cascade Lake has AVX-512 VNNI but no GFNI).
///
/// # Safety
/// GFNI and AVX-512 F.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn affine(x: __m512i, m: __m512i) -> __m512i {
    let out;
    // SAFETY: registers only; the CPU has the instruction (the caller's contract).
    unsafe {
        std::arch::asm!("vgf2p8affineqb {out}, {x}, {m}, 0", out = lateout(zmm_reg) out, x = in(zmm_reg) x,
            m = in(zmm_reg) m, options(pure, nomem, nostack, preserves_flags));
    }
    out
}

/// `acc` plus the sums of the products of `a`'s and `b`'s i16 pairs, as one `vpdpwssd`. LLVM splits the intrinsic
/// into `vpmaddwd` and `vpaddd` where the accumulator is a sum already, one more instruction for ports that the
/// kernels keep busy.
///
/// # Safety
/// AVX-512 F and VNNI.
#[inline]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn dpwssd(mut acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
    // SAFETY: registers only; the features are there (the caller's contract).
    unsafe {
        std::arch::asm!("vpdpwssd {acc}, {a}, {b}", acc = inout(zmm_reg) acc, a = in(zmm_reg) a, b = in(zmm_reg) b,
            options(pure, nomem, nostack, preserves_flags));
    }
    acc
}

/// Word indices into the four blocks' scales as i16 (block i's 8 from word 8i) for [`q4_k_blocks`] with `GFNI`:
/// entry `2i + h` gives the scales of block i's half h in the layout of its packed sums, scale `4h` in the first 4
/// words of 128-bit lanes 0 and 1 and `4h + 1` in their last 4, `4h + 2` and `4h + 3` likewise in lanes 2 and 3.
static SCALES16: [Words; 8] = {
    let mut t = [Words([0; 32]); 8];
    let mut e = 0;
    while e < 8 {
        let (i, h) = (e / 2, e % 2);
        let mut k = 0;
        while k < 32 {
            let lane = k / 8;
            t[e].0[k] = (8 * i + 4 * h + 2 * (lane / 2) + (k % 8) / 4) as u16;
            k += 1;
        }
        e += 1;
    }
    t
};

/// 32 words aligned for a 512-bit load.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Words([u16; 32]);

/// The i16 lanes of a 512-bit register: `a` in the low 256 bits, `b` in the high ones.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn halves16(a: i16, b: i16) -> __m512i {
    _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(a)), _mm256_set1_epi16(b), 1)
}

/// The byte masks of [`scales_mins`]: which bytes of a block's head give each scale's and min's low bits and its
/// top two bits, and which bits of the former to keep at each place.
const SCALES_MINS: [[i8; 16]; 4] = [
    [4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15],
    [-1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1, 8, 9, 10, 11],
    [63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15],
];

/// The 8 six-bit scales (bytes 0..8) and 8 mins (bytes 8..16) of a Q4_K block, from its first 16 bytes (`head`:
/// f16 `d` and `dmin`, then the 12 packed bytes): [`scale_min_k4`](super::scalar::scale_min_k4) for all sixteen at
/// once. Scale and min `j < 4` are the low 6 bits of packed bytes `j` and `j + 4`; for `j ≥ 4` the low and high
/// nibbles of packed byte `j + 4`, each with two more bits on top from the high bits of packed bytes `j − 4` and
/// `j`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn scales_mins(head: __m128i) -> __m128i {
    let [low, top, m_low, m_high] = SCALES_MINS.map(|c| _mm_loadu_si128(c.as_ptr().cast()));
    let (low, top) = (_mm_shuffle_epi8(head, low), _mm_shuffle_epi8(head, top));
    let base = _mm_or_si128(_mm_and_si128(low, m_low), _mm_and_si128(_mm_srli_epi16(low, 4), m_high));
    // Bits 6 and 7 of the top bytes to bits 4 and 5 (the mask drops what the 16-bit shift brings from the next byte).
    _mm_or_si128(base, _mm_and_si128(_mm_srli_epi16(top, 2), _mm_set1_epi8(0x30)))
}

/// The 8 six-bit scales and 8 mins of each of four Q4_K blocks, from the first 16 bytes of each (f16 `d`, `dmin`,
/// then the 12 packed bytes) in the 128-bit lanes of `head`: in each lane, what [`scales_mins`] gives for its block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn scales_mins4(head: __m512i) -> __m512i {
    let [low, top, m_low, m_high] = SCALES_MINS.map(|c| _mm512_broadcast_i32x4(_mm_loadu_si128(c.as_ptr().cast())));
    let (low, top) = (_mm512_shuffle_epi8(head, low), _mm512_shuffle_epi8(head, top));
    let base = _mm512_or_si512(_mm512_and_si512(low, m_low), _mm512_and_si512(_mm512_srli_epi16(low, 4), m_high));
    _mm512_or_si512(base, _mm512_and_si512(_mm512_srli_epi16(top, 2), _mm512_set1_epi8(0x30)))
}

/// One Q4_K row against the prepared token: `Σ_blocks S·(d·d_a) − Σ_blocks M·(dmin·d_a)`, as `x86::REPACK`
/// sums, four blocks at a time: their heads (`d`, `dmin`, scales) are unpacked together, one block to a 128-bit
/// lane, and their sums `S` and `M` are added up together, into lanes `2i` and `2i + 1` of one 256-bit register;
/// the multiply-adds then take the blocks in order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn q4_k_row<const GFNI: bool>(w: &[u8], y: &[Q4kToken]) -> f32 {
    // Lane 0: Σ S·(d·d_a); lane 1: Σ M·(dmin·d_a).
    let mut acc = _mm_setzero_ps();
    let (x4, y4) = (w.chunks_exact(4 * QK_BYTES), y.chunks_exact(4));
    let (x_tail, y_tail) = (x4.remainder(), y4.remainder());
    for (x, p) in x4.zip(y4) {
        acc = q4_k_blocks::<4, GFNI>(x, p, acc);
    }
    acc = match y_tail.len() {
        0 => acc,
        1 => q4_k_blocks::<1, GFNI>(x_tail, y_tail, acc),
        2 => q4_k_blocks::<2, GFNI>(x_tail, y_tail, acc),
        _ => q4_k_blocks::<3, GFNI>(x_tail, y_tail, acc),
    };
    _mm_cvtss_f32(acc) - _mm_cvtss_f32(_mm_movehdup_ps(acc))
}

/// `K` (1 to 4) consecutive blocks of a Q4_K row (`x`) against theirs of the prepared token (`p`), multiply-added
/// into `acc` (lane 0: `Σ S·(d·d_a)`, lane 1: `Σ M·(dmin·d_a)`) block after block. With `GFNI` (for `ZMM_VBMI`),
/// each half's high nibbles come from one affine byte transform rather than a shift and a mask, each half's scales
/// from one word permute of the four blocks' scales rather than a lane broadcast and a byte shuffle, and the second
/// half's scaled sums add up in one `vpdpwssd` rather than `vpmaddwd` and `vpaddd` (see [`dpwssd`]). Intel Xeon
/// (2 vCPUs, family 6 model 167), one thread, 1024 rows of 2048 (in cache): 34.6 → 35.4 GB/s (three runs each, in
/// turn). The same permutes and sum without the affine transform were slower (33.2–33.5), and the transform and
/// sum with the old shuffles no faster (33.5–34.5), so `ZMM` (which AMD Zen 4 takes) keeps its shuffles.
///
/// Four blocks ask for their bytes ahead ([`prefetch_ahead`]) block by block, each as its turn comes, not all 576
/// at the start: same Xeon, two threads, the 1B-shaped Q4_K_M file generated 28.0–28.7 → 30.6–30.7 tok/s (three
/// pairs of runs in turn), although rows in L2 ran a little slower (one thread: 30.1–31.4 → 28.6–30.8 GB/s).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn q4_k_blocks<const K: usize, const GFNI: bool>(x: &[u8], p: &[Q4kToken], mut acc: __m128) -> __m128 {
    let (x, p) = (&x[..K * QK_BYTES], &p[..K]);
    let (m4, zero, high) = (_mm512_set1_epi8(0xF), _mm512_setzero_si512(), _mm512_set1_epi64(HIGH_NIBBLE));
    // The i16 scales of half h's packed sums (see `block`): in 128-bit lanes 0 and 1 scale 4h four times, then
    // scale 4h + 1 four times; in lanes 2 and 3 scales 4h + 2 and 4h + 3 (byte j of the scales, then a zero byte).
    let scales_of = |h: i8| {
        let lane = |a: i8, b: i8| _mm_setr_epi8(a, -1, a, -1, a, -1, a, -1, b, -1, b, -1, b, -1, b, -1);
        let (l01, l23) = (lane(4 * h, 4 * h + 1), lane(4 * h + 2, 4 * h + 3));
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(l01, l01)), _mm256_set_m128i(l23, l23), 1)
    };
    let scale_of = [scales_of(0), scales_of(1)];
    let mins_of = _mm512_broadcast_i32x4(_mm_setr_epi8(8, -1, 9, -1, 10, -1, 11, -1, 12, -1, 13, -1, 14, -1, 15, -1));
    if K < 4 {
        prefetch_ahead(x);
    }
    // The blocks' first 16 bytes, block i in lane i (zeros past the K-th).
    let head_of = |i: usize| if i < K { _mm_loadu_si128(x[QK_BYTES * i..][..16].as_ptr().cast()) } else { _mm_setzero_si128() };
    let head = _mm512_inserti32x4(
        _mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(head_of(0)), head_of(1), 1), head_of(2), 2),
        head_of(3),
        3,
    );
    let sm = scales_mins4(head);
    // [d, dmin] of each block (dword 0 of its lane), times the token's d.
    let heads = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    let dm = _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi32(heads, head)));
    let dm = _mm256_mul_ps(dm, _mm256_loadu_ps(p[0].ds.as_ptr()));
    // Block i's S in 16 lanes, from its scales and mins in every lane (`smi`). Each half h of the block (64 bytes,
    // sub-blocks 4h and 4h + 2 in the low nibbles, 4h + 1 and 4h + 3 in the high ones) gives two registers of sums
    // of 4 products (`vpdpbusd`), 8 lanes a sub-block; their 32 lanes, packed to i16 (at most 4·15·128 in size: exact),
    // are multiplied by their sub-blocks' scales and added in pairs (`vpdpwssd`).
    // With GFNI: the four blocks' scales as i16, block i's from word 8i.
    let even_qwords = _mm512_setr_epi64(0, 2, 4, 6, 0, 0, 0, 0);
    let scales16 = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(_mm512_permutexvar_epi64(even_qwords, sm)));
    let block = |i: usize, smi: __m512i| {
        if i >= K {
            return zero;
        }
        let mut s = zero;
        if K == 4 {
            prefetch_ahead(&x[QK_BYTES * i..][..QK_BYTES]);
        }
        for h in 0..2 {
            let q = _mm512_loadu_si512(x[QK_BYTES * i + 16 + 64 * h..][..64].as_ptr().cast());
            let lo = _mm512_and_si512(q, m4);
            let hi = if GFNI { affine(q, high) } else { _mm512_and_si512(_mm512_srli_epi16(q, 4), m4) };
            let y_lo = _mm512_load_si512(p[i].codes[2 * h].as_ptr().cast());
            let y_hi = _mm512_load_si512(p[i].codes[2 * h + 1].as_ptr().cast());
            let sums = _mm512_packs_epi32(_mm512_dpbusd_epi32(zero, lo, y_lo), _mm512_dpbusd_epi32(zero, hi, y_hi));
            s = if GFNI {
                let idx = _mm512_load_si512(SCALES16[2 * i + h].0.as_ptr().cast());
                let scales = _mm512_permutexvar_epi16(idx, scales16);
                if h == 0 { _mm512_madd_epi16(scales, sums) } else { dpwssd(s, scales, sums) }
            } else {
                _mm512_dpwssd_epi32(s, _mm512_shuffle_epi8(smi, scale_of[h]), sums)
            };
        }
        s
    };
    let s = [
        block(0, _mm512_shuffle_i32x4(sm, sm, 0x00)),
        block(1, _mm512_shuffle_i32x4(sm, sm, 0x55)),
        block(2, _mm512_shuffle_i32x4(sm, sm, 0xAA)),
        block(3, _mm512_shuffle_i32x4(sm, sm, 0xFF)),
    ];
    // Each block's 16 lanes of S to 4, block i in lane i: halves added, then quarters.
    let half = |a: __m512i, b: __m512i| _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, 0x44), _mm512_shuffle_i32x4(a, b, 0xEE));
    let (s01, s23) = (half(s[0], s[1]), half(s[2], s[3]));
    let s4 = _mm512_add_epi32(_mm512_shuffle_i32x4(s01, s23, 0x88), _mm512_shuffle_i32x4(s01, s23, 0xDD));
    // Each block's M in 4 lanes: its mins times the sub-blocks' sums of codes.
    let sums32 = _mm512_load_si512(p[0].sums32.as_ptr().cast());
    let m4s = _mm512_madd_epi16(_mm512_shuffle_epi8(sm, mins_of), sums32);
    // [S, M, S, M] in each lane, then [S, M] of the four blocks, as floats.
    let pairs = _mm512_add_epi32(_mm512_unpacklo_epi32(s4, m4s), _mm512_unpackhi_epi32(s4, m4s));
    let pairs = _mm512_add_epi32(pairs, _mm512_shuffle_epi32(pairs, _MM_PERM_BADC));
    let order = _mm512_setr_epi32(0, 1, 4, 5, 8, 9, 12, 13, 0, 0, 0, 0, 0, 0, 0, 0);
    let v = _mm256_cvtepi32_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi32(order, pairs)));
    // The blocks in order: lanes [S, M] of block i, then its factors.
    let (v_lo, v_hi) = (_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let (d_lo, d_hi) = (_mm256_castps256_ps128(dm), _mm256_extractf128_ps(dm, 1));
    acc = _mm_fmadd_ps(v_lo, d_lo, acc);
    if K > 1 {
        acc = _mm_fmadd_ps(_mm_movehl_ps(v_lo, v_lo), _mm_movehl_ps(d_lo, d_lo), acc);
    }
    if K > 2 {
        acc = _mm_fmadd_ps(v_hi, d_hi, acc);
    }
    if K > 3 {
        acc = _mm_fmadd_ps(_mm_movehl_ps(v_hi, v_hi), _mm_movehl_ps(d_hi, d_hi), acc);
    }
    acc
}

/// [`q4_k_row`] in 256-bit registers, for the AVX2 sets: the same sums, 32 weights per instruction, a block at a
/// time. Each 32 bytes of codes hold sub-blocks 2j (low nibbles) and 2j + 1 (high ones). Without `VNNI` each
/// sub-block's byte products go through `maddubs` and then `madd` by its scale; with it (AVX-VNNI: Intel since
/// Alder Lake, AMD since Zen 5), as in [`q4_k_blocks`], `vpdpbusd` gives both sub-blocks' sums of 4 products
/// in i32, a pack puts the two registers in one of i16 (exact: at most 4·15·128 in size), and one `vpdpwssd` by
/// the two scales adds them up ([`dpwssd_acc`]): 8 instructions per 64 weights instead of 11, with the same integer
/// sums. (As `madd` and an add, 9: Intel Xeon, one thread, cached rows, 26.2–26.7 GB/s against 27.8–27.9.)
///
/// # Safety
/// AVX2, FMA and F16C (and AVX-VNNI with `VNNI`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_k_row_avx2<const VNNI: bool>(w: &[u8], y: &[Q4kToken]) -> f32 {
    let m4 = _mm256_set1_epi8(0xF);
    // Where sub-block s lies among the prepared codes, in 32-byte slots (the order 0, 2, 1, 3, 4, 6, 5, 7).
    const SLOT: [usize; 8] = [0, 2, 1, 3, 4, 6, 5, 7];
    let scale_of: [__m256i; 8] = std::array::from_fn(|j| _mm256_set1_epi16(-256 | j as i16));
    // With VNNI: the i16 scales of a pack of sub-blocks 2j and 2j + 1, in each 128-bit lane four of each.
    let pair_of: [__m256i; 4] = std::array::from_fn(|j| {
        let (a, b) = (-256 | (2 * j) as i16, -256 | (2 * j + 1) as i16);
        _mm256_setr_epi16(a, a, a, a, b, b, b, b, a, a, a, a, b, b, b, b)
    });
    let mins_of = _mm_setr_epi8(8, -1, 9, -1, 10, -1, 11, -1, 12, -1, 13, -1, 14, -1, 15, -1);
    let mut acc = _mm_setzero_ps();
    for (x, p) in w.chunks_exact(QK_BYTES).zip(y) {
        prefetch_ahead(x);
        let dm = _mm_cvtph_ps(_mm_cvtsi32_si128(i32::from_le_bytes(x[..4].try_into().expect("4 bytes"))));
        let sm = scales_mins(_mm_loadu_si128(x[..16].as_ptr().cast()));
        let sm2 = _mm256_broadcastsi128_si256(sm);
        let codes = p.codes.as_flattened();
        let (mut s_lo, mut s_hi) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        for j in 0..4 {
            let q = _mm256_loadu_si256(x[16 + 32 * j..][..32].as_ptr().cast());
            let lo = _mm256_and_si256(q, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            let y_lo = _mm256_load_si256(codes[32 * SLOT[2 * j]..][..32].as_ptr().cast());
            let y_hi = _mm256_load_si256(codes[32 * SLOT[2 * j + 1]..][..32].as_ptr().cast());
            if VNNI {
                let zero = _mm256_setzero_si256();
                let sums = _mm256_packs_epi32(dpbusd_acc(zero, lo, y_lo), dpbusd_acc(zero, hi, y_hi));
                s_lo = dpwssd_acc(s_lo, _mm256_shuffle_epi8(sm2, pair_of[j]), sums);
                continue;
            }
            let p_lo = _mm256_madd_epi16(_mm256_shuffle_epi8(sm2, scale_of[2 * j]), _mm256_maddubs_epi16(lo, y_lo));
            let p_hi = _mm256_madd_epi16(_mm256_shuffle_epi8(sm2, scale_of[2 * j + 1]), _mm256_maddubs_epi16(hi, y_hi));
            s_lo = _mm256_add_epi32(s_lo, p_lo);
            s_hi = _mm256_add_epi32(s_hi, p_hi);
        }
        let s8 = _mm256_add_epi32(s_lo, s_hi);
        let m = _mm_madd_epi16(_mm_shuffle_epi8(sm, mins_of), _mm_load_si128(p.sums32.as_ptr().cast()));
        let s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
        let sums = _mm_hadd_epi32(_mm_hadd_epi32(s4, m), _mm_setzero_si128());
        acc = _mm_fmadd_ps(_mm_cvtepi32_ps(sums), _mm_mul_ps(dm, _mm_set1_ps(p.d)), acc);
    }
    _mm_cvtss_f32(acc) - _mm_cvtss_f32(_mm_movehdup_ps(acc))
}

/// The one-token Q6_K kernel for any number of rows: `out[r]`, in the `VEC_DOT` arithmetic; with `ZMM` in 512-bit
/// registers.
///
/// # Safety
/// As for [`q4_k_q8_k`].
pub(super) unsafe fn q6_k_q8_k<const SET: u8>(
    w: &[u8],
    rows: usize,
    row_bytes: usize,
    a: &[u8],
    _ar: usize,
    n: usize,
    out: &mut [f32],
) {
    let nb = checked_blocks(Q6K_BYTES, Q8K_BYTES, w, rows, row_bytes, a, n, out);
    let (w, a, out) = (&w[..rows * row_bytes], &a[..nb * Q8K_BYTES], &mut out[..rows]);
    // SAFETY: the features are there (the caller's contract); the rows are whole and `a` has their Q8_K blocks.
    unsafe {
        match SET {
            ZMM => q6_k_rows::<false>(w, row_bytes, a, out),
            ZMM_VBMI => q6_k_rows::<true>(w, row_bytes, a, out),
            _ => q6_k_rows_avx2(w, row_bytes, a, out),
        }
    };
}

/// [`q6_k_row`] for each row of `w` (`row_bytes` apart), into `out`, in one loop as [`q4_k_rows`].
///
/// # Safety
/// As for [`q6_k_q8_k`] with `ZMM` (with `ZMM_VBMI` if `GFNI`); `w` holds whole rows, as many as `out` has room for.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn q6_k_rows<const GFNI: bool>(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
    in_streams(w.as_ptr(), out.len(), row_bytes, |r| {
        out[r] = q6_k_row::<GFNI>(&w[r * row_bytes..][..row_bytes], a);
    });
}

/// [`q6_k_row_avx2`] for each row of `w`, as [`q4_k_rows`].
///
/// # Safety
/// As for [`q6_k_q8_k`] without `ZMM`; `w` holds whole rows, as many as `out` has room for.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q6_k_rows_avx2(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
    in_streams(w.as_ptr(), out.len(), row_bytes, |r| {
        out[r] = q6_k_row_avx2(&w[r * row_bytes..][..row_bytes], a);
    });
}

/// One Q6_K row against one Q8_K token, as `x86`'s `q6_k_q8_k::<1, VEC_DOT>` sums. With `GFNI` (for `ZMM_VBMI`),
/// each group's two high bits move to bits 4 and 5 in one affine byte transform rather than a shift and a mask.
/// Either way the scaled sums add up in [`dpwssd`]. Intel Xeon (2 vCPUs, family 6 model 167), one thread, 1024 rows
/// of 2048 (in cache): 32.2–32.3 → 34.5–34.6 GB/s from the fused sums, 37.6–37.8 with the transform too, and
/// 39.9–40.1 with each block's `d` converted by F16C (`x86::h8`) rather than a dozen scalar instructions (which
/// took the 256-bit kernel, with AVX-VNNI, from 27.9 to 28.7–28.8).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn q6_k_row<const GFNI: bool>(w: &[u8], a: &[u8]) -> f32 {
    let (m4, m30) = (_mm512_set1_epi8(0xF), _mm512_set1_epi8(0x30));
    // The high 2 bits of group k of a half are bits 2k, 2k + 1 of its qh bytes, wanted at bits 4, 5: groups 0 and 1
    // (low and high 256 bits) shifted left by 4 and 2, groups 2 and 3 right by 0 and 2.
    let (left01, right23) = (halves16(4, 2), halves16(0, 2));
    // With GFNI, the same as bit matrices: bits 0 and 1 (group 0) or 2 and 3 (group 1) to bits 4 and 5 in the low
    // and high 256 bits; bits 4 and 5 (group 2) or 6 and 7 (group 3).
    let to45 = |a: i64, b: i64| _mm512_setr_epi64(a, a, a, a, b, b, b, b);
    let (to45_01, to45_23) = (to45(0x0102_0000, 0x0408_0000), to45(0x1020_0000, 0x4080_0000));
    // Group k of half hf holds sub-blocks 8hf + 2k (its first 16 weights) and 8hf + 2k + 1: in a register of
    // groups (k, k + 1), 128-bit lane i takes the scale of sub-block 8hf + 2k + i.
    let lanes = |first: i16| {
        _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_set_m128i(_mm_set1_epi16(first + 1), _mm_set1_epi16(first))),
            _mm256_set_m128i(_mm_set1_epi16(first + 3), _mm_set1_epi16(first + 2)),
            1,
        )
    };
    let scale_of = [[lanes(0), lanes(4)], [lanes(8), lanes(12)]];
    let mut acc = _mm256_setzero_ps();
    for (x, b) in w.chunks_exact(Q6K_BYTES).zip(a.chunks_exact(Q8K_BYTES)) {
        prefetch_ahead(x);
        let scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(x[192..208].as_ptr().cast()));
        let sc = _mm512_castsi256_si512(scales16);
        let mut s = _mm512_setzero_si512();
        for hf in 0..2 {
            let ql = _mm512_loadu_si512(x[64 * hf..][..64].as_ptr().cast());
            let qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(x[128 + 32 * hf..][..32].as_ptr().cast()));
            let (h01, h23) = if GFNI {
                (affine(qh, to45_01), affine(qh, to45_23))
            } else {
                let h01 = _mm512_and_si512(_mm512_sllv_epi16(qh, left01), m30);
                (h01, _mm512_and_si512(_mm512_srlv_epi16(qh, right23), m30))
            };
            let c01 = _mm512_or_si512(_mm512_and_si512(ql, m4), h01);
            let c23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), h23);
            let y01 = _mm512_loadu_si512(b[Q8K_QS + 128 * hf..][..64].as_ptr().cast());
            let y23 = _mm512_loadu_si512(b[Q8K_QS + 128 * hf + 64..][..64].as_ptr().cast());
            let s01 = _mm512_permutexvar_epi16(scale_of[hf][0], sc);
            let s23 = _mm512_permutexvar_epi16(scale_of[hf][1], sc);
            s = dpwssd(s, s01, _mm512_maddubs_epi16(c01, y01));
            s = dpwssd(s, s23, _mm512_maddubs_epi16(c23, y23));
        }
        let s8 = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
        // The codes' offset of 32, through the activation's sums of 16: Σ_j scale_j · bsum_j · 32.
        let bsums = _mm256_loadu_si256(b[Q8K_BSUMS..][..32].as_ptr().cast());
        let off = _mm256_slli_epi32(_mm256_madd_epi16(scales16, bsums), 5);
        // d·d_a in every lane: the block's f16 d through F16C, as exact as the scalar conversion.
        let yd = f32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
        let dy = _mm256_mul_ps(super::x86::h8(x, 208), _mm256_set1_ps(yd));
        acc = _mm256_fmadd_ps(dy, _mm256_cvtepi32_ps(_mm256_sub_epi32(s8, off)), acc);
    }
    hsum(acc)
}

/// [`q6_k_row`] in 256-bit registers, for the AVX2 sets: `x86`'s `q6_k_q8_k::<1, VEC_DOT>` with each half's bits
/// loaded once for its four groups of 32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q6_k_row_avx2(w: &[u8], a: &[u8]) -> f32 {
    let (m4, m30) = (_mm256_set1_epi8(0xF), _mm256_set1_epi8(0x30));
    let mut acc = _mm256_setzero_ps();
    for (x, b) in w.chunks_exact(Q6K_BYTES).zip(a.chunks_exact(Q8K_BYTES)) {
        prefetch_ahead(x);
        let scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(x[192..208].as_ptr().cast()));
        // Each 128-bit half of the scales in both halves, for `scale_pair`.
        let halves = [
            _mm256_permute2x128_si256(scales16, scales16, 0x00),
            _mm256_permute2x128_si256(scales16, scales16, 0x11),
        ];
        let mut s = _mm256_setzero_si256();
        for (hf, half) in halves.into_iter().enumerate() {
            let ql0 = _mm256_loadu_si256(x[64 * hf..][..32].as_ptr().cast());
            let ql1 = _mm256_loadu_si256(x[64 * hf + 32..][..32].as_ptr().cast());
            let qh = _mm256_loadu_si256(x[128 + 32 * hf..][..32].as_ptr().cast());
            // Group k: the low nibbles of ql0, ql1 (k = 0, 1), the high ones (k = 2, 3); bits 2k, 2k + 1 of qh to
            // bits 4, 5.
            let codes = [
                _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30)),
                _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30)),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                    _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30),
                ),
            ];
            for (k, c) in codes.into_iter().enumerate() {
                let y = _mm256_loadu_si256(b[Q8K_QS + 32 * (4 * hf + k)..][..32].as_ptr().cast());
                let p = _mm256_madd_epi16(super::x86::scale_pair(half, k), _mm256_maddubs_epi16(c, y));
                s = _mm256_add_epi32(s, p);
            }
        }
        let bsums = _mm256_loadu_si256(b[Q8K_BSUMS..][..32].as_ptr().cast());
        let off = _mm256_slli_epi32(_mm256_madd_epi16(scales16, bsums), 5);
        let yd = f32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
        let dy = _mm256_mul_ps(super::x86::h8(x, 208), _mm256_set1_ps(yd));
        acc = _mm256_fmadd_ps(dy, _mm256_cvtepi32_ps(_mm256_sub_epi32(s, off)), acc);
    }
    hsum(acc)
}

#[cfg(test)]
mod tests {
    use crate::kernels::{act, Isa};
    use crate::quant::{block::testing::normal, bytes_for, quantize, GgmlType};

    /// The one-token kernels equal the row kernels for one token bit for bit (for Q4_K the `REPACK` arithmetic of a
    /// multiple of 8 rows, for Q6_K `VEC_DOT`), on rows of 1 to 9 blocks with scales far apart.
    #[test]
    fn equal_the_row_kernels_bit_for_bit() {
        if !Isa::Avx2.is_available() {
            eprintln!("no AVX2 here: skipped");
            return;
        }
        let zmm = Isa::Avx512Vnni.is_available();
        if !zmm {
            eprintln!("no AVX-512 VNNI here: the 512-bit kernels are skipped");
        }
        let vbmi = super::super::x86_token_legacy::vbmi_available();
        if !vbmi {
            eprintln!("no AVX-512 VBMI and GFNI here: the 512-bit kernels with GFNI are skipped");
        }
        let vnni = Isa::Avx2Vnni.is_available();
        if !vnni {
            eprintln!("no AVX-VNNI here: the AVX2 sets' VNNI kernels are skipped");
        }
        let isa = Isa::Avx2;
        for (blocks, rows) in [(1, 8), (2, 16), (3, 24), (8, 8), (9, 16)] {
            let cols = 256 * blocks;
            let mut src = normal(rows * cols, 11 + blocks as u64);
            for (r, row) in src.chunks_exact_mut(cols).enumerate() {
                row.iter_mut().for_each(|v| *v *= [1.0, 1e-3, 40.0, 3.0, 1e4][r % 5]);
            }
            let mut x = normal(cols, 12);
            x[3] = -50.0;
            let mut a = Vec::new();
            act::quantize_activations(&crate::team::Pool, isa, GgmlType::Q8_K, &x, cols, &mut a);
            let act_row = act::row_layout(isa, GgmlType::Q8_K, cols).total;
            for (ty, rows) in [(GgmlType::Q4_K, rows), (GgmlType::Q6_K, rows), (GgmlType::Q6_K, rows - 3)] {
                let row_bytes = bytes_for(ty, cols).unwrap();
                let mut w = vec![0u8; rows * row_bytes];
                quantize(ty, &src[..rows * cols], cols, &mut w).unwrap();
                let k = super::super::x86::kernel(ty, rows, 1, false).unwrap();
                // The AVX-512 kernels (the one this CPU gets, and each with and without GFNI), and the AVX2 sets'
                // one-token kernels (this file's for Q4_K).
                let k256 = super::super::x86::rows8_kernel(ty, rows, 1, false).expect("a one-token kernel").run;
                let k512 = zmm.then(|| super::super::x86_512::rows8_kernel(ty, rows, 1).expect("a kernel").run);
                let kvnni = vnni.then(|| super::super::x86::rows8_kernel(ty, rows, 1, true).expect("a kernel").run);
                let set = |available: bool, gfni: bool| -> Option<crate::kernels::Rows8Kernel> {
                    use super::{q4_k_q8_k, q6_k_q8_k, ZMM, ZMM_VBMI};
                    let k: crate::kernels::Rows8Kernel = match (ty, gfni) {
                        (GgmlType::Q4_K, false) => q4_k_q8_k::<ZMM>,
                        (GgmlType::Q4_K, true) => q4_k_q8_k::<ZMM_VBMI>,
                        (_, false) => q6_k_q8_k::<ZMM>,
                        (_, true) => q6_k_q8_k::<ZMM_VBMI>,
                    };
                    available.then_some(k)
                };
                let sets = [
                    ("avx2", Some(k256)),
                    ("avx2+vnni", kvnni),
                    ("avx512", k512),
                    ("avx512 without gfni", set(zmm, false)),
                    ("avx512 with gfni", set(vbmi, true)),
                ];
                for (set, k1) in sets {
                    let Some(k1) = k1 else { continue };
                    let mut got = vec![0f32; rows];
                    // SAFETY: the set is available; `rows` whole rows, one activation row of `act_row` bytes.
                    unsafe { k1(&w, rows, row_bytes, &a, act_row, 1, &mut got) };
                    for r in 0..rows {
                        let mut want = [0f32];
                        // SAFETY: one whole row and one activation row.
                        unsafe { k(&w[r * row_bytes..(r + 1) * row_bytes], &a, act_row, &mut want) };
                        let (g, e) = (got[r], want[0]);
                        assert_eq!(g.to_bits(), e.to_bits(), "{set} {ty} {cols} cols, row {r}: {g} vs {e}");
                    }
                }
            }
        }
    }

    #[test]
    fn weights_hint_follows_the_setting_and_else_the_vendor() {
        use super::weights_into_l2;
        assert_eq!(weights_into_l2(None, true), Ok(true));
        assert_eq!(weights_into_l2(None, false), Ok(false));
        assert_eq!(weights_into_l2(Some("l1"), true), Ok(false));
        assert_eq!(weights_into_l2(Some("l2"), false), Ok(true));
        let err = weights_into_l2(Some("L3"), true).unwrap_err();
        assert!(err.contains("POCKETLM_PREFETCH=L3"), "{err}");
    }

    /// Zen 3 (Milan, Vermeer, Rembrandt, Cezanne) asks 2 KB ahead; Zen 4 (Genoa, Raphael, Phoenix, Bergamo), Zen 5,
    /// Zen 2 and Intel CPUs 8 KB; and this CPU as `active` chose.
    #[test]
    fn zen3_asks_nearer() {
        use super::{ahead, l1_ahead, PREFETCH_AHEAD, ZEN3_AHEAD};
        for model in [0x01, 0x21, 0x44, 0x50] {
            assert_eq!(l1_ahead(Some((0x19, model))), ZEN3_AHEAD, "{model:#x}");
        }
        for amd in [Some((0x19, 0x11)), Some((0x19, 0x61)), Some((0x19, 0x74)), Some((0x19, 0xA0)), Some((0x1A, 0x02))]
            .into_iter()
            .chain([Some((0x17, 0x31)), None])
        {
            assert_eq!(l1_ahead(amd), PREFETCH_AHEAD, "{amd:x?}");
        }
        crate::kernels::active();
        assert_eq!(ahead(), l1_ahead(crate::kernels::x86_token_legacy::amd_family_model()));
    }
}
