//! Prompt kernels for the legacy types with signed codes (Q4_0, Q5_0, Q8_0) against Q8_0, many rows per call:
//! each call unpacks its rows once ([`unpack`]) for all its tiles of tokens, where the row kernels
//! (`x86::signed_q8_0_body`) unpack every block again for each tile of 8. The sums are the row kernels', bit for
//! bit. Here the AVX2 kernel with ggml's sign trick ([`rows`]); `x86_512` reads the same unpacked rows, with the
//! start of the biased VNNI sums in them instead of the codes' magnitudes.
//!
//! Unpacking is most of the difference for Q5_0, whose fifth bits take a dozen instructions per block: on AMD
//! Zen 4, unpacked once per tile of 16 tokens, it took a fifth of the AVX-512 kernel's time.

#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::x86::{fifth_bits, h8, hsum, nibbles};
use super::x86_rows8::{with_buffer, PackedBlock};

/// The types, as the const parameter of [`unpack`] and [`rows`].
pub(super) const Q4_0: u8 = 0;
pub(super) const Q5_0: u8 = 1;
pub(super) const Q8_0: u8 = 2;

/// Bytes of one weight block of type `ty` (f16 `d`, then the codes).
pub(super) const fn block_bytes(ty: u8) -> usize {
    match ty {
        Q4_0 => 18,
        Q5_0 => 22,
        _ => 34,
    }
}

/// A block of a pair of rows, unpacked (row `h` in the `h`-th half of each field, so that a 512-bit register loads
/// both rows): each row's 32 signed codes; what its sums need besides: the codes' magnitudes (the unsigned operand
/// of the sign trick) or `−128 · Σ` of each 4 codes (the start of the biased VNNI sums), see [`unpack`]; and the
/// row's `d` in 8 lanes.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub(super) struct PairBlock {
    pub codes: [[i8; 32]; 2],
    pub aux: [[i32; 8]; 2],
    pub d: [[f32; 8]; 2],
}

// SAFETY: integers and floats in arrays, `repr(C, align(64))`, 192 bytes (a multiple of 64).
unsafe impl PackedBlock for PairBlock {
    const ROWS: usize = 2;
}

/// The 32 codes of a weight block `x` of type `TY`, as signed bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn codes<const TY: u8>(x: &[u8]) -> __m256i {
    match TY {
        // Nibble − 8.
        Q4_0 => _mm256_sub_epi8(nibbles(&x[2..]), _mm256_set1_epi8(8)),
        // The 5-bit code − 16 is the nibble with 0xF0 ORed in where the fifth bit is clear (two's complement).
        Q5_0 => _mm256_or_si256(nibbles(&x[6..]), fifth_bits::<false>(&x[2..], 0xF0u8 as i8)),
        _ => _mm256_loadu_si256(x[2..34].as_ptr().cast()),
    }
}

/// The blocks of two whole rows of type `TY` (`w`, the second `row_bytes` after the first) into `blocks`, one per
/// block column. With `START` the `aux` of each row is `−128 · Σ` of each 4 codes (for `x86_512`'s biased sums:
/// 128 times each code, pairs added in i16, where ±128 · 255 fits, then pairs of pairs), else the codes'
/// magnitudes (`sign(q, q)`, as the sign trick takes them).
///
/// # Safety
/// AVX2, FMA and F16C must be available.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn unpack<const TY: u8, const START: bool>(w: &[u8], row_bytes: usize, blocks: &mut [PairBlock]) {
    let wb = block_bytes(TY);
    for (ib, pb) in blocks.iter_mut().enumerate() {
        for h in 0..2 {
            let x = &w[h * row_bytes + ib * wb..][..wb];
            let q = codes::<TY>(x);
            let aux = if START {
                let by_128 = _mm256_maddubs_epi16(_mm256_set1_epi8(0x80u8 as i8), q);
                _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_madd_epi16(by_128, _mm256_set1_epi16(1)))
            } else {
                _mm256_sign_epi8(q, q)
            };
            _mm256_store_si256(pb.codes[h].as_mut_ptr().cast(), q);
            _mm256_store_si256(pb.aux[h].as_mut_ptr().cast(), aux);
            _mm256_store_ps(pb.d[h].as_mut_ptr(), h8(x, 0));
        }
    }
}

