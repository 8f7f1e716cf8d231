//! Kernels for one token (a generated one) against the legacy types: Q4_0, Q5_0 and Q8_0 against Q8_0 activations,
//! Q4_1 and Q5_1 against Q8_1. Files whose rows are not a whole number of 256 weights (SmolLM2's 576) carry these
//! types instead of the k-quants, and the demo file is Q4_1.
//!
//! Four rows are in flight at once, so that each row's chain of multiply-adds (one per block) hides behind the others';
//! they lie one after the other, and the kernel asks for their bytes ahead of the last row's, a cache line at a time,
//! as far ahead as the k-quants' kernels ask ([`prefetch_span`]; counted from the first row's, as it was, rows of 2048
//! Q8_0 weights streamed at 33–40 GB/s on two threads rather than 48–50). Ranges of 256 KB and more were once read as
//! four streams instead, one per quarter, left to the hardware prefetchers: on AMD Zen 4 that was about 2% faster for
//! SmolLM2-135M, but on Zen 5 rows side by side with the software prefetch are faster everywhere (one thread,
//! SmolLM2-135M Q4_K_M, with the prefetch 8 KB ahead: its tied Q8_0 output 825 → 680 µs a token, gate and up 1300 →
//! 1140, tokens 10–15% faster; 4–11% on the AVX2 sets; on two threads 4–16%, in four pairs of runs in turn). For the
//! AVX-512 VNNI set, two rows share a 512-bit register (row p's 32 weights in the low 256 bits, row q's in the high
//! ones, against the token's 32 activations twice over); for the AVX2 sets, one row is in each 256-bit register, and
//! the four rows' scales are converted together.
//!
//! The row kernels of `x86`, one row at a time, spend about eighteen instructions per block and row and ran slower
//! than memory (Q5_0, one thread, cached rows: 12–17 GB/s). These spend about fourteen in 512-bit registers, and
//! about ten where the CPU also has AVX-512 VBMI and GFNI (`rows_of_vbmi`: Q5_0, one thread, rows in L2:
//! 18 → 35 GB/s; from memory, since its loads are plain ones, 33 GB/s, as fast as `rows_of`, and SmolLM2-135M
//! generates 1–5% faster; not on AMD Zen 4, see [`vbmi_preferred`]), and 15–20 GB/s in 256-bit ones (Q4_1: 9–12 →
//! 17–21 GB/s).
//!
//! The sums are those of the row kernels of `x86` (llama.cpp's `ggml_vec_dot_*` for AVX2), bit for bit: per
//! block, 8 lanes of exact integer sums, each of 4 byte products, converted to float and multiply-added by
//! `d·d_a` into 8 float lanes, which are added at the end as `x86::hsum` adds them (plus, for Q4_1 and Q5_1, the
//! row's `Σ m·s`, multiply-added block by block in its own lane).
//!
//! The integer sums are computed another way, which gives the same integers: the weights' codes go in unsigned
//! (0..15, 0..31, or Q8_0's codes + 128) as the unsigned operand of `vpdpbusd` (or of `maddubs`, then `madd`,
//! without VNNI), the activations signed, and the offset comes back out through the activations' sums: each
//! lane's sum starts at `−offset · Σ a` over its 4 bytes, which the token's preparation computes once per call for
//! every row. Without VNNI, Q8_0 keeps the sign trick of `x86`: its codes + 128 would overflow `maddubs`' i16
//! pairs.

use std::arch::x86_64::*;

use super::x86::{dpbusd_acc, fifth_bits, hsum, nibbles};
use super::x86_rows8::{with_buffer, PackedBlock};
use crate::quant::GgmlType;
use super::x86_token::{checked_blocks, in_streams, prefetch_span, HIGH_NIBBLE};

/// A legacy weight type as these kernels read its blocks of 32 weights.
trait Legacy {
    /// Bytes per block.
    const BYTES: usize;
    /// Where the codes start: 16 bytes of nibbles (weight j in the low nibble of byte j, j + 16 in its high one),
    /// or Q8_0's 32 signed bytes.
    const QS: usize;
    /// Where the 32 fifth bits lie (Q5_0, Q5_1), weight j's in bit j of a little-endian u32.
    const QH: Option<usize>;
    /// Whether a min `m` follows `d` (Q4_1, Q5_1, which pair with Q8_1 activations).
    const MIN: bool;
    /// What the unsigned code exceeds the weight's signed code by (0 with a min).
    const OFFSET: i32;
}

/// The types, one line each: block bytes, where the codes and the fifth bits lie, whether a min follows `d`, and
/// the offset of the unsigned codes (ggml's `block_q4_0` … `block_q5_1`; Q4_0's codes are nibble − 8, Q5_0's
/// 5-bit code − 16, Q8_0's signed bytes, which the kernels take + 128).
macro_rules! legacy_types {
    ($($name:ident: $bytes:expr, qs $qs:expr, qh $qh:expr, min $min:expr, offset $offset:expr;)*) => {$(
        struct $name;
        impl Legacy for $name {
            const BYTES: usize = $bytes;
            const QS: usize = $qs;
            const QH: Option<usize> = $qh;
            const MIN: bool = $min;
            const OFFSET: i32 = $offset;
        }
    )*};
}

legacy_types! {
    Q4_0: 18, qs 2, qh None, min false, offset 8;
    Q5_0: 22, qs 6, qh Some(2), min false, offset 16;
    Q8_0: 34, qs 2, qh None, min false, offset 128;
    Q4_1: 20, qs 4, qh None, min true, offset 0;
    Q5_1: 24, qs 8, qh Some(4), min true, offset 0;
}

