//! Q4_0: 32 weights as 4-bit codes with one signed f16 scale (18 bytes): x ≈ d · (q − 8).
//!
//! The scale comes from the weight of largest magnitude, `max`, with its sign: d = max / −8, so `max` itself lands
//! exactly on code 0 (−8·d) and the opposite side is clipped at code 15 (+7·d). Codes are `x/d + 8` rounded half up
//! by truncating `x/d + 8.5` toward zero — not `nearest_int`, not `roundf`. Weight j of the block sits in the low
//! nibble of `qs[j]` for j < 16 and in the high nibble of `qs[j − 16]` otherwise.
//!
//! Port of ggml `ggml-quants.c`: `quantize_row_q4_0_ref`, `dequantize_row_q4_0` (llama.cpp's `quantize_q4_0` calls
//! the `_ref` row function when there is no importance matrix). Q5_0 reuses [`signed_absmax`].

use super::block::{as_blocks, as_blocks_mut, c_f32_to_i32_array, impl_block, F16Le};

pub const QK4_0: usize = 32;

/// `block_q4_0`: x[j] ≈ d · (((qs[j % 16] >> 4·(j / 16)) & 15) − 8).
#[repr(C)]
pub struct BlockQ4_0 {
    pub d: F16Le,
    pub qs: [u8; QK4_0 / 2],
}
impl_block!(BlockQ4_0, 18);

