//! Q5_K: 256 weights in 8 sub-blocks of 32, `x ≈ d·sc·q − dmin·m` with 5-bit `q` and 6-bit `sc`, `m` per sub-block
//! (176 bytes, 5.5 bits per weight). Q4_K plus one high bit per weight.
//!
//! Port of ggml `ggml-quants.c`: `quantize_row_q5_K_ref`, `dequantize_row_q5_K`. The search and scale packing
//! are shared with Q4_K in [`k_common`](super::k_common).

use super::block::{as_blocks, as_blocks_mut, impl_block, F16Le};
use super::k_common::{get_scale_min_k4, quantize_scale_min_super_block, K_SCALE_SIZE, SUB_BLOCK_32};
use super::QK_K;

/// Largest 5-bit level.
const NMAX: i32 = 31;

/// `block_q5_K` (ggml-common.h). The low 4 bits are laid out as in Q4_K: weight `64·c + l` (l < 32) in the low
/// nibble of `qs[32·c + l]`, weight `64·c + 32 + l` in its high nibble. Their fifth bits are bits `2c` and `2c + 1`
/// of `qh[l]`.
#[repr(C)]
pub struct BlockQ5K {
    /// Super-block scale of the 6-bit scales.
    pub d: F16Le,
    /// Super-block scale of the 6-bit mins.
    pub dmin: F16Le,
    pub scales: [u8; K_SCALE_SIZE],
    pub qh: [u8; QK_K / 8],
    pub qs: [u8; QK_K / 2],
}
impl_block!(BlockQ5K, 176);

/// Port of ggml `quantize_row_q5_K_ref` (what llama.cpp writes for Q5_K without an importance matrix).
pub fn quantize_row_ref(x: &[f32], y: &mut [u8]) {
    for (xb, yb) in x.chunks_exact(QK_K).zip(as_blocks_mut::<BlockQ5K>(y)) {
        let sb = quantize_scale_min_super_block(xb, NMAX, -0.5, 15);
        yb.d = sb.d;
        yb.dmin = sb.dmin;
        yb.scales = sb.scales;
        yb.qh = [0; QK_K / 8];
        for (c, (q, lv)) in yb.qs.chunks_exact_mut(32).zip(sb.levels.chunks_exact(64)).enumerate() {
            for (l, b) in q.iter_mut().enumerate() {
                let (lo, hi) = (lv[l], lv[l + 32]);
                yb.qh[l] |= ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1));
                *b = (lo & 0xF) | ((hi & 0xF) << 4);
            }
        }
    }
}

/// Port of ggml `dequantize_row_q5_K`.
pub fn dequantize_row(x: &[u8], y: &mut [f32]) {
    for (xb, yb) in as_blocks::<BlockQ5K>(x).iter().zip(y.chunks_exact_mut(QK_K)) {
        let (d, dmin) = (xb.d.get(), xb.dmin.get());
        for (c, (q, out)) in xb.qs.chunks_exact(32).zip(yb.chunks_exact_mut(64)).enumerate() {
            let (lo, hi) = out.split_at_mut(SUB_BLOCK_32);
            for (j, half, shift) in [(2 * c, lo, 0), (2 * c + 1, hi, 4)] {
                let (sc, m) = get_scale_min_k4(j, &xb.scales);
                let (dl, ml) = (d * sc as f32, dmin * m as f32);
                for ((o, &b), &h) in half.iter_mut().zip(q).zip(&xb.qh) {
                    let level = ((b >> shift) & 0xF) | (((h >> j) & 1) << 4);
                    *o = dl * level as f32 - ml;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::block::as_blocks_mut;
    use crate::quant::k_common::testing::{assert_constants_round_trip, assert_normal_error_below, Codec};

    const CODEC: Codec = (quantize_row_ref, dequantize_row, 176);

    #[test]
    fn error_on_normal_data_is_bounded() {
        // Measured 0.0360–0.0364.
        assert_normal_error_below(CODEC, 0.04);
    }

    #[test]
    fn constant_and_zero_blocks_round_trip() {
        assert_constants_round_trip(CODEC, 1e-3);
    }

    #[test]
    fn dequantizes_a_hand_built_block() {
        let mut bytes = vec![0u8; 176];
        let b = &mut as_blocks_mut::<BlockQ5K>(&mut bytes)[0];
        b.d = F16Le::from_f32(0.5);
        b.dmin = F16Le::from_f32(0.25);
        b.scales = crate::quant::q4_k::tests::HAND_SCALES;
        b.qs[0] = 0x3A; // weight 0 → low bits 10, weight 32 → 3
        b.qh[0] = 0b01; // weight 0's fifth bit: 26
        b.qs[65] = 0x20; // weight 161 → low bits 2
        b.qh[1] = 1 << 5; // … and its fifth bit (sub-block 5): 18
        let mut y = [0f32; QK_K];
        dequantize_row(&bytes, &mut y);
        assert_eq!(y[0], 0.5 * 2.0 * 26.0 - 0.25 * 4.0);
        assert_eq!(y[32], 0.5 * 3.0);
        assert_eq!(y[161], 0.5 * 33.0 * 18.0 - 0.25 * 17.0);
        assert_eq!(y[160], -0.25 * 17.0);
    }
}