/// The AVX2 kernel for type `TY` with the sign trick: a [`Rows8Kernel`](super::Rows8Kernel) for any even number of
/// rows, the rows of the call unpacked once, then tiles of 8 tokens (4, 2, 1 for the rest) against every row while
/// the tile's activations are in L1.
///
/// # Safety
/// As for a [`Rows8Kernel`](super::Rows8Kernel): AVX2, FMA and F16C must be available.
pub(super) unsafe fn rows<const TY: u8>(
    w: &[u8],
    rows: usize,
    row_bytes: usize,
    a: &[u8],
    act_row: usize,
    n: usize,
    out: &mut [f32],
) {
    let wb = block_bytes(TY);
    let nb = row_bytes / wb;
    // The activations: blocks of 34 bytes (f16 d, 32 codes), then each block's d as f32.
    let used = nb * (34 + 4);
    assert!(row_bytes == nb * wb && rows.is_multiple_of(2) && w.len() >= rows * row_bytes);
    assert!(out.len() >= rows * n && act_row >= used && a.len() >= n * act_row, "short slices");
    with_buffer::<PairBlock, _>(rows / 2 * nb, |packed| {
        for (p, blocks) in packed.chunks_exact_mut(nb).enumerate() {
            // SAFETY: the features are there (the caller's contract); the two rows are whole (checked above).
            unsafe { unpack::<TY, false>(&w[2 * p * row_bytes..][..2 * row_bytes], row_bytes, blocks) };
        }
        let mut g = 0;
        while g < n {
            let nt = [8, 4, 2, 1].into_iter().find(|&c| c <= n - g).expect("n - g ≥ 1");
            let (a, out) = (a[g * act_row..].as_ptr(), &mut out[g * rows..]);
            for (p, blocks) in packed.chunks_exact(nb).enumerate() {
                for h in 0..2 {
                    let r = 2 * p + h;
                    // SAFETY: the features are there; the tile's `nt` activation rows were checked above.
                    unsafe {
                        match nt {
                            8 => body::<8>(blocks, h, a, act_row, out, rows, r),
                            4 => body::<4>(blocks, h, a, act_row, out, rows, r),
                            2 => body::<2>(blocks, h, a, act_row, out, rows, r),
                            _ => body::<1>(blocks, h, a, act_row, out, rows, r),
                        }
                    }
                }
            }
            g += nt;
        }
    });
}

