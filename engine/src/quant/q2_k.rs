//! Q2_K: 256 weights in 16 sub-blocks of 16, `x ≈ d·sc·q − dmin·m` with 2-bit `q` and 4-bit `sc`, `m` per sub-block
//! (84 bytes, 2.625 bits per weight).
//!
//! Port of ggml `ggml-quants.c`: `quantize_row_q2_K_ref`, `dequantize_row_q2_K`.

use super::block::{as_blocks, as_blocks_mut, impl_block, nearest_int, F16Le};
use super::k_common::{make_qkx2_quants, pack_2bit, unpack_2bit, Qkx2Search, SUB_BLOCK_16};
use super::QK_K;

/// Largest 2-bit level.
const NMAX: i32 = 3;
/// Largest 4-bit code of a sub-block scale or min.
const MAX_CODE: f32 = 15.0;
const N_SUB: usize = QK_K / SUB_BLOCK_16;

/// `block_q2_K` (ggml-common.h). `scales[j]` holds sub-block `j`'s scale code in its low nibble and its min code in
/// the high nibble; levels are packed as [`pack_2bit`] describes.
#[repr(C)]
pub struct BlockQ2K {
    pub scales: [u8; N_SUB],
    pub qs: [u8; QK_K / 4],
    /// Super-block scale of the 4-bit scales.
    pub d: F16Le,
    /// Super-block scale of the 4-bit mins.
    pub dmin: F16Le,
}
impl_block!(BlockQ2K, 84);

/// Port of ggml `quantize_row_q2_K_ref` (what llama.cpp writes for Q2_K without an importance matrix).
pub fn quantize_row_ref(x: &[f32], y: &mut [u8]) {
    // Least absolute deviation weighted by |x|: with only four levels, fitting the large weights matters most.
    let search = Qkx2Search { rmin: -0.5, rdelta: 0.1, nstep: 15, use_mad: true };
    for (xb, yb) in x.chunks_exact(QK_K).zip(as_blocks_mut::<BlockQ2K>(y)) {
        let mut levels = [0u8; QK_K];
        let mut scales = [0f32; N_SUB];
        let mut mins = [0f32; N_SUB];
        // Scales and mins are non-negative (the min is subtracted), so the maxima start at 0.
        let mut max_scale = 0.0f32;
        let mut max_min = 0.0f32;
        for (j, (xs, ls)) in xb.chunks_exact(SUB_BLOCK_16).zip(levels.chunks_exact_mut(SUB_BLOCK_16)).enumerate() {
            let weights: [f32; SUB_BLOCK_16] = std::array::from_fn(|l| xs[l].abs());
            (scales[j], mins[j]) = make_qkx2_quants(NMAX, xs, &weights, ls, search);
            if scales[j] > max_scale {
                max_scale = scales[j];
            }
            if mins[j] > max_min {
                max_min = mins[j];
            }
        }

        // Scale codes in the low nibbles, min codes OR'd into the high ones. The C stores each int into a uint8_t.
        if max_scale > 0.0 {
            let iscale = MAX_CODE / max_scale;
            for (q, &s) in yb.scales.iter_mut().zip(&scales) {
                *q = nearest_int(iscale * s) as u8;
            }
            yb.d = F16Le::from_f32(max_scale / MAX_CODE);
        } else {
            yb.scales = [0; N_SUB];
            yb.d = F16Le::from_f32(0.0);
        }
        if max_min > 0.0 {
            let iscale = MAX_CODE / max_min;
            for (q, &m) in yb.scales.iter_mut().zip(&mins) {
                *q |= (nearest_int(iscale * m) << 4) as u8;
            }
            yb.dmin = F16Le::from_f32(max_min / MAX_CODE);
        } else {
            yb.dmin = F16Le::from_f32(0.0);
        }

        // Requantize with the scales as stored. A sub-block whose decoded scale is zero keeps its search levels.
        let (d, dmin) = (yb.d.get(), yb.dmin.get());
        for ((&sc, xs), ls) in
            yb.scales.iter().zip(xb.chunks_exact(SUB_BLOCK_16)).zip(levels.chunks_exact_mut(SUB_BLOCK_16))
        {
            let dl = d * (sc & 0xF) as f32;
            if dl == 0.0 {
                continue;
            }
            let ml = dmin * (sc >> 4) as f32;
            for (q, &v) in ls.iter_mut().zip(xs) {
                *q = nearest_int((v + ml) / dl).clamp(0, NMAX) as u8;
            }
        }
        pack_2bit(&levels, &mut yb.qs);
    }
}

/// Port of ggml `dequantize_row_q2_K`.
pub fn dequantize_row(x: &[u8], y: &mut [f32]) {
    for (xb, yb) in as_blocks::<BlockQ2K>(x).iter().zip(y.chunks_exact_mut(QK_K)) {
        let (d, dmin) = (xb.d.get(), xb.dmin.get());
        for (j, (&sc, out)) in xb.scales.iter().zip(yb.chunks_exact_mut(SUB_BLOCK_16)).enumerate() {
            let (dl, ml) = (d * (sc & 0xF) as f32, dmin * (sc >> 4) as f32);
            for (l, o) in out.iter_mut().enumerate() {
                *o = dl * unpack_2bit(&xb.qs, SUB_BLOCK_16 * j + l) as f32 - ml;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::block::as_blocks_mut;
    use crate::quant::k_common::testing::{assert_constants_round_trip, assert_normal_error_below, Codec};

    const CODEC: Codec = (quantize_row_ref, dequantize_row, 84);

    #[test]
    fn error_on_normal_data_is_bounded() {
        // Measured 0.298–0.300 (llama.cpp's own quantizer, byte for byte).
        assert_normal_error_below(CODEC, 0.33);
    }

    #[test]
    fn constant_and_zero_blocks_round_trip() {
        assert_constants_round_trip(CODEC, 1e-3);
    }

    #[test]
    fn dequantizes_a_hand_built_block() {
        let mut bytes = vec![0u8; 84];
        let b = &mut as_blocks_mut::<BlockQ2K>(&mut bytes)[0];
        b.d = F16Le::from_f32(0.5);
        b.dmin = F16Le::from_f32(0.25);
        b.scales[0] = 0x42; // scale 2, min 4: weights 0..16
        b.scales[2] = 0x13; // scale 3, min 1: weights 32..48
        b.scales[12] = 0xF1; // scale 1, min 15: weights 192..208
        b.qs[0] = 0b11_10; // weight 0 → level 2, weight 32 → level 3
        b.qs[40] = 0b01 << 4; // weight 128 + 64 + 8 = 200 → level 1
        let mut y = [0f32; QK_K];
        dequantize_row(&bytes, &mut y);
        assert_eq!(y[0], 0.5 * 2.0 * 2.0 - 0.25 * 4.0);
        assert_eq!(y[1], -0.25 * 4.0);
        assert_eq!(y[32], 0.5 * 3.0 * 3.0 - 0.25);
        assert_eq!(y[200], 0.5 - 0.25 * 15.0);
        assert_eq!(y[100], 0.0);
    }
}
