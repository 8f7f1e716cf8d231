//! AVX2 + FMA kernels for x86-64: the algorithms of ggml's `ggml-cpu/arch/x86/quants.c` (`ggml_vec_dot_*` under
//! `__AVX2__`), written for a tile of up to [`TOKEN_TILE`] tokens so that a weight block is loaded and unpacked once
//! for all of them.
//!
//! The integer core is `maddubs` (u8 × i8 → pairs summed to i16) then `madd` (i16 × i16 → pairs summed to i32):
//! - weights with unsigned codes (Q4_1, Q5_1, the k-quants) go in as the u8 operand directly; an offset such as
//!   Q6_K's −32 or Q3_K's −4 is taken out afterwards through the activation's block sums (`bsums`);
//! - signed codes (Q4_0, Q5_0, Q8_0) use ggml's sign trick: |w| as u8 times sign(w)·a as i8.
//!
//! No sum can saturate: the largest `maddubs` pair is 2·63·127 = 16002 (Q6_K) or 2·128·127 = 32512 (Q8_0 via the
//! sign trick; Q8_K activations never reach −128), below 32767.
//!
//! Every function here is `unsafe fn` with `#[target_feature(enable = "avx2,fma,f16c")]`: calling one is sound
//! only on a CPU with those features, which [`kernel`] guarantees by handing them out only when [`available`] says
//! so. Inside, weight loads read 16 or 32 bytes from a slice cut to at least that length; activation loads go
//! through [`Tile`], whose constructor checks once that every offset the kernel's layout arithmetic produces lies
//! inside the tile (the row layout of `act::row_layout`, which `matmul` sized `a` by).

// The tile loops index several per-token arrays (accumulators, outputs, activation rows) with the same `t`.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::scalar::{Q8K_BSUMS, Q8K_QS};
use super::{RowKernel, TOKEN_TILE};
use crate::quant::GgmlType;

/// AVX2, FMA and F16C, detected at run time (std caches the CPUID result).
pub fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")
}

/// AVX-VNNI (`vpdpbusd` on 256-bit registers), detected at run time.
pub fn vnni_available() -> bool {
    is_x86_feature_detected!("avxvnni")
}

/// The CPU's vendor string from CPUID leaf 0 (`GenuineIntel`, `AuthenticAMD`, …), for the few choices that depend
/// on it.
pub(super) fn cpu_vendor() -> [u8; 12] {
    // SAFETY: CPUID is there on every x86-64 CPU, and leaf 0 always exists. (Safe to call from Rust 1.87 on.)
    #[allow(unused_unsafe)]
    let id = unsafe { __cpuid(0) };
    let mut v = [0u8; 12];
    for (i, r) in [id.ebx, id.edx, id.ecx].into_iter().enumerate() {
        v[4 * i..4 * i + 4].copy_from_slice(&r.to_le_bytes());
    }
    v
}

/// Turns a body generic over the token count into a [`RowKernel`]: tiles of `$max` tokens (at most
/// [`TOKEN_TILE`]), then the remainder. The legacy types take 8 tokens at once, which shares each block's unpacking
/// among more tokens; the k-quants keep more accumulators per token and would spill registers beyond 4.
macro_rules! tiled {
    ($body:ident, $max:expr $(, $mode:expr)?) => {{
        // SAFETY (for callers): `RowKernel`'s contract — AVX2/FMA/F16C (and AVX-VNNI for the `_vnni` bodies)
        // available, `w` one whole row, `a` holding `out.len()` activation rows of `ar` bytes.
        unsafe fn k(w: &[u8], a: &[u8], ar: usize, out: &mut [f32]) {
            const { assert!($max <= TOKEN_TILE) };
            for (i, o) in out.chunks_mut($max).enumerate() {
                let a = &a[i * $max * ar..];
                match o.len() {
                    1 => $body::<1 $(, $mode)?>(w, a, ar, o),
                    2 => $body::<2 $(, $mode)?>(w, a, ar, o),
                    3 => $body::<3 $(, $mode)?>(w, a, ar, o),
                    4 => $body::<4 $(, $mode)?>(w, a, ar, o),
                    5 if $max > 4 => $body::<5 $(, $mode)?>(w, a, ar, o),
                    6 if $max > 4 => $body::<6 $(, $mode)?>(w, a, ar, o),
                    7 if $max > 4 => $body::<7 $(, $mode)?>(w, a, ar, o),
                    8 if $max > 4 => $body::<8 $(, $mode)?>(w, a, ar, o),
                    n => unreachable!("tile of {n} tokens"),
                }
            }
        }
        k as RowKernel
    }};
}

/// Whose sums a k-quant kernel reproduces. llama.cpp's CPU backend (x86-64) multiplies a k-quant matrix three
/// ways, which round differently; ours picks the same way by shape, so that a product is llama.cpp's to the bit
/// (see `model::ops` for why that matters):
/// - `VEC_DOT`: `ggml_vec_dot_*_q8_K`, eight lanes of partial sums over the row (fewer than 8 tokens);
const VEC_DOT: u8 = 0;
/// - `REPACK`: Q4_K with a multiple of 8 rows, which ggml interleaves by 8 rows at load: its gemm for each group of
///   4 tokens (a multiply-add per 64 weights) and its gemv for the last tokens (one per block);
const REPACK: u8 = 1;
/// - `TILED`: ggml's tiled k-quant matmul for 8 tokens or more: each block's exact integer sum times the weight's
///   d (less dmin times the mins' sum, fused), then multiply-added by the token's d (GCC fuses that product into
///   the sum) block by block.
const TILED: u8 = 2;

/// Every type's kernel body and arithmetic, in one table: `$wrap!(body, tokens per tile[, mode])` for weights of
/// type `$ty` in a product of `$rows` rows, the legacy types' bodies with `vpdpbusd` when `$vnni`, and the k-quants
/// in arithmetic `$kq` (the constant `VEC_DOT` or `TILED`; Q4_K with a multiple of 8 rows is always `REPACK`).
macro_rules! by_type {
    ($wrap:ident, $ty:expr, $rows:expr, $vnni:expr, $kq:ident) => {{
        use GgmlType as T;
        Some(match $ty {
            T::Q4_0 if $vnni => $wrap!(q4_0_q8_0_vnni, 8),
            T::Q4_0 => $wrap!(q4_0_q8_0, 8),
            T::Q4_1 => $wrap!(q4_1_q8_1, 8),
            T::Q5_0 if $vnni => $wrap!(q5_0_q8_0_vnni, 8),
            T::Q5_0 => $wrap!(q5_0_q8_0, 8),
            T::Q5_1 => $wrap!(q5_1_q8_1, 8),
            T::Q8_0 if $vnni => $wrap!(q8_0_q8_0_vnni, 8),
            T::Q8_0 => $wrap!(q8_0_q8_0, 8),
            T::Q2_K => $wrap!(q2_k_q8_k, 4, $kq),
            T::Q3_K => $wrap!(q3_k_q8_k, 4, $kq),
            T::Q4_K if $rows.is_multiple_of(8) => $wrap!(q4_k_q8_k, 4, REPACK),
            T::Q4_K => $wrap!(q4_k_q8_k, 4, $kq),
            T::Q5_K => $wrap!(q5_k_q8_k, 4, $kq),
            T::Q6_K => $wrap!(q6_k_q8_k, 4, $kq),
            T::F32 => $wrap!(f32_f32, 4),
            T::F16 => $wrap!(f16_f32, 4),
            T::BF16 => $wrap!(bf16_f32, 4),
            _ => return None,
        })
    }};
}

