//! k-quants against Q8_K eight weight rows at a time, for prompts: Q4_K in groups of 4 tokens, the product
//! llama.cpp computes with its rows interleaved by 8 (`ggml_gemm_q4_K_8x8_q8_K`), and Q6_K for 8 tokens or more,
//! which llama.cpp multiplies with its tiled k-quant matmul; with the same sums, faster.
//!
//! The row kernels of `x86` dot one row with a few tokens, and every 64 weights end in a horizontal sum per token.
//! Here the 8 rows lie side by side in the lanes of a register: a `vpdpbusd` (or `maddubs` + `madd` without VNNI) of
//! 8 rows × 4 codes against 4 bytes of one token, broadcast, adds 4 products to each row's lane, so the sums of a
//! sub-block build up in place, with no horizontal sums at all. llama.cpp interleaves the rows once, when it loads
//! the file; we leave the mapped file as it is and interleave 8 rows at a time into a small per-thread buffer
//! ([`pack`]), used for every token of a chunk, so its cost is shared by dozens of tokens. A short prompt's few
//! tokens share it little, so the packing is vector code throughout and asks for the next rows as it goes.
//!
//! The integer sums are exact in any order, and the float steps are those of the row kernel's arithmetic for the
//! same product, in the same order: for Q4_K (`REPACK`, a group of 4 tokens) a multiply-add per 64 weights by
//! `d·d_a`, then per block the mins' four multiply-adds by `dmin·d_a`, and the difference at the end; for Q6_K
//! (`TILED`) per block the exact sum times `d`, multiply-added by `d_a`. The results are that kernel's to the bit (a
//! test holds them so), and so llama.cpp's.

// The loops index several per-token arrays (accumulators, scales, outputs) with the same `t`.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;
use std::cell::RefCell;

use super::scalar::{Q8K_BSUMS, Q8K_QS};
use super::x86_token::scales_mins;
use super::ROWS8_GROUP;

/// Bytes of a Q4_K block: f16 d, f16 dmin, 12 bytes of scales and mins, 128 bytes of nibbles.
pub(super) const QK_BYTES: usize = 144;
/// Bytes of a Q8_K block: f32 d, 256 i8 codes, 16 i16 sums of 16 codes.
pub(super) const Q8K_BYTES: usize = 292;

/// One block column of `R` rows (8, or 16 for the AVX-512 kernels), interleaved: every field holds the rows in the
/// lanes of a register.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub(super) struct Packed<const R: usize> {
    /// `codes[s][e]`: codes 4e..4e+4 of sub-block s (of 32 weights), 4 bytes per row, one byte per code.
    pub codes: [[[u32; R]; 8]; 8],
    /// `scales[s]`: sub-block s's 6-bit scale.
    pub scales: [[i32; R]; 8],
    /// `min_pairs[k]`: the 6-bit mins of sub-blocks 2k and 2k + 1, as two i16 (for `madd`).
    pub min_pairs: [[i32; R]; 4],
    pub d: [f32; R],
    pub dmin: [f32; R],
}

/// A block column of interleaved rows (`ROWS` of them), and plain data: every byte pattern is a value, the size is
/// a multiple of 64 and the alignment at most 64, so a buffer of 64-byte chunks can hold them.
///
/// # Safety
/// Implementors must be all of that.
pub(super) unsafe trait PackedBlock: Copy {
    const ROWS: usize;
}
// SAFETY: integers and floats in arrays, `repr(C, align(64))` (so the size is a multiple of 64).
unsafe impl<const R: usize> PackedBlock for Packed<R> {
    const ROWS: usize = R;
}
// SAFETY: as above.
unsafe impl<const R: usize> PackedBlock for Packed6<R> {
    const ROWS: usize = R;
}

#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Chunk([u8; 64]);

