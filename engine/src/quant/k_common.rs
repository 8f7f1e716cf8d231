//! Helpers shared by the k-quants (Q2_K … Q6_K): the per-sub-block scale searches and the packing of 6-bit scales.
//!
//! A k-quant super-block holds `QK_K` = 256 weights in sub-blocks of 16 or 32. Each sub-block first gets its own
//! float scale (and, for the "x = d·q − m" types, a min) from one of the searches below; the super-block then
//! quantizes those scales to 4, 6 or 8 bits against one f16 super-scale, and the weights are requantized with the
//! scales as they will actually be decoded.
//!
//! Ports of ggml `ggml-quants.c` (llama.cpp): `make_qx_quants`, `make_q3_quants`, `make_qkx2_quants`,
//! `get_scale_min_k4`, and the code that Q4_K and Q5_K share in `quantize_row_q4_K_ref`/`quantize_row_q5_K_ref`.
//! Bit-exactness with llama.cpp depends on doing the same float operations in the same order, so the loops below
//! keep the reference's accumulation order and its exact expressions (`a*b*c` is `(a*b)*c`; no fused multiply-add,
//! as in ggml-base, which is compiled for baseline x86-64). Integer conversions follow C: `nearest_int` where the
//! C uses it, truncating casts (`as u8`, `as i8`) where the C stores an `int` into a narrower type.

use super::block::{nearest_int, F16Le};
use super::k_lanes::make_qkx2_quants_lanes;
use super::QK_K;

/// ggml's `GROUP_MAX_EPS`: a group whose largest magnitude is below this is treated as all zero.
pub const GROUP_MAX_EPS: f32 = 1e-15;

/// Bytes of packed 6-bit scales and mins in Q4_K and Q5_K (ggml's `K_SCALE_SIZE`).
pub const K_SCALE_SIZE: usize = 12;

/// Weights per sub-block of Q4_K and Q5_K, each with its own 6-bit scale and min.
pub const SUB_BLOCK_32: usize = 32;

/// Weights per sub-block of Q2_K, Q3_K and Q6_K.
pub const SUB_BLOCK_16: usize = 16;

/// `x`'s element of largest magnitude (the first on ties, as ggml's `if (ax > amax)` scans keep it), with its sign,
/// and that magnitude; `(0, 0)` when every element is zero (or NaN).
pub fn signed_absmax(x: &[f32]) -> (f32, f32) {
    x.iter().fold((0.0f32, 0.0f32), |(max, amax), &v| if v.abs() > amax { (v, v.abs()) } else { (max, amax) })
}

