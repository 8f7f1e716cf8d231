//! Q4_1: 32 weights as 4-bit codes with an f16 scale and an f16 minimum (20 bytes): x ≈ d · q + m.
//!
//! Asymmetric: m is the block's minimum and d = (max − min) / 15, so the whole range [min, max] maps onto codes
//! 0..=15. Codes are `(x − min)/d` rounded half up by truncating `… + 0.5` toward zero. Nibble order as in Q4_0:
//! weight j in the low nibble of `qs[j]` for j < 16, in the high nibble of `qs[j − 16]` otherwise.
//!
//! Port of ggml `ggml-quants.c`: `quantize_row_q4_1_ref`, `dequantize_row_q4_1` (llama.cpp's `quantize_q4_1` calls
//! the `_ref` row function when there is no importance matrix). Q5_1 reuses [`min_max`].

use super::block::{as_blocks, as_blocks_mut, c_f32_to_i32_array, impl_block, F16Le};

pub const QK4_1: usize = 32;

/// `block_q4_1`: x[j] ≈ d · ((qs[j % 16] >> 4·(j / 16)) & 15) + m.
#[repr(C)]
pub struct BlockQ4_1 {
    pub d: F16Le,
    pub m: F16Le,
    pub qs: [u8; QK4_1 / 2],
}
impl_block!(BlockQ4_1, 20);

/// The block's (min, max) as ggml's single pass `if (v < min) min = v; if (v > max) max = v;` finds them, starting
/// from (`f32::MAX`, `−f32::MAX`): NaNs are skipped, and between −0 and +0 the first one seen wins. Shared with Q5_1.
///
/// Computed in eight lanes so that it vectorizes. Without NaNs in the running values, min and max do not depend on
/// the order of comparisons — except for the sign of a zero result, which is then fixed: when the minimum is 0, no
/// weight is negative, so ggml's pass keeps the first zero it meets; likewise for the maximum.
pub(super) fn min_max(xb: &[f32; 32]) -> (f32, f32) {
    let (mut lo, mut hi) = ([f32::MAX; 8], [-f32::MAX; 8]);
    for c in xb.chunks_exact(8) {
        for ((l, h), &v) in lo.iter_mut().zip(&mut hi).zip(c) {
            *l = if v < *l { v } else { *l };
            *h = if v > *h { v } else { *h };
        }
    }
    let min = lo.iter().fold(f32::MAX, |m, &v| if v < m { v } else { m });
    let max = hi.iter().fold(-f32::MAX, |m, &v| if v > m { v } else { m });
    let first_zero = || xb.iter().copied().find(|&v| v == 0.0).unwrap_or(0.0);
    (if min == 0.0 { first_zero() } else { min }, if max == 0.0 { first_zero() } else { max })
}

/// One 4-bit code from `t`, the C conversion of `(x − min)/d + 0.5` to int: ggml's `MIN(15, (int8_t)(x0 + 0.5f))`
/// stored in a `uint8_t`, the int8 keeping the low byte (NaN or ±inf give 0).
#[inline]
fn code(t: i32) -> u8 {
    (t as i8).min(15) as u8
}

/// Quantizes whole blocks of `x` into `y`. Port of ggml `quantize_row_q4_1_ref`.
pub fn quantize_row_ref(x: &[f32], y: &mut [u8]) {
    for (xb, yb) in x.chunks_exact(QK4_1).zip(as_blocks_mut::<BlockQ4_1>(y)) {
        let xb: &[f32; QK4_1] = xb.try_into().expect("chunks_exact gives whole blocks");
        let (min, max) = min_max(xb);
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        yb.d.set(d);
        yb.m.set(min);
        let t: [i32; QK4_1] = c_f32_to_i32_array(&std::array::from_fn(|j| (xb[j] - min) * id + 0.5));
        for (j, q) in yb.qs.iter_mut().enumerate() {
            *q = code(t[j]) | code(t[j + QK4_1 / 2]) << 4;
        }
    }
}