thread_local! {
    /// The interleaved rows, kept per thread between calls (8 Q4_K rows of 8192 weights take 80 KiB).
    static PACKED: RefCell<Vec<Chunk>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's buffer, as `n` values of `T` (whatever bytes they hold: `f` must write before it reads).
pub(super) fn with_buffer<T: PackedBlock, O>(n: usize, f: impl FnOnce(&mut [T]) -> O) -> O {
    const { assert!(std::mem::size_of::<T>().is_multiple_of(64) && std::mem::align_of::<T>() <= 64) };
    let chunks = n * (std::mem::size_of::<T>() / 64);
    PACKED.with_borrow_mut(|buf| {
        if buf.len() < chunks {
            buf.resize(chunks, Chunk([0; 64]));
        }
        // SAFETY: the chunks are 64-aligned and hold at least n · size_of::<T>() initialized bytes; any bytes are a
        // `T` (`PackedBlock`); the borrow of `buf` outlives the slice.
        let t = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<T>(), n) };
        f(t)
    })
}

/// The `rows` rows of `w` (a multiple of 8, `row_bytes` apart, whole Q4_K rows) against the `n` activation rows of
/// `a` (`act_row` bytes apart; `n` a multiple of [`ROWS8_GROUP`], 4: the row kernel's `REPACK` gemm groups):
/// `out[t·rows + r]`, in llama.cpp's gemm arithmetic. Each 8 rows are interleaved once for all the tokens.
///
/// # Safety
/// AVX2, FMA and F16C must be available, and AVX-VNNI too when `VNNI`.
pub unsafe fn q4_k_q8_k<const VNNI: bool>(
    w: &[u8],
    rows: usize,
    row_bytes: usize,
    a: &[u8],
    act_row: usize,
    n: usize,
    out: &mut [f32],
) {
    let kernel = Interleaved { block_bytes: QK_BYTES, pack: pack::<8>, run: gemm::<VNNI> };
    kernel.product(w, rows, row_bytes, a, act_row, n, out);
}

/// A product through interleaved rows: `P::ROWS` rows at a time are packed (`pack`) into values of `P`, one per
/// block column, then each group of [`ROWS8_GROUP`] tokens runs against them (`run`, writing `out[t·stride + r]`).
pub(super) struct Interleaved<P> {
    /// Bytes of a weight block.
    pub block_bytes: usize,
    pub pack: unsafe fn(w: &[u8], row_bytes: usize, packed: &mut [P]),
    pub run: unsafe fn(packed: &[P], a: *const u8, act_row: usize, out: &mut [f32], stride: usize),
}

impl<P: PackedBlock> Interleaved<P> {
    /// The product of a [`Rows8Kernel`](super::Rows8Kernel), with `rows` a multiple of `P::ROWS`.
    ///
    /// # Safety
    /// The CPU must have what `pack` and `run` were compiled for.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn product(&self, w: &[u8], rows: usize, row_bytes: usize, a: &[u8], act_row: usize, n: usize, out: &mut [f32]) {
        let nb = row_bytes / self.block_bytes;
        let r_step = P::ROWS;
        assert!(row_bytes == nb * self.block_bytes && rows.is_multiple_of(r_step) && w.len() >= rows * row_bytes);
        assert!(n.is_multiple_of(ROWS8_GROUP) && out.len() >= rows * n, "output too short");
        assert!(act_row >= nb * Q8K_BYTES && a.len() >= n * act_row, "activation rows too short");
        with_buffer::<P, _>(nb, |packed| {
            for r0 in (0..rows).step_by(r_step) {
                // SAFETY: the features are there (the caller's contract); `pack` reads P::ROWS whole rows from r0 and
                // `run` the `ROWS8_GROUP` activation rows from g and 8 or 16 outputs per token, all checked above.
                unsafe {
                    (self.pack)(&w[r0 * row_bytes..], row_bytes, packed);
                    for g in (0..n).step_by(ROWS8_GROUP) {
                        (self.run)(packed, a[g * act_row..].as_ptr(), act_row, &mut out[g * rows + r0..], rows);
                    }
                }
            }
        })
    }
}

/// Asks for the `len` bytes at `at` in each of the `R` rows after the `R` rows of `w` (`row_bytes` apart): the
/// block column that the next call of a pack function reads where this one reads the bytes at `at` (a hint: it never
/// faults, so the addresses may lie past the weights). A short prompt's products read their rows from memory with
/// little arithmetic per byte, and the hardware prefetchers followed the 8 or 16 rows read side by side poorly: the
/// 1B-shaped Q4_K_M file, 2 threads, pp4 51 → 61 tok/s and pp16 137 → 163 (two runs each way in turn), pp64 as fast.
#[inline(always)]
fn ask_for_next_rows<const R: usize>(w: &[u8], row_bytes: usize, at: usize, len: usize) {
    let next = w.as_ptr().wrapping_add(R * row_bytes + at);
    for r in 0..R {
        super::x86_token::prefetch_weights(next.wrapping_add(r * row_bytes), len);
    }
}