/// Whether a type's codes are nibbles (all but Q8_0).
const fn has_nibbles<L: Legacy>() -> bool {
    L::BYTES != 34
}

/// One block of the token's activations, laid out for the lanes of a register (see the module's notes).
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Token {
    /// The 32 codes, for both rows of a register.
    codes: [i8; 64],
    /// `−offset ·` the sum of each 4 codes of `codes`, where each lane's integer sum starts.
    start: [i32; 16],
    /// The block's `d` and (Q8_1) `s`.
    d: f32,
    s: f32,
    _pad: [u8; 56],
}

// SAFETY: integers and floats in arrays, `repr(C, align(64))`, 192 bytes (a multiple of 64).
unsafe impl PackedBlock for Token {
    const ROWS: usize = 1;
}

/// Which registers a kernel runs in: 512-bit ones (the AVX-512 VNNI set), or 256-bit ones with or without
/// AVX-VNNI's `vpdpbusd` (the AVX2 sets). `ZMM_VBMI` is `ZMM` with the byte permutes of AVX-512 VBMI, GFNI's
/// affine byte transform ([`vbmi_available`]), for the nibble types: see [`rows_of_vbmi`].
pub(super) const ZMM: u8 = 0;
pub(super) const YMM_VNNI: u8 = 1;
pub(super) const YMM: u8 = 2;
pub(super) const ZMM_VBMI: u8 = 3;

/// AVX-512 VBMI and GFNI on top of the AVX-512 VNNI set (Intel since Ice Lake, AMD since Zen 4; not Skylake or
/// Cascade Lake servers), detected at run time.
pub(super) fn vbmi_available() -> bool {
    super::x86_512::available() && is_x86_feature_detected!("avx512vbmi") && is_x86_feature_detected!("gfni")
}

/// Whether the product's one-token kernels take [`ZMM_VBMI`] rather than [`ZMM`] here: where the CPU has its
/// instructions ([`vbmi_available`]), except on AMD Zen 4 (family 19h), which runs each 512-bit operation as two
/// 256-bit halves. There its byte permutes, affine transform and bit shuffles cost more than the scalar loads and
/// mask moves they replace: Q5_0, one thread, cached rows, 18.6 GB/s against 20.6 with `ZMM`, and SmolLM2-135M
/// Q4_K_M generated tokens took 2.5% less time with `ZMM` (9 series of 256 tokens in one process, each kernel in
/// turn: 0.966–0.983). On Zen 5 (family 1Ah), with whole 512-bit units, `ZMM_VBMI` is the faster by far (18 → 35
/// GB/s); Intel's CPUs keep it too. Either gives the same results, bit for bit.
pub(super) fn vbmi_preferred() -> bool {
    static ZEN4: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    vbmi_available() && !*ZEN4.get_or_init(|| amd_family() == Some(0x19))
}

/// The CPU family (base plus extended, as AMD numbers them) if this is an AMD CPU.
fn amd_family() -> Option<u32> {
    amd_family_model().map(|(family, _)| family)
}

/// The CPU family and model (each with its extended bits, as AMD numbers them) if this is an AMD CPU.
pub(super) fn amd_family_model() -> Option<(u32, u32)> {
    // SAFETY: CPUID is there on every x86-64 CPU; leaf 1 always exists. (Safe to call from Rust 1.87 on.)
    #[allow(unused_unsafe)]
    let id = unsafe { __cpuid(1) };
    let amd = super::x86::cpu_vendor() == *b"AuthenticAMD";
    let (base, model) = ((id.eax >> 8) & 0xF, (id.eax >> 4) & 0xF);
    amd.then(|| match base {
        0xF => (base + ((id.eax >> 20) & 0xFF), model | ((id.eax >> 16) & 0xF) << 4),
        _ => (base, model),
    })
}

/// The one-token kernel for weights of type `ty` in the registers `set` names, or None if `ty` is not a legacy
/// type. Q4_1 and Q5_1 take `maddubs` in 256-bit registers even with AVX-VNNI (their codes are unsigned already;
/// `vpdpbusd` saves only the pairs' sum). Q8_0 has no `ZMM_VBMI` kernel of its own (its codes need no unpacking):
/// it takes the `ZMM` one.
pub(super) fn kernel(ty: GgmlType, set: u8) -> Option<super::Rows8Kernel> {
    fn pick<L: Legacy>(set: u8) -> super::Rows8Kernel {
        match set {
            ZMM_VBMI if has_nibbles::<L>() => one_token::<L, ZMM_VBMI>,
            ZMM | ZMM_VBMI => one_token::<L, ZMM>,
            YMM_VNNI if !L::MIN => one_token::<L, YMM_VNNI>,
            _ => one_token::<L, YMM>,
        }
    }
    Some(match ty {
        GgmlType::Q4_0 => pick::<Q4_0>(set),
        GgmlType::Q5_0 => pick::<Q5_0>(set),
        GgmlType::Q8_0 => pick::<Q8_0>(set),
        GgmlType::Q4_1 => pick::<Q4_1>(set),
        GgmlType::Q5_1 => pick::<Q5_1>(set),
        _ => return None,
    })
}

