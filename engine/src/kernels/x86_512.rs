//! AVX-512 kernels (with VNNI) for x86-64, for prompts (one token: `x86_token`, `x86_token_legacy`): the legacy
//! types (Q4_0, Q5_0, Q8_0) two rows to a 512-bit register, each call's rows unpacked once (`x86_legacy8`), and
//! Q4_K and Q6_K as `x86_rows8` computes them with 16 rows side by side instead of 8. Everything else runs on the
//! AVX2 kernels of `x86`.
//!
//! The sums are those of the AVX-VNNI row kernels (`x86::signed_q8_0_body`), bit for bit: per block and token, the
//! 8 lanes of sums of 4 byte products, times `d·d_a`, multiply-added into 8 float lanes, which are added at the end
//! as `x86::hsum` adds them. A 512-bit register holds those 8 lanes for two rows, one in each half, so each
//! instruction does the work of two. (On CPUs that run 512-bit instructions at full width, Zen 5 and Intel's server
//! cores, that is twice the work per cycle; on Zen 4, which splits them in two, it still halves the instructions.)
//!
//! The activations come as `act` lays them out for these sets: after each row's blocks and scales, per block the 32
//! codes plus 128 (unsigned) and `d` in 8 lanes; both halves of a register take the same 32 bytes, broadcast from
//! memory.

#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::x86::hsum;
use super::x86_legacy8::{self, PairBlock};
use super::x86_rows8::{pack, pack6, with_buffer, Interleaved, Packed, Packed6, Q6K_BYTES, Q8K_BYTES, QK_BYTES};
use super::ROWS8_GROUP;
use crate::quant::GgmlType;

/// AVX-512 F, BW, DQ, VL and VNNI (with the AVX2, FMA and F16C the AVX2 kernels need), detected at run time.
pub fn available() -> bool {
    super::x86::available()
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni")
}

/// The 8-row kernel for a product of `rows` rows with `n_tokens` tokens, where this set has one (a multiple of 8
/// rows): the legacy types with signed codes, for 4 tokens or more (then for any number); Q4_K and Q6_K with a
/// multiple of 16 rows where `x86` has an 8-row kernel for them (Q4_K's gemm for groups of 4, Q6_K's tiled
/// arithmetic from 8 tokens). For one token, `x86_token`'s Q4_K (a multiple of 8 rows, the `REPACK` gemv) and
/// Q6_K (any rows) kernels, and `x86_token_legacy`'s for the legacy types (any rows).
///
/// Q4_K from 2 tokens on: the tokens after the last group of 4 (all of them, for 2 or 3) go to the one-token
/// kernel, one by one (the same gemv arithmetic as the row kernel's). Intel Xeon, one thread, 2048 rows of 2048
/// in cache: 2 tokens 42 → 56 GMAC/s, 3 tokens 47 → 57, 5 tokens 34 → 38 (before the faster packing); with
/// 256-bit registers the row kernel's tiles stay faster, so the `x86` sets keep them.
pub fn rows8_kernel(ty: GgmlType, rows: usize, n_tokens: usize) -> Option<super::Rows8> {
    if n_tokens == 1 {
        // A generated token: Q4_K and Q6_K (`x86_token`) and the legacy types (`x86_token_legacy`) in 512-bit
        // registers; the rest as the AVX2 set runs it.
        use super::x86_token_legacy::{vbmi_preferred, ZMM, ZMM_VBMI};
        let vbmi = vbmi_preferred();
        let run: super::Rows8Kernel = match ty {
            GgmlType::Q4_K if rows.is_multiple_of(8) && vbmi => super::x86_token::q4_k_q8_k::<ZMM_VBMI>,
            GgmlType::Q4_K if rows.is_multiple_of(8) => super::x86_token::q4_k_q8_k::<ZMM>,
            GgmlType::Q6_K if vbmi => super::x86_token::q6_k_q8_k::<ZMM_VBMI>,
            GgmlType::Q6_K => super::x86_token::q6_k_q8_k::<ZMM>,
            _ => super::x86_token_legacy::kernel(ty, if vbmi { ZMM_VBMI } else { ZMM })?,
        };
        return Some(super::Rows8 { run, group: 1, tail: None });
    }
    let (run, group): (super::Rows8Kernel, usize) = match ty {
        // Not for fewer tokens: with a row pair at a time, the weights (read from memory for a generated token)
        // stream in two interleaved runs, which the prefetchers follow badly; one row after the other is faster.
        GgmlType::Q4_0 if n_tokens >= 4 => (signed::<{ x86_legacy8::Q4_0 }>, 1),
        GgmlType::Q5_0 if n_tokens >= 4 => (signed::<{ x86_legacy8::Q5_0 }>, 1),
        GgmlType::Q8_0 if n_tokens >= 4 => (signed::<{ x86_legacy8::Q8_0 }>, 1),
        GgmlType::Q4_K if rows.is_multiple_of(16) && n_tokens >= 2 => (q4_k_q8_k, ROWS8_GROUP),
        GgmlType::Q6_K if rows.is_multiple_of(16) && n_tokens >= 8 => (q6_k_q8_k, ROWS8_GROUP),
        _ => return None,
    };
    // Q4_K's tail: the kernel a generated token gets for these rows.
    let tail = (ty == GgmlType::Q4_K).then(|| rows8_kernel(ty, rows, 1)).flatten().map(|k| k.run);
    rows.is_multiple_of(8).then_some(super::Rows8 { run, group, tail })
}