/// The weight of largest magnitude, with its sign: the first such weight on ties, +0 for a block of zeros, and a
/// NaN never wins — ggml's `if (amax < fabsf(v)) { amax = fabsf(v); max = v; }`, shared by Q4_0 and Q5_0.
///
/// Done in two passes so that the first vectorizes: the largest magnitude (NaNs skipped, so the order of the
/// comparisons cannot change it), then the first weight that has it.
pub(super) fn signed_absmax(xb: &[f32; 32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    for chunk in xb.chunks_exact(8) {
        for (m, &v) in lanes.iter_mut().zip(chunk) {
            // Keep the running value unless |v| is larger: a NaN |v| is never taken.
            *m = if *m < v.abs() { v.abs() } else { *m };
        }
    }
    let amax = lanes.iter().fold(0.0f32, |m, &v| if m < v { v } else { m });
    if amax == 0.0 {
        return 0.0;
    }
    // The winner is +amax or −amax, whichever comes first: compare bit masks of their positions (no branch per
    // weight, so no misprediction at a data-dependent exit).
    let (pos, neg) = xb.iter().enumerate().fold((0u32, 0u32), |(p, n), (j, &v)| {
        (p | ((v == amax) as u32) << j, n | ((v == -amax) as u32) << j)
    });
    if pos.trailing_zeros() < neg.trailing_zeros() {
        amax
    } else {
        -amax
    }
}

/// One 4-bit code from `t`, the C conversion of `x/d + 8.5` to int ([`c_f32_to_i32_array`]): ggml's
/// `MIN(15, (int8_t)(x0 + 8.5f))` stored in a `uint8_t`. The int8 keeps the low byte (x86 converts through a 32-bit
/// int), so NaN or ±inf give 0.
#[inline]
fn code(t: i32) -> u8 {
    (t as i8).min(15) as u8
}

/// Quantizes whole blocks of `x` into `y`. Port of ggml `quantize_row_q4_0_ref`.
pub fn quantize_row_ref(x: &[f32], y: &mut [u8]) {
    for (xb, yb) in x.chunks_exact(QK4_0).zip(as_blocks_mut::<BlockQ4_0>(y)) {
        let xb: &[f32; QK4_0] = xb.try_into().expect("chunks_exact gives whole blocks");
        let d = signed_absmax(xb) / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        yb.d.set(d);
        let t: [i32; QK4_0] = c_f32_to_i32_array(&std::array::from_fn(|j| xb[j] * id + 8.5));
        for (j, q) in yb.qs.iter_mut().enumerate() {
            // As in C, the high code is shifted within a byte: bits above the nibble fall off.
            *q = code(t[j]) | code(t[j + QK4_0 / 2]) << 4;
        }
    }
}

/// Expands whole blocks of `x` into `y`. Port of ggml `dequantize_row_q4_0`.
pub fn dequantize_row(x: &[u8], y: &mut [f32]) {
    for (xb, yb) in as_blocks::<BlockQ4_0>(x).iter().zip(y.chunks_exact_mut(QK4_0)) {
        let d = xb.d.get();
        let (lo, hi) = yb.split_at_mut(QK4_0 / 2);
        for ((&q, o0), o1) in xb.qs.iter().zip(lo).zip(hi) {
            *o0 = ((q & 0x0F) as i32 - 8) as f32 * d;
            *o1 = ((q >> 4) as i32 - 8) as f32 * d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::block::testing::{normal, round_trip_rmse};

    /// ggml's single pass, as written in C: the definition `signed_absmax` must equal.
    fn signed_absmax_one_pass(xb: &[f32]) -> f32 {
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in xb {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        max
    }

    #[test]
    fn signed_absmax_equals_the_single_pass() {
        let mut blocks = vec![[0.0f32; 32], [-0.0; 32], [f32::NAN; 32], [-f32::INFINITY; 32]];
        for seed in 0..200u64 {
            let r = normal(32, seed);
            // Few distinct magnitudes of both signs, so that ties between +a and −a are common.
            let pick = [0.0, -0.0, 2.0, -2.0, 1.0, f32::NAN];
            blocks.push(std::array::from_fn(|j| pick[(r[j].to_bits() % 6) as usize]));
        }
        for b in &blocks {
            assert_eq!(signed_absmax(b).to_bits(), signed_absmax_one_pass(b).to_bits(), "{b:?}");
        }
    }

    #[test]
    fn round_trip_error_on_normal_data() {
        // Measured: 0.0891 (4096 N(0,1) weights; numpy model of the same algorithm: 0.087). Truncating instead of
        // rounding gives ≈ 0.175; a lost or misplaced nibble far more.
        let rmse = round_trip_rmse(quantize_row_ref, dequantize_row, &normal(4096, 1), QK4_0, 18);
        assert!(rmse < 0.10, "rmse {rmse}");
    }

    #[test]
    fn dequantizes_a_hand_built_block() {
        let mut b = [0u8; 18];
        b[..2].copy_from_slice(&F16Le::from_f32(0.5).0);
        for (j, q) in b[2..].iter_mut().enumerate() {
            *q = (j as u8) | (15 - j as u8) << 4;
        }
        let mut y = [0f32; 32];
        dequantize_row(&b, &mut y);
        for j in 0..16 {
            assert_eq!(y[j], (j as f32 - 8.0) * 0.5);
            assert_eq!(y[j + 16], (7.0 - j as f32) * 0.5);
        }
    }

    #[test]
    fn known_answer_quantization() {
        // max = −4 → d = 0.5, id = 2; x = −4 → −8 + 8.5 → 0; x = 3.75 → 16 → clipped at 15; x = 0.25 → 9.
        let mut x = [0.25f32; 32];
        x[3] = -4.0;
        x[20] = 3.75;
        let mut y = [0u8; 18];
        quantize_row_ref(&x, &mut y);
        assert_eq!(F16Le([y[0], y[1]]).get(), 0.5);
        assert_eq!(y[2 + 3], 9 << 4);
        assert_eq!(y[2 + 4], 15 << 4 | 9);
        assert_eq!(y[2], 9 | 9 << 4);
    }

    #[test]
    fn zero_and_constant_blocks() {
        let mut y = [0xAAu8; 36];
        let mut x = [0.0f32; 64];
        x[32..].fill(-2.5);
        quantize_row_ref(&x, &mut y);
        // Zeros: d = 0 / −8 = −0 (sign kept, as in ggml), codes 8. Constant c: d = −c/8, every code 0.
        assert_eq!(&y[..2], &[0x00, 0x80]);
        assert!(y[2..18].iter().all(|&q| q == 0x88));
        assert_eq!(F16Le([y[18], y[19]]).get(), 2.5 / 8.0);
        assert!(y[20..].iter().all(|&q| q == 0));
        let mut back = [1f32; 64];
        dequantize_row(&y, &mut back);
        assert!(back[..32].iter().all(|&v| v == 0.0));
        assert!(back[32..].iter().all(|&v| v == -2.5));
    }
}