/// The one-token kernel for weights of type `L`, any number of rows, in the registers `SET` names: `out[r]`, as
/// `x86`'s row kernels sum it (with AVX-VNNI for `ZMM` and `YMM_VNNI`, without for `YMM`).
///
/// # Safety
/// As for a [`Rows8Kernel`](super::Rows8Kernel) (with `n == 1`), on a CPU for which `x86_512::available` holds
/// (`ZMM`), or `x86::available` (and `x86::vnni_available` for `YMM_VNNI`).
unsafe fn one_token<L: Legacy, const SET: u8>(
    w: &[u8],
    rows: usize,
    row_bytes: usize,
    a: &[u8],
    _ar: usize,
    n: usize,
    out: &mut [f32],
) {
    // The activation blocks (Q8_1: f16 d, f16 s, 32 codes; Q8_0: f16 d, 32 codes), then their scales as f32.
    let (ab, scales) = if L::MIN { (36, 2) } else { (34, 1) };
    let nb = checked_blocks(L::BYTES, ab + 4 * scales, w, rows, row_bytes, a, n, out);
    with_buffer::<Token, _>(nb, |y| {
        // SAFETY: AVX2 is there in every set (the caller's contract); `a` holds `nb` blocks and their scales.
        unsafe { prepare::<L>(a, y) };
        let w = w.as_ptr();
        // SAFETY: the features are there (the caller's contract); the rows are whole rows of `w` (checked above)
        // and `y` has their blocks.
        unsafe {
            match SET {
                ZMM => all_rows_zmm::<L>(w, rows, row_bytes, y, out),
                ZMM_VBMI => all_rows_vbmi::<L>(w, rows, row_bytes, y, out),
                _ => all_rows_avx2::<L, SET>(w, rows, row_bytes, y, out),
            }
        }
    })
}

/// [`all_rows`] compiled with the features of [`ZMM`]: the row kernels inline into its loop, and their constants
/// are set up once per call rather than once per four rows. (As calls of their own, one per four rows, they were
/// slower: Zen 5, one thread, 576-wide rows in L2, Q5_0 38.4–39.1 → 39.6–41.4 GB/s, Q8_0 70–72 → 81–83; the AVX2
/// kernels as fast either way; SmolLM2-135M Q4_K_M tokens 3–5% faster on one thread.)
///
/// # Safety
/// As for [`all_rows`], with `x86_512::available`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn all_rows_zmm<L: Legacy>(w: *const u8, rows: usize, rb: usize, y: &[Token], out: &mut [f32]) {
    all_rows::<L, ZMM>(w, rows, rb, y, out)
}

/// [`all_rows`] for [`ZMM_VBMI`], compiled with its features (see [`all_rows_zmm`]).
///
/// # Safety
/// As for [`all_rows`], with [`vbmi_available`].
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,gfni")]
unsafe fn all_rows_vbmi<L: Legacy>(w: *const u8, rows: usize, rb: usize, y: &[Token], out: &mut [f32]) {
    all_rows::<L, ZMM_VBMI>(w, rows, rb, y, out)
}

/// [`all_rows`] for the AVX2 sets, compiled with their features (see [`all_rows_zmm`]).
///
/// # Safety
/// As for [`all_rows`], with `x86::available` (and `x86::vnni_available` for `YMM_VNNI`).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn all_rows_avx2<L: Legacy, const SET: u8>(w: *const u8, rows: usize, rb: usize, y: &[Token], out: &mut [f32]) {
    all_rows::<L, SET>(w, rows, rb, y, out)
}

/// Every row of `w` (`rows` of them, `row_bytes` apart) against the prepared token, four at a time in the
/// registers `SET` names: `out[r]`. The groups of four come from two streams, as the Q4_K and Q6_K kernels take
/// their rows ([`in_streams`]): Intel Xeon (2 vCPUs, family 6 model 167), two threads, SmolLM2-135M
/// Q4_K_M (Q5_0 and Q8_0 but for its 576-wide rows) generated 216–242 → 224–256 tok/s, faster in each of four
/// pairs of runs in turn (each run against the bandwidth measured around it: medians 71–76% → 74–82%); without
/// asking for the second stream's first bytes, a little slower (three pairs).
///
/// # Safety
/// The features of `SET`; `w` holds `rows` whole rows of `y.len()` blocks of type `L`, and `out` room for them.
#[inline(always)]
unsafe fn all_rows<L: Legacy, const SET: u8>(
    w: *const u8,
    rows: usize,
    row_bytes: usize,
    y: &[Token],
    out: &mut [f32],
) {
    let row = |r: usize| r * row_bytes;
    // Rows `four` in flight.
    let four_rows = |four: [usize; 4]| {
        let four = four.map(row);
        // SAFETY: the features are there (the caller's contract); the rows are whole rows of `w` (checked
        // above) and `y` has their blocks.
        unsafe {
            match SET {
                ZMM | ZMM_VBMI => {
                    let pairs = [[four[0], four[1]], [four[2], four[3]]];
                    let o = match SET {
                        ZMM => rows_of::<L, 2>(w, pairs, y),
                        _ => rows_of_vbmi::<L, 2>(w, pairs, y),
                    };
                    o.as_flattened().try_into().expect("4")
                }
                YMM_VNNI => rows_of_avx2::<L, true, 4>(w, four, y),
                _ => rows_of_avx2::<L, false, 4>(w, four, y),
            }
        }
    };
    // The groups of four rows in streams, a group of each in turn.
    let groups = rows / 4;
    in_streams(w, groups, row(4), |g| {
        let r = 4 * g;
        let o: [f32; 4] = four_rows([r, r + 1, r + 2, r + 3]);
        out[r..r + 4].copy_from_slice(&o);
    });
    let mut r = 4 * groups;
    while r < rows {
        // SAFETY: as above.
        unsafe {
            match SET {
                ZMM | ZMM_VBMI => {
                    // The last row of an odd count goes in with itself.
                    let r1 = (r + 1).min(rows - 1);
                    let pair = [[row(r), row(r1)]];
                    [[out[r], out[r1]]] = match SET {
                        ZMM => rows_of::<L, 1>(w, pair, y),
                        _ => rows_of_vbmi::<L, 1>(w, pair, y),
                    };
                    r += 2;
                    continue;
                }
                YMM_VNNI => [out[r]] = rows_of_avx2::<L, true, 1>(w, [row(r)], y),
                _ => [out[r]] = rows_of_avx2::<L, false, 1>(w, [row(r)], y),
            }
        }
        r += 1;
    }
}

