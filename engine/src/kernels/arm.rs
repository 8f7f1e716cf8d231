//! NEON kernels for aarch64 (the algorithms of ggml's `ggml-cpu/arch/arm/quants.c`), for a tile of up to 4 tokens
//! per weight row, each in two flavours chosen at run time:
//!
//! - with the dot-product extension (`DP = true`): `sdot` sums four i8 × i8 products into each i32 lane. Rust's
//!   `vdotq_s32` is still unstable (`stdarch_neon_dotprod`, rustc 1.96), so the instruction is written with `asm!`;
//! - plain NEON (`DP = false`, e.g. Cortex-A53): `smull`/`smlal2` into i16 pairs, then `sadalp` into i32.
//!
//! Unlike x86's `maddubs`, both take signed × signed bytes, so weight codes are made signed (offsets such as Q4_0's
//! −8 or Q6_K's −32 applied to the bytes) and no sign trick is needed. No i16 sum can overflow in the plain path:
//! activation codes are within ±127 (every Q8 quantizer maps the largest magnitude to ±127), so a pair of products is
//! at most 2·128·127 = 32512.
//!
//! NEON is part of the aarch64 baseline, so the intrinsics need no `#[target_feature]`; they are `unsafe` only
//! because they are raw loads or because std marks them so. Every load reads 16 bytes from a slice cut to at least
//! that length.

// The tile loops index several per-token arrays (accumulators, outputs, activation rows) with the same `t`.
#![allow(clippy::needless_range_loop)]

use std::arch::aarch64::*;

use super::scalar::{q3_k_scale, scale_min_k4, Q8K_BSUMS, Q8K_QS};
use super::RowKernel;
use crate::quant::GgmlType;

/// Whether the CPU has the Armv8.2 dot-product instructions (`sdot`/`udot`).
pub fn dotprod_available() -> bool {
    std::arch::is_aarch64_feature_detected!("dotprod")
}

macro_rules! tiled {
    ($body:ident, $dp:expr) => {{
        // SAFETY (for callers): `RowKernel`'s contract — with `$dp`, the CPU has dotprod (checked by `kernel`'s
        // caller through `Isa::is_available`); `w` is one whole row, `a` holds `out.len()` activation rows.
        unsafe fn k(w: &[u8], a: &[u8], ar: usize, out: &mut [f32]) {
            // Tiles of 4 tokens (of the up to `TOKEN_TILE` a call may pass).
            for (i, o) in out.chunks_mut(4).enumerate() {
                let a = &a[i * 4 * ar..];
                match o.len() {
                    1 => $body::<1, $dp>(w, a, ar, o),
                    2 => $body::<2, $dp>(w, a, ar, o),
                    3 => $body::<3, $dp>(w, a, ar, o),
                    _ => $body::<4, $dp>(w, a, ar, o),
                }
            }
        }
        k as RowKernel
    }};
}

macro_rules! both {
    ($body:ident, $dotprod:expr) => {
        if $dotprod {
            tiled!($body, true)
        } else {
            tiled!($body, false)
        }
    };
}

/// The NEON kernel (using `sdot` when `dotprod`) for weights of type `ty`. Every supported type has one.
pub fn kernel(ty: GgmlType, dotprod: bool) -> Option<RowKernel> {
    use GgmlType as T;
    Some(match ty {
        T::Q4_0 => both!(q4_0_q8_0, dotprod),
        T::Q5_0 => both!(q5_0_q8_0, dotprod),
        T::Q8_0 => both!(q8_0_q8_0, dotprod),
        T::Q4_1 => both!(q4_1_q8_1, dotprod),
        T::Q5_1 => both!(q5_1_q8_1, dotprod),
        T::Q2_K => both!(q2_k_q8_k, dotprod),
        T::Q3_K => both!(q3_k_q8_k, dotprod),
        T::Q4_K => both!(q4_k_q8_k, dotprod),
        T::Q5_K => both!(q5_k_q8_k, dotprod),
        T::Q6_K => both!(q6_k_q8_k, dotprod),
        // Float weights: no integer products, so one flavour.
        T::F32 => tiled!(f32_f32, false),
        T::F16 => tiled!(f16_f32, false),
        T::BF16 => tiled!(bf16_f32, false),
        _ => return None,
    })
}

// ---- helpers -------------------------------------------------------------------------------------------------

#[inline(always)]
unsafe fn ld_u8(b: &[u8]) -> uint8x16_t {
    vld1q_u8(b[..16].as_ptr())
}

#[inline(always)]
unsafe fn ld_s8(b: &[u8]) -> int8x16_t {
    vld1q_s8(b[..16].as_ptr().cast())
}