/// Interleaves `R` rows of Q4_K blocks into `packed` (one entry per block column), 8 at a time. The scales, mins and
/// `d`s too go through vector registers, a row to a register ([`scales_mins`]) and then transposed: unpacked one by
/// one, with `d` converted without F16C, they took most of a product of a few tokens, where a packed row serves
/// only those (Intel Xeon, one thread, 2048 rows of 2048 in cache: 4 tokens 35 → 65 GMAC/s, 16 tokens 82 → 112,
/// 512 as fast).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn pack<const R: usize>(w: &[u8], row_bytes: usize, packed: &mut [Packed<R>]) {
    let low4 = _mm256_set1_epi8(0xF);
    for (ib, p) in packed.iter_mut().enumerate() {
        ask_for_next_rows::<R>(w, row_bytes, ib * QK_BYTES, QK_BYTES);
        for h in 0..R / 8 {
            let blocks: [&[u8]; 8] =
                std::array::from_fn(|r| &w[(8 * h + r) * row_bytes + ib * QK_BYTES..][..QK_BYTES]);
            for j in 0..4 {
                // 32 bytes of nibbles per row: sub-block 2j in the low nibbles, 2j + 1 in the high ones. (A loop,
                // not `from_fn`: a closure would not inherit this function's target features and would not inline.)
                let mut rows = [_mm256_setzero_si256(); 8];
                for r in 0..8 {
                    rows[r] = _mm256_loadu_si256(blocks[r][16 + 32 * j..][..32].as_ptr().cast());
                }
                let t = transpose8_u32(rows);
                for e in 0..8 {
                    let lo = _mm256_and_si256(t[e], low4);
                    let hi = _mm256_and_si256(_mm256_srli_epi16(t[e], 4), low4);
                    _mm256_store_si256(p.codes[2 * j][e][8 * h..].as_mut_ptr().cast(), lo);
                    _mm256_store_si256(p.codes[2 * j + 1][e][8 * h..].as_mut_ptr().cast(), hi);
                }
            }
            // Each row's scales as i32 and its mins as pairs of i16 (one row to a register), then transposed to
            // one scale or pair of every row to a register; each row's [d, dmin] as f16 bits.
            let (mut scales, mut mins, mut dm) = ([_mm256_setzero_si256(); 8], [_mm256_setzero_si256(); 8], [0i32; 8]);
            for r in 0..8 {
                let head = _mm_loadu_si128(blocks[r].as_ptr().cast());
                let sm = scales_mins(head);
                scales[r] = _mm256_cvtepu8_epi32(sm);
                mins[r] = _mm256_zextsi128_si256(_mm_cvtepu8_epi16(_mm_srli_si128(sm, 8)));
                dm[r] = _mm_cvtsi128_si32(head);
            }
            for (s, v) in transpose8_u32(scales).into_iter().enumerate() {
                _mm256_storeu_si256(p.scales[s][8 * h..].as_mut_ptr().cast(), v);
            }
            for (k, v) in transpose8_u32(mins).into_iter().take(4).enumerate() {
                _mm256_storeu_si256(p.min_pairs[k][8 * h..].as_mut_ptr().cast(), v);
            }
            // The eight d (low halves) and dmin (high halves) side by side, then as f32.
            let dm = _mm256_loadu_si256(dm.as_ptr().cast());
            let (d, dmin) = (_mm256_and_si256(dm, _mm256_set1_epi32(0xFFFF)), _mm256_srli_epi32(dm, 16));
            let halves = _mm256_packus_epi32(d, dmin);
            let halves = _mm256_permute4x64_epi64(halves, 0b11_01_10_00);
            _mm256_storeu_ps(p.d[8 * h..].as_mut_ptr(), _mm256_cvtph_ps(_mm256_castsi256_si128(halves)));
            _mm256_storeu_ps(p.dmin[8 * h..].as_mut_ptr(), _mm256_cvtph_ps(_mm256_extracti128_si256(halves, 1)));
        }
    }
}