/// The software prefetch of a kernel with `rows` in flight, one after the other (their offsets from `w`), at
/// block `ib` of `bytes`: their blocks together, ahead of the last row's ([`prefetch_span`]).
#[inline(always)]
fn prefetch_rows(w: *const u8, rows: &[usize], ib: usize, bytes: usize) {
    if let Some(&last) = rows.last() {
        prefetch_span(w.wrapping_add(last), rows.len() * bytes, ib);
    }
}

/// Lays out one token's activations (`a`: blocks of Q8_1 for types with a min, else Q8_0, then their scales as
/// f32) for [`rows_of`] and [`rows_of_avx2`], a block per element of `y`.
///
/// # Safety
/// AVX2 must be available; `a` holds `y.len()` blocks and their scales.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn prepare<L: Legacy>(a: &[u8], y: &mut [Token]) {
    let (ab, scales) = if L::MIN { (36, 2) } else { (34, 1) };
    let nb = y.len();
    let f32_at = |i: usize| f32::from_le_bytes(a[i..i + 4].try_into().expect("4 bytes"));
    for (ib, p) in y.iter_mut().enumerate() {
        let q = &a[ib * ab + ab - 32..][..32];
        let codes = _mm256_loadu_si256(q.as_ptr().cast());
        // Σ of each 4 codes (by ones: exact in the i16 pairs), times −offset.
        let sums = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), codes), _mm256_set1_epi16(1));
        let start = _mm256_mullo_epi32(sums, _mm256_set1_epi32(-L::OFFSET));
        for h in 0..2 {
            _mm256_store_si256(p.codes[32 * h..].as_mut_ptr().cast(), codes);
            _mm256_store_si256(p.start[8 * h..].as_mut_ptr().cast(), start);
        }
        p.d = f32_at(nb * ab + ib * 4 * scales);
        p.s = if L::MIN { f32_at(nb * ab + ib * 8 + 4) } else { 0.0 };
    }
}

/// The codes of one block (at `x`) as a row kernel of `x86` lays them out, for [`rows_of_avx2`]: unsigned
/// (nibble types, and Q8_0 + 128 with `VNNI`), or Q8_0's signed codes without it (which then go through the sign
/// trick: + 128 would overflow `maddubs`' i16 pairs).
///
/// # Safety
/// AVX2; `x` points to a whole block of type `L`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn codes_avx2<L: Legacy, const VNNI: bool>(x: *const u8) -> __m256i {
    let q = x.add(L::QS);
    if !has_nibbles::<L>() {
        let c = _mm256_loadu_si256(q.cast());
        return if VNNI { _mm256_xor_si256(c, _mm256_set1_epi8(0x80u8 as i8)) } else { c };
    }
    let z = nibbles(std::slice::from_raw_parts(q, 16));
    match L::QH {
        Some(o) => _mm256_or_si256(z, fifth_bits::<true>(std::slice::from_raw_parts(x.add(o), 4), 0x10)),
        None => z,
    }
}

/// `R` rows (their offsets from `w`, one after the other) against the prepared
/// token in 256-bit registers, one row to a register: each row's sum, as the module's notes describe.
///
/// # Safety
/// AVX2 (and AVX-VNNI with `VNNI`); every row offset is that of a whole row of `y.len()` blocks of type `L` in
/// `w`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_of_avx2<L: Legacy, const VNNI: bool, const R: usize>(
    w: *const u8,
    rows: [usize; R],
    y: &[Token],
) -> [f32; R] {
    let mut acc = [_mm256_setzero_ps(); R];
    // Lane i: row i's Σ m·s (Q4_1, Q5_1).
    let mut mins = _mm_setzero_ps();
    let half = |b: *const u8| b.cast::<u16>().read_unaligned() as u64;
    let ones = _mm256_set1_epi16(1);
    for (ib, t) in y.iter().enumerate() {
        let blk = |r: usize| w.add(r + ib * L::BYTES);
        prefetch_rows(w, &rows, ib, L::BYTES);
        let (mut ds, mut ms) = (0u64, 0u64);
        for (i, &r) in rows.iter().enumerate() {
            ds |= half(blk(r)) << (16 * i);
            if L::MIN {
                ms |= half(blk(r).add(2)) << (16 * i);
            }
        }
        // The rows' `d·d_a` in lanes 0..4 and again in 4..8, for `scale_of`.
        let d4 = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi64_si128(ds as i64)), _mm_set1_ps(t.d));
        let d = _mm256_set_m128(d4, d4);
        let y_codes = _mm256_load_si256(t.codes.as_ptr().cast());
        let start = _mm256_load_si256(t.start.as_ptr().cast());
        for (i, &r) in rows.iter().enumerate() {
            let q = codes_avx2::<L, VNNI>(blk(r));
            let s = if VNNI {
                dpbusd_acc(start, q, y_codes)
            } else if !has_nibbles::<L>() {
                // Q8_0: |w| as u8 times sign(w)·a.
                _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(y_codes, q)), ones)
            } else {
                _mm256_add_epi32(start, _mm256_madd_epi16(_mm256_maddubs_epi16(q, y_codes), ones))
            };
            acc[i] = _mm256_fmadd_ps(scale_of(d, i), _mm256_cvtepi32_ps(s), acc[i]);
        }
        if L::MIN {
            mins = _mm_fmadd_ps(_mm_cvtph_ps(_mm_cvtsi64_si128(ms as i64)), _mm_set1_ps(t.s), mins);
        }
    }
    let mut m = [0f32; 4];
    _mm_storeu_ps(m.as_mut_ptr(), mins);
    std::array::from_fn(|i| if L::MIN { hsum(acc[i]) + m[i] } else { hsum(acc[i]) })
}

