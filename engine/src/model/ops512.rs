//! Attention's dot products and weighted sums in 512-bit registers, for CPUs of the AVX-512 VNNI kernel set: the
//! arithmetic of `ops::dot` and `ops::WeightedSum`, operation for operation, so the same results bit for bit.
//!
//! - [`dots16`]: sixteen keys against one query at once. Each key's four chains of 16 lanes are one register each,
//!   and the sixteen keys' lanes are then added across registers: each addition of [`ops::reduce16`]'s tree (lanes
//!   i and 8 + i, then i and 4 + i, then 0 and 2, 1 and 3, then those two) is done for several keys in one
//!   instruction, after a shuffle puts the pairs side by side. Per key, that is about ten instructions where the
//!   AVX2 build's one dot product takes about twenty-five.
//! - [`WeightedSum::add_block_avx512`]: the partial sums 64 outputs at a time in four registers, not eight.
//! - [`softmax`]: `ops::softmax` with `ops::expf` sixteen lanes at a time, its scaling by 2ⁿ one `vscalefps` as in
//!   ggml (the portable build goes through f64 for it), and each block's sum added up in registers.
//! - [`swiglu`]: `ops::swiglu` sixteen lanes at a time, with the same eˣ (SmolLM2-135M: 1.7 → 0.2 µs a layer).

use std::arch::x86_64::*;

use super::ops::{self, WeightedSum};

/// Whether these may run: the active kernel set is the AVX-512 VNNI one (so the CPU has AVX-512 F).
pub fn avx512() -> bool {
    crate::kernels::active() == crate::kernels::Isa::Avx512Vnni
}

/// `out[k] = ops::dot(q, key k)` for the 16 keys of `keys` (`q.len()` apart), bit for bit, when `q.len()` is a
/// whole number of steps of 64 (none left for the one-by-one tail of `ops::dot`).
///
/// # Safety
/// The CPU must have AVX-512 F ([`avx512`]).
#[target_feature(enable = "avx512f")]
pub unsafe fn dots16(q: &[f32], keys: &[f32], out: &mut [f32; 16]) {
    let hd = q.len();
    assert!(hd.is_multiple_of(64) && keys.len() >= 16 * hd, "whole steps of 64, 16 keys");
    let (q, keys) = (q.as_ptr(), keys.as_ptr());
    // The head sizes of the common models with the query in registers and the steps unrolled (64: SmolLM2,
    // Llama 3.2 1B, Qwen2 0.5B; 128: Llama 3.2 3B): SmolLM2's pp512 ran 5–6% faster on one thread of Zen 4 than
    // with the loop over the steps (once per key, reloading the query).
    let lanes = match hd {
        64 => key_lanes::<1>(q, keys),
        128 => key_lanes::<2>(q, keys),
        _ => std::array::from_fn(|k| {
            let key = keys.add(k * hd);
            let mut acc = [_mm512_setzero_ps(); 4];
            for step in (0..hd).step_by(64) {
                for (j, a) in acc.iter_mut().enumerate() {
                    let at = step + 16 * j;
                    *a = _mm512_fmadd_ps(_mm512_loadu_ps(q.add(at)), _mm512_loadu_ps(key.add(at)), *a);
                }
            }
            _mm512_add_ps(_mm512_add_ps(acc[0], acc[2]), _mm512_add_ps(acc[1], acc[3]))
        }),
    };
    // Lanes i + 8 and i of keys 2p and 2p + 1: register p holds key 2p's eight sums, then key 2p + 1's.
    let mut h8 = [_mm512_setzero_ps(); 8];
    for (p, h) in h8.iter_mut().enumerate() {
        let (a, b) = (lanes[2 * p], lanes[2 * p + 1]);
        *h = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0xEE), _mm512_shuffle_f32x4(a, b, 0x44));
    }
    // Lanes i + 4 and i: 128-bit lane j of register r holds key 4r + j's four sums.
    let mut h4 = [_mm512_setzero_ps(); 4];
    for (r, h) in h4.iter_mut().enumerate() {
        let (a, b) = (h8[2 * r], h8[2 * r + 1]);
        *h = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0xDD), _mm512_shuffle_f32x4(a, b, 0x88));
    }
    // Lanes 0 + 2 and 1 + 3: 128-bit lane j of register s holds those of keys 8s + j and 8s + 4 + j.
    let mut h2 = [_mm512_setzero_ps(); 2];
    for (s, h) in h2.iter_mut().enumerate() {
        let (a, b) = (h4[2 * s], h4[2 * s + 1]);
        *h = _mm512_add_ps(_mm512_shuffle_ps(a, b, 0x44), _mm512_shuffle_ps(a, b, 0xEE));
    }
    // The two: element 4j + m is key 4m + j's sum.
    let sums = _mm512_add_ps(_mm512_shuffle_ps(h2[0], h2[1], 0x88), _mm512_shuffle_ps(h2[0], h2[1], 0xDD));
    let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_storeu_ps(out.as_mut_ptr(), _mm512_permutexvar_ps(order, sums));
}