#[inline(always)]
fn f32_at(b: &[u8], i: usize) -> f32 {
    f32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"))
}

#[inline(always)]
fn h(b: &[u8], i: usize) -> f32 {
    super::scalar::f16_at(b, i)
}

/// `acc + Σ` of each 4 adjacent products `a[i]·b[i]`, per i32 lane (with `DP`), or of other groups of 4 (without):
/// callers only ever add the lanes up, so the grouping does not matter.
#[inline(always)]
unsafe fn dot<const DP: bool>(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    if DP {
        let mut acc = acc;
        // SAFETY: only reached in kernels handed out when the CPU has dotprod. `.arch_extension` lets the assembler
        // accept the instruction in a function compiled without the feature.
        std::arch::asm!(
            ".arch_extension dotprod",
            "sdot {0:v}.4s, {1:v}.16b, {2:v}.16b",
            inout(vreg) acc, in(vreg) a, in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
        acc
    } else {
        let p = vmlal_high_s8(vmull_s8(vget_low_s8(a), vget_low_s8(b)), a, b);
        vpadalq_s16(acc, p)
    }
}

/// Σ a·b over 32 bytes given as two halves.
#[inline(always)]
unsafe fn dot32<const DP: bool>(a0: int8x16_t, a1: int8x16_t, y: &[u8]) -> int32x4_t {
    dot::<DP>(dot::<DP>(vdupq_n_s32(0), a0, ld_s8(y)), a1, ld_s8(&y[16..]))
}

/// Low and high nibbles of 16 bytes.
#[inline(always)]
unsafe fn nibbles(b: &[u8]) -> (uint8x16_t, uint8x16_t) {
    let v = ld_u8(b);
    (vandq_u8(v, vdupq_n_u8(0xF)), vshrq_n_u8(v, 4))
}

/// Bits 0..16 and 16..32 of the little-endian u32 at `qh` as bytes 0x10 (set) or 0 (clear).
#[inline(always)]
unsafe fn fifth_bits(qh: &[u8]) -> (uint8x16_t, uint8x16_t) {
    const BIT: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
    let bit = vld1q_u8(BIT.as_ptr());
    let spread = |lo: u8, hi: u8| vandq_u8(vtstq_u8(vcombine_u8(vdup_n_u8(lo), vdup_n_u8(hi)), bit), vdupq_n_u8(0x10));
    (spread(qh[0], qh[1]), spread(qh[2], qh[3]))
}

#[inline(always)]
unsafe fn s8(v: uint8x16_t) -> int8x16_t {
    vreinterpretq_s8_u8(v)
}

// ---- legacy types (blocks of 32) ----------------------------------------------------------------------------

/// `$codes(x)` gives the block's 32 signed codes as two halves; `$scales` says whether the pair is Q8_1 (d, s
/// and a minimum `m` at x[2..4]) or Q8_0 (d only). Activation rows: blocks of `$ab` bytes, codes at `$aq`, then f32
/// scales per block (see `act::row_layout`).
macro_rules! legacy_body {
    ($name:ident, $wb:expr, $ab:expr, $aq:expr, $with_min:expr, |$x:ident| $codes:expr) => {
        unsafe fn $name<const NT: usize, const DP: bool>(w: &[u8], a: &[u8], ar: usize, out: &mut [f32]) {
            let nb = w.len() / $wb;
            let per = if $with_min { 8 } else { 4 };
            let mut acc = [vdupq_n_f32(0.0); NT];
            let mut mins = [0.0f32; NT];
            for (ib, $x) in w.chunks_exact($wb).enumerate() {
                let (c0, c1): (int8x16_t, int8x16_t) = $codes;
                let dx = h($x, 0);
                for t in 0..NT {
                    let p = dot32::<DP>(c0, c1, &a[t * ar + ib * $ab + $aq..]);
                    let ys = t * ar + nb * $ab + ib * per;
                    acc[t] = vfmaq_n_f32(acc[t], vcvtq_f32_s32(p), dx * f32_at(a, ys));
                    if $with_min {
                        mins[t] += h($x, 2) * f32_at(a, ys + 4);
                    }
                }
            }
            for t in 0..NT {
                out[t] = vaddvq_f32(acc[t]) + mins[t];
            }
        }
    };
}

legacy_body!(q8_0_q8_0, 34, 34, 2, false, |x| (ld_s8(&x[2..]), ld_s8(&x[18..])));
legacy_body!(q4_0_q8_0, 18, 34, 2, false, |x| {
    let (lo, hi) = nibbles(&x[2..]);
    (vsubq_s8(s8(lo), vdupq_n_s8(8)), vsubq_s8(s8(hi), vdupq_n_s8(8)))
});
legacy_body!(q5_0_q8_0, 22, 34, 2, false, |x| {
    let (lo, hi) = nibbles(&x[6..]);
    let (h0, h1) = fifth_bits(&x[2..]);
    (vsubq_s8(s8(vorrq_u8(lo, h0)), vdupq_n_s8(16)), vsubq_s8(s8(vorrq_u8(hi, h1)), vdupq_n_s8(16)))
});
legacy_body!(q4_1_q8_1, 20, 36, 4, true, |x| {
    let (lo, hi) = nibbles(&x[4..]);
    (s8(lo), s8(hi))
});
legacy_body!(q5_1_q8_1, 24, 36, 4, true, |x| {
    let (lo, hi) = nibbles(&x[8..]);
    let (h0, h1) = fifth_bits(&x[4..]);
    (s8(vorrq_u8(lo, h0)), s8(vorrq_u8(hi, h1)))
});

// ---- k-quants against Q8_K (f32 d, i8 qs[256] at 4, i16 bsums[16] at 260) --------------------------------------

/// Σ_j m[j] · (bsums[2j] + bsums[2j+1]) for the 8 mins of a Q4_K/Q5_K block.
#[inline(always)]
unsafe fn mins_dot_bsums8(m: &[u8; 8], y: &[u8]) -> i32 {
    let b = vld1q_s16(y[Q8K_BSUMS..Q8K_BSUMS + 32].as_ptr().cast());
    let b2 = vld1q_s16(y[Q8K_BSUMS + 16..Q8K_BSUMS + 32].as_ptr().cast());
    let pairs = vpaddq_s16(b, b2);
    let mv = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(m.as_ptr())));
    vaddvq_s32(vaddq_s32(vmull_s16(vget_low_s16(mv), vget_low_s16(pairs)), vmull_high_s16(mv, pairs)))
}

