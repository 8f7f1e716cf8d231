//! Q5_1: 32 weights as 5-bit codes with an f16 scale and an f16 minimum (24 bytes): x ≈ d · q + m.
//!
//! Q4_1 with one more bit: m is the block's minimum and d = (max − min) / 31. Codes are `(x − min)/d` rounded half
//! up by truncating `… + 0.5`; unlike Q4_0, Q4_1 and Q5_0 there is no clamp (ggml converts straight to
//! `uint8_t`), since the top weight lands on about 31.5 at most. Bit packing as in Q5_0: low nibbles in `qs`, fifth bit of weight
//! j in bit j of the little-endian u32 `qh`.
//!
//! Port of ggml `ggml-quants.c`: `quantize_row_q5_1_ref`, `dequantize_row_q5_1` (llama.cpp's `quantize_q5_1` calls
//! the `_ref` row function when there is no importance matrix). Q5_1 is also llama.cpp's fallback for Q5_K
//! tensors whose rows are not a multiple of 256.

use super::block::{as_blocks, as_blocks_mut, c_f32_to_i32_array, impl_block, F16Le};
use super::q4_1::min_max;
use super::q5_0::{high_bits, pack_5bit};

pub const QK5_1: usize = 32;

/// `block_q5_1`: x[j] ≈ d · (nibble j | (bit j of qh) << 4) + m, nibbles packed as in Q4_0.
#[repr(C)]
pub struct BlockQ5_1 {
    pub d: F16Le,
    pub m: F16Le,
    pub qh: [u8; 4],
    pub qs: [u8; QK5_1 / 2],
}
impl_block!(BlockQ5_1, 24);

/// Quantizes whole blocks of `x` into `y`. Port of ggml `quantize_row_q5_1_ref`.
pub fn quantize_row_ref(x: &[f32], y: &mut [u8]) {
    for (xb, yb) in x.chunks_exact(QK5_1).zip(as_blocks_mut::<BlockQ5_1>(y)) {
        let xb: &[f32; QK5_1] = xb.try_into().expect("chunks_exact gives whole blocks");
        let (min, max) = min_max(xb);
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        yb.d.set(d);
        yb.m.set(min);
        let t: [i32; QK5_1] = c_f32_to_i32_array(&std::array::from_fn(|j| (xb[j] - min) * id + 0.5));
        // ggml's `(uint8_t)(x0 + 0.5f)`: x86 converts through a 32-bit int and keeps the low byte (NaN or ±inf
        // give 0). No clamp.
        let q: [u8; QK5_1] = std::array::from_fn(|j| t[j] as u8);
        (yb.qs, yb.qh) = pack_5bit(&q);
    }
}

/// Expands whole blocks of `x` into `y`. Port of ggml `dequantize_row_q5_1` (multiply, then add: not fused).
pub fn dequantize_row(x: &[u8], y: &mut [f32]) {
    for (xb, yb) in as_blocks::<BlockQ5_1>(x).iter().zip(y.chunks_exact_mut(QK5_1)) {
        let (d, m) = (xb.d.get(), xb.m.get());
        let qh = u32::from_le_bytes(xb.qh);
        let (lo, hi) = yb.split_at_mut(QK5_1 / 2);
        for (j, ((&q, o0), o1)) in xb.qs.iter().zip(lo).zip(hi).enumerate() {
            let (h0, h1) = high_bits(qh, j);
            *o0 = ((q & 0x0F) | h0) as f32 * d + m;
            *o1 = ((q >> 4) | h1) as f32 * d + m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::block::testing::{normal, round_trip_rmse};

    #[test]
    fn round_trip_error_on_normal_data() {
        // Measured: 0.0368 (4096 N(0,1) weights; numpy model: 0.038). Truncating instead of rounding gives ≈ 0.078,
        // Q4_1's 16 levels ≈ 0.08; a lost fifth bit far more.
        let rmse = round_trip_rmse(quantize_row_ref, dequantize_row, &normal(4096, 4), QK5_1, 24);
        assert!(rmse < 0.042, "rmse {rmse}");
    }

    #[test]
    fn dequantizes_a_hand_built_block() {
        // Codes q[j] = 31 − j: the fifth bit is set for j < 16 (qh = 0x0000FFFF).
        let mut b = [0u8; 24];
        b[..2].copy_from_slice(&F16Le::from_f32(0.125).0);
        b[2..4].copy_from_slice(&F16Le::from_f32(-2.0).0);
        b[4..8].copy_from_slice(&0x0000_FFFFu32.to_le_bytes());
        for (j, q) in b[8..].iter_mut().enumerate() {
            *q = (15 - j as u8) | (15 - j as u8) << 4;
        }
        let mut y = [0f32; 32];
        dequantize_row(&b, &mut y);
        for (j, &v) in y.iter().enumerate() {
            assert_eq!(v, (31 - j) as f32 * 0.125 - 2.0, "weight {j}");
        }
    }

    #[test]
    fn known_answer_quantization() {
        // min = 0, max = 31 → d = 1, id = 1; x = 31 → 31.5 → 31 (all five bits); x = 2.5 → 3.
        let mut x = [2.5f32; 32];
        x[5] = 0.0;
        x[16] = 31.0;
        let mut y = [0u8; 24];
        quantize_row_ref(&x, &mut y);
        assert_eq!(F16Le([y[0], y[1]]).get(), 1.0);
        assert_eq!(F16Le([y[2], y[3]]).get(), 0.0);
        assert_eq!(u32::from_le_bytes([y[4], y[5], y[6], y[7]]), 1 << 16);
        assert_eq!(y[8], 15 << 4 | 3);
        assert_eq!(y[8 + 5], 3 << 4);
        assert_eq!(y[9], 3 << 4 | 3);
    }

    #[test]
    fn zero_and_constant_blocks() {
        let mut y = [0xAAu8; 48];
        let mut x = [0.0f32; 64];
        x[32..].fill(-1e4);
        quantize_row_ref(&x, &mut y);
        // Both: d = 0, m = the constant, every code 0.
        assert!(y[..24].iter().all(|&b| b == 0));
        assert_eq!(F16Le([y[24], y[25]]).get(), 0.0);
        assert_eq!(F16Le([y[26], y[27]]).get(), -1e4);
        assert!(y[28..].iter().all(|&q| q == 0));
        let mut back = [1f32; 64];
        dequantize_row(&y, &mut back);
        assert!(back[..32].iter().all(|&v| v == 0.0));
        assert!(back[32..].iter().all(|&v| v == -1e4));
    }
}