/// Each of 16 keys' 16 lanes (`keys`, `64·STEPS` apart) against the query `q`: four chains of multiply-adds over
/// the `STEPS` steps of 64, added pairwise, (0 + 2) + (1 + 3), as `ops::dot` adds them.
///
/// # Safety
/// The CPU must have AVX-512 F; `q` holds `64·STEPS` values and `keys` 16 times as many.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn key_lanes<const STEPS: usize>(q: *const f32, keys: *const f32) -> [__m512; 16] {
    let qs: [[__m512; 4]; STEPS] =
        std::array::from_fn(|s| std::array::from_fn(|j| _mm512_loadu_ps(q.add(64 * s + 16 * j))));
    std::array::from_fn(|k| {
        let key = keys.add(k * 64 * STEPS);
        let mut acc = [_mm512_setzero_ps(); 4];
        for (s, qs) in qs.iter().enumerate() {
            for (j, a) in acc.iter_mut().enumerate() {
                *a = _mm512_fmadd_ps(qs[j], _mm512_loadu_ps(key.add(64 * s + 16 * j)), *a);
            }
        }
        _mm512_add_ps(_mm512_add_ps(acc[0], acc[2]), _mm512_add_ps(acc[1], acc[3]))
    })
}

impl WeightedSum {
    /// [`WeightedSum::add_block_avx2`] in 512-bit registers: the same multiply-adds in the same order per output,
    /// so the same sums, bit for bit.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F ([`avx512`]).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn add_block_avx512(&mut self, p: &[f32], rows: &[f32]) {
        let dim = self.dim;
        if !dim.is_multiple_of(16) || rows.len() < p.len() * dim {
            return self.add_block(p, rows);
        }
        for l0 in 0..ops::LANES.min(p.len()) {
            let lane = (self.next + l0) % ops::LANES;
            let first = self.first_at(l0);
            let acc = self.acc[lane * dim..(lane + 1) * dim].as_mut_ptr();
            for d0 in (0..dim).step_by(64) {
                // SAFETY: the features are there (this function's contract); `acc` has `dim` sums, and `rows`
                // holds `p.len()` rows of `dim` (checked above), so every offset below lies inside them.
                unsafe {
                    match (dim - d0).min(64) / 16 {
                        4 => columns::<4>(acc.add(d0), first, rows.as_ptr().add(d0), p, l0, dim),
                        3 => columns::<3>(acc.add(d0), first, rows.as_ptr().add(d0), p, l0, dim),
                        2 => columns::<2>(acc.add(d0), first, rows.as_ptr().add(d0), p, l0, dim),
                        _ => columns::<1>(acc.add(d0), first, rows.as_ptr().add(d0), p, l0, dim),
                    }
                }
            }
        }
        self.next += p.len();
    }
}

