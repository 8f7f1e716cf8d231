//! Q3_K: 256 weights in 16 sub-blocks of 16, `x ≈ d·sc·q` with signed 3-bit `q` (−4..3) and a signed 6-bit scale
//! `sc` per sub-block (110 bytes, 3.4375 bits per weight).
//!
//! Port of ggml `ggml-quants.c`: `quantize_row_q3_K_ref`, `dequantize_row_q3_K`.

use super::block::{as_blocks, as_blocks_mut, impl_block, nearest_int, F16Le};
use super::k_common::{make_q3_quants, pack_2bit, signed_absmax, unpack_2bit, SUB_BLOCK_16};
use super::QK_K;

/// Levels are `l + 4` with `l` in `-4..4`.
const NMAX: i32 = 4;
/// Scale codes are `s + 32` with `s` in `-32..32`.
const SCALE_BIAS: i32 = 32;
const N_SUB: usize = QK_K / SUB_BLOCK_16;

/// `block_q3_K` (ggml-common.h). A level's low 2 bits are packed as [`pack_2bit`] describes; its high bit is bit
/// `i / 32` of `hmask[i % 32]`. The 16 six-bit scale codes are packed in `scales` (see [`scale_code`]).
#[repr(C)]
pub struct BlockQ3K {
    pub hmask: [u8; QK_K / 8],
    pub qs: [u8; QK_K / 4],
    pub scales: [u8; 12],
    /// Super-block scale of the 6-bit scales.
    pub d: F16Le,
}
impl_block!(BlockQ3K, 110);

/// The 6-bit code (0..64) of sub-block `j`'s scale: low 4 bits in the low nibble of `scales[j]` (j < 8) or the high
/// nibble of `scales[j − 8]`; high 2 bits at bit `2·(j / 4)` of `scales[8 + j % 4]`. (ggml unpacks all 16 at once
/// with 32-bit masks in `dequantize_row_q3_K`; this is the same layout one code at a time.)
#[inline]
fn scale_code(scales: &[u8; 12], j: usize) -> u8 {
    let low = if j < 8 { scales[j] & 0xF } else { scales[j - 8] >> 4 };
    let high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    low | (high << 4)
}

/// Port of ggml `quantize_row_q3_K_ref` (what llama.cpp writes for Q3_K without an importance matrix).
pub fn quantize_row_ref(x: &[f32], y: &mut [u8]) {
    for (xb, yb) in x.chunks_exact(QK_K).zip(as_blocks_mut::<BlockQ3K>(y)) {
        let mut levels = [0i8; QK_K];
        let mut scales = [0f32; N_SUB];
        for ((s, xs), ls) in
            scales.iter_mut().zip(xb.chunks_exact(SUB_BLOCK_16)).zip(levels.chunks_exact_mut(SUB_BLOCK_16))
        {
            *s = make_q3_quants(NMAX, xs, ls, true);
        }
        // The sub-block scale of largest magnitude, with its sign: it becomes −32 and sets the super-scale.
        let (max_scale, _) = signed_absmax(&scales);

        yb.scales = [0; 12];
        // All sub-block scales zero (an all-zero block): codes 0 and d = 0, which decodes to zeros.
        if max_scale != 0.0 {
            // The largest scale gets code −32, the one end of the 6-bit range that both signs can reach.
            let iscale = -(SCALE_BIAS as f32) / max_scale;
            for (j, &s) in scales.iter().enumerate() {
                // C stores the int into an int8_t (truncating) before clamping.
                let l = nearest_int(iscale * s) as i8 as i32;
                let code = (l.clamp(-SCALE_BIAS, SCALE_BIAS - 1) + SCALE_BIAS) as u8;
                if j < 8 {
                    yb.scales[j] = code & 0xF;
                } else {
                    yb.scales[j - 8] |= (code & 0xF) << 4;
                }
                yb.scales[8 + j % 4] |= (code >> 4) << (2 * (j / 4));
            }
            yb.d = F16Le::from_f32(1.0 / iscale);
        } else {
            yb.d = F16Le::from_f32(0.0);
        }

        // Requantize with the scales as stored. A sub-block whose decoded scale is zero keeps its search levels.
        let d = yb.d.get();
        for (j, (xs, ls)) in xb.chunks_exact(SUB_BLOCK_16).zip(levels.chunks_exact_mut(SUB_BLOCK_16)).enumerate() {
            let dl = d * (scale_code(&yb.scales, j) as i32 - SCALE_BIAS) as f32;
            if dl == 0.0 {
                continue;
            }
            for (q, &v) in ls.iter_mut().zip(xs) {
                *q = (nearest_int(v / dl).clamp(-NMAX, NMAX - 1) + NMAX) as i8;
            }
        }

        // Levels are 0..8: the high bit goes to hmask, the low two to qs.
        yb.hmask = [0; QK_K / 8];
        let mut low = [0u8; QK_K];
        for (i, (&l, lo)) in levels.iter().zip(low.iter_mut()).enumerate() {
            let l = l as u8;
            if l > 3 {
                yb.hmask[i % 32] |= 1 << (i / 32);
            }
            *lo = l & 3;
        }
        pack_2bit(&low, &mut yb.qs);
    }
}