/// The legacy type `TY` (`x86_legacy8`'s Q4_0, Q5_0 or Q8_0: signed codes) against Q8_0 with the VNNI extras, two
/// rows to a register: a [`Rows8Kernel`](super::Rows8Kernel) for any even number of rows. The call's rows are
/// unpacked once, with the start of the biased sums (`x86_legacy8::unpack`), for every tile of 16 tokens (then 8,
/// 4, 2, 1) that passes over them while its activations are in L1.
///
/// # Safety
/// As for a [`Rows8Kernel`](super::Rows8Kernel), on a CPU for which [`available`] holds.
unsafe fn signed<const TY: u8>(
    w: &[u8],
    rows: usize,
    row_bytes: usize,
    a: &[u8],
    act_row: usize,
    n: usize,
    out: &mut [f32],
) {
    let wb = x86_legacy8::block_bytes(TY);
    let nb = row_bytes / wb;
    let extra = nb * (34 + 4);
    assert!(row_bytes == nb * wb && rows.is_multiple_of(2) && w.len() >= rows * row_bytes);
    assert!(out.len() >= rows * n && act_row >= extra + 64 * nb && a.len() >= n * act_row, "short slices");
    with_buffer::<PairBlock, _>(rows / 2 * nb, |packed| {
        for (p, blocks) in packed.chunks_exact_mut(nb).enumerate() {
            // SAFETY: the features are there (the caller's contract); the two rows are whole (checked above).
            unsafe { x86_legacy8::unpack::<TY, true>(&w[2 * p * row_bytes..][..2 * row_bytes], row_bytes, blocks) };
        }
        let mut g = 0;
        while g < n {
            let nt = [16, 8, 4, 2, 1].into_iter().find(|&c| c <= n - g).expect("n - g ≥ 1");
            let (a, out) = (a[g * act_row..].as_ptr(), &mut out[g * rows..]);
            for (p, blocks) in packed.chunks_exact(nb).enumerate() {
                // SAFETY: the features are there; the tile's `nt` activation rows were checked above.
                unsafe {
                    match nt {
                        16 => signed_body::<16>(blocks, a, act_row, extra, out, rows, 2 * p),
                        8 => signed_body::<8>(blocks, a, act_row, extra, out, rows, 2 * p),
                        4 => signed_body::<4>(blocks, a, act_row, extra, out, rows, 2 * p),
                        2 => signed_body::<2>(blocks, a, act_row, extra, out, rows, 2 * p),
                        _ => signed_body::<1>(blocks, a, act_row, extra, out, rows, 2 * p),
                    }
                }
            }
            g += nt;
        }
    });
}