/// The AVX2 kernel for weights of type `ty` in a product of `rows` rows with `n_tokens` tokens (the shape picks the
/// k-quants' arithmetic, see [`VEC_DOT`]). Every supported type has one.
/// With `vnni` (the CPU has AVX-VNNI, see [`vnni_available`]) the legacy types' byte products use `vpdpbusd`.
pub fn kernel(ty: GgmlType, rows: usize, n_tokens: usize, vnni: bool) -> Option<RowKernel> {
    if n_tokens >= 8 {
        by_type!(tiled, ty, rows, vnni, TILED)
    } else {
        by_type!(tiled, ty, rows, vnni, VEC_DOT)
    }
}

/// The 8-row kernel for a product of `rows` rows with `n_tokens` tokens, where one applies (a multiple of 8 rows).
/// For prompts:
/// Q4_K (whose `REPACK` arithmetic it reproduces for groups of 4 tokens) with at least one such group, and Q6_K
/// with 8 tokens or more (the `TILED` arithmetic); without AVX-VNNI, Q4_0, Q5_0 and Q8_0 with 16 tokens or more
/// (`x86_legacy8`, the row kernels' sums with each row unpacked once per call).
/// For a single token (a generated one), every type and any number of rows: the row kernels' arithmetic, many rows
/// per call, so that each row costs no indirect call and no set-up (Q4_K with a multiple of 8 rows, and Q6_K:
/// `x86_token`'s kernels; the legacy types: `x86_token_legacy`'s, four rows at a time).
pub fn rows8_kernel(ty: GgmlType, rows: usize, n_tokens: usize, vnni: bool) -> Option<super::Rows8> {
    use super::x86_legacy8;
    use super::x86_rows8::{q4_k_q8_k, q6_k_q8_k};
    if n_tokens == 1 {
        use super::x86_token_legacy::{YMM, YMM_VNNI};
        let legacy = super::x86_token_legacy::kernel(ty, if vnni { YMM_VNNI } else { YMM });
        let run: super::Rows8Kernel = match ty {
            GgmlType::Q4_K if vnni && rows.is_multiple_of(8) => super::x86_token::q4_k_q8_k::<YMM_VNNI>,
            GgmlType::Q4_K if rows.is_multiple_of(8) => super::x86_token::q4_k_q8_k::<YMM>,
            GgmlType::Q6_K => super::x86_token::q6_k_q8_k::<YMM>,
            _ => match legacy {
                Some(run) => run,
                None => one_token_kernel(ty, rows, vnni)?,
            },
        };
        return Some(super::Rows8 { run, group: 1, tail: None });
    }
    let (k, group): (super::Rows8Kernel, usize) = match ty {
        GgmlType::Q4_K if n_tokens >= super::ROWS8_GROUP => {
            (if vnni { q4_k_q8_k::<true> } else { q4_k_q8_k::<false> }, super::ROWS8_GROUP)
        }
        GgmlType::Q6_K if n_tokens >= 8 => {
            (if vnni { q6_k_q8_k::<true> } else { q6_k_q8_k::<false> }, super::ROWS8_GROUP)
        }
        // The legacy types with the sign trick, from two tiles of tokens on (one tile gains nothing from the rows
        // unpacked once); with AVX-VNNI the row kernels.
        GgmlType::Q4_0 if !vnni && n_tokens >= 16 => (x86_legacy8::rows::<{ x86_legacy8::Q4_0 }>, 1),
        GgmlType::Q5_0 if !vnni && n_tokens >= 16 => (x86_legacy8::rows::<{ x86_legacy8::Q5_0 }>, 1),
        GgmlType::Q8_0 if !vnni && n_tokens >= 16 => (x86_legacy8::rows::<{ x86_legacy8::Q8_0 }>, 1),
        _ => return None,
    };
    // The tokens after the last group go to the row kernel, a tile at a time: one by one, the one-token kernels
    // in 256-bit registers were slower (Intel Xeon, one thread, 3 tokens against 2048 rows of 2048: 42–47 against
    // 49 GMAC/s).
    rows.is_multiple_of(8).then_some(super::Rows8 { run: k, group, tail: None })
}

/// Turns a row kernel body into a [`Rows8Kernel`](super::Rows8Kernel) for one token: the rows one after the other,
/// in one function compiled for AVX2 (so the body inlines into the loop). The tile size is the row kernels'.
macro_rules! one_token {
    ($body:ident, $max:expr $(, $mode:expr)?) => {{
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn k(w: &[u8], rows: usize, row_bytes: usize, a: &[u8], act_row: usize, n: usize, out: &mut [f32]) {
            assert!(n == 1 && w.len() >= rows * row_bytes && out.len() >= rows && a.len() >= act_row);
            for (r, o) in out[..rows].chunks_exact_mut(1).enumerate() {
                $body::<1 $(, $mode)?>(&w[r * row_bytes..(r + 1) * row_bytes], a, act_row, o);
            }
        }
        k as super::Rows8Kernel
    }};
}

/// The one-token kernels: the bodies and arithmetic [`kernel`] picks for `n_tokens == 1`.
fn one_token_kernel(ty: GgmlType, rows: usize, vnni: bool) -> Option<super::Rows8Kernel> {
    by_type!(one_token, ty, rows, vnni, VEC_DOT)
}

// ---- activation quantizer ----------------------------------------------------------------------------------

/// The AVX2 Q8_0, Q8_1 and Q8_K activation quantizers, or None without AVX2 (or for other types). Q8_K's
/// (`x86_q8k`) gives the reference's bytes. The other two give the bytes of llama.cpp's x86 `quantize_row_q8_0` /
/// `quantize_row_q8_1`, which its CPU backend applies to activations there; these differ from the reference
/// quantizers (`quant::q8_0`, ggml's `quantize_row_q8_0_ref`) in two roundings:
/// the codes are `v · (127/amax)` rather than `v · (1/d)`, and they round half to even rather than away from zero.
/// Both are as accurate; matching llama.cpp's is what keeps our products its to the bit (see `model::ops`).
pub fn act_quantizer(ty: GgmlType) -> Option<super::act::RowQuantizer> {
    if !available() {
        return None;
    }
    match ty {
        GgmlType::Q8_0 => Some(quantize_row_q8_0 as super::act::RowQuantizer),
        GgmlType::Q8_1 => Some(quantize_row_q8_1 as super::act::RowQuantizer),
        GgmlType::Q8_K => Some(super::x86_q8k::quantize_row as super::act::RowQuantizer),
        _ => None,
    }
}