/// Port of ggml `dequantize_row_q3_K`.
pub fn dequantize_row(x: &[u8], y: &mut [f32]) {
    for (xb, yb) in as_blocks::<BlockQ3K>(x).iter().zip(y.chunks_exact_mut(QK_K)) {
        let d = xb.d.get();
        for (j, out) in yb.chunks_exact_mut(SUB_BLOCK_16).enumerate() {
            let dl = d * (scale_code(&xb.scales, j) as i32 - SCALE_BIAS) as f32;
            for (l, o) in out.iter_mut().enumerate() {
                let i = SUB_BLOCK_16 * j + l;
                // A clear high bit means the level is below 4: subtract 4 to centre it.
                let high = if xb.hmask[i % 32] & (1 << (i / 32)) != 0 { 0 } else { 4 };
                *o = dl * (unpack_2bit(&xb.qs, i) as i32 - high) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::block::as_blocks_mut;
    use crate::quant::k_common::testing::{assert_constants_round_trip, assert_normal_error_below, Codec};

    const CODEC: Codec = (quantize_row_ref, dequantize_row, 110);

    #[test]
    fn error_on_normal_data_is_bounded() {
        // Measured 0.151–0.153.
        assert_normal_error_below(CODEC, 0.17);
    }

    #[test]
    fn constant_and_zero_blocks_round_trip() {
        assert_constants_round_trip(CODEC, 1e-3);
    }

    #[test]
    fn dequantizes_a_hand_built_block() {
        let mut bytes = vec![0u8; 110];
        let b = &mut as_blocks_mut::<BlockQ3K>(&mut bytes)[0];
        b.d = F16Le::from_f32(0.5);
        // Sub-block 0: code 35 = 0b10_0011 (scale +3); sub-block 9: code 27 = 0b01_1011 (scale −5). Every other
        // code is 0, i.e. scale −32.
        b.scales[0] = 0x3;
        b.scales[8] = 0b10;
        b.scales[1] = 0xB << 4;
        b.scales[9] = 0b01 << 4;
        b.qs[0] = 2; // weight 0: low bits 2
        b.hmask[0] = 1; // … and high bit set: level 2
        b.qs[48] = 1; // weight 144 (second half, byte 16, bits 0–1)
        b.hmask[16] = 1 << 4; // … high bit set: level 1
        let mut y = [0f32; QK_K];
        dequantize_row(&bytes, &mut y);
        assert_eq!(y[0], 0.5 * 3.0 * 2.0);
        assert_eq!(y[1], 0.5 * 3.0 * -4.0); // high bit clear: level −4
        assert_eq!(y[16], 0.5 * -32.0 * -4.0);
        assert_eq!(y[144], 0.5 * -5.0 * 1.0);
        assert_eq!(y[145], 0.5 * -5.0 * -4.0);
    }
}