/// The 8×8 transpose of 32-bit elements: lane r of result e is element e of `v[r]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn transpose8_u32(v: [__m256i; 8]) -> [__m256i; 8] {
    // Rows (0,1), (2,3), (4,5), (6,7) pairwise: [r0e0 r1e0 r0e1 r1e1 | r0e4 r1e4 r0e5 r1e5] and the like.
    let p01l = _mm256_unpacklo_epi32(v[0], v[1]);
    let p01h = _mm256_unpackhi_epi32(v[0], v[1]);
    let p23l = _mm256_unpacklo_epi32(v[2], v[3]);
    let p23h = _mm256_unpackhi_epi32(v[2], v[3]);
    let p45l = _mm256_unpacklo_epi32(v[4], v[5]);
    let p45h = _mm256_unpackhi_epi32(v[4], v[5]);
    let p67l = _mm256_unpacklo_epi32(v[6], v[7]);
    let p67h = _mm256_unpackhi_epi32(v[6], v[7]);
    // Rows 0..4 of elements (0 | 4), (1 | 5), (2 | 6), (3 | 7), then rows 4..8 of the same.
    let q0 = _mm256_unpacklo_epi64(p01l, p23l);
    let q1 = _mm256_unpackhi_epi64(p01l, p23l);
    let q2 = _mm256_unpacklo_epi64(p01h, p23h);
    let q3 = _mm256_unpackhi_epi64(p01h, p23h);
    let q4 = _mm256_unpacklo_epi64(p45l, p67l);
    let q5 = _mm256_unpackhi_epi64(p45l, p67l);
    let q6 = _mm256_unpacklo_epi64(p45h, p67h);
    let q7 = _mm256_unpackhi_epi64(p45h, p67h);
    [
        _mm256_permute2x128_si256(q0, q4, 0x20),
        _mm256_permute2x128_si256(q1, q5, 0x20),
        _mm256_permute2x128_si256(q2, q6, 0x20),
        _mm256_permute2x128_si256(q3, q7, 0x20),
        _mm256_permute2x128_si256(q0, q4, 0x31),
        _mm256_permute2x128_si256(q1, q5, 0x31),
        _mm256_permute2x128_si256(q2, q6, 0x31),
        _mm256_permute2x128_si256(q3, q7, 0x31),
    ]
}

/// `acc + Σ` of each 4 products of unsigned bytes of `u` and signed bytes of `s`, per i32 lane: `vpdpbusd` with
/// VNNI, else `maddubs` + `madd` (exact here: a pair of products is at most 2·63·128).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot4<const VNNI: bool>(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
    if VNNI {
        super::x86::dpbusd_acc(acc, u, s)
    } else {
        _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)))
    }
}

/// Tokens per pass over the packed rows: the group.
const TOKENS: usize = ROWS8_GROUP;