/// The unpacked pair of rows `blocks` against `NT` tokens (`a`, `act_row` bytes apart; the biased codes and `d_a`
/// of block `ib` at `extra + 64·ib`), into `out[t·stride + r0]` and `out[t·stride + r0 + 1]`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn signed_body<const NT: usize>(
    blocks: &[PairBlock],
    a: *const u8,
    act_row: usize,
    extra: usize,
    out: &mut [f32],
    stride: usize,
    r0: usize,
) {
    let mut acc = [_mm512_setzero_ps(); NT];
    for (ib, pb) in blocks.iter().enumerate() {
        let q = _mm512_load_si512(pb.codes.as_ptr().cast());
        let start = _mm512_load_si512(pb.aux.as_ptr().cast());
        let dx = _mm512_load_ps(pb.d.as_ptr().cast());
        for t in 0..NT {
            let at = a.add(t * act_row + extra + ib * 64);
            let y = _mm512_broadcast_i64x4(_mm256_loadu_si256(at.cast()));
            let dy = _mm512_broadcast_f32x8(_mm256_loadu_ps(at.add(32).cast()));
            let s = _mm512_dpbusd_epi32(start, y, q);
            acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(dx, dy), _mm512_cvtepi32_ps(s), acc[t]);
        }
    }
    for t in 0..NT {
        out[t * stride + r0] = hsum(_mm512_castps512_ps256(acc[t]));
        out[t * stride + r0 + 1] = hsum(_mm512_extractf32x8_ps(acc[t], 1));
    }
}

// ---- k-quants: 16 rows side by side --------------------------------------------------------------------------

/// Q4_K as `x86_rows8` computes it (the same sums, bit for bit), with 16 rows in the 16 lanes of a 512-bit
/// register instead of 8 in 256 bits: a [`Rows8Kernel`](super::Rows8Kernel) for a multiple of 16 rows.
///
/// # Safety
/// As for a [`Rows8Kernel`](super::Rows8Kernel), on a CPU for which [`available`] holds.
unsafe fn q4_k_q8_k(w: &[u8], rows: usize, row_bytes: usize, a: &[u8], act_row: usize, n: usize, out: &mut [f32]) {
    let kernel = Interleaved { block_bytes: QK_BYTES, pack: pack::<16>, run: gemm16 };
    kernel.product(w, rows, row_bytes, a, act_row, n, out);
}

/// [`q4_k_q8_k`] for Q6_K.
///
/// # Safety
/// As for [`q4_k_q8_k`].
unsafe fn q6_k_q8_k(w: &[u8], rows: usize, row_bytes: usize, a: &[u8], act_row: usize, n: usize, out: &mut [f32]) {
    let kernel = Interleaved { block_bytes: Q6K_BYTES, pack: pack6::<16>, run: tiled16 };
    kernel.product(w, rows, row_bytes, a, act_row, n, out);
}

