//! Q8_1: 32 weights as i8 with an f16 scale and an f16 precomputed sum (36 bytes): x ≈ d · qs[j].
//!
//! Quantized exactly as Q8_0 (d = amax / 127, codes `roundf(x/d)`, half away from zero); `s = d · Σ qs` is kept so
//! that dot products against Q4_1/Q5_1 weights can apply their minimum without summing the codes again. ggml uses
//! it only for activations (it has no `dequantize_row_q8_1`); the dequantizer here is the evident d · qs, which
//! ignores `s`.
//!
//! Port of ggml `ggml-quants.c`: `quantize_row_q8_1_ref` (the type's `from_float_ref`).

use super::block::{as_blocks, as_blocks_mut, c_f32_to_i8, c_max, impl_block, F16Le};

pub const QK8_1: usize = 32;

/// `block_q8_1`: x[j] ≈ d · qs[j], and s = d · Σ qs (both f16).
#[repr(C)]
pub struct BlockQ8_1 {
    pub d: F16Le,
    pub s: F16Le,
    pub qs: [i8; QK8_1],
}
impl_block!(BlockQ8_1, 36);

/// Quantizes whole blocks of `x` into `y`. Port of ggml `quantize_row_q8_1_ref`.
pub fn quantize_row_ref(x: &[f32], y: &mut [u8]) {
    for (xb, yb) in x.chunks_exact(QK8_1).zip(as_blocks_mut::<BlockQ8_1>(y)) {
        let amax = xb.iter().fold(0.0f32, |m, v| c_max(m, v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        yb.d.set(d);
        let mut sum = 0i32;
        for (q, &v) in yb.qs.iter_mut().zip(xb) {
            // roundf (half away from zero), then C's float → int8 conversion.
            *q = c_f32_to_i8((v * id).round());
            sum += *q as i32;
        }
        // C's `sum*d`: the int sum converted to float, then one multiply (|sum| ≤ 4096, so exact in f32).
        yb.s.set(sum as f32 * d);
    }
}

/// Expands whole blocks of `x` into `y`: d · qs[j]. ggml declares no `dequantize_row_q8_1`; this is the same
/// formula as its `dequantize_row_q8_0`, and gguf-py's Q8_1 dequantizer.
pub fn dequantize_row(x: &[u8], y: &mut [f32]) {
    for (xb, yb) in as_blocks::<BlockQ8_1>(x).iter().zip(y.chunks_exact_mut(QK8_1)) {
        let d = xb.d.get();
        for (o, &q) in yb.iter_mut().zip(&xb.qs) {
            *o = q as f32 * d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::block::testing::{normal, round_trip_rmse};

    #[test]
    fn round_trip_error_on_normal_data() {
        // Measured: 0.00537 (4096 N(0,1) weights; numpy model: 0.0054). Truncating instead of rounding gives ≈ 0.011.
        let rmse = round_trip_rmse(quantize_row_ref, dequantize_row, &normal(4096, 5), QK8_1, 36);
        assert!(rmse < 0.006, "rmse {rmse}");
    }

    #[test]
    fn dequantizes_a_hand_built_block() {
        let mut b = [0u8; 36];
        b[..2].copy_from_slice(&F16Le::from_f32(0.75).0);
        b[2..4].copy_from_slice(&F16Le::from_f32(1e4).0); // s is not used to dequantize
        for (j, q) in b[4..].iter_mut().enumerate() {
            *q = (j as i32 * 8 - 128) as i8 as u8;
        }
        let mut y = [0f32; 32];
        dequantize_row(&b, &mut y);
        for (j, &v) in y.iter().enumerate() {
            assert_eq!(v, (j as f32 * 8.0 - 128.0) * 0.75, "weight {j}");
        }
    }

    #[test]
    fn known_answer_quantization() {
        // amax = 127 → d = 1; codes are roundf(x), half away from zero: 2.5 → 3, −2.5 → −3, 1.49 → 1.
        let mut x = [0.0f32; 32];
        x[0] = 127.0;
        x[1] = -127.0;
        x[2] = 2.5;
        x[3] = -2.5;
        x[4] = 1.49;
        let mut y = [0u8; 36];
        quantize_row_ref(&x, &mut y);
        assert_eq!(F16Le([y[0], y[1]]).get(), 1.0);
        assert_eq!(F16Le([y[2], y[3]]).get(), 1.0); // Σ qs = 127 − 127 + 3 − 3 + 1
        assert_eq!(&y[4..9], &[127, (-127i8) as u8, 3, (-3i8) as u8, 1]);
        assert!(y[9..].iter().all(|&q| q == 0));
    }

    #[test]
    fn zero_and_constant_blocks() {
        let mut y = [0xAAu8; 72];
        let mut x = [0.0f32; 64];
        x[32..].fill(-0.1);
        quantize_row_ref(&x, &mut y);
        assert!(y[..36].iter().all(|&b| b == 0));
        // Constant c < 0: d = |c|/127, every code −127, s = −127·32·d = 32c (rounded to f16).
        let d = 0.1f32 / 127.0;
        assert_eq!(&y[36..40], &[F16Le::from_f32(d).0, F16Le::from_f32(-4064.0 * d).0].concat()[..]);
        assert!(y[40..].iter().all(|&q| q as i8 == -127));
        let mut back = [1f32; 64];
        dequantize_row(&y, &mut back);
        assert!(back[..32].iter().all(|&v| v == 0.0));
        let dq = F16Le::from_f32(d).get();
        assert!(back[32..].iter().all(|&v| v == -127.0 * dq));
    }
}
