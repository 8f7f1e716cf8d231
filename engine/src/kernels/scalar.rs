//! Scalar reference dot products: one weight row against one activation row, per weight type.
//!
//! These are the definitions the SIMD kernels are held to (like ggml's `ggml_vec_dot_*_generic` in
//! `ggml-cpu/quants.c`): integer products of the codes summed per block or sub-block, then scaled by the f32 block
//! scales. Weights are read from their GGUF bytes (layouts documented on the block structs in `crate::quant`);
//! activations are in [`vec_dot_type`](super::vec_dot_type)'s layout, made by [`act`](super::act).
//!
//! Every function takes whole rows whose lengths the caller (`kernels::matmul`) has checked: `w` holds `n` weights
//! and `a` the same `n` activations.

use crate::quant::block::{bf16_to_fp32, fp16_to_fp32};

/// The f16 stored little-endian at `b[i..i + 2]`.
#[inline]
pub(crate) fn f16_at(b: &[u8], i: usize) -> f32 {
    fp16_to_fp32(u16::from_le_bytes(b[i..i + 2].try_into().expect("2 bytes")))
}

/// The f32 stored little-endian at `b[i..i + 4]`.
#[inline]
pub(crate) fn f32_at(b: &[u8], i: usize) -> f32 {
    // One bounds check and one 4-byte load (four indexings would be four byte loads).
    f32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"))
}

/// Q8_K block: f32 d at 0, i8 qs[256] at 4, i16 bsums[16] at 260.
pub(crate) const Q8K_QS: usize = 4;
pub(crate) const Q8K_BSUMS: usize = 260;

#[inline]
fn q8k_bsum(y: &[u8], j: usize) -> i32 {
    i16::from_le_bytes([y[Q8K_BSUMS + 2 * j], y[Q8K_BSUMS + 2 * j + 1]]) as i32
}

/// Σ a·b over two i8 code arrays, exact in i32.
#[inline]
fn dot_i8(a: &[i8], b: &[u8]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| x as i32 * y as i8 as i32).sum()
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K/Q5_K block (ggml `get_scale_min_k4`).
#[inline]
pub(crate) fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// The signed 6-bit scale (−32..32) of sub-block `j` (0..16) of a Q3_K block's 12 packed scale bytes.
#[inline]
pub(crate) fn q3_k_scale(scales: &[u8], j: usize) -> i32 {
    let low = if j < 8 { scales[j] & 0xF } else { scales[j - 8] >> 4 };
    let high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    (low | (high << 4)) as i32 - 32
}

/// The two-bit field of weight `i` (0..256) in Q2_K/Q3_K `qs`: in each half of 128 weights, byte `l` holds weights
/// `l`, `l+32`, `l+64`, `l+96` at bit offsets 0, 2, 4, 6.
#[inline]
fn two_bits(qs: &[u8], i: usize) -> u8 {
    let (half, r) = (i / 128, i % 128);
    (qs[half * 32 + r % 32] >> (2 * (r / 32))) & 3
}

/// Q4_0 × Q8_0 (ggml `ggml_vec_dot_q4_0_q8_0`): codes `nibble − 8`; weight j < 16 in the low nibble of `qs[j]`,
/// j ≥ 16 in the high nibble of `qs[j − 16]`.
pub fn vec_dot_q4_0_q8_0(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (x, y) in w.chunks_exact(18).zip(a.chunks_exact(34)) {
        let mut q = [0i8; 32];
        for j in 0..16 {
            q[j] = (x[2 + j] & 0xF) as i8 - 8;
            q[j + 16] = (x[2 + j] >> 4) as i8 - 8;
        }
        sum += dot_i8(&q, &y[2..34]) as f32 * (f16_at(x, 0) * f16_at(y, 0));
    }
    sum
}

/// Q4_1 × Q8_1 (ggml `ggml_vec_dot_q4_1_q8_1`): codes are unsigned nibbles; the weight minimum `m` meets the
/// activation block sum `s = d·Σq` that Q8_1 carries.
pub fn vec_dot_q4_1_q8_1(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (x, y) in w.chunks_exact(20).zip(a.chunks_exact(36)) {
        let mut q = [0i8; 32];
        for j in 0..16 {
            q[j] = (x[4 + j] & 0xF) as i8;
            q[j + 16] = (x[4 + j] >> 4) as i8;
        }
        sum += dot_i8(&q, &y[4..36]) as f32 * (f16_at(x, 0) * f16_at(y, 0)) + f16_at(x, 2) * f16_at(y, 2);
    }
    sum
}