/// [`TOKENS`] tokens (activation rows `act_row` apart from `a`) against the packed rows: `out[t·stride + r]`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn gemm<const VNNI: bool>(packed: &[Packed<8>], a: *const u8, act_row: usize, out: &mut [f32], stride: usize) {
    const T: usize = TOKENS;
    let mut acc = [_mm256_setzero_ps(); T];
    let mut acc_m = [_mm256_setzero_ps(); T];
    for (ib, p) in packed.iter().enumerate() {
        // SAFETY (for the reads through `y`): the caller checked that both rows hold the row's Q8_K blocks.
        let y: [*const u8; T] = std::array::from_fn(|t| a.add(t * act_row + ib * Q8K_BYTES));
        let yd: [__m256; T] = std::array::from_fn(|t| _mm256_set1_ps(y[t].cast::<f32>().read_unaligned()));
        let d = _mm256_load_ps(p.d.as_ptr());
        for j in 0..4 {
            let mut v0 = [_mm256_setzero_si256(); T];
            let mut v1 = [_mm256_setzero_si256(); T];
            for e in 0..8 {
                let w0 = _mm256_load_si256(p.codes[2 * j][e].as_ptr().cast());
                let w1 = _mm256_load_si256(p.codes[2 * j + 1][e].as_ptr().cast());
                for t in 0..T {
                    let q = y[t].add(Q8K_QS + 64 * j + 4 * e);
                    v0[t] = dot4::<VNNI>(v0[t], w0, _mm256_set1_epi32(q.cast::<i32>().read_unaligned()));
                    v1[t] = dot4::<VNNI>(v1[t], w1, _mm256_set1_epi32(q.add(32).cast::<i32>().read_unaligned()));
                }
            }
            let s0 = _mm256_load_si256(p.scales[2 * j].as_ptr().cast());
            let s1 = _mm256_load_si256(p.scales[2 * j + 1].as_ptr().cast());
            for t in 0..T {
                let p64 = _mm256_add_epi32(_mm256_mullo_epi32(v0[t], s0), _mm256_mullo_epi32(v1[t], s1));
                // ggml's gemm: one multiply-add per 64 weights, by d · d_a.
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p64), _mm256_mul_ps(d, yd[t]), acc[t]);
            }
        }
        let dmin = _mm256_load_ps(p.dmin.as_ptr());
        for t in 0..T {
            // The sums of the 8 sub-blocks of 32 (pairs of bsums of 16), as i16.
            let bs = _mm256_loadu_si256(y[t].add(Q8K_BSUMS).cast());
            let b = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
            let b = _mm256_broadcastsi128_si256(b);
            let dm = _mm256_mul_ps(dmin, yd[t]);
            let pairs = [
                _mm256_shuffle_epi32(b, 0x00),
                _mm256_shuffle_epi32(b, 0x55),
                _mm256_shuffle_epi32(b, 0xAA),
                _mm256_shuffle_epi32(b, 0xFF),
            ];
            for (k, pair) in pairs.into_iter().enumerate() {
                let mins = _mm256_load_si256(p.min_pairs[k].as_ptr().cast());
                acc_m[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(mins, pair)), dm, acc_m[t]);
            }
        }
    }
    for t in 0..T {
        _mm256_storeu_ps(out[t * stride..][..8].as_mut_ptr(), _mm256_sub_ps(acc[t], acc_m[t]));
    }
}

// ---- Q6_K, in llama.cpp's tiled arithmetic ------------------------------------------------------------------

/// Bytes of a Q6_K block: ql[128], qh[64], i8 scales[16], f16 d.
pub(super) const Q6K_BYTES: usize = 210;

/// One Q6_K block column of `R` rows, interleaved as [`Packed`] is.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub(super) struct Packed6<const R: usize> {
    /// `codes[g][e]`: the 6-bit codes (0..64) 4e..4e+4 of weights 32g..32g+32, one byte per code; elements 0..4
    /// are sub-block 2g (of 16 weights), 4..8 sub-block 2g + 1.
    pub codes: [[[u32; R]; 8]; 8],
    /// `scales[s]`: sub-block s's i8 scale.
    pub scales: [[i32; R]; 16],
    /// `scale_pairs[k]`: the scales of sub-blocks 2k and 2k + 1 as two i16 (for `madd` with the bsums).
    pub scale_pairs: [[i32; R]; 8],
    pub d: [f32; R],
}

/// [`q4_k_q8_k`] for Q6_K rows, in the row kernel's `TILED` arithmetic (llama.cpp's for 8 tokens or more): per
/// block, the exact integer sum times `d`, multiply-added by the token's `d`.
///
/// # Safety
/// As for [`q4_k_q8_k`].
pub unsafe fn q6_k_q8_k<const VNNI: bool>(
    w: &[u8],
    rows: usize,
    row_bytes: usize,
    a: &[u8],
    act_row: usize,
    n: usize,
    out: &mut [f32],
) {
    let kernel = Interleaved { block_bytes: Q6K_BYTES, pack: pack6::<8>, run: tiled6::<VNNI> };
    kernel.product(w, rows, row_bytes, a, act_row, n, out);
}