/// Q4_K and Q5_K: `$codes(x, j)` gives sub-block j's 32 codes (0..32) as two halves.
macro_rules! q4_5_k_body {
    ($name:ident, $wb:expr, |$x:ident, $j:ident| $codes:expr) => {
        unsafe fn $name<const NT: usize, const DP: bool>(w: &[u8], a: &[u8], ar: usize, out: &mut [f32]) {
            let mut sum = [0.0f32; NT];
            for (ib, $x) in w.chunks_exact($wb).enumerate() {
                let sm: [(u8, u8); 8] = std::array::from_fn(|j| scale_min_k4(j, &$x[4..16]));
                let mins: [u8; 8] = std::array::from_fn(|j| sm[j].1);
                let mut isum = [vdupq_n_s32(0); NT];
                for $j in 0..8 {
                    let (c0, c1): (int8x16_t, int8x16_t) = $codes;
                    for t in 0..NT {
                        let p = dot32::<DP>(c0, c1, &a[t * ar + ib * 292 + Q8K_QS + 32 * $j..]);
                        isum[t] = vmlaq_n_s32(isum[t], p, sm[$j].0 as i32);
                    }
                }
                let (d, dmin) = (h($x, 0), h($x, 2));
                for t in 0..NT {
                    let y = &a[t * ar + ib * 292..][..292];
                    let yd = f32_at(y, 0);
                    let summs = mins_dot_bsums8(&mins, y);
                    sum[t] += yd * d * vaddvq_s32(isum[t]) as f32 - yd * dmin * summs as f32;
                }
            }
            out[..NT].copy_from_slice(&sum);
        }
    };
}

// Q4_K: qs[128] at 16: sub-block j in the low (j even) or high nibbles of qs[32(j/2)..].
q4_5_k_body!(q4_k_q8_k, 144, |x, j| {
    let q = &x[16 + 32 * (j / 2)..];
    let sh = vdupq_n_s8(-4 * (j % 2) as i8);
    let c = |v: uint8x16_t| s8(vandq_u8(vshlq_u8(v, sh), vdupq_n_u8(0xF)));
    (c(ld_u8(q)), c(ld_u8(&q[16..])))
});
// Q5_K: qh[32] at 16, qs[128] at 48; fifth bit of weight 32j + l is bit j of qh[l].
q4_5_k_body!(q5_k_q8_k, 176, |x, j| {
    let q = &x[48 + 32 * (j / 2)..];
    let sh = vdupq_n_s8(-4 * (j % 2) as i8);
    let bit = vdupq_n_u8(1 << j);
    let c = |v: uint8x16_t, hb: uint8x16_t| {
        let high = vandq_u8(vtstq_u8(hb, bit), vdupq_n_u8(0x10));
        s8(vorrq_u8(vandq_u8(vshlq_u8(v, sh), vdupq_n_u8(0xF)), high))
    };
    (c(ld_u8(q), ld_u8(&x[16..])), c(ld_u8(&q[16..]), ld_u8(&x[32..])))
});

