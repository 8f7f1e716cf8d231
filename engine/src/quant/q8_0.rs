//! Q8_0: 32 weights as i8 with one f16 scale (34 bytes). The simplest block, and the pattern the others follow.
//!
//! Port of ggml `ggml-quants.c`: `quantize_row_q8_0_ref`, `dequantize_row_q8_0`.

use super::block::{as_blocks, as_blocks_mut, c_f32_to_i8, c_max, impl_block, F16Le};

pub const QK8_0: usize = 32;

/// `block_q8_0`: x[i] ≈ d · qs[i].
#[repr(C)]
pub struct BlockQ8_0 {
    pub d: F16Le,
    pub qs: [i8; QK8_0],
}
impl_block!(BlockQ8_0, 34);

pub fn quantize_row_ref(x: &[f32], y: &mut [u8]) {
    for (xb, yb) in x.chunks_exact(QK8_0).zip(as_blocks_mut::<BlockQ8_0>(y)) {
        let amax = xb.iter().fold(0.0f32, |m, v| c_max(m, v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        yb.d.set(d);
        for (q, &v) in yb.qs.iter_mut().zip(xb) {
            // roundf: half away from zero (not nearest_int's half to even).
            *q = c_f32_to_i8((v * id).round());
        }
    }
}

pub fn dequantize_row(x: &[u8], y: &mut [f32]) {
    for (xb, yb) in as_blocks::<BlockQ8_0>(x).iter().zip(y.chunks_exact_mut(QK8_0)) {
        let d = xb.d.get();
        for (o, &q) in yb.iter_mut().zip(&xb.qs) {
            *o = q as f32 * d;
        }
    }
}