/// Symmetric quantization of `x` to `nmax + l`, `l` in `-nmax..nmax`, with the scale chosen by a small search that
/// maximises the weighted fit. Writes the biased levels (`0..2·nmax`) to `levels` and returns the scale (negative
/// when the largest-magnitude element is positive: ggml anchors `-nmax` at that element).
///
/// Port of ggml `make_qx_quants` with `rmse_type == 1`, the only mode any llama.cpp quantizer uses: the weights are
/// `qw` when given (importance matrix), else `x²`.
// The definition: Q6_K runs `k_lanes::make_qx_quants_lanes`, which the tests hold to this bit for bit.
#[cfg_attr(not(test), allow(dead_code))]
pub fn make_qx_quants(nmax: i32, x: &[f32], levels: &mut [i8], qw: Option<&[f32]>) -> f32 {
    debug_assert_eq!(x.len(), levels.len());
    let (max, amax) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        levels.fill(0);
        return 0.0;
    }
    let weight = |i: usize| qw.map_or(x[i] * x[i], |w| w[i]);
    let level = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);

    // Weighted sums Σw·x·l and Σw·l² for one trial inverse scale, accumulated in index order as the C does.
    let sums = |iscale: f32| {
        let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
        for (i, &v) in x.iter().enumerate() {
            let l = level(iscale, v) as f32;
            let w = weight(i);
            sumlx += w * v * l;
            suml2 += w * l * l;
        }
        (sumlx, suml2)
    };
    let store = |levels: &mut [i8], iscale: f32| {
        for (q, &v) in levels.iter_mut().zip(x) {
            *q = (nmax + level(iscale, v)) as i8;
        }
    };

    let iscale = -(nmax as f32) / max;
    store(levels, iscale);
    let (sumlx, suml2) = sums(iscale);
    // `suml2 ? … : 0` in C: NaN counts as non-zero.
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    // Try inverse scales nudged by ±0.1…0.9 levels; keep one only if it fits better (sumlx²/suml2 larger).
    for is in (-9..=9).filter(|&is| is != 0) {
        let iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        let (sumlx, suml2) = sums(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            store(levels, iscale);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Symmetric quantization for Q3_K: levels `nmax + l`, `l` in `-nmax..nmax`, refined (when `do_rmse`) by up to five
/// passes of coordinate descent on the `x²`-weighted error. Writes biased levels and returns the scale.
///
/// Port of ggml `make_q3_quants`.
pub fn make_q3_quants(nmax: i32, x: &[f32], levels: &mut [i8], do_rmse: bool) -> f32 {
    debug_assert_eq!(x.len(), levels.len());
    let (max, amax) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        levels.fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let level = |v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);
    if !do_rmse {
        for (q, &v) in levels.iter_mut().zip(x) {
            *q = (level(v) + nmax) as i8;
        }
        return 1.0 / iscale;
    }

    // Unbiased levels while descending; the bias is added at the end.
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for (q, &v) in levels.iter_mut().zip(x) {
        let l = level(v);
        *q = l as i8;
        let w = v * v;
        sumlx += w * v * l as f32;
        suml2 += w * l as f32 * l as f32;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for (q, &v) in levels.iter_mut().zip(x) {
            let w = v * v;
            let old = *q as f32;
            // The sums without element i; the best level for it given the others is x·Σl²/Σxl.
            let mut slx = sumlx - w * v * old;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * old * old;
                let new_l = nearest_int(v * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != *q as i32 {
                    slx += w * v * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    // Keep the change when it raises (Σxl)²/Σl², i.e. lowers the weighted error.
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *q = new_l as i8;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    for q in levels.iter_mut() {
        *q += nmax as i8;
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// The scale search of [`make_qkx2_quants`]: trial inverse scales `(rmin + rdelta·is + nmax) / (max − min)` for
/// `is` in `0..=nstep`. `nstep < 1` keeps the first guess.
#[derive(Clone, Copy, Debug)]
pub struct Qkx2Search {
    pub rmin: f32,
    pub rdelta: f32,
    pub nstep: i32,
    /// Minimise Σw·|err| rather than Σw·err².
    pub use_mad: bool,
}

/// Asymmetric quantization `x ≈ scale·l − min`, `l` in `0..=nmax`, fitted by weighted least squares over a few
/// trial scales. Writes the levels to `levels` and returns `(scale, min)`, with `min ≥ 0` the amount subtracted (ggml's
/// `the_min`; it can be `-0.0`).
///
/// Port of ggml `make_qkx2_quants`.
pub fn make_qkx2_quants(nmax: i32, x: &[f32], weights: &[f32], levels: &mut [u8], search: Qkx2Search) -> (f32, f32) {
    let n = x.len();
    debug_assert!(n <= SUB_BLOCK_32 && weights.len() == n && levels.len() == n);
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for (&v, &w) in x.iter().zip(weights).skip(1) {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
        sum_w += w;
        sum_x += w * v;
    }
    // The range always includes zero, so a group of positive weights still decodes small values.
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        levels.fill(0);
        return (0.0, -min);
    }
    let error = |scale: f32, min: f32, levels: &[u8]| {
        let mut err = 0.0f32;
        for ((&l, &v), &w) in levels.iter().zip(x).zip(weights) {
            let diff = scale * l as f32 + min - v;
            err += w * if search.use_mad { diff.abs() } else { diff * diff };
        }
        err
    };
    let iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    for (q, &v) in levels.iter_mut().zip(x) {
        *q = nearest_int(iscale * (v - min)).clamp(0, nmax) as u8;
    }
    let mut best_error = error(scale, min, levels);
    if search.nstep < 1 {
        return (scale, -min);
    }
    let mut aux = [0u8; SUB_BLOCK_32];
    let aux = &mut aux[..n];
    for is in 0..=search.nstep {
        // `min` is the best fit so far (it changes when a trial wins), as in the C: later trials start from it.
        let iscale = (search.rmin + search.rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for ((q, &v), &w) in aux.iter_mut().zip(x).zip(weights) {
            let l = nearest_int(iscale * (v - min)).clamp(0, nmax);
            *q = l as u8;
            let l = l as f32;
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * v;
        }
        // Closed-form weighted least squares for (scale, min) given these levels.
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let cur_error = error(this_scale, this_min, aux);
            if cur_error < best_error {
                levels.copy_from_slice(aux);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Reads the 6-bit scale and min of sub-block `j` (0..8) from Q4_K/Q5_K's 12 packed bytes. Sub-blocks 0–3 sit in
/// the low 6 bits of bytes 0–3 (scales) and 4–7 (mins); sub-blocks 4–7 keep their low 4 bits in bytes 8–11 and their
/// top 2 bits in the spare high bits of bytes 0–7.
///
/// Port of ggml `get_scale_min_k4`.
#[inline]
pub fn get_scale_min_k4(j: usize, q: &[u8; K_SCALE_SIZE]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// The inverse of [`get_scale_min_k4`] for one sub-block, for 6-bit `ls`, `lm`. Sub-blocks must be set in order
/// 0..8 into zeroed bytes (4–7 OR their high bits into bytes that 0–3 wrote), as ggml's quantizers do.
#[inline]
fn set_scale_min_k4(j: usize, q: &mut [u8; K_SCALE_SIZE], ls: u8, lm: u8) {
    if j < 4 {
        q[j] = ls;
        q[j + 4] = lm;
    } else {
        q[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
        q[j - 4] |= (ls >> 4) << 6;
        q[j] |= (lm >> 4) << 6;
    }
}

/// The part of a Q4_K or Q5_K super-block that both share: scales and mins per 32-weight sub-block, their 6-bit
/// codes against the f16 super-scales `d` and `dmin`, and the final levels `0..=nmax` of all 256 weights.
pub struct ScaleMinSuperBlock {
    pub d: F16Le,
    pub dmin: F16Le,
    pub scales: [u8; K_SCALE_SIZE],
    pub levels: [u8; QK_K],
}

/// Quantizes one super-block of 8 sub-blocks of 32 as `x ≈ d·sc·l − dmin·m` with `l` in `0..=nmax`.
///
/// Port of the common body of ggml `quantize_row_q4_K_ref` (nmax 15, rmin −1, nstep 20) and
/// `quantize_row_q5_K_ref` (nmax 31, rmin −0.5, nstep 15).
pub fn quantize_scale_min_super_block(x: &[f32], nmax: i32, rmin: f32, nstep: i32) -> ScaleMinSuperBlock {
    debug_assert_eq!(x.len(), QK_K);
    const N_SUB: usize = QK_K / SUB_BLOCK_32;
    /// Largest 6-bit code of a scale or min.
    const MAX_CODE: f32 = 63.0;
    let search = Qkx2Search { rmin, rdelta: 0.1, nstep, use_mad: false };

    // Transposed: `xt[k][j]` is weight `k` of sub-block `j`, so the searches run on all 8 sub-blocks side by side.
    let xt: [[f32; N_SUB]; SUB_BLOCK_32] = std::array::from_fn(|k| std::array::from_fn(|j| x[j * SUB_BLOCK_32 + k]));
    // Weight each element by the sub-block's RMS plus its own magnitude: large weights matter more, but small
    // ones are not ignored.
    let mut sum_x2 = [0f32; N_SUB];
    for xs in &xt {
        for j in 0..N_SUB {
            sum_x2[j] += xs[j] * xs[j];
        }
    }
    let av_x = sum_x2.map(|s| (s / SUB_BLOCK_32 as f32).sqrt());
    let wt: [[f32; N_SUB]; SUB_BLOCK_32] = std::array::from_fn(|k| std::array::from_fn(|j| av_x[j] + xt[k][j].abs()));
    let mut lt = [[0u8; N_SUB]; SUB_BLOCK_32];
    let (scales, mins) = make_qkx2_quants_lanes(nmax, &xt, &wt, &mut lt, search);
    let mut levels: [u8; QK_K] = std::array::from_fn(|i| lt[i % SUB_BLOCK_32][i / SUB_BLOCK_32]);
    // Both start at 0 and only grow: scales and mins are non-negative (the min is subtracted).
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..N_SUB {
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }

    let inv_scale = if max_scale > 0.0 { MAX_CODE / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { MAX_CODE / max_min } else { 0.0 };
    let mut packed = [0u8; K_SCALE_SIZE];
    for j in 0..N_SUB {
        // C stores the int into a uint8_t (truncating) before clamping to 63.
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        set_scale_min_k4(j, &mut packed, ls, lm);
    }
    let d = F16Le::from_f32(max_scale / MAX_CODE);
    let dmin = F16Le::from_f32(max_min / MAX_CODE);

    // Requantize against the scales as stored, so the levels suit what the decoder will see. A sub-block whose
    // decoded scale is zero keeps the levels of its search.
    let (d_f, dmin_f) = (d.get(), dmin.get());
    for (j, (xs, ls)) in x.chunks_exact(SUB_BLOCK_32).zip(levels.chunks_exact_mut(SUB_BLOCK_32)).enumerate() {
        let (sc, m) = get_scale_min_k4(j, &packed);
        let dl = d_f * sc as f32;
        if dl == 0.0 {
            continue;
        }
        let dm = dmin_f * m as f32;
        for (q, &v) in ls.iter_mut().zip(xs) {
            *q = nearest_int((v + dm) / dl).clamp(0, nmax) as u8;
        }
    }
    ScaleMinSuperBlock { d, dmin, scales: packed, levels }
}

/// Packs 256 two-bit levels into 64 bytes as Q2_K and Q3_K store them: in each half of 128 weights, byte `l` holds
/// weights `l`, `l+32`, `l+64`, `l+96` at bit offsets 0, 2, 4, 6.
pub fn pack_2bit(levels: &[u8; QK_K], qs: &mut [u8; QK_K / 4]) {
    for (half, q) in levels.chunks_exact(128).zip(qs.chunks_exact_mut(32)) {
        for (l, b) in q.iter_mut().enumerate() {
            *b = half[l] | (half[l + 32] << 2) | (half[l + 64] << 4) | (half[l + 96] << 6);
        }
    }
}

/// The two-bit level of weight `i` (0..256) from a [`pack_2bit`] array.
#[inline]
pub fn unpack_2bit(qs: &[u8; QK_K / 4], i: usize) -> u8 {
    let (half, r) = (i / 128, i % 128);
    (qs[half * 32 + r % 32] >> (2 * (r / 32))) & 3
}

/// Shared by the k-quant modules' tests: round-trip error measures (inputs from [`block::testing`]).
///
/// [`block::testing`]: crate::quant::block::testing
#[cfg(test)]
pub mod testing {
    use super::QK_K;
    pub use crate::quant::block::testing::normal;

    /// Quantizes `x` (whole super-blocks) with a type of `block_bytes` bytes per block and decodes it again.
    pub fn round_trip(
        quantize: fn(&[f32], &mut [u8]),
        dequantize: fn(&[u8], &mut [f32]),
        block_bytes: usize,
        x: &[f32],
    ) -> Vec<f32> {
        let mut q = vec![0u8; x.len() / QK_K * block_bytes];
        quantize(x, &mut q);
        let mut back = vec![f32::NAN; x.len()];
        dequantize(&q, &mut back);
        back
    }

    /// Root-mean-square error of the round trip of `x`, relative to the RMS of `x`.
    pub fn relative_rmse(
        quantize: fn(&[f32], &mut [u8]),
        dequantize: fn(&[u8], &mut [f32]),
        block_bytes: usize,
        x: &[f32],
    ) -> f64 {
        let back = round_trip(quantize, dequantize, block_bytes, x);
        let err: f64 = x.iter().zip(&back).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
        let norm: f64 = x.iter().map(|&a| (a as f64).powi(2)).sum();
        (err / norm).sqrt()
    }

    /// A codec under test: quantize, dequantize, bytes per super-block.
    pub type Codec = (fn(&[f32], &mut [u8]), fn(&[u8], &mut [f32]), usize);

    /// Relative RMSE on 64 super-blocks of N(0, 1), for three seeds, is below `bound` (and never NaN).
    pub fn assert_normal_error_below((q, d, bytes): Codec, bound: f64) {
        for seed in 1..=3 {
            let e = relative_rmse(q, d, bytes, &normal(64 * QK_K, seed));
            assert!(e < bound, "seed {seed}: relative RMSE {e:.5} not below {bound}");
        }
    }

    /// Constant super-blocks (of either sign, or mixed with all-zero stretches) come back within `rel_tol` of
    /// their values, a small constant (1e-3) within 5% — its f16 super-scale is subnormal, with few significant
    /// bits — and all-zero and tiny blocks (±1e-30, whose scales underflow f16) come back as zeros.
    pub fn assert_constants_round_trip((q, d, bytes): Codec, rel_tol: f32) {
        let mixed: Vec<f32> = (0..QK_K).map(|i| if (i / 32) % 2 == 0 { 0.0 } else { 0.75 }).collect();
        let cases =
            [(vec![1.5f32; QK_K], rel_tol), (vec![-3.25; QK_K], rel_tol), (mixed, rel_tol), (vec![1e-3; QK_K], 0.05)];
        for (x, tol) in cases {
            let back = round_trip(q, d, bytes, &x);
            for (i, (&a, &b)) in x.iter().zip(&back).enumerate() {
                assert!((a - b).abs() <= tol * a.abs(), "weight {i}: {a} came back as {b}");
            }
        }
        for c in [0.0f32, 1e-30, -1e-30] {
            let back = round_trip(q, d, bytes, &[c; QK_K]);
            assert!(back.iter().all(|&b| b.abs() <= c.abs()), "constant {c} came back as {:?}", &back[..4]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_min_k4_packing_round_trips() {
        let mut q = [0u8; K_SCALE_SIZE];
        let codes: [(u8, u8); 8] = [(0, 63), (1, 62), (17, 33), (63, 0), (5, 48), (42, 21), (63, 63), (16, 15)];
        for (j, &(s, m)) in codes.iter().enumerate() {
            set_scale_min_k4(j, &mut q, s, m);
        }
        for (j, &c) in codes.iter().enumerate() {
            assert_eq!(get_scale_min_k4(j, &q), c, "sub-block {j}");
        }
    }

    #[test]
    fn two_bit_packing_round_trips() {
        let levels: [u8; QK_K] = std::array::from_fn(|i| ((i * 7 + i / 5) % 4) as u8);
        let mut qs = [0u8; QK_K / 4];
        pack_2bit(&levels, &mut qs);
        for (i, &l) in levels.iter().enumerate() {
            assert_eq!(unpack_2bit(&qs, i), l);
        }
    }

    #[test]
    fn qkx2_fits_an_exact_grid() {
        // Values on the grid 0.5·l − 1 are reproduced exactly.
        let x: Vec<f32> = (0..16).map(|i| 0.5 * (i % 4) as f32 - 1.0).collect();
        let w = vec![1.0f32; 16];
        let mut l = [0u8; 16];
        let search = Qkx2Search { rmin: -0.5, rdelta: 0.1, nstep: 15, use_mad: true };
        let (scale, min) = make_qkx2_quants(3, &x, &w, &mut l, search);
        for (&v, &q) in x.iter().zip(&l) {
            assert!((scale * q as f32 - min - v).abs() < 1e-6, "{v} vs {scale}·{q} − {min}");
        }
    }

    #[test]
    fn zero_groups_give_zero_scales() {
        let x = [0.0f32; 16];
        let mut l = [5i8; 16];
        assert_eq!(make_qx_quants(32, &x, &mut l, None), 0.0);
        assert_eq!(l, [0; 16]);
        l = [5; 16];
        assert_eq!(make_q3_quants(4, &x, &mut l, true), 0.0);
        assert_eq!(l, [0; 16]);
    }
}