/// The k-quants with 16 sub-blocks of 16 (Q2_K, Q3_K, Q6_K): `$codes(x, hf, k)` gives the 32 signed codes of group
/// `k` of half `hf` (sub-blocks 8hf + 2k and 8hf + 2k + 1), `$scale(x, j)` sub-block j's integer scale and `$mins`
/// an optional `(dmin, mins)` for Q2_K, applied through the bsums.
macro_rules! k16_body {
    ($name:ident, $wb:expr, d = |$xd:ident| $d:expr, codes = |$x:ident, $hf:ident, $k:ident| $codes:expr,
     scale = |$xs:ident, $js:ident| $scale:expr, mins = |$xm:ident| $mins:expr) => {
        unsafe fn $name<const NT: usize, const DP: bool>(w: &[u8], a: &[u8], ar: usize, out: &mut [f32]) {
            let mut sum = [0.0f32; NT];
            for (ib, $x) in w.chunks_exact($wb).enumerate() {
                let sc: [i32; 16] = std::array::from_fn(|$js| {
                    let $xs = $x;
                    $scale as i32
                });
                let mut isum = [vdupq_n_s32(0); NT];
                for $hf in 0..2 {
                    for $k in 0..4 {
                        let (c0, c1): (int8x16_t, int8x16_t) = $codes;
                        let j = 8 * $hf + 2 * $k;
                        for t in 0..NT {
                            let y = &a[t * ar + ib * 292 + Q8K_QS + 32 * (4 * $hf + $k)..];
                            let p0 = dot::<DP>(vdupq_n_s32(0), c0, ld_s8(y));
                            let p1 = dot::<DP>(vdupq_n_s32(0), c1, ld_s8(&y[16..]));
                            isum[t] = vmlaq_n_s32(vmlaq_n_s32(isum[t], p0, sc[j]), p1, sc[j + 1]);
                        }
                    }
                }
                let $xd = $x;
                let d = $d;
                let $xm = $x;
                let mins: Option<(f32, [i32; 16])> = $mins;
                for t in 0..NT {
                    let y = &a[t * ar + ib * 292..][..292];
                    let yd = f32_at(y, 0);
                    sum[t] += yd * d * vaddvq_s32(isum[t]) as f32;
                    if let Some((dmin, m)) = mins {
                        let summs: i32 = (0..16)
                            .map(|j| m[j] * i16::from_le_bytes([y[Q8K_BSUMS + 2 * j], y[Q8K_BSUMS + 2 * j + 1]]) as i32)
                            .sum();
                        sum[t] -= yd * dmin * summs as f32;
                    }
                }
            }
            out[..NT].copy_from_slice(&sum);
        }
    };
}

/// The 2-bit fields of group `k` of half `hf` of Q2_K/Q3_K `qs` (32 bytes per half), as two halves of bytes 0..4.
#[inline(always)]
unsafe fn two_bits(qs: &[u8], hf: usize, k: usize) -> (uint8x16_t, uint8x16_t) {
    let sh = vdupq_n_s8(-2 * k as i8);
    let f = |v: uint8x16_t| vandq_u8(vshlq_u8(v, sh), vdupq_n_u8(3));
    (f(ld_u8(&qs[32 * hf..])), f(ld_u8(&qs[32 * hf + 16..])))
}

// Q6_K: ql[128] at 0, qh[64] at 128, i8 scales[16] at 192, d at 208; code = (4 low bits | 2 high bits << 4) − 32.
k16_body!(q6_k_q8_k, 210, d = |x| h(x, 208),
    codes = |x, hf, k| {
        let ql = &x[64 * hf + 32 * (k % 2)..];
        let qh = &x[128 + 32 * hf..];
        let (lsh, hsh) = (vdupq_n_s8(-4 * (k / 2) as i8), vdupq_n_s8(-2 * k as i8));
        let c = |l: uint8x16_t, hb: uint8x16_t| {
            let low = vandq_u8(vshlq_u8(l, lsh), vdupq_n_u8(0xF));
            let high = vshlq_n_u8(vandq_u8(vshlq_u8(hb, hsh), vdupq_n_u8(3)), 4);
            vsubq_s8(s8(vorrq_u8(low, high)), vdupq_n_s8(32))
        };
        (c(ld_u8(ql), ld_u8(qh)), c(ld_u8(&ql[16..]), ld_u8(&qh[16..])))
    },
    scale = |x, j| x[192 + j] as i8,
    mins = |_x| None);