/// Row `h` of the unpacked pair `blocks` against `NT` tokens (`a`, `act_row` bytes apart, each with the blocks'
/// activations and their d), into `out[t·stride + r]`: per block, 8 lanes of sums of 4 products (|w| times
/// sign(w)·a, `maddubs`, pairs added with `madd`), times `d·d_a`, multiply-added into 8 lanes, as
/// `x86::signed_q8_0_body` sums them.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn body<const NT: usize>(
    blocks: &[PairBlock],
    h: usize,
    a: *const u8,
    act_row: usize,
    out: &mut [f32],
    stride: usize,
    r: usize,
) {
    let nb = blocks.len();
    let mut acc = [_mm256_setzero_ps(); NT];
    for (ib, pb) in blocks.iter().enumerate() {
        let q = _mm256_load_si256(pb.codes[h].as_ptr().cast());
        let aq = _mm256_load_si256(pb.aux[h].as_ptr().cast());
        let dx = _mm256_load_ps(pb.d[h].as_ptr());
        for t in 0..NT {
            let row = a.add(t * act_row);
            let yq = _mm256_loadu_si256(row.add(ib * 34 + 2).cast());
            let p = _mm256_madd_epi16(_mm256_maddubs_epi16(aq, _mm256_sign_epi8(yq, q)), _mm256_set1_epi16(1));
            let dy = _mm256_set1_ps(row.add(nb * 34 + ib * 4).cast::<f32>().read_unaligned());
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dx, dy), _mm256_cvtepi32_ps(p), acc[t]);
        }
    }
    for t in 0..NT {
        out[t * stride + r] = hsum(acc[t]);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use crate::kernels::{act, Isa, RowKernel, Rows8};
    use crate::quant::{block::testing::normal, bytes_for, quantize, GgmlType};

    /// Checks that the many-row kernel `k8(ty, rows, n)` gives what the row kernel `row(ty, rows, n)` gives, bit for
    /// bit, for Q4_0, Q5_0 and Q8_0 weights of `rows × cols` (rows of very different scales) against `n` tokens
    /// (one activation an outlier) laid out for `isa`, for each `(rows, cols, n)` of `shapes`. The caller makes
    /// sure the CPU has `isa`.
    pub(in crate::kernels) fn equal_the_row_kernels(
        isa: Isa,
        shapes: &[(usize, usize, usize)],
        k8: impl Fn(GgmlType, usize, usize) -> Option<Rows8>,
        row: impl Fn(GgmlType, usize, usize) -> Option<RowKernel>,
    ) {
        for &(rows, cols, n) in shapes {
            let mut src = normal(rows * cols, 11);
            for (r, row) in src.chunks_exact_mut(cols).enumerate() {
                row.iter_mut().for_each(|v| *v *= [1.0, 1e-3, 40.0][r % 3]);
            }
            let mut x = normal(n * cols, 12);
            x[5] = -30.0;
            let mut a = Vec::new();
            act::quantize_activations(&crate::team::Pool, isa, GgmlType::Q8_0, &x, cols, &mut a);
            let act_row = act::row_layout(isa, GgmlType::Q8_0, cols).total;
            for ty in [GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q8_0] {
                let row_bytes = bytes_for(ty, cols).unwrap();
                let mut w = vec![0u8; rows * row_bytes];
                quantize(ty, &src, cols, &mut w).unwrap();
                let k = row(ty, rows, n).expect("a row kernel");
                let k8 = k8(ty, rows, n).expect("a many-row kernel");
                assert_eq!(k8.group, 1);
                let mut got = vec![0f32; rows * n];
                // SAFETY: the set is available (the caller's word); `rows` whole rows, `n` activation rows.
                unsafe { (k8.run)(&w, rows, row_bytes, &a, act_row, n, &mut got) };
                for r in 0..rows {
                    let mut want = vec![0f32; n];
                    // SAFETY: one whole row and `n` activation rows.
                    unsafe { k(&w[r * row_bytes..(r + 1) * row_bytes], &a, act_row, &mut want) };
                    for (t, want) in want.iter().enumerate() {
                        let v = got[t * rows + r];
                        let at = format!("{ty} {cols} columns, row {r} token {t}");
                        assert_eq!(v.to_bits(), want.to_bits(), "{at}: {v} vs {want}");
                    }
                }
            }
        }
    }

    /// The AVX2 kernels equal the AVX2 row kernels (the sign trick) bit for bit, over tiles of 8, 4, 2 and 1
    /// tokens; a changed rounding fails this (a multiply and an add for the multiply-add did).
    #[test]
    fn equal_the_row_kernels_bit_for_bit() {
        if !Isa::Avx2.is_available() {
            eprintln!("no AVX2 here: skipped");
            return;
        }
        use crate::kernels::x86;
        equal_the_row_kernels(
            Isa::Avx2,
            &[(24, 576, 39), (8, 64, 16)],
            |ty, rows, n| x86::rows8_kernel(ty, rows, n, false),
            |ty, rows, n| x86::kernel(ty, rows, n, false),
        );
    }
}