fn quantize_row_q8_0(x: &[f32], y: &mut [u8]) {
    // SAFETY: only handed out by `act_quantizer` after `available()` (AVX2, FMA, F16C) said yes.
    unsafe { quantize_row_q8_avx2::<false>(x, y) }
}

fn quantize_row_q8_1(x: &[f32], y: &mut [u8]) {
    // SAFETY: as above.
    unsafe { quantize_row_q8_avx2::<true>(x, y) }
}

/// Blocks of 32: `d = amax / 127` (stored as f16), codes `round_half_even(v · (127 / amax))`; for Q8_1
/// (`WITH_SUM`) also `s = d · Σ codes` as f16, after `d`. A block holding a NaN or an infinity, or so small that
/// 127/amax overflows, goes to the reference quantizer, whose C conversions of NaN and ±inf the saturating packs
/// would not keep (llama.cpp's output for such a block is garbage either way).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_row_q8_avx2<const WITH_SUM: bool>(x: &[f32], y: &mut [u8]) {
    use crate::quant::block::fp32_to_fp16;
    let ty = if WITH_SUM { GgmlType::Q8_1 } else { GgmlType::Q8_0 };
    let reference = ty.codec().expect("Q8_0 and Q8_1 have codecs").quantize;
    let (bs, qs) = if WITH_SUM { (36, 4) } else { (34, 2) };
    let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    for (xb, yb) in x.chunks_exact(32).zip(y.chunks_exact_mut(bs)) {
        let v: [__m256; 4] = std::array::from_fn(|i| _mm256_loadu_ps(xb[8 * i..8 * i + 8].as_ptr()));
        let m = _mm256_max_ps(
            _mm256_max_ps(_mm256_and_ps(v[0], abs_mask), _mm256_and_ps(v[1], abs_mask)),
            _mm256_max_ps(_mm256_and_ps(v[2], abs_mask), _mm256_and_ps(v[3], abs_mask)),
        );
        let amax = hmax(m);
        // `max_ps` drops NaNs depending on their position; check for them (and infinities) explicitly.
        let unordered = v.iter().fold(0, |acc, &x| acc | _mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)));
        if unordered != 0 || !amax.is_finite() {
            reference(xb, yb);
            continue;
        }
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        if !id.is_finite() {
            reference(xb, yb);
            continue;
        }
        yb[..2].copy_from_slice(&fp32_to_fp16(d).to_le_bytes());
        let idv = _mm256_set1_ps(id);
        let q: [__m256i; 4] = std::array::from_fn(|i| {
            _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[i], idv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
        });
        if WITH_SUM {
            let sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
            yb[2..4].copy_from_slice(&fp32_to_fp16(d * sum as f32).to_le_bytes());
        }
        // |codes| ≤ 127, so the saturating packs are exact; they interleave 128-bit lanes, which the permute undoes.
        let packed = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        let ordered = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(yb[qs..qs + 32].as_mut_ptr().cast(), ordered);
    }
}

/// llama.cpp's x86 Q8_0/Q8_1 activation rounding in scalar code, for the tests: `d` and the codes
/// `round_half_even(v · 127/amax)`; None for the blocks the quantizer leaves to the reference (a NaN or an infinity,
/// or 127/amax overflowing).
#[cfg(test)]
fn quantize_block_like_llamacpp(x: &[f32]) -> Option<(f32, Vec<i8>)> {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    (x.iter().all(|v| v.is_finite()) && id.is_finite())
        .then(|| (amax / 127.0, x.iter().map(|v| (v * id).round_ties_even() as i8).collect()))
}

// ---- helpers -------------------------------------------------------------------------------------------------

/// 32 bytes from the start of `b` (which the callers cut to at least 32 bytes).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn ld(b: &[u8]) -> __m256i {
    let b = &b[..32];
    _mm256_loadu_si256(b.as_ptr().cast())
}

/// 16 bytes from the start of `b`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn ld128(b: &[u8]) -> __m128i {
    let b = &b[..16];
    _mm_loadu_si128(b.as_ptr().cast())
}

/// The f16 at `b[i..i + 2]` as f32.
#[inline]
pub(super) fn h(b: &[u8], i: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes(b[i..i + 2].try_into().expect("2 bytes")))
}

/// The f16 at `b[i..i + 2]` as f32 in all 8 lanes, through F16C: `vmovd` from a general register (which writes the
/// whole vector register, so no false dependency on its old contents, see [`f16_to_f32`]), a broadcast and
/// `vcvtph2ps` — three instructions instead of a dozen.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn h8(b: &[u8], i: usize) -> __m256 {
    let bits = u16::from_le_bytes(b[i..i + 2].try_into().expect("2 bytes"));
    _mm256_cvtph_ps(_mm_broadcastw_epi16(_mm_cvtsi32_si128(bits as i32)))
}

/// f16 bits → f32, exactly, in integer and scalar-float operations (the method of the FP16 library by
/// Maratyszcza, which ggml also uses without F16C): normal halves by moving the exponent and mantissa into place and
/// rescaling by 2⁻¹¹², subnormals by a magic-number subtraction; ±inf and NaN come out as such.
///
/// Why not F16C's `vcvtph2ps` on a single half: LLVM then loads the half with `vpinsrw` into whatever register is
/// free at the time, often an accumulator, and the false dependency chains every block of the loop to the previous
/// one — the legacy kernels ran three times slower for it.
#[inline]
fn f16_to_f32(h: u16) -> f32 {
    let w = (h as u32) << 16;
    let sign = w & 0x8000_0000;
    let two_w = w.wrapping_add(w);
    let normalized = f32::from_bits((two_w >> 4) + (0xE0 << 23)) * f32::from_bits(0x0780_0000);
    let denormalized = f32::from_bits((two_w >> 17) | (126 << 23)) - 0.5;
    let bits = if two_w < (1 << 27) { denormalized.to_bits() } else { normalized.to_bits() };
    f32::from_bits(sign | bits)
}

#[inline]
fn f32_at(b: &[u8], i: usize) -> f32 {
    // One bounds check and one 4-byte load (four indexings would be four byte loads).
    f32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"))
}

/// The activation rows of a tile, bounds-checked once so that the inner loops load without a check per access
/// (which, per token and block, cost a third of the legacy kernels' time).
#[derive(Clone, Copy)]
struct Tile {
    p: *const u8,
    ar: usize,
}

impl Tile {
    /// Checks that `a` holds `nt` rows of `ar` bytes, of which the kernel reads the first `used` of each.
    #[inline(always)]
    fn new(a: &[u8], ar: usize, nt: usize, used: usize) -> Tile {
        assert!(used <= ar && (nt == 0 || a.len() >= (nt - 1) * ar + used), "activation tile too short");
        Tile { p: a.as_ptr(), ar }
    }

    /// Pointer to byte `off` of row `t`. Callers keep `t < nt` and `off + (bytes they read) ≤ used`.
    #[inline(always)]
    unsafe fn at(self, t: usize, off: usize) -> *const u8 {
        self.p.add(t * self.ar + off)
    }