// Q3_K: hmask[32] at 0, qs[64] at 32, scales[12] at 96, d at 108; code = 2 bits − (high bit clear ? 4 : 0), the
// high bit of weight 128hf + 32k + l being bit 4hf + k of hmask[l].
k16_body!(q3_k_q8_k, 110, d = |x| h(x, 108),
    codes = |x, hf, k| {
        let (l0, l1) = two_bits(&x[32..], hf, k);
        let bit = vdupq_n_u8(1 << (4 * hf + k));
        let c = |l: uint8x16_t, hm: uint8x16_t| {
            let minus = vbicq_u8(vdupq_n_u8(4), vtstq_u8(hm, bit));
            vsubq_s8(s8(l), s8(minus))
        };
        (c(l0, ld_u8(x)), c(l1, ld_u8(&x[16..])))
    },
    scale = |x, j| q3_k_scale(&x[96..108], j),
    mins = |_x| None);

// Q2_K: scales[16] at 0 (scale low nibble, min high nibble), qs[64] at 16, d at 80, dmin at 82.
k16_body!(q2_k_q8_k, 84, d = |x| h(x, 80),
    codes = |x, hf, k| {
        let (l0, l1) = two_bits(&x[16..], hf, k);
        (s8(l0), s8(l1))
    },
    scale = |x, j| x[j] & 0xF,
    mins = |x| Some((h(x, 82), std::array::from_fn(|j| (x[j] >> 4) as i32))));

// ---- float weights against f32 activations --------------------------------------------------------------------

/// `$load` (with `$b` the 4 weights' bytes) gives 4 weights as f32; a tail of fewer than 4 goes through `$one`.
macro_rules! float_body {
    ($name:ident, $size:expr, |$b:ident| $load:expr, |$w:ident, $r:ident| $one:expr) => {
        unsafe fn $name<const NT: usize, const DP: bool>(w: &[u8], a: &[u8], ar: usize, out: &mut [f32]) {
            let n = w.len() / $size;
            let mut acc = [vdupq_n_f32(0.0); NT];
            let mut i = 0;
            while i + 4 <= n {
                let $b = &w[i * $size..][..4 * $size];
                let wv: float32x4_t = $load;
                for t in 0..NT {
                    let av = &a[t * ar + 4 * i..][..16];
                    acc[t] = vfmaq_f32(acc[t], wv, vld1q_f32(av.as_ptr().cast()));
                }
                i += 4;
            }
            for t in 0..NT {
                let mut s = vaddvq_f32(acc[t]);
                for $r in i..n {
                    let $w = w;
                    s += $one * f32_at(a, t * ar + 4 * $r);
                }
                out[t] = s;
            }
        }
    };
}

/// Four f16 → f32, exactly, in integer NEON (Rust's `float16x4_t` conversions are unstable): the method of
/// `x86::f16_to_f32`, lane-wise.
#[inline(always)]
unsafe fn f16x4_to_f32(b: &[u8]) -> float32x4_t {
    let h = vld1_u16(b[..8].as_ptr().cast());
    let w = vshlq_n_u32(vmovl_u16(h), 16);
    let sign = vandq_u32(w, vdupq_n_u32(0x8000_0000));
    let two_w = vaddq_u32(w, w);
    let normalized = vmulq_f32(
        vreinterpretq_f32_u32(vaddq_u32(vshrq_n_u32(two_w, 4), vdupq_n_u32(0xE0 << 23))),
        vdupq_n_f32(f32::from_bits(0x0780_0000)),
    );
    let denormalized = vsubq_f32(
        vreinterpretq_f32_u32(vorrq_u32(vshrq_n_u32(two_w, 17), vdupq_n_u32(126 << 23))),
        vdupq_n_f32(0.5),
    );
    let is_denormal = vcltq_u32(two_w, vdupq_n_u32(1 << 27));
    let bits = vbslq_u32(is_denormal, vreinterpretq_u32_f32(denormalized), vreinterpretq_u32_f32(normalized));
    vreinterpretq_f32_u32(vorrq_u32(sign, bits))
}

float_body!(f32_f32, 4, |b| vld1q_f32(b.as_ptr().cast()), |w, r| f32_at(w, 4 * r));
float_body!(f16_f32, 2, |b| f16x4_to_f32(b), |w, r| h(w, 2 * r));
float_body!(
    bf16_f32,
    2,
    |b| vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(b.as_ptr().cast()), 16)),
    |w, r| f32::from_bits((u16::from_le_bytes([w[2 * r], w[2 * r + 1]]) as u32) << 16)
);