/// Interleaves `R` rows of Q6_K blocks into `packed`, 8 at a time, the scales and `d`s through vector registers as
/// in [`pack`] (8 tokens 53 → 64 GMAC/s, 16 tokens 74 → 84).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn pack6<const R: usize>(w: &[u8], row_bytes: usize, packed: &mut [Packed6<R>]) {
    let (low4, low2) = (_mm256_set1_epi8(0xF), _mm256_set1_epi8(3));
    for (ib, p) in packed.iter_mut().enumerate() {
        ask_for_next_rows::<R>(w, row_bytes, ib * Q6K_BYTES, Q6K_BYTES);
        for h in 0..R / 8 {
            let blocks: [&[u8]; 8] =
                std::array::from_fn(|r| &w[(8 * h + r) * row_bytes + ib * Q6K_BYTES..][..Q6K_BYTES]);
            for g in 0..8 {
                // Weights 32g..32g+32 of half hf = g / 4, group k = g % 4: the low (k < 2) or high nibbles of
                // ql[64hf + 32(k % 2)..], and bits 2k, 2k + 1 of qh[32hf..] as bits 4 and 5.
                let (hf, k) = (g / 4, g % 4);
                let mut rows = [_mm256_setzero_si256(); 8];
                for r in 0..8 {
                    let b = blocks[r];
                    let ql = _mm256_loadu_si256(b[64 * hf + 32 * (k % 2)..][..32].as_ptr().cast());
                    let qh = _mm256_loadu_si256(b[128 + 32 * hf..][..32].as_ptr().cast());
                    let low = _mm256_and_si256(_mm256_srl_epi16(ql, _mm_cvtsi32_si128(4 * (k / 2) as i32)), low4);
                    let high = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * k as i32)), low2);
                    rows[r] = _mm256_or_si256(low, _mm256_slli_epi16(high, 4));
                }
                let t = transpose8_u32(rows);
                for e in 0..8 {
                    _mm256_store_si256(p.codes[g][e][8 * h..].as_mut_ptr().cast(), t[e]);
                }
            }
            // Each row's 16 scales as i32 (two registers) and as pairs of i16 (one), then transposed to one scale or
            // pair of every row to a register; each row's d as f16 bits.
            let zero = _mm256_setzero_si256();
            let (mut low, mut high, mut pairs) = ([zero; 8], [zero; 8], [zero; 8]);
            let mut d = [0u16; 8];
            for r in 0..8 {
                let sc = _mm_loadu_si128(blocks[r][192..208].as_ptr().cast());
                (low[r], high[r]) = (_mm256_cvtepi8_epi32(sc), _mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8)));
                pairs[r] = _mm256_cvtepi8_epi16(sc);
                d[r] = u16::from_le_bytes([blocks[r][208], blocks[r][209]]);
            }
            let (low, high) = (transpose8_u32(low), transpose8_u32(high));
            for (s, v) in low.into_iter().chain(high).enumerate() {
                _mm256_storeu_si256(p.scales[s][8 * h..].as_mut_ptr().cast(), v);
            }
            for (k, v) in transpose8_u32(pairs).into_iter().enumerate() {
                _mm256_storeu_si256(p.scale_pairs[k][8 * h..].as_mut_ptr().cast(), v);
            }
            _mm256_storeu_ps(p.d[8 * h..].as_mut_ptr(), _mm256_cvtph_ps(_mm_loadu_si128(d.as_ptr().cast())));
        }
    }
}