/// [`ops::expf`] of each lane, the same operations in the same order: the same results, bit for bit.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn expf16(x: __m512) -> __m512 {
    let c = |bits: u32| _mm512_set1_ps(f32::from_bits(bits));
    let r = c(0x4b40_0000);
    let z = _mm512_fmadd_ps(x, c(0x3fb8_aa3b), r);
    let n = _mm512_sub_ps(z, r);
    let b = _mm512_fnmadd_ps(n, c(0x35bf_be8e), _mm512_fnmadd_ps(n, c(0x3f31_7200), x));
    let u = _mm512_mul_ps(b, b);
    let hi = _mm512_fmadd_ps(c(0x3c07_2010), b, c(0x3d2b_9f17));
    let mid = _mm512_fmadd_ps(c(0x3e2a_af33), b, c(0x3eff_fedb));
    let lo = _mm512_fmadd_ps(c(0x3f7f_fff6), b, _mm512_set1_ps(1.0));
    let j = _mm512_fmadd_ps(_mm512_fmadd_ps(hi, u, mid), u, lo);
    // j · 2ⁿ, rounded once (what the portable build's exact f64 product rounded to f32 gives).
    let scaled = _mm512_scalef_ps(j, n);
    // Beyond |n| > 192: 0 for n ≤ 0, +∞ above.
    let positive = _mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_GT_OQ);
    let out_of_range = _mm512_maskz_mov_ps(positive, _mm512_set1_ps(f32::INFINITY));
    let far = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192.0), _CMP_GT_OQ);
    _mm512_mask_blend_ps(far, scaled, out_of_range)
}

/// [`ops::reduce16`] of the lanes of `v`: the same additions in the same order.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn reduce16(v: __m512) -> f32 {
    ops::reduce8(_mm256_add_ps(_mm512_extractf32x8_ps(v, 1), _mm512_castps512_ps256(v)))
}

/// The largest of `s` (−∞ if it is empty or all NaN), as `ops::softmax` finds it with `f32::max` one by one: NaNs
/// are passed over, and which zero a tie of −0 and +0 gives does not matter to the `s − max` that follow.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn max16(s: &[f32]) -> f32 {
    let mut m = _mm512_set1_ps(f32::NEG_INFINITY);
    for block in s.chunks(ops::LANES) {
        let k: __mmask16 = if block.len() == ops::LANES { !0 } else { (1 << block.len()) - 1 };
        // `vmaxps` gives its second operand where either is NaN: the maximum so far survives a NaN score.
        m = _mm512_mask_max_ps(m, k, _mm512_maskz_loadu_ps(k, block.as_ptr()), m);
    }
    _mm512_reduce_max_ps(m)
}

/// [`ops::softmax`], bit for bit: the maximum subtracted, [`expf16`] sixteen at a time, each block's sum (the lanes
/// past a short last block 0) added up in f64 in order, then every value times the reciprocal of the sum.
///
/// # Safety
/// The CPU must have AVX-512 F ([`avx512`]).
#[target_feature(enable = "avx512f")]
pub unsafe fn softmax(s: &mut [f32]) {
    let max = _mm512_set1_ps(max16(s));
    let mut sum = 0f64;
    for block in s.chunks_mut(ops::LANES) {
        let k: __mmask16 = if block.len() == ops::LANES { !0 } else { (1 << block.len()) - 1 };
        let e = _mm512_maskz_mov_ps(k, expf16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, block.as_ptr()), max)));
        _mm512_mask_storeu_ps(block.as_mut_ptr(), k, e);
        sum += f64::from(reduce16(e));
    }
    let inv = _mm512_set1_ps((1.0 / sum) as f32);
    for block in s.chunks_mut(ops::LANES) {
        let k: __mmask16 = if block.len() == ops::LANES { !0 } else { (1 << block.len()) - 1 };
        let v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, block.as_ptr()), inv);
        _mm512_mask_storeu_ps(block.as_mut_ptr(), k, v);
    }
}

/// [`ops::swiglu`], bit for bit: `g / (1 + eˣ(−g)) · u` sixteen lanes at a time, the lanes past the last whole
/// sixteen of each row as `ops::swiglu` computes them.
///
/// # Safety
/// The CPU must have AVX-512 F ([`avx512`]).
#[target_feature(enable = "avx512f")]
pub unsafe fn swiglu(gate: &mut [f32], up: &[f32], row: usize) {
    let whole = row / ops::LANES * ops::LANES;
    let one = _mm512_set1_ps(1.0);
    for (g, u) in gate.chunks_exact_mut(row).zip(up.chunks_exact(row)) {
        for (g, u) in g[..whole].chunks_exact_mut(ops::LANES).zip(u[..whole].chunks_exact(ops::LANES)) {
            let x = _mm512_loadu_ps(g.as_ptr());
            let e = expf16(_mm512_sub_ps(_mm512_setzero_ps(), x));
            let y = _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, e)), _mm512_loadu_ps(u.as_ptr()));
            _mm512_storeu_ps(g.as_mut_ptr(), y);
        }
        if whole < row {
            ops::swiglu(&mut g[whole..], &u[whole..], row - whole);
        }
    }
}