/// [`ROWS8_GROUP`] tokens against 16 packed Q4_K rows, in llama.cpp's gemm arithmetic (see `x86_rows8::gemm`):
/// `out[t·stride + r]`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn gemm16(packed: &[Packed<16>], a: *const u8, act_row: usize, out: &mut [f32], stride: usize) {
    const T: usize = ROWS8_GROUP;
    let mut acc = [_mm512_setzero_ps(); T];
    let mut acc_m = [_mm512_setzero_ps(); T];
    for (ib, p) in packed.iter().enumerate() {
        // SAFETY (for the reads through `y`): the caller checked that the rows hold the row's Q8_K blocks.
        let y: [*const u8; T] = std::array::from_fn(|t| a.add(t * act_row + ib * Q8K_BYTES));
        let yd: [__m512; T] = std::array::from_fn(|t| _mm512_set1_ps(y[t].cast::<f32>().read_unaligned()));
        let d = _mm512_load_ps(p.d.as_ptr());
        for j in 0..4 {
            let mut v0 = [_mm512_setzero_si512(); T];
            let mut v1 = [_mm512_setzero_si512(); T];
            for e in 0..8 {
                let w0 = _mm512_load_si512(p.codes[2 * j][e].as_ptr().cast());
                let w1 = _mm512_load_si512(p.codes[2 * j + 1][e].as_ptr().cast());
                for t in 0..T {
                    let q = y[t].add(4 + 64 * j + 4 * e);
                    v0[t] = _mm512_dpbusd_epi32(v0[t], w0, _mm512_set1_epi32(q.cast::<i32>().read_unaligned()));
                    v1[t] = _mm512_dpbusd_epi32(v1[t], w1, _mm512_set1_epi32(q.add(32).cast::<i32>().read_unaligned()));
                }
            }
            let s0 = _mm512_load_si512(p.scales[2 * j].as_ptr().cast());
            let s1 = _mm512_load_si512(p.scales[2 * j + 1].as_ptr().cast());
            for t in 0..T {
                let p64 = _mm512_add_epi32(_mm512_mullo_epi32(v0[t], s0), _mm512_mullo_epi32(v1[t], s1));
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p64), _mm512_mul_ps(d, yd[t]), acc[t]);
            }
        }
        let dmin = _mm512_load_ps(p.dmin.as_ptr());
        for t in 0..T {
            let dm = _mm512_mul_ps(dmin, yd[t]);
            for k in 0..4 {
                // The sums of sub-blocks 2k and 2k + 1 (pairs of the bsums of 16), as two i16.
                let b = |i: usize| y[t].add(260 + 2 * i).cast::<i16>().read_unaligned() as i32;
                let (b0, b1) = (b(4 * k) + b(4 * k + 1), b(4 * k + 2) + b(4 * k + 3));
                let pair = _mm512_set1_epi32((b0 & 0xFFFF) | (b1 << 16));
                let mins = _mm512_load_si512(p.min_pairs[k].as_ptr().cast());
                acc_m[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_madd_epi16(mins, pair)), dm, acc_m[t]);
            }
        }
    }
    for t in 0..T {
        _mm512_storeu_ps(out[t * stride..][..16].as_mut_ptr(), _mm512_sub_ps(acc[t], acc_m[t]));
    }
}

/// [`ROWS8_GROUP`] tokens against 16 packed Q6_K rows, in the tiled arithmetic (see `x86_rows8::tiled6`):
/// `out[t·stride + r]`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn tiled16(packed: &[Packed6<16>], a: *const u8, act_row: usize, out: &mut [f32], stride: usize) {
    const T: usize = ROWS8_GROUP;
    let mut acc = [_mm512_setzero_ps(); T];
    for (ib, p) in packed.iter().enumerate() {
        // SAFETY (for the reads through `y`): the caller checked that the rows hold the row's Q8_K blocks.
        let y: [*const u8; T] = std::array::from_fn(|t| a.add(t * act_row + ib * Q8K_BYTES));
        let mut isum = [_mm512_setzero_si512(); T];
        for g in 0..8 {
            for half in 0..2 {
                let mut v = [_mm512_setzero_si512(); T];
                for e in 4 * half..4 * half + 4 {
                    let wv = _mm512_load_si512(p.codes[g][e].as_ptr().cast());
                    for t in 0..T {
                        let q = y[t].add(4 + 32 * g + 4 * e).cast::<i32>().read_unaligned();
                        v[t] = _mm512_dpbusd_epi32(v[t], wv, _mm512_set1_epi32(q));
                    }
                }
                let sc = _mm512_load_si512(p.scales[2 * g + half].as_ptr().cast());
                for t in 0..T {
                    isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(v[t], sc));
                }
            }
        }
        let d = _mm512_load_ps(p.d.as_ptr());
        for t in 0..T {
            // The codes' offset of 32: Σ_s scale_s · bsum_s, pairs of sub-blocks at a time, times 32.
            let mut off = _mm512_setzero_si512();
            for k in 0..8 {
                let pair = _mm512_set1_epi32(y[t].add(260 + 4 * k).cast::<i32>().read_unaligned());
                let scales = _mm512_load_si512(p.scale_pairs[k].as_ptr().cast());
                off = _mm512_add_epi32(off, _mm512_madd_epi16(scales, pair));
            }
            let s = _mm512_sub_epi32(isum[t], _mm512_slli_epi32(off, 5));
            let yd = _mm512_set1_ps(y[t].cast::<f32>().read_unaligned());
            acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s), d), yd, acc[t]);
        }
    }
    for t in 0..T {
        _mm512_storeu_ps(out[t * stride..][..16].as_mut_ptr(), acc[t]);
    }
}

