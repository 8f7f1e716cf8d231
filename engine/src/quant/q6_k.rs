//! Q6_K: 256 weights in 16 sub-blocks of 16, `x ≈ d·sc·q` with signed 6-bit `q` and a signed 8-bit scale `sc` per
//! sub-block (210 bytes, 6.5625 bits per weight). llama.cpp's Q4_K_M uses it for the output matrix and some
//! `attn_v`/`ffn_down` layers.
//!
//! Port of ggml `ggml-quants.c`: `quantize_row_q6_K_ref`, `dequantize_row_q6_K`.

use super::block::{as_blocks, as_blocks_mut, impl_block, nearest_int, F16Le};
use super::k_common::{signed_absmax, GROUP_MAX_EPS, SUB_BLOCK_16};
use super::k_lanes::make_qx_quants_lanes;
use super::QK_K;

/// Levels are `l + 32` with `l` in `-32..32`.
const NMAX: i32 = 32;

/// Sub-blocks per super-block.
const N_SUB: usize = QK_K / SUB_BLOCK_16;

/// `block_q6_K` (ggml-common.h). Levels (biased by 32) in halves of 128: for weight `128·h + 32·k + l`, the low 4
/// bits sit in `ql[64·h + 32·(k % 2) + l]` (low nibble for k < 2, high for k ≥ 2) and the top 2 bits in
/// `qh[32·h + l]` at bit `2k`. `scales[j]` belongs to weights `16j..16j+16`.
#[repr(C)]
pub struct BlockQ6K {
    pub ql: [u8; QK_K / 2],
    pub qh: [u8; QK_K / 4],
    pub scales: [i8; QK_K / SUB_BLOCK_16],
    /// Super-block scale of the 8-bit scales.
    pub d: F16Le,
}
impl_block!(BlockQ6K, 210);

/// Port of ggml `quantize_row_q6_K_ref` (what llama.cpp writes for Q6_K without an importance matrix).
pub fn quantize_row_ref(x: &[f32], y: &mut [u8]) {
    for (xb, yb) in x.chunks_exact(QK_K).zip(as_blocks_mut::<BlockQ6K>(y)) {
        // All 16 sub-block searches side by side: `xt[k][j]` is weight `k` of sub-block `j` (see `k_lanes`).
        let xt: [[f32; N_SUB]; SUB_BLOCK_16] =
            std::array::from_fn(|k| std::array::from_fn(|j| xb[j * SUB_BLOCK_16 + k]));
        let mut lt = [[0i8; N_SUB]; SUB_BLOCK_16];
        let scales = make_qx_quants_lanes(NMAX, &xt, &mut lt);
        let mut levels: [i8; QK_K] = std::array::from_fn(|i| lt[i % SUB_BLOCK_16][i / SUB_BLOCK_16]);
        // The sub-block scale of largest magnitude, with its sign: it becomes −128 and sets the super-scale.
        let (max_scale, max_abs_scale) = signed_absmax(&scales);

        if max_abs_scale < GROUP_MAX_EPS {
            // All sub-blocks (near) zero: an all-zero block, which decodes to zeros.
            yb.ql = [0; QK_K / 2];
            yb.qh = [0; QK_K / 4];
            yb.scales = [0; QK_K / SUB_BLOCK_16];
            yb.d = F16Le::from_f32(0.0);
            continue;
        }

        let iscale = -128.0 / max_scale;
        yb.d = F16Le::from_f32(1.0 / iscale);
        for (q, &s) in yb.scales.iter_mut().zip(&scales) {
            // The int result is stored into an int8_t: +128 (a scale opposite to max_scale) clamps to 127.
            *q = nearest_int(iscale * s).min(127) as i8;
        }

        // Requantize with the scales as stored. A sub-block whose decoded scale is zero keeps its search levels.
        let d = yb.d.get();
        for ((&sc, xs), ls) in
            yb.scales.iter().zip(xb.chunks_exact(SUB_BLOCK_16)).zip(levels.chunks_exact_mut(SUB_BLOCK_16))
        {
            let dl = d * sc as f32;
            if dl == 0.0 {
                continue;
            }
            for (q, &v) in ls.iter_mut().zip(xs) {
                *q = (nearest_int(v / dl).clamp(-NMAX, NMAX - 1) + NMAX) as i8;
            }
        }

        // Levels are 0..64 here, so reading them as u8 is exact.
        for ((lv, ql), qh) in levels.chunks_exact(128).zip(yb.ql.chunks_exact_mut(64)).zip(yb.qh.chunks_exact_mut(32)) {
            let (ql_a, ql_b) = ql.split_at_mut(32);
            for l in 0..32 {
                let [q1, q2, q3, q4] = [0, 32, 64, 96].map(|k| lv[l + k] as u8);
                ql_a[l] = (q1 & 0xF) | ((q3 & 0xF) << 4);
                ql_b[l] = (q2 & 0xF) | ((q4 & 0xF) << 4);
                qh[l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
            }
        }
    }
}

/// Port of ggml `dequantize_row_q6_K`.
pub fn dequantize_row(x: &[u8], y: &mut [f32]) {
    for (xb, yb) in as_blocks::<BlockQ6K>(x).iter().zip(y.chunks_exact_mut(QK_K)) {
        let d = xb.d.get();
        let halves = xb.ql.chunks_exact(64).zip(xb.qh.chunks_exact(32)).zip(yb.chunks_exact_mut(128));
        for (h, ((ql, qh), out)) in halves.enumerate() {
            for (i, o) in out.iter_mut().enumerate() {
                let (k, l) = (i / 32, i % 32);
                let low = (ql[32 * (k % 2) + l] >> (4 * (k / 2))) & 0xF;
                let high = (qh[l] >> (2 * k)) & 3;
                let q = (low | (high << 4)) as i32 - NMAX;
                let sc = xb.scales[8 * h + i / 16];
                // (d·sc)·q, in the C's order.
                *o = d * sc as f32 * q as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::block::as_blocks_mut;
    use crate::quant::k_common::testing::{assert_constants_round_trip, assert_normal_error_below, Codec};

    const CODEC: Codec = (quantize_row_ref, dequantize_row, 210);

    #[test]
    fn error_on_normal_data_is_bounded() {
        // Measured 0.0176–0.0179.
        assert_normal_error_below(CODEC, 0.02);
    }

    #[test]
    fn constant_and_zero_blocks_round_trip() {
        assert_constants_round_trip(CODEC, 1e-3);
    }

    #[test]
    fn dequantizes_a_hand_built_block() {
        let mut bytes = vec![0u8; 210];
        let b = &mut as_blocks_mut::<BlockQ6K>(&mut bytes)[0];
        b.d = F16Le::from_f32(0.5);
        b.scales[0] = -3;
        b.scales[6] = 5; // weights 96..112
        b.ql[0] = 0x05; // weight 0: low bits 5
        b.ql[32] = 0xF0; // weight 96: low bits 15
        b.qh[0] = 0b11_00_00_10; // weight 0: top bits 2 → 37; weight 96: top bits 3 → 63
        let mut y = [0f32; QK_K];
        dequantize_row(&bytes, &mut y);
        assert_eq!(y[0], 0.5 * -3.0 * 5.0);
        assert_eq!(y[1], 0.5 * -3.0 * -32.0);
        assert_eq!(y[96], 0.5 * 5.0 * 31.0);
        assert_eq!(y[64], 0.0);
    }
}
