//! The k-quant scale searches run on all sub-blocks of a super-block at once, one lane per sub-block.
//!
//! [`make_qkx2_quants`] and [`make_qx_quants`] are latency-bound when run one sub-block at a time: every trial scale
//! sums 16 or 32 products into a single accumulator. The sub-blocks of a super-block are independent, so here the
//! weights are transposed (`xt[k][lane]` = element `k` of sub-block `lane`) and each step is done for every lane
//! side by side. Each lane still performs exactly the scalar code's float operations in the scalar code's order (no
//! reassociation, no fused multiply-add, same divisions, same comparisons with NaN), so the results are bit-for-bit
//! those of the scalar ports — which stay the definition — while the compiler can vectorize across lanes with plain
//! safe code. Branches that the scalar code takes per sub-block become per-lane selects; a lane whose scalar code
//! would have returned early computes garbage that is discarded at the end.
//!
//! Instead of storing levels every time a trial wins, a lane remembers the winning trial's inputs (inverse scale and,
//! for qkx2, the min it started from) and the levels are recomputed once from them: the levels are a pure function
//! of those inputs, so they are the same bytes.
//!
//! [`make_qkx2_quants`]: super::k_common::make_qkx2_quants
//! [`make_qx_quants`]: super::k_common::make_qx_quants

use super::block::nearest_int;
use super::k_common::{Qkx2Search, GROUP_MAX_EPS};

/// [`make_qkx2_quants`](super::k_common::make_qkx2_quants) for `N` sub-blocks of `L` weights at once. `xt[k][lane]`
/// and `wt[k][lane]` are element `k` of sub-block `lane`; the levels come back the same way, and `(scale, min)` per
/// lane.
pub fn make_qkx2_quants_lanes<const N: usize, const L: usize>(
    nmax: i32,
    xt: &[[f32; N]; L],
    wt: &[[f32; N]; L],
    levels: &mut [[u8; N]; L],
    search: Qkx2Search,
) -> ([f32; N], [f32; N]) {
    let mut min = xt[0];
    let mut max = xt[0];
    let mut sum_w = wt[0];
    let mut sum_x = [0f32; N];
    for i in 0..N {
        sum_x[i] = sum_w[i] * xt[0][i];
    }
    for (xs, ws) in xt.iter().zip(wt).skip(1) {
        for i in 0..N {
            let v = xs[i];
            if v < min[i] {
                min[i] = v;
            }
            if v > max[i] {
                max[i] = v;
            }
            sum_w[i] += ws[i];
            sum_x[i] += ws[i] * v;
        }
    }
    let mut flat = [false; N];
    let mut flat_min = [0f32; N];
    for i in 0..N {
        if min[i] > 0.0 {
            min[i] = 0.0;
        }
        flat[i] = max[i] == min[i];
        flat_min[i] = min[i];
    }
    let nmax_f = nmax as f32;
    let level = |iscale: f32, v: f32, min: f32| nearest_int(iscale * (v - min)).clamp(0, nmax) as f32;

    // First guess: the full range mapped onto 0..=nmax.
    let mut iscale = [0f32; N];
    let mut scale = [0f32; N];
    for i in 0..N {
        iscale[i] = nmax_f / (max[i] - min[i]);
        scale[i] = 1.0 / iscale[i];
    }
    // The winning trial's inputs, from which the levels are recomputed at the end.
    let mut best_iscale = iscale;
    let mut best_from = min;
    let mut best_error = [0f32; N];
    for (xs, ws) in xt.iter().zip(wt) {
        for i in 0..N {
            let l = level(iscale[i], xs[i], min[i]);
            let diff = scale[i] * l + min[i] - xs[i];
            best_error[i] += ws[i] * if search.use_mad { diff.abs() } else { diff * diff };
        }
    }

    if search.nstep >= 1 {
        let mut aux = [[0f32; N]; L];
        for is in 0..=search.nstep {
            let num = search.rmin + search.rdelta * is as f32 + nmax_f;
            let (mut sum_l, mut sum_l2, mut sum_xl) = ([0f32; N], [0f32; N], [0f32; N]);
            for i in 0..N {
                iscale[i] = num / (max[i] - min[i]);
            }
            for ((xs, ws), ls) in xt.iter().zip(wt).zip(aux.iter_mut()) {
                for i in 0..N {
                    let l = level(iscale[i], xs[i], min[i]);
                    ls[i] = l;
                    let w = ws[i];
                    sum_l[i] += w * l;
                    sum_l2[i] += w * l * l;
                    sum_xl[i] += w * l * xs[i];
                }
            }
            let mut this_scale = [0f32; N];
            let mut this_min = [0f32; N];
            let mut ok = [false; N];
            for i in 0..N {
                let det = sum_w[i] * sum_l2[i] - sum_l[i] * sum_l[i];
                ok[i] = det > 0.0;
                this_scale[i] = (sum_w[i] * sum_xl[i] - sum_x[i] * sum_l[i]) / det;
                this_min[i] = (sum_l2[i] * sum_x[i] - sum_l[i] * sum_xl[i]) / det;
                if this_min[i] > 0.0 {
                    this_min[i] = 0.0;
                    this_scale[i] = sum_xl[i] / sum_l2[i];
                }
            }
            let mut cur_error = [0f32; N];
            for ((xs, ws), ls) in xt.iter().zip(wt).zip(aux.iter()) {
                for i in 0..N {
                    let diff = this_scale[i] * ls[i] + this_min[i] - xs[i];
                    cur_error[i] += ws[i] * if search.use_mad { diff.abs() } else { diff * diff };
                }
            }
            for i in 0..N {
                if ok[i] && cur_error[i] < best_error[i] {
                    best_error[i] = cur_error[i];
                    best_iscale[i] = iscale[i];
                    best_from[i] = min[i];
                    scale[i] = this_scale[i];
                    min[i] = this_min[i];
                }
            }
        }
    }

    for (xs, ls) in xt.iter().zip(levels.iter_mut()) {
        for i in 0..N {
            ls[i] = if flat[i] { 0 } else { level(best_iscale[i], xs[i], best_from[i]) as u8 };
        }
    }
    for i in 0..N {
        if flat[i] {
            scale[i] = 0.0;
            min[i] = flat_min[i];
        }
    }
    (scale, min.map(|m| -m))
}