    /// 32 bytes of row `t` at `off`.
    #[inline(always)]
    unsafe fn ld(self, t: usize, off: usize) -> __m256i {
        _mm256_loadu_si256(self.at(t, off).cast())
    }

    /// The f32 of row `t` at `off`.
    #[inline(always)]
    unsafe fn f32(self, t: usize, off: usize) -> f32 {
        self.at(t, off).cast::<f32>().read_unaligned()
    }
}

/// Sum of the 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn hsum(v: __m256) -> f32 {
    hsum128(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum128(v: __m128) -> f32 {
    let s = _mm_add_ps(v, _mm_movehl_ps(v, v));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

/// The largest of the 8 lanes (of finite values: `max_ps` passes NaNs on by position).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn hmax(v: __m256) -> f32 {
    let m4 = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    _mm_cvtss_f32(_mm_max_ss(m2, _mm_movehdup_ps(m2)))
}

/// Sum of the 8 i32 lanes (exact: the callers' sums fit in i32).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn hsum_i32(v: __m256i) -> i32 {
    hsum128_i32(_mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)))
}

/// The sums of the 8 i32 lanes of each of `v[0..4]`, in lanes 0..4 (exact in i32).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum4_i32(v: &[__m256i]) -> __m128i {
    let (a, b) = (_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    let c = _mm256_hadd_epi32(a, b);
    _mm_add_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1))
}

/// The 4×4 transpose of the i32 lanes of `v[0..4]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn transpose4_i32(v: &[__m128i]) -> [__m128i; 4] {
    let (t0, t1) = (_mm_unpacklo_epi32(v[0], v[1]), _mm_unpackhi_epi32(v[0], v[1]));
    let (t2, t3) = (_mm_unpacklo_epi32(v[2], v[3]), _mm_unpackhi_epi32(v[2], v[3]));
    [_mm_unpacklo_epi64(t0, t2), _mm_unpackhi_epi64(t0, t2), _mm_unpacklo_epi64(t1, t3), _mm_unpackhi_epi64(t1, t3)]
}

/// Sum of the 4 i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum128_i32(v: __m128i) -> i32 {
    let s = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0b01_00_11_10));
    _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01)))
}

/// Σ of each 4 products of unsigned bytes of `u` and signed bytes of `s`, into i32 lanes: AVX-VNNI's `vpdpbusd`.
///
/// # Safety
/// The CPU must have AVX-VNNI ([`vnni_available`]).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dpbusd(u: __m256i, s: __m256i) -> __m256i {
    dpbusd_acc(_mm256_setzero_si256(), u, s)
}

/// `acc +` [`dpbusd`]`(u, s)` (wrapping, as the instruction adds), in one instruction. Written as assembly so that
/// it inlines into kernels compiled for AVX2 alone (the intrinsic would need them compiled with `avxvnni` too).
///
/// # Safety
/// The CPU must have AVX-VNNI ([`vnni_available`]).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dpbusd_acc(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
    let mut acc = acc;
    std::arch::asm!(
        "{{vex}} vpdpbusd {acc}, {u}, {s}",
        acc = inout(ymm_reg) acc,
        u = in(ymm_reg) u,
        s = in(ymm_reg) s,
        options(pure, nomem, nostack, preserves_flags),
    );
    acc
}

/// `acc` plus the sums of the products of `a`'s and `b`'s i16 pairs (`madd` and an add), in AVX-VNNI's one
/// `vpdpwssd`, written as assembly as [`dpbusd_acc`] is.
///
/// # Safety
/// The CPU must have AVX-VNNI ([`vnni_available`]).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dpwssd_acc(acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
    let mut acc = acc;
    std::arch::asm!(
        "{{vex}} vpdpwssd {acc}, {a}, {b}",
        acc = inout(ymm_reg) acc,
        a = in(ymm_reg) a,
        b = in(ymm_reg) b,
        options(pure, nomem, nostack, preserves_flags),
    );
    acc
}

/// Σ of pairs of i16 into i32 lanes: `madd` with ones.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn sum_pairs(v: __m256i) -> __m256i {
    _mm256_madd_epi16(v, _mm256_set1_epi16(1))
}

/// 32 legacy-block nibbles as bytes in weight order: the low nibbles of the 16 bytes are weights 0..16, the high
/// nibbles weights 16..32 (ggml `bytes_from_nibbles_32`).
///
/// The 16 bytes go into both halves straight from memory (`vbroadcasti128`, a load and nothing else), and the high
/// half's move down a nibble by a shift per 32-bit lane. Shifting a copy and inserting it (`vpsrlw`, `vinserti128`)
/// took one more instruction, and the insert ran one a cycle on AMD Zen 3: there, one thread, SmolLM2-135M's Q5_0
/// rows (576 wide, in L2) went from 11.0 to 12.2 GB/s in the one-token kernel.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn nibbles(qs: &[u8]) -> __m256i {
    let both = _mm256_broadcastsi128_si256(ld128(qs));
    _mm256_and_si256(_mm256_srlv_epi32(both, _mm256_set_epi32(4, 4, 4, 4, 0, 0, 0, 0)), _mm256_set1_epi8(0xF))
}

/// Byte j is `v` where bit j of the little-endian u32 at `qh` is set (`SET`) or clear (`!SET`), else 0: Q5_0's and
/// Q5_1's fifth bits as bytes to OR into their nibbles. Each byte gets a copy of the source byte j / 8 (`vpshufb`)
/// and keeps only bit j % 8 of it (`vpand`, or `vpandn` for a clear bit), and `vpsignb` makes each nonzero byte `v`:
/// a kept bit 7 is a negative byte, so the lanes of bit 7 hold `−v` for it to negate. `v` must not be −128.
///
/// That is three instructions where ggml's `bytes_from_bits_32` and a mask took four (OR every bit but j % 8 in,
/// compare with all ones, then AND or ANDN `v`). The one-token kernels of Q5_0 and Q5_1 are bound by their
/// instructions, so on AMD Zen 3 that one was worth 4–5%: one thread, 1024 rows of 576 weights in L2, three runs
/// each in turn, Q5_0 12.1–12.2 → 12.7–12.8 GB/s and Q5_1 11.7–11.9 → 12.2–12.3; SmolLM2-135M Q4_K_M (Q5_0 for
/// most of its bytes) generating (`bench -n 128`, runs in turn) 221.8 → 230.6 tok/s on two threads (four pairs,
/// faster in three) and 128.5 → 132.1 on one (three pairs, faster in each).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn fifth_bits<const SET: bool>(qh: &[u8], v: i8) -> __m256i {
    debug_assert!(v != i8::MIN, "−128 has no negation in i8");
    let q = _mm256_set1_epi32(i32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]));
    let spread = _mm256_set_epi64x(0x0303_0303_0303_0303, 0x0202_0202_0202_0202, 0x0101_0101_0101_0101, 0);
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let copies = _mm256_shuffle_epi8(q, spread);
    let kept = if SET { _mm256_and_si256(copies, bit) } else { _mm256_andnot_si256(copies, bit) };
    let (v, neg) = (v as u8 as u64, v.wrapping_neg() as u8 as u64);
    let values = (neg << 56) | (v * 0x0001_0101_0101_0101);
    _mm256_sign_epi8(_mm256_set1_epi64x(values as i64), kept)
}