/// The 32 five-bit codes of a Q5_0/Q5_1 block: nibbles as in Q4_0, fifth bit of code j at bit j of `qh`.
#[inline]
fn q5_codes(qh: &[u8], qs: &[u8]) -> [u8; 32] {
    let h = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    std::array::from_fn(|j| {
        let nib = if j < 16 { qs[j] & 0xF } else { qs[j - 16] >> 4 };
        nib | (((h >> j) & 1) << 4) as u8
    })
}

/// Q5_0 × Q8_0 (ggml `ggml_vec_dot_q5_0_q8_0`): codes `5-bit − 16`.
pub fn vec_dot_q5_0_q8_0(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (x, y) in w.chunks_exact(22).zip(a.chunks_exact(34)) {
        let q = q5_codes(&x[2..6], &x[6..22]).map(|c| c as i8 - 16);
        sum += dot_i8(&q, &y[2..34]) as f32 * (f16_at(x, 0) * f16_at(y, 0));
    }
    sum
}

/// Q5_1 × Q8_1 (ggml `ggml_vec_dot_q5_1_q8_1`).
pub fn vec_dot_q5_1_q8_1(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (x, y) in w.chunks_exact(24).zip(a.chunks_exact(36)) {
        let q = q5_codes(&x[4..8], &x[8..24]).map(|c| c as i8);
        sum += dot_i8(&q, &y[4..36]) as f32 * (f16_at(x, 0) * f16_at(y, 0)) + f16_at(x, 2) * f16_at(y, 2);
    }
    sum
}

/// Q8_0 × Q8_0 (ggml `ggml_vec_dot_q8_0_q8_0`).
pub fn vec_dot_q8_0_q8_0(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (x, y) in w.chunks_exact(34).zip(a.chunks_exact(34)) {
        let q: [i8; 32] = std::array::from_fn(|j| x[2 + j] as i8);
        sum += dot_i8(&q, &y[2..34]) as f32 * (f16_at(x, 0) * f16_at(y, 0));
    }
    sum
}

/// Q2_K × Q8_K (ggml `ggml_vec_dot_q2_K_q8_K`): 16 sub-blocks of 16 with a 4-bit scale (low nibble of
/// `scales[j]`) and a 4-bit min (high nibble), applied through the activation's `bsums`.
/// Layout: scales[16] at 0, qs[64] at 16, d at 80, dmin at 82.
pub fn vec_dot_q2_k_q8_k(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (x, y) in w.chunks_exact(84).zip(a.chunks_exact(292)) {
        let (scales, qs) = (&x[0..16], &x[16..80]);
        let (mut isum, mut summs) = (0i32, 0i32);
        for (j, &sc) in scales.iter().enumerate() {
            let q: [i8; 16] = std::array::from_fn(|l| two_bits(qs, 16 * j + l) as i8);
            isum += (sc & 0xF) as i32 * dot_i8(&q, &y[Q8K_QS + 16 * j..][..16]);
            summs += (sc >> 4) as i32 * q8k_bsum(y, j);
        }
        let yd = f32_at(y, 0);
        sum += yd * f16_at(x, 80) * isum as f32 - yd * f16_at(x, 82) * summs as f32;
    }
    sum
}

/// Q3_K × Q8_K (ggml `ggml_vec_dot_q3_K_q8_K`): codes `2 bits − (high bit clear ? 4 : 0)`, signed 6-bit scales
/// per 16. Layout: hmask[32] at 0 (bit `i / 32` of `hmask[i % 32]`), qs[64] at 32, scales[12] at 96, d at 108.
pub fn vec_dot_q3_k_q8_k(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (x, y) in w.chunks_exact(110).zip(a.chunks_exact(292)) {
        let (hmask, qs, scales) = (&x[0..32], &x[32..96], &x[96..108]);
        let mut isum = 0i32;
        for j in 0..16 {
            let q: [i8; 16] = std::array::from_fn(|l| {
                let i = 16 * j + l;
                let high = if hmask[i % 32] & (1 << (i / 32)) != 0 { 0 } else { 4 };
                two_bits(qs, i) as i8 - high
            });
            isum += q3_k_scale(scales, j) * dot_i8(&q, &y[Q8K_QS + 16 * j..][..16]);
        }
        sum += f32_at(y, 0) * f16_at(x, 108) * isum as f32;
    }
    sum
}