/// Row `i`'s scale (lane `i` of `d`, whose two 128-bit halves hold the four rows' scales) in all 8 lanes: one
/// `vpermilps` a row, written as assembly because the compiler turns `vpermilps` and `vpermps` alike into its own
/// choice, a `vbroadcastss` from lane 0 after a shuffle for each row but the first (seven shuffles a block of four
/// rows; here five, with the `vinsertf128` that copies the scales into the high half). On AMD Zen 3 those shuffles
/// share two pipes with the unpacking's (the kernel is bound by its vector instructions): one thread, 1024 rows of
/// 576 in L2, four runs each in turn, Q8_0 26.8–27.3 → 28.7–28.9 GB/s, Q4_1 13.5–13.6 → 14.5–14.6, Q5_1 12.2–12.3
/// → 12.8–13.0, Q5_0 12.86–12.91 → 12.96–13.12. (A token of SmolLM2-135M, Q4_K_M or Q4_1, could not tell the
/// two apart on that shared machine: ten runs each in turn, medians within 2%, the runs spread ±15%.)
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scale_of(d: __m256, i: usize) -> __m256 {
    debug_assert!(i < 4, "four rows' scales");
    macro_rules! copies {
        ($imm:literal) => {{
            let out;
            std::arch::asm!("vpermilps {o}, {d}, {imm}", o = lateout(ymm_reg) out, d = in(ymm_reg) d,
                imm = const $imm, options(pure, nomem, nostack, preserves_flags));
            out
        }};
    }
    match i {
        0 => copies!(0x00),
        1 => copies!(0x55),
        2 => copies!(0xAA),
        _ => copies!(0xFF),
    }
}

/// The codes of a block of rows p and q (pointers to their blocks) as unsigned bytes: row p's 32 in the low 256
/// bits, row q's in the high ones.
///
/// # Safety
/// The features; `p` and `q` point to whole blocks of type `L`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn codes<L: Legacy>(p: *const u8, q: *const u8) -> __m512i {
    let (p, q) = (p.add(L::QS), q.add(L::QS));
    if !has_nibbles::<L>() {
        let z = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(p.cast())), _mm256_loadu_si256(q.cast()), 1);
        return _mm512_xor_si512(z, _mm512_set1_epi8(0x80u8 as i8));
    }
    // [p, p, q, q] in 128-bit lanes, the second of each pair shifted down by a nibble.
    let z = _mm512_mask_broadcast_i32x4(_mm512_broadcast_i32x4(_mm_loadu_si128(p.cast())), 0xFF00, _mm_loadu_si128(q.cast()));
    let z = _mm512_and_si512(_mm512_mask_srli_epi16(z, 0xFF00_FF00, z, 4), _mm512_set1_epi8(0xF));
    match L::QH {
        Some(o) => {
            let bits = |b: *const u8| b.sub(L::QS).add(o).cast::<u32>().read_unaligned() as u64;
            _mm512_mask_add_epi8(z, bits(p) | bits(q) << 32, z, _mm512_set1_epi8(0x10))
        }
        None => z,
    }
}

/// `P` pairs of rows (`pairs[k]`: the offsets of rows 2k and 2k + 1 from `w`, all one after the other) against
/// the prepared token: each row's sum, as the module's notes describe.
///
/// # Safety
/// The features; every row offset is that of a whole row of `y.len()` blocks of type `L` in `w`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn rows_of<L: Legacy, const P: usize>(
    w: *const u8,
    pairs: [[usize; 2]; P],
    y: &[Token],
) -> [[f32; 2]; P] {
    // Pair k's d in its rows' lanes: rows 2k and 2k + 1 of the four.
    let spreads = spreads::<P>();
    let mut acc = [_mm512_setzero_ps(); P];
    // Lane i: row i's Σ m·s (Q4_1, Q5_1).
    let mut mins = _mm_setzero_ps();
    let half = |b: *const u8| b.cast::<u16>().read_unaligned() as u64;
    for (ib, t) in y.iter().enumerate() {
        let blk = |r: usize| w.add(r + ib * L::BYTES);
        let (mut ds, mut ms) = (0u64, 0u64);
        prefetch_rows(w, pairs.as_flattened(), ib, L::BYTES);
        for (k, [p, q]) in pairs.iter().enumerate() {
            let (p, q) = (blk(*p), blk(*q));
            ds |= (half(p) | half(q) << 16) << (32 * k);
            if L::MIN {
                ms |= (half(p.add(2)) | half(q.add(2)) << 16) << (32 * k);
            }
        }
        let d = _mm512_castps128_ps512(_mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi64_si128(ds as i64)), _mm_set1_ps(t.d)));
        let y_codes = _mm512_load_si512(t.codes.as_ptr().cast());
        let start = _mm512_load_si512(t.start.as_ptr().cast());
        for (k, [p, q]) in pairs.iter().enumerate() {
            let s = _mm512_dpbusd_epi32(start, codes::<L>(blk(*p), blk(*q)), y_codes);
            acc[k] = _mm512_fmadd_ps(_mm512_permutexvar_ps(spreads[k], d), _mm512_cvtepi32_ps(s), acc[k]);
        }
        if L::MIN {
            mins = _mm_fmadd_ps(_mm_cvtph_ps(_mm_cvtsi64_si128(ms as i64)), _mm_set1_ps(t.s), mins);
        }
    }
    pair_sums::<L, P>(&acc, mins)
}