// ---- legacy types against Q8_0 / Q8_1 (blocks of 32) --------------------------------------------------------------

/// Signed codes (from `codes(x)`, x one weight block of `$wb` bytes) against Q8_0 (34-byte blocks: f16 d, i8 qs;
/// the row's f32 copies of the `d`s follow its blocks, see `act::row_layout`): per block, 8 lanes of sums of 4
/// products, times `d·d_a`, multiply-added into 8 lanes.
/// - `$name`: ggml's sign trick, |w| as u8 times sign(w)·a as i8 (`maddubs`, then pairs summed with `madd`);
/// - `$vnni`: `vpdpbusd` of the activations made unsigned (a + 128, which `act` stores for this set) by the signed
///   codes, from a start of −128 · Σ of each 4 codes, which gives the same sums. Both operands then go in as they
///   are, and `d_a` comes from memory in all 8 lanes, which leaves 4 instructions per block and token.
macro_rules! signed_q8_0_body {
    ($name:ident, $vnni:ident, $wb:expr, |$x:ident| $codes:expr) => {
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $name<const NT: usize>(w: &[u8], a: &[u8], ar: usize, out: &mut [f32]) {
            let nb = w.len() / $wb;
            let tile = Tile::new(a, ar, NT, nb * (34 + 4));
            let mut acc = [_mm256_setzero_ps(); NT];
            for (ib, $x) in w.chunks_exact($wb).enumerate() {
                let q = $codes;
                let aq = _mm256_sign_epi8(q, q);
                let dx = h8($x, 0);
                for t in 0..NT {
                    let yq = tile.ld(t, ib * 34 + 2);
                    // Σ of each 4 byte products, exact (|a·b| pairs stay within i16).
                    let p = sum_pairs(_mm256_maddubs_epi16(aq, _mm256_sign_epi8(yq, q)));
                    let dy = _mm256_set1_ps(tile.f32(t, nb * 34 + ib * 4));
                    acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dx, dy), _mm256_cvtepi32_ps(p), acc[t]);
                }
            }
            for t in 0..NT {
                out[t] = hsum(acc[t]);
            }
        }

        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $vnni<const NT: usize>(w: &[u8], a: &[u8], ar: usize, out: &mut [f32]) {
            let nb = w.len() / $wb;
            // Per block after the blocks and their f32 scales: 32 codes + 128, then d_a in 8 lanes.
            let extra = nb * (34 + 4);
            let tile = Tile::new(a, ar, NT, extra + nb * 64);
            let mut acc = [_mm256_setzero_ps(); NT];
            for (ib, $x) in w.chunks_exact($wb).enumerate() {
                let q = $codes;
                let start = _mm256_sub_epi32(_mm256_setzero_si256(), dpbusd(_mm256_set1_epi8(0x80u8 as i8), q));
                let dx = h8($x, 0);
                for t in 0..NT {
                    let at = extra + ib * 64;
                    let p = dpbusd_acc(start, tile.ld(t, at), q);
                    let dd = _mm256_mul_ps(dx, _mm256_loadu_ps(tile.at(t, at + 32).cast()));
                    acc[t] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(p), acc[t]);
                }
            }
            for t in 0..NT {
                out[t] = hsum(acc[t]);
            }
        }
    };
}

signed_q8_0_body!(q8_0_q8_0, q8_0_q8_0_vnni, 34, |x| ld(&x[2..]));
// Q4_0: nibble − 8.
signed_q8_0_body!(q4_0_q8_0, q4_0_q8_0_vnni, 18, |x| _mm256_sub_epi8(nibbles(&x[2..]), _mm256_set1_epi8(8)));
// Q5_0: the 5-bit code − 16 is the nibble with 0xF0 ORed in where the fifth bit is clear (two's complement).
signed_q8_0_body!(q5_0_q8_0, q5_0_q8_0_vnni, 22, |x| _mm256_or_si256(
    nibbles(&x[6..]),
    fifth_bits::<false>(&x[2..], 0xF0u8 as i8)
));

/// Unsigned codes with a minimum (Q4_1, Q5_1: f16 d, f16 m first) against Q8_1 (36-byte blocks: f16 d, f16 s, qs;
/// f32 copies of each block's d and s after the row's blocks): Σ = d·d_a·Σ q·a + m·s.
macro_rules! unsigned_q8_1_body {
    ($name:ident, $wb:expr, |$x:ident| $codes:expr) => {
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $name<const NT: usize>(w: &[u8], a: &[u8], ar: usize, out: &mut [f32]) {
            let nb = w.len() / $wb;
            let tile = Tile::new(a, ar, NT, nb * (36 + 8));
            let mut acc = [_mm256_setzero_ps(); NT];
            let mut mins = [0.0f32; NT];
            for (ib, $x) in w.chunks_exact($wb).enumerate() {
                let q = $codes;
                let (dx, mx) = (_mm256_set1_ps(h($x, 0)), h($x, 2));
                for t in 0..NT {
                    let yq = tile.ld(t, ib * 36 + 4);
                    let p = sum_pairs(_mm256_maddubs_epi16(q, yq));
                    let ys = nb * 36 + ib * 8;
                    let dy = _mm256_set1_ps(tile.f32(t, ys));
                    acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dx, dy), _mm256_cvtepi32_ps(p), acc[t]);
                    // m · s, fused into the sum as GCC contracts ggml's `summs += m * s`.
                    mins[t] = mx.mul_add(tile.f32(t, ys + 4), mins[t]);
                }
            }
            for t in 0..NT {
                out[t] = hsum(acc[t]) + mins[t];
            }
        }
    };
}

unsigned_q8_1_body!(q4_1_q8_1, 20, |x| nibbles(&x[4..]));
unsigned_q8_1_body!(q5_1_q8_1, 24, |x| _mm256_or_si256(nibbles(&x[8..]), fifth_bits::<true>(&x[4..], 0x10)));

// ---- k-quants against Q8_K (super-blocks of 256; Q8_K: f32 d, i8 qs[256] at 4, i16 bsums[16] at 260) -----------

/// The i16 scales of sub-blocks `2k` and `2k + 1` of a half (8 scales, present in both 128-bit halves of `half`):
/// the first in every lane of the low 128 bits, which a `maddubs` result fills from weights 0..16 of the 32, the
/// second in the high 128 bits (weights 16..32).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn scale_pair(half: __m256i, k: usize) -> __m256i {
    let pick = |e: usize| _mm_set1_epi16((((2 * e + 1) << 8) | (2 * e)) as i16);
    _mm256_shuffle_epi8(half, _mm256_set_m128i(pick(2 * k + 1), pick(2 * k)))
}