/// [`TOKENS`] tokens against the packed Q6_K rows: `out[t·stride + r]`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tiled6<const VNNI: bool>(packed: &[Packed6<8>], a: *const u8, act_row: usize, out: &mut [f32], stride: usize) {
    const T: usize = TOKENS;
    let mut acc = [_mm256_setzero_ps(); T];
    for (ib, p) in packed.iter().enumerate() {
        // SAFETY (for the reads through `y`): the caller checked that the rows hold the row's Q8_K blocks.
        let y: [*const u8; T] = std::array::from_fn(|t| a.add(t * act_row + ib * Q8K_BYTES));
        let mut isum = [_mm256_setzero_si256(); T];
        for g in 0..8 {
            for half in 0..2 {
                let mut v = [_mm256_setzero_si256(); T];
                for e in 4 * half..4 * half + 4 {
                    let wv = _mm256_load_si256(p.codes[g][e].as_ptr().cast());
                    for t in 0..T {
                        let q = y[t].add(Q8K_QS + 32 * g + 4 * e).cast::<i32>().read_unaligned();
                        v[t] = dot4::<VNNI>(v[t], wv, _mm256_set1_epi32(q));
                    }
                }
                let sc = _mm256_load_si256(p.scales[2 * g + half].as_ptr().cast());
                for t in 0..T {
                    isum[t] = _mm256_add_epi32(isum[t], _mm256_mullo_epi32(v[t], sc));
                }
            }
        }
        let d = _mm256_load_ps(p.d.as_ptr());
        for t in 0..T {
            // The codes' offset of 32: Σ_s scale_s · bsum_s, pairs of sub-blocks at a time, times 32.
            let mut off = _mm256_setzero_si256();
            for k in 0..8 {
                let pair = _mm256_set1_epi32(y[t].add(Q8K_BSUMS + 4 * k).cast::<i32>().read_unaligned());
                let scales = _mm256_load_si256(p.scale_pairs[k].as_ptr().cast());
                off = _mm256_add_epi32(off, _mm256_madd_epi16(scales, pair));
            }
            let s = _mm256_sub_epi32(isum[t], _mm256_slli_epi32(off, 5));
            let yd = _mm256_set1_ps(y[t].cast::<f32>().read_unaligned());
            // The block's sum times the weight's d, then multiply-added by the token's.
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s), d), yd, acc[t]);
        }
    }
    for t in 0..T {
        _mm256_storeu_ps(out[t * stride..][..8].as_mut_ptr(), acc[t]);
    }
}

#[cfg(test)]
mod tests {
    use crate::kernels::{act, Isa};
    use crate::quant::{block::testing::normal, bytes_for, quantize, GgmlType};

    /// The 8-row kernels equal the row kernels' arithmetic for the same product (`x86::REPACK` groups of 4 tokens
    /// for Q4_K, `x86::TILED` for Q6_K), bit for bit, on weights with rows of very different scales, with and
    /// without VNNI.
    #[test]
    fn equal_the_row_kernels_arithmetic_bit_for_bit() {
        let (rows, cols, n) = (16, 1024, 8);
        let mut src = normal(rows * cols, 5);
        for (r, row) in src.chunks_exact_mut(cols).enumerate() {
            row.iter_mut().for_each(|v| *v *= [1.0, 1e-3, 40.0][r % 3]);
        }
        let mut x = normal(n * cols, 6);
        x[3] = 25.0;
        for ty in [GgmlType::Q4_K, GgmlType::Q6_K] {
            let row_bytes = bytes_for(ty, cols).unwrap();
            let mut w = vec![0u8; rows * row_bytes];
            quantize(ty, &src, cols, &mut w).unwrap();
            for isa in [Isa::Avx2, Isa::Avx2Vnni].into_iter().filter(|i| i.is_available()) {
                let vnni = isa == Isa::Avx2Vnni;
                let mut a = Vec::new();
                act::quantize_activations(&crate::team::Pool, isa, GgmlType::Q8_K, &x, cols, &mut a);
                let act_row = act::row_layout(isa, GgmlType::Q8_K, cols).total;
                let k8 = super::super::x86::rows8_kernel(ty, rows, n, vnni).expect("an 8-row kernel");
                let k = super::super::x86::kernel(ty, rows, n, vnni).unwrap();
                let mut got = vec![0f32; rows * n];
                // SAFETY: the set is available; `rows` whole rows, `n` activation rows of `act_row` bytes.
                unsafe { (k8.run)(&w, rows, row_bytes, &a, act_row, n, &mut got) };
                for r in 0..rows {
                    for t0 in (0..n).step_by(4) {
                        let mut want = [0f32; 4];
                        let wr = &w[r * row_bytes..(r + 1) * row_bytes];
                        // SAFETY: as above, one whole row and 4 activation rows.
                        unsafe { k(wr, &a[t0 * act_row..], act_row, &mut want) };
                        for t in 0..4 {
                            let v = got[(t0 + t) * rows + r];
                            let what = format!("{ty} {isa:?} row {r} token {}", t0 + t);
                            assert_eq!(v.to_bits(), want[t].to_bits(), "{what}: {v} vs {}", want[t]);
                        }
                    }
                }
            }
        }
    }
}