/// `16·W` partial sums at `acc` (from 0 if `first`: position `l0` is the first to reach them), each plus `p[i]`
/// times the row's value `16·W` columns from `rows + i·dim`, for the positions `i` from `l0` in steps of 16, in
/// order.
///
/// # Safety
/// AVX-512 F; `acc` and every row `i` (of `p.len()`) hold `16·W` floats at those offsets.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn columns<const W: usize>(acc: *mut f32, first: bool, rows: *const f32, p: &[f32], l0: usize, dim: usize) {
    let mut a: [__m512; W] =
        std::array::from_fn(|k| if first { _mm512_setzero_ps() } else { _mm512_loadu_ps(acc.add(16 * k)) });
    for i in (l0..p.len()).step_by(ops::LANES) {
        let pi = _mm512_set1_ps(p[i]);
        let row = rows.add(i * dim);
        for (k, a) in a.iter_mut().enumerate() {
            *a = _mm512_fmadd_ps(_mm512_loadu_ps(row.add(16 * k)), pi, *a);
        }
    }
    for (k, a) in a.iter().enumerate() {
        _mm512_storeu_ps(acc.add(16 * k), *a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn have() -> bool {
        is_x86_feature_detected!("avx512f")
    }

    /// Sixteen keys at once give `ops::dot` of each, bit for bit (see `ops::assert_dots_equal_dot`).
    #[test]
    fn dots16_equal_dot_bit_for_bit() {
        if !have() {
            eprintln!("no AVX-512 here: skipped");
            return;
        }
        // SAFETY: AVX-512 F was just detected.
        ops::assert_dots_equal_dot::<16>(|q, keys, out| unsafe { dots16(q, keys, out) });
    }

    /// The 16-lane eˣ is `ops::expf` bit for bit across its whole range (the polynomial, the rounding of the
    /// scaling into subnormals, and the cut-offs at ±192·ln 2), and so are the SwiGLU and the softmax built on it,
    /// on rows of every length class.
    #[test]
    fn expf_and_softmax_equal_the_portable_ones_bit_for_bit() {
        if !have() {
            eprintln!("no AVX-512 here: skipped");
            return;
        }
        let xs: Vec<f32> = (-40_000..40_000).map(|i| i as f32 * 0.00377).chain([-200.0, -133.7, -104.0, -87.5, 88.8, 200.0, 0.0, -0.0]).collect();
        for chunk in xs.chunks(16) {
            let mut x = [0f32; 16];
            x[..chunk.len()].copy_from_slice(chunk);
            let mut got = [0f32; 16];
            // SAFETY: AVX-512 F was just detected.
            unsafe { _mm512_storeu_ps(got.as_mut_ptr(), expf16(_mm512_loadu_ps(x.as_ptr()))) };
            for (g, &v) in got.iter().zip(&x) {
                assert_eq!(g.to_bits(), ops::expf(v).to_bits(), "e^{v}: {g} vs {}", ops::expf(v));
            }
        }
        for row in [1, 16, 17, 40, 1536] {
            let n = 3 * row;
            let gate: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * [3.0, 90.0, 0.01, -120.0][i % 4]).collect();
            let up: Vec<f32> = (0..n).map(|i| (i as f32 * 0.21).cos() * 2.0).collect();
            let (mut want, mut got) = (gate.clone(), gate);
            ops::swiglu_any(&mut want, &up, row);
            // SAFETY: as above.
            unsafe { swiglu(&mut got, &up, row) };
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "SwiGLU, rows of {row}");
        }
        for n in [1, 2, 15, 16, 17, 31, 64, 100, 333] {
            let row: Vec<f32> = (0..n).map(|i| (i as f32 * 0.61).sin() * [3.0, 40.0, 0.1][i % 3]).collect();
            let (mut want, mut got) = (row.clone(), row);
            ops::softmax(&mut want);
            // SAFETY: as above.
            unsafe { softmax(&mut got) };
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{n} scores");
        }
    }
}