/// The 16 six-bit scale codes of a Q3_K block, minus 32, as i16: [`q3_k_scale`](super::scalar::q3_k_scale) for all
/// sixteen at once in u32s (ggml's `kmask1`/`kmask2` unpacking).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q3_k_scales(s: &[u8]) -> __m256i {
    let u = |i: usize| u32::from_le_bytes(s[4 * i..4 * i + 4].try_into().expect("12 scale bytes"));
    let (a0, a1, hi) = (u(0), u(1), u(2));
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    let c0 = (a0 & LOW4) | ((hi & LOW2) << 4);
    let c1 = (a1 & LOW4) | (((hi >> 2) & LOW2) << 4);
    let c2 = ((a0 >> 4) & LOW4) | (((hi >> 4) & LOW2) << 4);
    let c3 = ((a1 >> 4) & LOW4) | (((hi >> 6) & LOW2) << 4);
    let codes = _mm256_cvtepu8_epi16(_mm_set_epi32(c3 as i32, c2 as i32, c1 as i32, c0 as i32));
    _mm256_sub_epi16(codes, _mm256_set1_epi16(32))
}

/// Σ_j scales[j] · bsums[j] over the 16 sub-blocks of 16, in 8 i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scaled_bsums(scales16: __m256i, tile: Tile, t: usize, block: usize) -> __m256i {
    _mm256_madd_epi16(scales16, tile.ld(t, block + Q8K_BSUMS))
}

/// The 8 six-bit scales (low 128 bits) and 8 mins (high 128 bits) of a Q4_K/Q5_K block as i16, from its 12 packed
/// bytes: the same unpacking as [`scale_min_k4`](super::scalar::scale_min_k4), done 4 at a time in u32s (ggml's
/// `utmp` with `kmask1..3`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scales_mins_k4(s: &[u8]) -> __m256i {
    let u = |i: usize| u32::from_le_bytes(s[4 * i..4 * i + 4].try_into().expect("12 scale bytes"));
    let (u0, u1, u2) = (u(0), u(1), u(2));
    const LOW6: u32 = 0x3f3f_3f3f;
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    let scales_lo = u0 & LOW6;
    let scales_hi = (u2 & LOW4) | (((u0 >> 6) & LOW2) << 4);
    let mins_lo = u1 & LOW6;
    let mins_hi = ((u2 >> 4) & LOW4) | (((u1 >> 6) & LOW2) << 4);
    _mm256_cvtepu8_epi16(_mm_set_epi32(mins_hi as i32, mins_lo as i32, scales_hi as i32, scales_lo as i32))
}

/// Scale `j` (0..8) of `scales` (8 i16 in each 128-bit half) in every i16 lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scale_k4(scales: __m256i, j: usize) -> __m256i {
    _mm256_shuffle_epi8(scales, _mm256_set1_epi16((0x0100 + 0x0202 * j) as i16))
}

/// Q4_K and Q5_K (8 sub-blocks of 32 with 6-bit scale and min): `$codes(qs_bytes, j)` gives the 32 codes of
/// sub-blocks 2j (low result) and 2j+1 (high result) for j < 4. `MODE` picks whose arithmetic (see [`VEC_DOT`]).
macro_rules! q4_5_k_body {
    ($name:ident, $wb:expr, $qs:expr, |$x:ident, $q:ident, $j:ident| $codes:expr) => {
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $name<const NT: usize, const MODE: u8>(w: &[u8], a: &[u8], ar: usize, out: &mut [f32]) {
            let tile = Tile::new(a, ar, NT, w.len() / $wb * 292);
            // REPACK with a whole group of 4 tokens is ggml's gemm (a multiply-add per 64 weights); with fewer,
            // its gemv (one per block).
            let per_64 = MODE == REPACK && NT == 4;
            let mut acc = [_mm256_setzero_ps(); NT];
            let mut acc_m = [_mm_setzero_ps(); NT];
            let (mut sacc, mut sacc_m) = ([0f32; NT], [0f32; NT]);
            // The 4 tokens' gemm sums side by side, one lane each (per_64 only).
            let (mut acc4, mut acc4_m) = (_mm_setzero_ps(), _mm_setzero_ps());
            for (ib, $x) in w.chunks_exact($wb).enumerate() {
                // d and dmin, the block's first 4 bytes, through F16C (see `h8`).
                let dm = _mm_cvtph_ps(_mm_cvtsi32_si128(i32::from_le_bytes($x[..4].try_into().expect("4 bytes"))));
                let (d, dmin) = (_mm_cvtss_f32(dm), _mm_cvtss_f32(_mm_movehdup_ps(dm)));
                let sm = scales_mins_k4(&$x[4..16]);
                let mins = _mm256_extracti128_si256(sm, 1);
                let scales = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(sm));
                let mut sumi = [_mm256_setzero_si256(); NT];
                // d · d_a and dmin · d_a of each token, in lanes (per_64 only).
                let (mut dd4, mut dm4) = (_mm_setzero_ps(), _mm_setzero_ps());
                if per_64 {
                    let yd: [f32; 4] = std::array::from_fn(|t| tile.f32(t, ib * 292));
                    dd4 = _mm_setr_ps(d * yd[0], d * yd[1], d * yd[2], d * yd[3]);
                    dm4 = _mm_setr_ps(dmin * yd[0], dmin * yd[1], dmin * yd[2], dmin * yd[3]);
                }
                for $j in 0..4 {
                    let $q = ld(&$x[$qs + 32 * $j..]);
                    let (lo, hi) = $codes;
                    let (s_lo, s_hi) = (scale_k4(scales, 2 * $j), scale_k4(scales, 2 * $j + 1));
                    let mut p64 = [_mm256_setzero_si256(); NT];
                    for t in 0..NT {
                        let yq = ib * 292 + Q8K_QS + 64 * $j;
                        let p_lo = _mm256_madd_epi16(s_lo, _mm256_maddubs_epi16(lo, tile.ld(t, yq)));
                        let p_hi = _mm256_madd_epi16(s_hi, _mm256_maddubs_epi16(hi, tile.ld(t, yq + 32)));
                        if per_64 {
                            p64[t] = _mm256_add_epi32(p_lo, p_hi);
                        } else {
                            sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(p_lo, p_hi));
                        }
                    }
                    if per_64 {
                        // ggml's gemm: one multiply-add per 64 weights.
                        acc4 = _mm_fmadd_ps(_mm_cvtepi32_ps(hsum4_i32(&p64)), dd4, acc4);
                    }
                }
                let mut im = [_mm_setzero_si128(); NT];
                for t in 0..NT {
                    let yd = tile.f32(t, ib * 292);
                    // Pairs of bsums make the sums of the 8 sub-blocks of 32.
                    let bs = tile.ld(t, ib * 292 + Q8K_BSUMS);
                    let bs32 = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
                    // Σ min_j · bsum_j over sub-blocks (2k, 2k + 1) in lane k.
                    im[t] = _mm_madd_epi16(mins, bs32);
                    if per_64 {
                        continue;
                    } else if MODE == REPACK {
                        sacc[t] = (hsum_i32(sumi[t]) as f32).mul_add(d * yd, sacc[t]);
                        sacc_m[t] = (hsum128_i32(im[t]) as f32).mul_add(dmin * yd, sacc_m[t]);
                    } else if MODE == TILED {
                        let r = (-dmin).mul_add(hsum128_i32(im[t]) as f32, hsum_i32(sumi[t]) as f32 * d);
                        sacc[t] = r.mul_add(yd, sacc[t]);
                    } else {
                        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * yd), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
                        acc_m[t] = _mm_fnmadd_ps(_mm_set1_ps(dmin * yd), _mm_cvtepi32_ps(im[t]), acc_m[t]);
                    }
                }
                if per_64 {
                    // Token t's sub-block sums are lanes of im[t]; turned so that sub-block k's are lanes of m[k].
                    let m = transpose4_i32(&im);
                    for mk in m {
                        acc4_m = _mm_fmadd_ps(_mm_cvtepi32_ps(mk), dm4, acc4_m);
                    }
                }
            }
            if per_64 {
                let mut r = [0f32; 4];
                _mm_storeu_ps(r.as_mut_ptr(), _mm_sub_ps(acc4, acc4_m));
                out.copy_from_slice(&r[..NT]);
                return;
            }
            for t in 0..NT {
                out[t] = match MODE {
                    REPACK => sacc[t] - sacc_m[t],
                    TILED => sacc[t],
                    _ => hsum(acc[t]) + hsum128(acc_m[t]),
                };
            }
        }
    };
}

