//! Q4_K: 256 weights in 8 sub-blocks of 32, `x ≈ d·sc·q − dmin·m` with 4-bit `q` and 6-bit `sc`, `m` per sub-block
//! (144 bytes, 4.5 bits per weight). The default type of llama.cpp's Q4_K_M mix.
//!
//! Port of ggml `ggml-quants.c`: `quantize_row_q4_K_ref`, `dequantize_row_q4_K`. The search and scale packing
//! are shared with Q5_K in [`k_common`](super::k_common).

use super::block::{as_blocks, as_blocks_mut, impl_block, F16Le};
use super::k_common::{get_scale_min_k4, quantize_scale_min_super_block, K_SCALE_SIZE, SUB_BLOCK_32};
use super::QK_K;

/// Largest 4-bit level.
const NMAX: i32 = 15;

/// `block_q4_K` (ggml-common.h). Weight `64·c + l` (l < 32) is the low nibble of `qs[32·c + l]`, weight
/// `64·c + 32 + l` its high nibble; sub-block `j`'s 6-bit scale and min are packed in `scales` (see
/// [`get_scale_min_k4`]).
#[repr(C)]
pub struct BlockQ4K {
    /// Super-block scale of the 6-bit scales.
    pub d: F16Le,
    /// Super-block scale of the 6-bit mins.
    pub dmin: F16Le,
    pub scales: [u8; K_SCALE_SIZE],
    pub qs: [u8; QK_K / 2],
}
impl_block!(BlockQ4K, 144);

/// Port of ggml `quantize_row_q4_K_ref` (what llama.cpp writes for Q4_K without an importance matrix).
pub fn quantize_row_ref(x: &[f32], y: &mut [u8]) {
    for (xb, yb) in x.chunks_exact(QK_K).zip(as_blocks_mut::<BlockQ4K>(y)) {
        let sb = quantize_scale_min_super_block(xb, NMAX, -1.0, 20);
        yb.d = sb.d;
        yb.dmin = sb.dmin;
        yb.scales = sb.scales;
        for (q, lv) in yb.qs.chunks_exact_mut(32).zip(sb.levels.chunks_exact(64)) {
            for (l, b) in q.iter_mut().enumerate() {
                *b = lv[l] | (lv[l + 32] << 4);
            }
        }
    }
}

/// Port of ggml `dequantize_row_q4_K`.
pub fn dequantize_row(x: &[u8], y: &mut [f32]) {
    for (xb, yb) in as_blocks::<BlockQ4K>(x).iter().zip(y.chunks_exact_mut(QK_K)) {
        let (d, dmin) = (xb.d.get(), xb.dmin.get());
        for (c, (q, out)) in xb.qs.chunks_exact(32).zip(yb.chunks_exact_mut(64)).enumerate() {
            let (lo, hi) = out.split_at_mut(SUB_BLOCK_32);
            for (j, half, shift) in [(2 * c, lo, 0), (2 * c + 1, hi, 4)] {
                let (sc, m) = get_scale_min_k4(j, &xb.scales);
                let (dl, ml) = (d * sc as f32, dmin * m as f32);
                for (o, &b) in half.iter_mut().zip(q) {
                    *o = dl * ((b >> shift) & 0xF) as f32 - ml;
                }
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::quant::block::as_blocks_mut;
    use crate::quant::k_common::testing::{assert_constants_round_trip, assert_normal_error_below, Codec};

    const CODEC: Codec = (quantize_row_ref, dequantize_row, 144);

    #[test]
    fn error_on_normal_data_is_bounded() {
        // Measured 0.0715–0.0718.
        assert_normal_error_below(CODEC, 0.08);
    }

    #[test]
    fn constant_and_zero_blocks_round_trip() {
        assert_constants_round_trip(CODEC, 1e-3);
    }

    /// Scale codes of the hand-built Q4_K and Q5_K blocks: sub-block 0 (scale 2, min 4), 1 (1, 0) and 5 (33, 17),
    /// the last with high bits in bytes 1 and 5.
    pub const HAND_SCALES: [u8; K_SCALE_SIZE] = [2, 0x81, 0, 0, 4, 0x40, 0, 0, 0, 0x11, 0, 0];

    #[test]
    fn dequantizes_a_hand_built_block() {
        let mut bytes = vec![0u8; 144];
        let b = &mut as_blocks_mut::<BlockQ4K>(&mut bytes)[0];
        b.d = F16Le::from_f32(0.5);
        b.dmin = F16Le::from_f32(0.25);
        b.scales = HAND_SCALES;
        b.qs[0] = 0x3A; // weight 0 → 10, weight 32 → 3
        b.qs[64] = 0xF0; // weight 160 → 15
        let mut y = [0f32; QK_K];
        dequantize_row(&bytes, &mut y);
        assert_eq!(y[0], 0.5 * 2.0 * 10.0 - 0.25 * 4.0);
        assert_eq!(y[1], -0.25 * 4.0);
        assert_eq!(y[32], 0.5 * 3.0);
        assert_eq!(y[160], 0.5 * 33.0 * 15.0 - 0.25 * 17.0);
        assert_eq!(y[128], 0.0);
    }
}
