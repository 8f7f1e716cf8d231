//! Q8_K: 256 weights as i8 with one f32 scale and the sums of each 16 quants (292 bytes). Not a storage type:
//! llama.cpp quantizes activations to it for the k-quant dot products, where `bsums` lets the mins of Q2_K/Q4_K/
//! Q5_K be applied once per sub-block.
//!
//! Port of ggml `ggml-quants.c`: `quantize_row_q8_K_ref`, `dequantize_row_q8_K`. In this llama.cpp version every
//! CPU backend's `quantize_row_q8_K` (x86, ARM, generic) calls the `_ref` function, so there is one definition:
//! `nearest_int` (half to even) against `-127/max`.

use super::block::{as_blocks, as_blocks_mut, impl_block, nearest_int};
use super::k_common::signed_absmax;
use super::QK_K;

/// Quants per entry of `bsums`.
const BSUM_GROUP: usize = 16;

/// `block_q8_K` (ggml-common.h): `x[i] ≈ d · qs[i]`. `d` is an f32 and `bsums` are i16, stored little-endian as
/// byte arrays so the block keeps alignment 1 (the C struct has alignment 4 and the same 292 bytes).
#[repr(C)]
pub struct BlockQ8K {
    pub d: [u8; 4],
    pub qs: [i8; QK_K],
    pub bsums: [[u8; 2]; QK_K / BSUM_GROUP],
}
impl_block!(BlockQ8K, 292);

impl BlockQ8K {
    pub fn d(&self) -> f32 {
        f32::from_le_bytes(self.d)
    }
}

/// Port of ggml `quantize_row_q8_K_ref`.
pub fn quantize_row_ref(x: &[f32], y: &mut [u8]) {
    for (xb, yb) in x.chunks_exact(QK_K).zip(as_blocks_mut::<BlockQ8K>(y)) {
        // The element of largest magnitude, with its sign.
        let (max, amax) = signed_absmax(xb);
        if amax == 0.0 {
            // ggml leaves bsums unwritten here; we zero them, which is what they sum to.
            yb.d = 0.0f32.to_le_bytes();
            yb.qs = [0; QK_K];
            yb.bsums = [[0; 2]; QK_K / BSUM_GROUP];
            continue;
        }
        // −127 rather than −128 keeps the range symmetric (ggml: for IQ2_XXS's AVX dot product); the element
        // at max maps to −127, one of opposite sign and equal size to +127.
        let iscale = -127.0 / max;
        for (q, &v) in yb.qs.iter_mut().zip(xb) {
            *q = nearest_int(iscale * v).min(127) as i8;
        }
        for (s, qs) in yb.bsums.iter_mut().zip(yb.qs.chunks_exact(BSUM_GROUP)) {
            let sum: i32 = qs.iter().map(|&q| q as i32).sum();
            *s = (sum as i16).to_le_bytes();
        }
        yb.d = (1.0 / iscale).to_le_bytes();
    }
}

/// Port of ggml `dequantize_row_q8_K`.
pub fn dequantize_row(x: &[u8], y: &mut [f32]) {
    for (xb, yb) in as_blocks::<BlockQ8K>(x).iter().zip(y.chunks_exact_mut(QK_K)) {
        let d = xb.d();
        for (o, &q) in yb.iter_mut().zip(&xb.qs) {
            *o = d * q as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::k_common::testing::{assert_constants_round_trip, assert_normal_error_below, normal, Codec};

    const CODEC: Codec = (quantize_row_ref, dequantize_row, 292);

    #[test]
    fn error_on_normal_data_is_bounded() {
        // Measured 0.0069–0.0073: one scale for 256 weights puts the step at max|x|/127 ≈ 0.023, so the error is
        // about 0.023/√12.
        assert_normal_error_below(CODEC, 0.0085);
    }

    #[test]
    fn constant_and_zero_blocks_round_trip() {
        assert_constants_round_trip(CODEC, 1e-6);
    }

    #[test]
    fn bsums_are_the_sums_of_sixteen_quants() {
        let x = normal(4 * QK_K, 9);
        let mut bytes = vec![0u8; 4 * 292];
        quantize_row_ref(&x, &mut bytes);
        for b in as_blocks::<BlockQ8K>(&bytes) {
            for (pair, qs) in b.bsums.iter().zip(b.qs.chunks_exact(BSUM_GROUP)) {
                assert_eq!(i16::from_le_bytes(*pair) as i32, qs.iter().map(|&q| q as i32).sum::<i32>());
            }
            // The largest magnitude maps to ±127.
            assert_eq!(b.qs.iter().map(|q| q.unsigned_abs()).max(), Some(127));
        }
    }

    #[test]
    fn dequantizes_a_hand_built_block() {
        let mut bytes = vec![0u8; 292];
        let b = &mut as_blocks_mut::<BlockQ8K>(&mut bytes)[0];
        b.d = 0.25f32.to_le_bytes();
        b.qs[0] = -128;
        b.qs[5] = 3;
        b.qs[255] = 127;
        let mut y = [0f32; QK_K];
        dequantize_row(&bytes, &mut y);
        assert_eq!((y[0], y[5], y[255], y[1]), (-32.0, 0.75, 31.75, 0.0));
    }
}