// Q4_K: qs[128] at 16; sub-block 2j in the low nibbles of qs[32j..32j+32], 2j+1 in the high ones.
q4_5_k_body!(q4_k_q8_k, 144, 16, |x, q, j| (
    _mm256_and_si256(q, _mm256_set1_epi8(0xF)),
    _mm256_and_si256(_mm256_srli_epi16(q, 4), _mm256_set1_epi8(0xF))
));
// Q5_K: qh[32] at 16, qs[128] at 48; the fifth bit of weight 32s + l is bit s of qh[l].
q4_5_k_body!(q5_k_q8_k, 176, 48, |x, q, j| {
    let hb = ld(&x[16..]);
    let one = _mm256_set1_epi8(1);
    let h_lo = _mm256_and_si256(_mm256_srl_epi16(hb, _mm_cvtsi32_si128(2 * j as i32)), one);
    let h_hi = _mm256_and_si256(_mm256_srl_epi16(hb, _mm_cvtsi32_si128(2 * j as i32 + 1)), one);
    (
        _mm256_or_si256(_mm256_and_si256(q, _mm256_set1_epi8(0xF)), _mm256_slli_epi16(h_lo, 4)),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), _mm256_set1_epi8(0xF)), _mm256_slli_epi16(h_hi, 4)),
    )
});

/// The k-quants with 16 sub-blocks of 16 (Q2_K, Q3_K, Q6_K). Each half of 128 weights is 4 groups of 32; group
/// `k` of half `hf` holds sub-blocks `8hf + 2k` and `8hf + 2k + 1`. `$codes(x, hf, k)` gives its unsigned codes,
/// `$offset` is subtracted from every code (through the bsums), and `$scales(x)` the 16 sub-block scales as i16.
/// The result is `d(x) · d_a · Σ_j scale_j · Σ (code − offset)·a`, minus for Q2_K `dmin · d_a · Σ_j min_j · bsum_j`.
macro_rules! k16_body {
    ($name:ident, $wb:expr, $offset:expr, d = |$xd:ident| $d:expr,
     codes = |$x:ident, $hf:ident, $k:ident| $codes:expr, scales = |$xs:ident| $scales:expr,
     mins = |$xm:ident| $mins:expr) => {
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $name<const NT: usize, const MODE: u8>(w: &[u8], a: &[u8], ar: usize, out: &mut [f32]) {
            let tile = Tile::new(a, ar, NT, w.len() / $wb * 292);
            let mut acc = [_mm256_setzero_ps(); NT];
            let mut sacc = [0f32; NT];
            for (ib, $x) in w.chunks_exact($wb).enumerate() {
                let $xs = $x;
                let scales16: __m256i = $scales;
                // Each 128-bit half of the scales in both halves, for `scale_pair`'s shuffles.
                let halves = [
                    _mm256_permute2x128_si256(scales16, scales16, 0x00),
                    _mm256_permute2x128_si256(scales16, scales16, 0x11),
                ];
                let mut sumi = [_mm256_setzero_si256(); NT];
                for $hf in 0..2 {
                    for $k in 0..4 {
                        let codes = $codes;
                        let s = scale_pair(halves[$hf], $k);
                        for t in 0..NT {
                            let yq = tile.ld(t, ib * 292 + Q8K_QS + 32 * (4 * $hf + $k));
                            let p = _mm256_madd_epi16(s, _mm256_maddubs_epi16(codes, yq));
                            sumi[t] = _mm256_add_epi32(sumi[t], p);
                        }
                    }
                }
                let $xd = $x;
                let d = $d;
                let $xm = $x;
                let mins: Option<(f32, __m256i)> = $mins;
                for t in 0..NT {
                    let yd = tile.f32(t, ib * 292);
                    // Σ_j scale_j · offset · bsum_j: the offset taken off every code.
                    let off = _mm256_mullo_epi32(scaled_bsums(scales16, tile, t, ib * 292), _mm256_set1_epi32($offset));
                    let s = _mm256_sub_epi32(sumi[t], off);
                    if MODE == TILED {
                        // The block's integer sums, scaled by the weight's d (and dmin), then by the token's.
                        let mut r = hsum_i32(s) as f32 * d;
                        if let Some((dmin, m16)) = mins {
                            r = (-dmin).mul_add(hsum_i32(scaled_bsums(m16, tile, t, ib * 292)) as f32, r);
                        }
                        sacc[t] = r.mul_add(yd, sacc[t]);
                        continue;
                    }
                    acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * yd), _mm256_cvtepi32_ps(s), acc[t]);
                    if let Some((dmin, m16)) = mins {
                        let pm = _mm256_cvtepi32_ps(scaled_bsums(m16, tile, t, ib * 292));
                        acc[t] = _mm256_fnmadd_ps(_mm256_set1_ps(dmin * yd), pm, acc[t]);
                    }
                }
            }
            for t in 0..NT {
                out[t] = if MODE == TILED { sacc[t] } else { hsum(acc[t]) };
            }
        }
    };
}

/// The 2-bit field of group `k` (0..4) of half `hf` from Q2_K/Q3_K `qs` (32 bytes per half).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn two_bit_group(qs: &[u8], hf: usize, k: usize) -> __m256i {
    let v = ld(&qs[32 * hf..]);
    _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(2 * k as i32)), _mm256_set1_epi8(3))
}