/// Pair k's `d` in its rows' lanes: the indices of lanes 2k and 2k + 1 of the four rows' scales, each in its row's
/// half of a register.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn spreads<const P: usize>() -> [__m512i; P] {
    std::array::from_fn(|k| {
        _mm512_inserti64x4(_mm512_set1_epi32(2 * k as i32), _mm256_set1_epi32(2 * k as i32 + 1), 1)
    })
}

/// Each pair's two row sums from its register of 8 lanes per row (added as the row kernels add them; for two pairs,
/// all four rows at once, [`four_sums`]), plus, for types with a min, each row's `Σ m·s` (lane i of `mins`: row i
/// of the four).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn pair_sums<L: Legacy, const P: usize>(acc: &[__m512; P], mins: __m128) -> [[f32; 2]; P] {
    if P == 2 {
        let s = four_sums(acc[0], acc[P - 1]);
        let s = if L::MIN { _mm_add_ps(s, mins) } else { s };
        let mut o = [0f32; 4];
        _mm_storeu_ps(o.as_mut_ptr(), s);
        return std::array::from_fn(|k| [o[2 * k], o[2 * k + 1]]);
    }
    let mut m = [0f32; 4];
    _mm_storeu_ps(m.as_mut_ptr(), mins);
    std::array::from_fn(|k| {
        let (sp, sq) = (hsum(_mm512_castps512_ps256(acc[k])), hsum(_mm512_extractf32x8_ps(acc[k], 1)));
        if L::MIN {
            [sp + m[2 * k], sq + m[2 * k + 1]]
        } else {
            [sp, sq]
        }
    })
}

/// The sums of four rows' 8 lanes each (rows 0 and 1 in the halves of `a`, rows 2 and 3 in those of `b`), in
/// lanes 0..4, each added as `x86::hsum` adds one row's, ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7)), but
/// the four rows side by side in the 128-bit lanes of one register: 11 instructions instead of about 30, which for
/// SmolLM2's rows of 18 blocks took a sixth of the kernel's time (sampled). Zen 5, one thread, rows of 576 in L2,
/// three runs each: Q5_0 38.9–39.7 → 40.7–42.3 GB/s, Q8_0 75.8–76.3 → 79.4–80.7, Q4_1 35.3–36.6 → 38.8–39.3.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn four_sums(a: __m512, b: __m512) -> __m128 {
    // Each row's lanes i + 4 onto lanes i (in its first 128 bits; the second gets the same sums).
    let a = _mm512_add_ps(a, _mm512_shuffle_f32x4::<0b10_11_00_01>(a, a));
    let b = _mm512_add_ps(b, _mm512_shuffle_f32x4::<0b10_11_00_01>(b, b));
    // The four rows' x0..x3, one row per 128 bits.
    let x = _mm512_shuffle_f32x4::<0b10_00_10_00>(a, b);
    // [x0 + x2, x1 + x3] in each, then their sum in lane 0.
    let s = _mm512_add_ps(x, _mm512_shuffle_ps::<0b11_10_11_10>(x, x));
    let s = _mm512_add_ps(s, _mm512_movehdup_ps(s));
    _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0), s))
}

/// Byte indices for [`rows_of_vbmi`]'s permutes: byte i is `base + i mod period`, plus `half` in the register's
/// upper half.
const fn index_bytes(base: usize, period: usize, half: usize) -> [u8; 64] {
    let mut a = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        a[i] = (i / 32 * half + base + i % period) as u8;
        i += 1;
    }
    a
}