/// [`make_qx_quants`](super::k_common::make_qx_quants) without weights (`x²` weighting) for `N` sub-blocks of `L`
/// at once, laid out as in [`make_qkx2_quants_lanes`]. Returns the scale per lane; levels are biased by `nmax`.
pub fn make_qx_quants_lanes<const N: usize, const L: usize>(
    nmax: i32,
    xt: &[[f32; N]; L],
    levels: &mut [[i8; N]; L],
) -> [f32; N] {
    let mut max = [0f32; N];
    let mut amax = [0f32; N];
    for xs in xt {
        for i in 0..N {
            let v = xs[i];
            if v.abs() > amax[i] {
                max[i] = v;
                amax[i] = v.abs();
            }
        }
    }
    let level = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1) as f32;
    let sums = |iscale: &[f32; N]| {
        let (mut sumlx, mut suml2) = ([0f32; N], [0f32; N]);
        for xs in xt {
            for i in 0..N {
                let v = xs[i];
                let l = level(iscale[i], v);
                let w = v * v;
                sumlx[i] += w * v * l;
                suml2[i] += w * l * l;
            }
        }
        (sumlx, suml2)
    };

    let nmax_f = nmax as f32;
    let mut iscale = [0f32; N];
    for i in 0..N {
        iscale[i] = -nmax_f / max[i];
    }
    let mut best_iscale = iscale;
    let (sumlx, suml2) = sums(&iscale);
    let mut scale = [0f32; N];
    let mut best = [0f32; N];
    for i in 0..N {
        // `suml2 ? … : 0` in C: NaN counts as non-zero.
        scale[i] = if suml2[i] != 0.0 { sumlx[i] / suml2[i] } else { 0.0 };
        best[i] = scale[i] * sumlx[i];
    }
    for is in (-9..=9).filter(|&is| is != 0) {
        let num = nmax_f + 0.1 * is as f32;
        for i in 0..N {
            iscale[i] = -num / max[i];
        }
        let (sumlx, suml2) = sums(&iscale);
        for i in 0..N {
            if suml2[i] > 0.0 && sumlx[i] * sumlx[i] > best[i] * suml2[i] {
                best_iscale[i] = iscale[i];
                scale[i] = sumlx[i] / suml2[i];
                best[i] = scale[i] * sumlx[i];
            }
        }
    }
    let zero: [bool; N] = std::array::from_fn(|i| amax[i] < GROUP_MAX_EPS);
    for (xs, ls) in xt.iter().zip(levels.iter_mut()) {
        for i in 0..N {
            ls[i] = if zero[i] { 0 } else { (nmax + level(best_iscale[i], xs[i]) as i32) as i8 };
        }
    }
    for i in 0..N {
        if zero[i] {
            scale[i] = 0.0;
        }
    }
    scale
}