#[cfg(test)]
mod tests {
    use crate::kernels::{act, Isa};
    use crate::quant::{block::testing::normal, bytes_for, quantize, GgmlType};

    /// The legacy types' kernels equal the row kernels the other sets use bit for bit (the same integer sums and
    /// float steps): the biased VNNI ones where the CPU has AVX-VNNI, else the sign trick (the same sums either
    /// way). 31 tokens: passes of 16, 8, 4, 2 and 1 (the tests run the products of 1 and 3 tokens too).
    #[test]
    fn equal_the_row_kernels_bit_for_bit() {
        if !Isa::Avx512Vnni.is_available() {
            eprintln!("no AVX-512 VNNI here: skipped");
            return;
        }
        use crate::kernels::x86;
        crate::kernels::x86_legacy8::tests::equal_the_row_kernels(
            Isa::Avx512Vnni,
            &[(24, 576, 31)],
            super::rows8_kernel,
            |ty, rows, n| x86::kernel(ty, rows, n, x86::vnni_available()),
        );
    }

    /// The 16-row k-quant kernels equal the row kernels' arithmetic for the same product bit for bit (`x86::REPACK`
    /// groups of 4 tokens for Q4_K, `x86::TILED` for Q6_K).
    #[test]
    fn k_quants_equal_the_row_kernels_bit_for_bit() {
        if !Isa::Avx512Vnni.is_available() {
            eprintln!("no AVX-512 VNNI here: skipped");
            return;
        }
        let (rows, cols, n) = (32, 768, 12);
        let mut src = normal(rows * cols, 9);
        for (r, row) in src.chunks_exact_mut(cols).enumerate() {
            row.iter_mut().for_each(|v| *v *= [1.0, 1e-3, 40.0, 3.0][r % 4]);
        }
        let mut x = normal(n * cols, 10);
        x[7] = 40.0;
        let isa = Isa::Avx512Vnni;
        let mut a = Vec::new();
        act::quantize_activations(&crate::team::Pool, isa, GgmlType::Q8_K, &x, cols, &mut a);
        let act_row = act::row_layout(isa, GgmlType::Q8_K, cols).total;
        for ty in [GgmlType::Q4_K, GgmlType::Q6_K] {
            let row_bytes = bytes_for(ty, cols).unwrap();
            let mut w = vec![0u8; rows * row_bytes];
            quantize(ty, &src, cols, &mut w).unwrap();
            let k = super::super::x86::kernel(ty, rows, n, super::super::x86::vnni_available()).unwrap();
            let k16 = super::rows8_kernel(ty, rows, n).expect("a 16-row kernel");
            let mut got = vec![0f32; rows * n];
            // SAFETY: the set is available; `rows` whole rows, `n` activation rows of `act_row` bytes.
            unsafe { (k16.run)(&w, rows, row_bytes, &a, act_row, n, &mut got) };
            for r in 0..rows {
                let wr = &w[r * row_bytes..(r + 1) * row_bytes];
                for t0 in (0..n).step_by(4) {
                    let mut want = [0f32; 4];
                    // SAFETY: one whole row and 4 activation rows.
                    unsafe { k(wr, &a[t0 * act_row..], act_row, &mut want) };
                    for t in t0..t0 + 4 {
                        let v = got[t * rows + r];
                        assert_eq!(v.to_bits(), want[t - t0].to_bits(), "{ty} row {r} token {t}: {v} vs {}", want[t - t0]);
                    }
                }
            }
        }
    }
}