/// [`rows_of`] for the nibble types with fewer instructions per block, from AVX-512 VBMI and GFNI. A
/// pair's two blocks (22 bytes each for Q5_0) come into one register, row p's at byte 0 and row q's at byte 32:
/// each with a plain 32-byte load, whose bytes past the block lie in the row's next one and are never picked; the
/// last block of a row with a masked load, which reads no byte past it. Masked loads for every block, as this
/// kernel had at first, were as fast on cached rows but starved it on rows from memory: on AMD Zen 5, one thread,
/// rows of 576 Q5_0 weights read from memory (then as four streams), 11–12 GB/s against 32–33 with plain loads
/// (Q4_0: 12 against 34), while the same rows in L2 ran at 39 either way. Then, from that one register:
/// - the codes: one byte permute lays out [p's nibble bytes twice, q's twice] in the four 128-bit lanes, and one
///   affine transform per byte (`gf2p8affineqb`, whose matrix is chosen per 64-bit lane) keeps the low nibble in
///   the first copy and moves the high nibble down in the second;
/// - the fifth bits (Q5_0, Q5_1): the 64-bit word that holds a row's 32 bits is copied to that row's four words,
///   and a multishift (`vpmultishiftqb`) moves weight j's bit to bit 4 of byte j, which one bitwise op (`vpternlogd`)
///   puts into the code. As a bit shuffle (`vpshufbitqmb`) to a mask for an add of 16, as it was, the kernel ran
///   2–5% slower (Zen 5, one thread, Q5_0 in L2, four pairs of runs in turn: 37.4–39.1 against 38.8–40.0 GB/s);
/// - the scales (and mins) of all the rows in flight: one word permute across the pairs' registers.
///
/// Against `rows_of`'s scalar loads, shifts and mask moves, that is 38 instructions per four row-blocks of Q5_0
/// instead of 54, where the kernel had been running out of instructions rather than bandwidth. The integer sums,
/// and so the results, are the same, bit for bit.
///
/// # Safety
/// The features of [`vbmi_available`]; every row offset is that of a whole row of `y.len()` blocks of type `L`
/// in `w`, and `L` has nibbles, at most 32 bytes a block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,gfni")]
unsafe fn rows_of_vbmi<L: Legacy, const P: usize>(
    w: *const u8,
    pairs: [[usize; 2]; P],
    y: &[Token],
) -> [[f32; 2]; P] {
    const { assert!(P == 1 || P == 2, "one or two pairs: the scales' permute takes two registers") };
    // (Q8_0 is built too, for `kernel`'s match, but never handed out.)
    const {
        assert!(!has_nibbles::<L>() || (L::BYTES <= 32 && 2 * L::BYTES >= 32), "a 32-byte load ends in the next block")
    };
    // The bytes of one block, in each half of a register.
    let block: u64 = (1 << L::BYTES) - 1;
    // The nibble bytes of each half, twice, [p, p, q, q]: byte i is byte QS + i mod 16 of row p's half (lanes 0
    // and 1) or row q's (lanes 2 and 3).
    let qs_idx = _mm512_loadu_si512(const { index_bytes(L::QS, 16, 32) }.as_ptr().cast());
    // The affine matrices (one per 64-bit lane): output bit b = input bit b (low nibble) or b + 4 (high), b < 4.
    const LOW: i64 = 0x0102_0408_0000_0000;
    const HIGH: i64 = HIGH_NIBBLE;
    let nibble = _mm512_set_epi64(HIGH, HIGH, LOW, LOW, HIGH, HIGH, LOW, LOW);
    // Fifth bits: the 64-bit word that holds a row's 32 (from its byte QH on, within its first word) in all four
    // of the row's words.
    let qh_word = _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0);
    // For byte j of a row, where the 8 bits start that put weight j's fifth bit at bit 4 (4 below it).
    let fifth_at = const { index_bytes(8 * if let Some(qh) = L::QH { qh } else { 2 } - 4, 32, 0) };
    let fifth_at = _mm512_loadu_si512(fifth_at.as_ptr().cast());
    let sixteen = _mm512_set1_epi8(16);
    // The scales' words (the mins' after them): word 0 and word 16 of each pair's register, pair by pair.
    #[rustfmt::skip]
    let scale_idx = _mm512_set_epi16(
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 49, 33, 17, 1, 48, 32, 16, 0,
    );
    let spreads = spreads::<P>();
    let mut acc = [_mm512_setzero_ps(); P];
    // Lane i: row i's Σ m·s (Q4_1, Q5_1).
    let mut mins = _mm_setzero_ps();
    let last = y.len().saturating_sub(1);
    for (ib, t) in y.iter().enumerate() {
        let blk = |r: usize| w.add(r + ib * L::BYTES);
        prefetch_rows(w, pairs.as_flattened(), ib, L::BYTES);
        let z: [__m512i; P] = std::array::from_fn(|k| {
            let [p, q] = pairs[k];
            if ib < last {
                // 32 bytes from each block: the rest lies in the row's next block (2 · 18 bytes or more).
                let z = _mm512_castsi256_si512(_mm256_loadu_si256(blk(p).cast()));
                _mm512_inserti64x4(z, _mm256_loadu_si256(blk(q).cast()), 1)
            } else {
                let z = _mm512_maskz_loadu_epi8(block, blk(p).cast());
                _mm512_mask_loadu_epi8(z, block << 32, blk(q).wrapping_sub(32).cast())
            }
        });
        // [d_p, d_q] of each pair (and then [m_p, m_q]) as f16, then f32.
        let halves = match P {
            1 => _mm512_permutexvar_epi16(scale_idx, z[0]),
            _ => _mm512_permutex2var_epi16(z[0], scale_idx, z[P - 1]),
        };
        let scales = _mm256_cvtph_ps(_mm512_castsi512_si128(halves));
        let d = _mm512_castps128_ps512(_mm_mul_ps(_mm256_castps256_ps128(scales), _mm_set1_ps(t.d)));
        let y_codes = _mm512_load_si512(t.codes.as_ptr().cast());
        let start = _mm512_load_si512(t.start.as_ptr().cast());
        for k in 0..P {
            let codes = _mm512_gf2p8affine_epi64_epi8::<0>(_mm512_permutexvar_epi8(qs_idx, z[k]), nibble);
            let codes = if L::QH.is_some() {
                let fifth = _mm512_multishift_epi64_epi8(fifth_at, _mm512_permutexvar_epi64(qh_word, z[k]));
                // codes | (fifth & 16)
                _mm512_ternarylogic_epi32::<0xF8>(codes, fifth, sixteen)
            } else {
                codes
            };
            let s = _mm512_dpbusd_epi32(start, codes, y_codes);
            acc[k] = _mm512_fmadd_ps(_mm512_permutexvar_ps(spreads[k], d), _mm512_cvtepi32_ps(s), acc[k]);
        }
        if L::MIN {
            mins = _mm_fmadd_ps(_mm256_extractf128_ps(scales, 1), _mm_set1_ps(t.s), mins);
        }
    }
    pair_sums::<L, P>(&acc, mins)
}

#[cfg(test)]
mod tests {
    use crate::kernels::{act, vec_dot_type, Isa};
    use crate::quant::{block::testing::normal, bytes_for, quantize, GgmlType};