#[cfg(test)]
mod tests {
    use super::super::block::testing::normal;
    use super::super::k_common::{make_qkx2_quants, make_qx_quants};
    use super::*;

    /// Inputs that hit the scalar code's early returns and odd branches: zeros, constants, one spike, all positive,
    /// NaN and infinities, tiny values, and normal noise at several scales.
    fn stress_groups<const L: usize>(n: usize) -> Vec<[f32; L]> {
        let noise = normal(n * L, 7);
        (0..n)
            .map(|g| {
                std::array::from_fn(|k| {
                    let v = noise[g * L + k];
                    match g % 12 {
                        0 => 0.0,
                        1 => 1.25,
                        2 => if k == 3 { 5.0 } else { 0.0 },
                        3 => v.abs() + 0.5,
                        4 => if k == 1 { f32::NAN } else { v },
                        5 => if k == 2 { f32::INFINITY } else { v },
                        6 => v * 1e-20,
                        7 => -v.abs(),
                        8 => v * 1e6,
                        _ => v * (g as f32 + 1.0),
                    }
                })
            })
            .collect()
    }

    fn transpose<T: Copy + Default, const N: usize, const L: usize>(groups: &[[T; L]]) -> [[T; N]; L] {
        std::array::from_fn(|k| std::array::from_fn(|i| groups[i][k]))
    }

    #[test]
    fn qkx2_lanes_match_scalar() {
        let groups = stress_groups::<32>(48);
        for (c, chunk) in groups.chunks_exact(8).enumerate() {
            let weights: Vec<[f32; 32]> = chunk.iter().map(|g| g.map(|v| v.abs() + 0.25)).collect();
            for search in [
                Qkx2Search { rmin: -1.0, rdelta: 0.1, nstep: 20, use_mad: false },
                Qkx2Search { rmin: -0.5, rdelta: 0.1, nstep: 15, use_mad: true },
                Qkx2Search { rmin: -0.5, rdelta: 0.1, nstep: 0, use_mad: false },
            ] {
                let xt: [[f32; 8]; 32] = transpose(chunk);
                let wt: [[f32; 8]; 32] = transpose(&weights);
                let mut lt = [[0u8; 8]; 32];
                let (scales, mins) = make_qkx2_quants_lanes(15, &xt, &wt, &mut lt, search);
                for i in 0..8 {
                    let mut l = [0u8; 32];
                    let (s, m) = make_qkx2_quants(15, &chunk[i], &weights[i], &mut l, search);
                    assert_eq!((s.to_bits(), m.to_bits()), (scales[i].to_bits(), mins[i].to_bits()), "{c}/{i}");
                    assert!((0..32).all(|k| l[k] == lt[k][i]), "levels {c}/{i}");
                }
            }
        }
    }

    #[test]
    fn qx_lanes_match_scalar() {
        let groups = stress_groups::<16>(64);
        for (c, chunk) in groups.chunks_exact(16).enumerate() {
            let xt: [[f32; 16]; 16] = transpose(chunk);
            let mut lt = [[0i8; 16]; 16];
            let scales = make_qx_quants_lanes(32, &xt, &mut lt);
            for i in 0..16 {
                let mut l = [0i8; 16];
                let s = make_qx_quants(32, &chunk[i], &mut l, None);
                assert_eq!(s.to_bits(), scales[i].to_bits(), "{c}/{i}");
                assert!((0..16).all(|k| l[k] == lt[k][i]), "levels {c}/{i}");
            }
        }
    }
}
