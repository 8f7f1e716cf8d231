//! The Q8_K activation quantizer in AVX2 registers: the bytes of ggml's `quantize_row_q8_K_ref` (`quant`'s port),
//! which llama.cpp's CPU backend applies to the activations of every k-quant product on x86-64. Per block of 256:
//! the element of largest magnitude (the first of them, with its sign), `iscale = −127 / max`, the codes
//! `nearest_int(iscale · v)` capped at 127 (the 1.5·2²³ trick, after an unfused multiply, as in C), the sums of
//! each 16 codes, and `d = 1 / iscale`. The reference does this one value at a time; a generated token of
//! SmolLM2-135M quantizes 30 rows of 1536 that way, about 25 µs.

use std::arch::x86_64::*;

use super::x86::{hmax, hsum_i32};
use crate::quant::GgmlType;

/// ggml's `quantize_row_q8_K_ref`, as `quant` ports it.
fn quantize_row_ref(x: &[f32], y: &mut [u8]) {
    (GgmlType::Q8_K.codec().expect("Q8_K has a codec").quantize)(x, y)
}

/// Bytes of a block: `d` (f32), 256 codes, 16 sums (i16).
const BLOCK: usize = 4 + 256 + 32;

/// [`quantize_row_ref`], the same bytes. A block holding a NaN or an infinity goes to the reference itself.
pub fn quantize_row(x: &[f32], y: &mut [u8]) {
    // SAFETY: only handed out by `x86::act_quantizer` after `x86::available()` (AVX2, FMA, F16C) said yes.
    unsafe { quantize_row_avx2(x, y) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_row_avx2(x: &[f32], y: &mut [u8]) {
    let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    for (xb, yb) in x.chunks_exact(256).zip(y.chunks_exact_mut(BLOCK)) {
        let v: [__m256; 32] = std::array::from_fn(|i| _mm256_loadu_ps(xb[8 * i..][..8].as_ptr()));
        let finite = v.iter().all(|&v| {
            // |v| < ∞ is false for ±∞ and NaN.
            let f = _mm256_cmp_ps(_mm256_and_ps(v, abs_mask), _mm256_set1_ps(f32::INFINITY), _CMP_LT_OQ);
            _mm256_movemask_ps(f) == 0xFF
        });
        if !finite {
            quantize_row_ref(xb, yb);
            continue;
        }
        let amax = hmax(v.iter().fold(_mm256_setzero_ps(), |m, &v| _mm256_max_ps(m, _mm256_and_ps(v, abs_mask))));
        if amax == 0.0 {
            quantize_row_ref(xb, yb);
            continue;
        }
        // The first element of that magnitude, with its sign.
        let at = v.iter().enumerate().find_map(|(i, &v)| {
            let eq = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(v, abs_mask), _mm256_set1_ps(amax), _CMP_EQ_OQ));
            (eq != 0).then(|| 8 * i + eq.trailing_zeros() as usize)
        });
        let max = xb[at.expect("amax is one of the magnitudes")];
        let iscale = -127.0 / max;
        let (scale, magic) = (_mm256_set1_ps(iscale), _mm256_set1_ps(12582912.0));
        let (low, half) = (_mm256_set1_epi32(0x007f_ffff), _mm256_set1_epi32(0x0040_0000));
        let q: [__m256i; 32] = std::array::from_fn(|i| {
            let bits = _mm256_castps_si256(_mm256_add_ps(_mm256_mul_ps(scale, v[i]), magic));
            _mm256_min_epi32(_mm256_sub_epi32(_mm256_and_si256(bits, low), half), _mm256_set1_epi32(127))
        });
        yb[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
        // −127 ≤ code ≤ 127: the saturating packs are exact; they interleave 128-bit lanes, which the permute
        // undoes.
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for (k, q) in q.chunks_exact(4).enumerate() {
            let packed = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            let codes = _mm256_permutevar8x32_epi32(packed, order);
            _mm256_storeu_si256(yb[4 + 32 * k..][..32].as_mut_ptr().cast(), codes);
            // The two sums of 16 codes of these 32.
            for (h, q) in q.chunks_exact(2).enumerate() {
                let s = hsum_i32(_mm256_add_epi32(q[0], q[1]));
                let at = 4 + 256 + 2 * (2 * k + h);
                yb[at..at + 2].copy_from_slice(&(s as i16).to_le_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::block::testing::normal;

    /// The bytes of the reference on blocks of every kind: normal values at scales far apart, a block whose
    /// largest magnitude appears first negative then positive (the first wins), zeros, values that round to ±127
    /// exactly and at halves, blocks with a NaN or an infinity (left to the reference), and a million ordinary
    /// values.
    #[test]
    fn equals_the_reference_byte_for_byte() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")) {
            eprintln!("no AVX2 here: skipped");
            return;
        }
        let mut blocks: Vec<Vec<f32>> = Vec::new();
        for (i, scale) in [1.0, 1e-3, 40.0, 1e-30, 3e30].into_iter().enumerate() {
            blocks.push(normal(256, 7 + i as u64).into_iter().map(|v| v * scale).collect());
        }
        let mut tie = normal(256, 40);
        tie[9] = -5.0;
        tie[200] = 5.0;
        blocks.push(tie.clone());
        tie[9] = 5.0;
        tie[200] = -5.0;
        blocks.push(tie);
        blocks.push(vec![0.0; 256]);
        blocks.push((0..256).map(|i| (i as f32 - 128.0) * 0.5).collect());
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut b = normal(256, 50);
            b[77] = bad;
            blocks.push(b);
        }
        // Many ordinary blocks: among a million products, some round (as f32) onto a half, where a fused
        // multiply-add would round the other way.
        for i in 0..4096u64 {
            blocks.push(normal(256, 100 + i).into_iter().map(|v| v * (1.0 + i as f32 / 7.0)).collect());
        }
        let x: Vec<f32> = blocks.concat();
        let (mut want, mut got) = (vec![0u8; blocks.len() * BLOCK], vec![0xAAu8; blocks.len() * BLOCK]);
        quantize_row_ref(&x, &mut want);
        quantize_row(&x, &mut got);
        for (b, (g, w)) in got.chunks_exact(BLOCK).zip(want.chunks_exact(BLOCK)).enumerate() {
            assert_eq!(g, w, "block {b}");
        }
    }
}