/// Q4_K × Q8_K (ggml `ggml_vec_dot_q4_K_q8_K`): 8 sub-blocks of 32 with 6-bit scale and min.
/// Layout: d at 0, dmin at 2, scales[12] at 4, qs[128] at 16 (weight `64c + l` low nibble of `qs[32c + l]`,
/// `64c + 32 + l` its high nibble).
pub fn vec_dot_q4_k_q8_k(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (x, y) in w.chunks_exact(144).zip(a.chunks_exact(292)) {
        let (scales, qs) = (&x[4..16], &x[16..144]);
        let (mut isum, mut summs) = (0i32, 0i32);
        for j in 0..8 {
            let (sc, m) = scale_min_k4(j, scales);
            let q: [i8; 32] = std::array::from_fn(|l| ((qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0xF) as i8);
            isum += sc as i32 * dot_i8(&q, &y[Q8K_QS + 32 * j..][..32]);
            summs += m as i32 * (q8k_bsum(y, 2 * j) + q8k_bsum(y, 2 * j + 1));
        }
        let yd = f32_at(y, 0);
        sum += yd * f16_at(x, 0) * isum as f32 - yd * f16_at(x, 2) * summs as f32;
    }
    sum
}

/// Q5_K × Q8_K (ggml `ggml_vec_dot_q5_K_q8_K`): Q4_K plus a fifth bit, bit `j` of `qh[l]` for weight `32j + l`.
/// Layout: d at 0, dmin at 2, scales[12] at 4, qh[32] at 16, qs[128] at 48.
pub fn vec_dot_q5_k_q8_k(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (x, y) in w.chunks_exact(176).zip(a.chunks_exact(292)) {
        let (scales, qh, qs) = (&x[4..16], &x[16..48], &x[48..176]);
        let (mut isum, mut summs) = (0i32, 0i32);
        for j in 0..8 {
            let (sc, m) = scale_min_k4(j, scales);
            let q: [i8; 32] = std::array::from_fn(|l| {
                (((qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0xF) | (((qh[l] >> j) & 1) << 4)) as i8
            });
            isum += sc as i32 * dot_i8(&q, &y[Q8K_QS + 32 * j..][..32]);
            summs += m as i32 * (q8k_bsum(y, 2 * j) + q8k_bsum(y, 2 * j + 1));
        }
        let yd = f32_at(y, 0);
        sum += yd * f16_at(x, 0) * isum as f32 - yd * f16_at(x, 2) * summs as f32;
    }
    sum
}

/// Q6_K × Q8_K (ggml `ggml_vec_dot_q6_K_q8_K`): codes `6 bits − 32`, i8 scales per 16. Layout: ql[128] at 0,
/// qh[64] at 128, scales[16] at 192, d at 208; weight `128h + 32k + l` has its low 4 bits in
/// `ql[64h + 32(k % 2) + l] >> 4(k / 2)` and its top 2 in `qh[32h + l] >> 2k`.
pub fn vec_dot_q6_k_q8_k(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (x, y) in w.chunks_exact(210).zip(a.chunks_exact(292)) {
        let (ql, qh, scales) = (&x[0..128], &x[128..192], &x[192..208]);
        let mut isum = 0i32;
        for (j, &sc) in scales.iter().enumerate() {
            let q: [i8; 16] = std::array::from_fn(|l| {
                let i = 16 * j + l;
                let (h, k, l) = (i / 128, (i % 128) / 32, i % 32);
                let low = (ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0xF;
                let high = (qh[32 * h + l] >> (2 * k)) & 3;
                (low | (high << 4)) as i8 - 32
            });
            isum += sc as i8 as i32 * dot_i8(&q, &y[Q8K_QS + 16 * j..][..16]);
        }
        sum += f32_at(y, 0) * f16_at(x, 208) * isum as f32;
    }
    sum
}

/// Sum of products in 8 interleaved f32 partial sums (the order the 8-lane SIMD kernels use), then added pairwise.
#[inline]
fn dot_f32_lanes(n: usize, w: impl Fn(usize) -> f32, a: &[u8]) -> f32 {
    let mut acc = [0.0f32; 8];
    for i in 0..n {
        acc[i % 8] += w(i) * f32_at(a, 4 * i);
    }
    (acc[0] + acc[4] + (acc[2] + acc[6])) + (acc[1] + acc[5] + (acc[3] + acc[7]))
}

/// F32 × F32.
pub fn vec_dot_f32(w: &[u8], a: &[u8]) -> f32 {
    dot_f32_lanes(w.len() / 4, |i| f32_at(w, 4 * i), a)
}

/// F16 × F32: the activation stays f32 (ggml rounds it to f16 first; keeping f32 is never less accurate).
pub fn vec_dot_f16_f32(w: &[u8], a: &[u8]) -> f32 {
    dot_f32_lanes(w.len() / 2, |i| f16_at(w, 2 * i), a)
}

/// BF16 × F32, as for F16.
pub fn vec_dot_bf16_f32(w: &[u8], a: &[u8]) -> f32 {
    dot_f32_lanes(w.len() / 2, |i| bf16_to_fp32(u16::from_le_bytes([w[2 * i], w[2 * i + 1]])), a)
}