/// Expands whole blocks of `x` into `y`. Port of ggml `dequantize_row_q4_1` (multiply, then add: not fused, as
/// llama.cpp's build computes it).
pub fn dequantize_row(x: &[u8], y: &mut [f32]) {
    for (xb, yb) in as_blocks::<BlockQ4_1>(x).iter().zip(y.chunks_exact_mut(QK4_1)) {
        let (d, m) = (xb.d.get(), xb.m.get());
        let (lo, hi) = yb.split_at_mut(QK4_1 / 2);
        for ((&q, o0), o1) in xb.qs.iter().zip(lo).zip(hi) {
            *o0 = (q & 0x0F) as f32 * d + m;
            *o1 = (q >> 4) as f32 * d + m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::block::testing::{normal, round_trip_rmse};

    /// ggml's single pass, as written in C: the definition `min_max` must equal, zero signs included.
    fn min_max_one_pass(xb: &[f32]) -> (f32, f32) {
        let (mut min, mut max) = (f32::MAX, -f32::MAX);
        for &v in xb {
            if v < min {
                min = v;
            }
            if v > max {
                max = v;
            }
        }
        (min, max)
    }

    #[test]
    fn min_max_equals_the_single_pass() {
        let mut blocks = vec![[0.0f32; 32], [-0.0; 32], [f32::NAN; 32], [f32::INFINITY; 32]];
        // The lanes see +0 (weight 8) before −0 (weight 1); the single pass keeps −0.
        let mut b = [1.0f32; 32];
        (b[1], b[8]) = (-0.0, 0.0);
        blocks.push(b);
        let mut b = [-1.0f32; 32];
        (b[3], b[4], b[20]) = (0.0, -0.0, f32::NAN);
        blocks.push(b);
        for seed in 0..200u64 {
            let r = normal(32, seed);
            let pick = [0.0, -0.0, 1.0, -1.0, f32::NAN, f32::NEG_INFINITY];
            blocks.push(std::array::from_fn(|j| pick[(r[j].to_bits() % 6) as usize]));
        }
        for b in &blocks {
            let (got, want) = (min_max(b), min_max_one_pass(b));
            assert_eq!((got.0.to_bits(), got.1.to_bits()), (want.0.to_bits(), want.1.to_bits()), "{b:?}");
        }
    }

    #[test]
    fn round_trip_error_on_normal_data() {
        // Measured: 0.0786 (4096 N(0,1) weights; numpy model: 0.081). Truncating instead of rounding gives ≈ 0.16;
        // a wrong minimum far more.
        let rmse = round_trip_rmse(quantize_row_ref, dequantize_row, &normal(4096, 2), QK4_1, 20);
        assert!(rmse < 0.09, "rmse {rmse}");
    }

    #[test]
    fn dequantizes_a_hand_built_block() {
        let mut b = [0u8; 20];
        b[..2].copy_from_slice(&F16Le::from_f32(0.25).0);
        b[2..4].copy_from_slice(&F16Le::from_f32(-1.0).0);
        for (j, q) in b[4..].iter_mut().enumerate() {
            *q = (j as u8) | (15 - j as u8) << 4;
        }
        let mut y = [0f32; 32];
        dequantize_row(&b, &mut y);
        for j in 0..16 {
            assert_eq!(y[j], j as f32 * 0.25 - 1.0);
            assert_eq!(y[j + 16], (15 - j) as f32 * 0.25 - 1.0);
        }
    }

    #[test]
    fn known_answer_quantization() {
        // min = −1, max = 2 → d = 0.2, id = 5; x = 0 → 5.5 → 5; x = 2 → 15.5 → 15; x = −1 → 0.
        let mut x = [0.0f32; 32];
        x[0] = -1.0;
        x[17] = 2.0;
        let mut y = [0u8; 20];
        quantize_row_ref(&x, &mut y);
        assert_eq!(&y[..4], &[F16Le::from_f32(0.2).0, F16Le::from_f32(-1.0).0].concat()[..]);
        assert_eq!(y[4], 5 << 4);
        assert_eq!(y[5], 15 << 4 | 5);
        assert_eq!(y[6], 5 << 4 | 5);
    }

    #[test]
    fn zero_and_constant_blocks() {
        let mut y = [0xAAu8; 40];
        let mut x = [0.0f32; 64];
        x[32..].fill(7.125);
        quantize_row_ref(&x, &mut y);
        // Both: d = 0, m = the constant, every code 0.
        assert_eq!(&y[..4], &[0, 0, 0, 0]);
        assert!(y[4..20].iter().all(|&q| q == 0));
        assert_eq!(F16Le([y[20], y[21]]).get(), 0.0);
        assert_eq!(F16Le([y[22], y[23]]).get(), 7.125);
        assert!(y[24..].iter().all(|&q| q == 0));
        let mut back = [1f32; 64];
        dequantize_row(&y, &mut back);
        assert!(back[..32].iter().all(|&v| v == 0.0));
        assert!(back[32..].iter().all(|&v| v == 7.125));
    }
}