    /// The CPU vendor and, on AMD CPUs, the family and model read from CPUID are the ones Linux reports; on other
    /// CPUs there are none.
    #[test]
    #[cfg(target_os = "linux")]
    fn vendor_and_amd_family_are_the_ones_linux_reports() {
        let info = std::fs::read_to_string("/proc/cpuinfo").expect("/proc/cpuinfo");
        let field = |name: &str| {
            let line = info.lines().find(|l| l.split(':').next().is_some_and(|k| k.trim() == name));
            line.and_then(|l| l.split(':').nth(1)).map(|v| v.trim().to_string())
        };
        let vendor = super::super::x86::cpu_vendor();
        assert_eq!(field("vendor_id").as_deref().map(str::as_bytes), Some(&vendor[..]), "vendor_id");
        let number = |name: &str| field(name).unwrap_or_else(|| panic!("{name}")).parse::<u32>().expect("a number");
        let want = match field("vendor_id").as_deref() {
            Some("AuthenticAMD") => Some((number("cpu family"), number("model"))),
            _ => None,
        };
        assert_eq!(super::amd_family_model(), want);
        assert_eq!(super::amd_family(), want.map(|(family, _)| family));
        if want.is_some_and(|(family, _)| family == 0x19) {
            assert!(!super::vbmi_preferred(), "Zen 4 takes the ZMM kernels");
        }
    }

    /// The one-token kernels equal the row kernels of their set for one token bit for bit, for every legacy type
    /// and every set this CPU has (AVX2, AVX2 with VNNI, AVX-512 VNNI), on rows of 1 to 13 blocks, with 1 to 11 rows
    /// (whole groups of four, and one to three left over) whose scales lie far apart, and activations with an
    /// outlier.
    #[test]
    fn equal_the_row_kernels_bit_for_bit() {
        for blocks in [1, 2, 3, 5, 13] {
            let cols = 32 * blocks;
            let rows = 11;
            for ty in [GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q4_1, GgmlType::Q5_1] {
                assert_equal_to_row_kernels(ty, rows, cols, &Vec::from_iter(1..=rows));
            }
        }
    }

    /// Quantizes `rows` × `cols` random weights to `ty` (row scales far apart) and checks, for each count in
    /// `counts`, that the one-token kernels of every set this CPU has give each of the first that many rows the
    /// row kernel's sum, bit for bit, against activations with an outlier.
    fn assert_equal_to_row_kernels(ty: GgmlType, rows: usize, cols: usize, counts: &[usize]) {
        let sets: Vec<Isa> = [Isa::Avx2, Isa::Avx2Vnni, Isa::Avx512Vnni].into_iter().filter(|s| s.is_available()).collect();
        if sets.len() < 3 {
            eprintln!("only {} of the x86 sets here: the others are skipped", sets.len());
        }
        let blocks = cols / 32;
        let mut src = normal(rows * cols, 21 + blocks as u64);
        for (r, row) in src.chunks_exact_mut(cols).enumerate() {
            row.iter_mut().for_each(|v| *v *= [1.0, 1e-3, 40.0, 3.0, 1e4, 0.2][r % 6]);
        }
        let mut x = normal(cols, 22);
        x[cols / 2] = -60.0;
        let row_bytes = bytes_for(ty, cols).unwrap();
        let mut w = vec![0u8; rows * row_bytes];
        quantize(ty, &src, cols, &mut w).unwrap();
        let act_ty = vec_dot_type(ty).unwrap();
        for &isa in &sets {
            let mut a = Vec::new();
            act::quantize_activations(&crate::team::Pool, isa, act_ty, &x, cols, &mut a);
            let act_row = act::row_layout(isa, act_ty, cols).total;
            // The row kernels' VNNI build is AVX-VNNI's (VEX) `vpdpbusd`, which some CPUs with AVX-512 VNNI lack
            // (AMD Zen 4, Intel Ice Lake): there the AVX-512 set's row kernels go without it.
            let vnni = match isa {
                Isa::Avx2 => false,
                Isa::Avx2Vnni => true,
                _ => super::super::x86::vnni_available(),
            };
            let k = super::super::x86::kernel(ty, rows, 1, vnni).unwrap();
            let want: Vec<f32> = w
                .chunks_exact(row_bytes)
                .map(|row| {
                    let mut want = [0f32];
                    // SAFETY: one whole row and one activation row.
                    unsafe { k(row, &a, act_row, &mut want) };
                    want[0]
                })
                .collect();
            // The kernel the set hands out, and for AVX-512 both builds: with and without VBMI.
            let mut kernels = vec![match isa {
                Isa::Avx512Vnni => super::super::x86_512::rows8_kernel(ty, rows, 1).expect("one").run,
                _ => super::super::x86::rows8_kernel(ty, rows, 1, vnni).expect("a one-token kernel").run,
            }];
            if isa == Isa::Avx512Vnni {
                kernels.push(super::kernel(ty, super::ZMM).expect("a legacy type"));
                if super::vbmi_available() {
                    kernels.push(super::kernel(ty, super::ZMM_VBMI).expect("a legacy type"));
                } else {
                    eprintln!("no AVX-512 VBMI and GFNI here: their kernels are skipped");
                }
            }
            for (build, k1) in kernels.into_iter().enumerate() {
                for &n_rows in counts {
                    let mut got = vec![f32::NAN; n_rows];
                    // SAFETY: the set is available; `n_rows` whole rows, one activation row of `act_row` bytes.
                    unsafe { k1(&w, n_rows, row_bytes, &a, act_row, 1, &mut got) };
                    for (r, (g, e)) in got.iter().zip(&want).enumerate() {
                        let what = format!("{} ({build}) {ty} {cols} cols, {n_rows} rows, row {r}", isa.name());
                        assert_eq!(g.to_bits(), e.to_bits(), "{what}: {g} vs {e}");
                    }
                }
            }
        }
    }
}