// Q6_K: ql[128] at 0, qh[64] at 128, i8 scales[16] at 192, d at 208; codes are the 6-bit levels (0..64), offset 32.
k16_body!(q6_k_q8_k, 210, 32, d = |x| h(x, 208),
    codes = |x, hf, k| {
        let ql = ld(&x[64 * hf + 32 * (k % 2)..]);
        let low = _mm256_and_si256(_mm256_srl_epi16(ql, _mm_cvtsi32_si128(4 * (k / 2) as i32)), _mm256_set1_epi8(0xF));
        let qh = ld(&x[128 + 32 * hf..]);
        // Bits 2k, 2k+1 of each qh byte down to bits 0, 1 (the mask drops what the 16-bit shift brought over from
        // the neighbouring byte), then up to bits 4, 5.
        let high = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * k as i32)), _mm256_set1_epi8(3));
        _mm256_or_si256(low, _mm256_slli_epi16(high, 4))
    },
    scales = |x| _mm256_cvtepi8_epi16(ld128(&x[192..])),
    mins = |_x| None);

// Q3_K: hmask[32] at 0, qs[64] at 32, scales[12] at 96, d at 108; codes are 2 bits | high bit << 2 (0..8), offset 4.
k16_body!(q3_k_q8_k, 110, 4, d = |x| h(x, 108),
    codes = |x, hf, k| {
        let hm = ld(x);
        let hbit = _mm256_and_si256(_mm256_srl_epi16(hm, _mm_cvtsi32_si128((4 * hf + k) as i32)), _mm256_set1_epi8(1));
        _mm256_or_si256(two_bit_group(&x[32..], hf, k), _mm256_slli_epi16(hbit, 2))
    },
    scales = |x| q3_k_scales(&x[96..108]),
    mins = |_x| None);

// Q2_K: scales[16] at 0 (scale low nibble, min high nibble), qs[64] at 16, d at 80, dmin at 82; no offset.
k16_body!(q2_k_q8_k, 84, 0, d = |x| h(x, 80),
    codes = |x, hf, k| two_bit_group(&x[16..], hf, k),
    scales = |x| _mm256_and_si256(_mm256_cvtepu8_epi16(ld128(x)), _mm256_set1_epi16(0xF)),
    mins = |x| {
        let m = _mm256_and_si256(_mm256_srli_epi16(_mm256_cvtepu8_epi16(ld128(x)), 4), _mm256_set1_epi16(0xF));
        Some((h(x, 82), m))
    });

// ---- float weights against f32 activations ----------------------------------------------------------------------

/// `$load` (with `$b` the 8 weights' bytes) gives 8 weights as f32; a tail of fewer than 8 goes through `$one`
/// (with `$w` the row and `$r` the index). Written as macro arguments rather than closures so that they are compiled
/// inside the `#[target_feature]` function.
macro_rules! float_body {
    ($name:ident, $size:expr, |$b:ident| $load:expr, |$w:ident, $r:ident| $one:expr) => {
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $name<const NT: usize>(w: &[u8], a: &[u8], ar: usize, out: &mut [f32]) {
            let n = w.len() / $size;
            let tile = Tile::new(a, ar, NT, 4 * n);
            let mut acc = [_mm256_setzero_ps(); NT];
            let mut i = 0;
            while i + 8 <= n {
                let $b = &w[i * $size..][..8 * $size];
                let wv = $load;
                for t in 0..NT {
                    acc[t] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(tile.at(t, 4 * i).cast()), acc[t]);
                }
                i += 8;
            }
            for t in 0..NT {
                let mut s = hsum(acc[t]);
                for $r in i..n {
                    let $w = w;
                    s += $one * tile.f32(t, 4 * $r);
                }
                out[t] = s;
            }
        }
    };
}

float_body!(f32_f32, 4, |b| _mm256_loadu_ps(b.as_ptr().cast()), |w, r| f32_at(w, 4 * r));
float_body!(f16_f32, 2, |b| _mm256_cvtph_ps(ld128(b)), |w, r| h(w, 2 * r));
float_body!(
    bf16_f32,
    2,
    |b| _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(ld128(b)), 16)),
    |w, r| f32::from_bits((u16::from_le_bytes([w[2 * r], w[2 * r + 1]]) as u32) << 16)
);

#[cfg(test)]
mod tests {
    #[test]
    fn activation_quantizers_round_as_llama_cpp_does_on_x86() {
        use crate::quant::block::fp32_to_fp16;
        use crate::quant::GgmlType;
        for (ty, bs, qs) in [(GgmlType::Q8_0, 34, 2), (GgmlType::Q8_1, 36, 4)] {
            let Some(fast) = super::act_quantizer(ty) else { return };
            let reference = ty.codec().unwrap().quantize;
            let mut x = crate::quant::block::testing::normal(32 * 64, 11);
            // Exact ties after scaling (amax 127 makes the scale 1), zeros, subnormals (127/amax overflows), and
            // blocks with NaN or infinities (those two kinds go to the reference).
            for (j, v) in x[..32].iter_mut().enumerate() {
                *v = [127.0, -2.5, 2.5, 0.5, -0.5, 1.5, -126.5, 3.4999998][j % 8];
            }
            x[32..64].fill(0.0);
            x[64..96].iter_mut().enumerate().for_each(|(j, v)| *v = j as f32 * 1e-40);
            x[100] = f32::NAN;
            x[140] = f32::INFINITY;
            x[170] = f32::NEG_INFINITY;
            let (mut want_ref, mut got) = (vec![0u8; 64 * bs], vec![0u8; 64 * bs]);
            reference(&x, &mut want_ref);
            fast(&x, &mut got);
            for (b, ((g, r), xb)) in got.chunks(bs).zip(want_ref.chunks(bs)).zip(x.chunks(32)).enumerate() {
                let Some((d, codes)) = super::quantize_block_like_llamacpp(xb) else {
                    assert_eq!(g, r, "{ty:?} block {b}: the reference's bytes");
                    continue;
                };
                assert_eq!(g[..2], fp32_to_fp16(d).to_le_bytes(), "{ty:?} block {b}: d");
                let want: Vec<u8> = codes.iter().map(|&c| c as u8).collect();
                assert_eq!(g[qs..qs + 32], want[..], "{ty:?} block {b}: codes");
                if qs == 4 {
                    let sum: i32 = codes.iter().map(|&c| i32::from(c)).sum();
                    assert_eq!(g[2..4], fp32_to_fp16(d * sum as f32).to_le_bytes(), "{ty:?} block {b}: s");
                }
            }
            // The ties of the first block round to even (2.5 → 2), where the reference rounds away (→ 3).
            assert_eq!(got[qs + 1..qs + 3], [(-2i8) as u8, 2]);
            assert_eq!(want_ref[qs + 1..qs + 3], [(-3i8) as u8, 3]);
        }
    }

    #[test]
    fn f16_conversion_is_exact_for_every_half() {
        for bits in 0..=u16::MAX {
            let want = half::f16::from_bits(bits).to_f32();
            let got = super::f16_to_f32(bits);
            assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{bits:#06x}: {got} vs {want}");
        }
    }
}
