//! The small f32 operations between the matmuls: dot products and sums for attention, RMSNorm, softmax, SwiGLU.
//!
//! Each follows the arithmetic of llama.cpp's CPU backend as built for x86-64 with AVX-512 (`-march=native` on a
//! current x86 machine, which is how PyPI's llama-cpp-python builds it), operation for operation: the same
//! products fused into multiply-adds, the same sums in the same order, and ggml's own `expf` (a polynomial, not
//! libm's) where ggml uses it. A quantized model amplifies a last-bit difference: the activations are rounded to
//! 8 bits before every matmul, and one code that rounds the other way moves the next-token distribution as much
//! as storing the KV cache in f16 does. With the same arithmetic here and in the x86 kernels, our distributions are
//! llama.cpp's, bit for bit, on any x86-64 CPU with AVX2 and FMA (see `tests/agreement_llamacpp.rs`); on aarch64
//! these operations are the same but the NEON kernels keep sums of their own.
//!
//! The multiply-adds are `f32::mul_add`, one instruction wherever FMA is compiled in: aarch64 always, x86-64 in
//! the callers' `avx2,fma` builds (elsewhere, a correct but slow libm call).

/// Whether the operations may run their x86-64 AVX2+FMA builds (`swiglu_fma`, `Rope::apply_fma`, the attention's
/// `attend_avx2`): the active kernel set is an AVX2 one, so the CPU has both (not when the kernels are forced scalar).
pub fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::kernels::active().is_avx2()
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Lanes of an AVX-512 register of f32: ggml's sums run in this many partial sums.
pub(super) const LANES: usize = 16;

/// `_mm512_reduce_add_ps` as GCC expands it: the two 256-bit halves added, then the 128-bit halves, then lanes
/// (0 + 2) and (1 + 3), then those two.
#[inline(always)]
pub fn reduce16(x: &[f32; LANES]) -> f32 {
    let mut h8 = [0f32; 8];
    for i in 0..8 {
        h8[i] = x[8 + i] + x[i];
    }
    let mut h4 = [0f32; 4];
    for i in 0..4 {
        h4[i] = h8[4 + i] + h8[i];
    }
    (h4[0] + h4[2]) + (h4[1] + h4[3])
}

/// Σ a[i]·b[i] as ggml's `ggml_vec_dot_f32` (AVX-512) sums it: steps of 64 into four 16-lane multiply-add chains,
/// the chains added pairwise (0 + 2, 1 + 3, then those), the lanes by [`reduce16`], and the tail past the last
/// whole step multiply-added one by one.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    const STEP: usize = 4 * LANES;
    let whole = a.len() / STEP * STEP;
    let mut acc = [[0f32; LANES]; 4];
    for (x, y) in a[..whole].chunks_exact(STEP).zip(b[..whole].chunks_exact(STEP)) {
        // Fixed-size views: no bounds checks, so the four chains become a few vector multiply-adds.
        let (x, y): (&[f32; STEP], &[f32; STEP]) = (x.try_into().expect("STEP"), y.try_into().expect("STEP"));
        for (j, acc) in acc.iter_mut().enumerate() {
            for (l, s) in acc.iter_mut().enumerate() {
                *s = x[j * LANES + l].mul_add(y[j * LANES + l], *s);
            }
        }
    }
    // The chains added pairwise: 0 + 2 and 1 + 3, then those two.
    let mut s = [0f32; LANES];
    for l in 0..LANES {
        s[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    }
    let mut sum = reduce16(&s);
    for (x, y) in a[whole..].iter().zip(&b[whole..]) {
        sum = x.mul_add(*y, sum);
    }
    sum
}

/// [`dot`] in AVX2 registers: the same operations in the same order (so the same result, bit for bit), written out
/// because the compiler's version of the 16-lane chains spills them.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let whole = n / (4 * LANES) * (4 * LANES);
    let mut sum = reduce8(chains_avx2(&a[..whole], &b[..whole]));
    for (x, y) in a[whole..n].iter().zip(&b[whole..n]) {
        sum = x.mul_add(*y, sum);
    }
    sum
}

/// [`dot`]'s four chains over the whole steps of 64 of `a` and `b`, added as [`reduce16`] adds them up to its last
/// levels ([`reduce8`]): (0 + 2) + (1 + 3), then lanes 0..8 and 8..16, whose 8 sums it returns. `acc[k]` holds
/// floats 8k..8k + 8 of a step: lanes (k mod 2)·8.. of chain k / 2.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn chains_avx2(a: &[f32], b: &[f32]) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    const STEP: usize = 4 * LANES;
    let mut acc = [_mm256_setzero_ps(); 8];
    for (x, y) in a.chunks_exact(STEP).zip(b.chunks_exact(STEP)) {
        for (k, acc) in acc.iter_mut().enumerate() {
            let (xv, yv) = (_mm256_loadu_ps(x[8 * k..].as_ptr()), _mm256_loadu_ps(y[8 * k..].as_ptr()));
            *acc = _mm256_fmadd_ps(xv, yv, *acc);
        }
    }
    let lo = _mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6]));
    let hi = _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7]));
    _mm256_add_ps(hi, lo)
}

/// `out[k] = dot_avx2(q, key k)` for the 8 keys of `keys` (`q.len()` apart), bit for bit, when `q.len()` is a
/// whole number of steps of 64 (none left for the one-by-one tail): each key's chains and their adds as
/// [`dot_avx2`] does them, then [`reduce8`]'s three levels for the eight keys at once — the same adds of the same
/// pairs, eight keys to a register instead of one: 22 instructions for the eight where each key's took 6. AMD Zen 3,
/// one thread, the scores of 1024 keys of 64 (in L2) against one query, six rounds in turn in one process: 0.80–0.89
/// of the time they took one key at a time, with each key's chains in a closure that the compiler left as a call of
/// its own; with them in [`chains_avx2`], which inlines, SmolLM2-135M Q4_K_M generated another 2–4% faster at
/// `bench -n 1024` (one thread 89.8 → 93.2 tok/s, two 148.5 → 152.1; four pairs of runs each, faster in three).
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn dots8_avx2(q: &[f32], keys: &[f32], out: &mut [f32; 8]) {
    use std::arch::x86_64::*;
    const STEP: usize = 4 * LANES;
    let hd = q.len();
    assert!(hd.is_multiple_of(STEP) && keys.len() >= 8 * hd, "whole steps of 64, 8 keys");
    // Each key's 8 sums of lanes i and 8 + i, as `dot_avx2` has them before `reduce8`.
    // SAFETY: AVX2 and FMA (the caller's contract).
    let h8: [__m256; 8] = std::array::from_fn(|k| unsafe { chains_avx2(q, &keys[k * hd..(k + 1) * hd]) });
    // 4 + 4: keys 2p and 2p + 1 in the low and high halves of h4[p].
    let h4: [__m256; 4] = std::array::from_fn(|p| {
        let (a, b) = (h8[2 * p], h8[2 * p + 1]);
        _mm256_add_ps(_mm256_permute2f128_ps::<0x31>(a, b), _mm256_permute2f128_ps::<0x20>(a, b))
    });
    // (0 + 2, 1 + 3) of each key's four: h2[r]'s low half holds keys 4r and 4r + 2, its high half 4r + 1 and 4r + 3.
    let h2: [__m256; 2] = std::array::from_fn(|r| {
        let (a, b) = (h4[2 * r], h4[2 * r + 1]);
        _mm256_add_ps(_mm256_shuffle_ps::<0b01_00_01_00>(a, b), _mm256_shuffle_ps::<0b11_10_11_10>(a, b))
    });
    // Their two added: keys 0, 2, 4, 6 in the low half, 1, 3, 5, 7 in the high one; then in key order.
    let (a, b) = (h2[0], h2[1]);
    let sums = _mm256_add_ps(_mm256_shuffle_ps::<0b10_00_10_00>(a, b), _mm256_shuffle_ps::<0b11_01_11_01>(a, b));
    let ordered = _mm256_permutevar8x32_ps(sums, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_ps(out.as_mut_ptr(), ordered);
}

/// The last levels of [`reduce16`] on its 8 sums of lanes `i` and `8 + i`, in AVX registers: 4 + 4, then
/// (0 + 2) + (1 + 3). The SIMD builds end their sums here, so that all of them add in the same order.
///
/// # Safety
/// The CPU must have AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
pub(super) unsafe fn reduce8(h8: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let h4 = _mm_add_ps(_mm256_extractf128_ps(h8, 1), _mm256_castps256_ps128(h8));
    let h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
    _mm_cvtss_f32(_mm_add_ss(h2, _mm_movehdup_ps(h2)))
}

/// How far ahead attention's first pass over an f32 KV cache asks for rows ([`Ahead`]): 8 KB, as far as the
/// one-token kernels ask for weights into L1 but on AMD Zen 3 (elsewhere than on x86-64 nothing is asked for). On
/// Zen 3, asking as near as those kernels do there (2 KB) was no faster: SmolLM2-135M, two threads, `bench -n 1024`,
/// 161–175 tok/s against 162–170 (three runs each in turn).
#[cfg(target_arch = "x86_64")]
pub(super) const PREFETCH_ROWS: usize = crate::kernels::PREFETCH_AHEAD;
#[cfg(not(target_arch = "x86_64"))]
pub(super) const PREFETCH_ROWS: usize = 8192;

/// Asks for the cache lines of `rows` (a hint, nothing on other CPUs than x86-64).
#[inline(always)]
pub(super) fn ask_for(rows: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    crate::kernels::prefetch_lines(rows.as_ptr().cast(), std::mem::size_of_val(rows));
    #[cfg(not(target_arch = "x86_64"))]
    let _ = rows;
}

/// Asks for the first [`PREFETCH_ROWS`] bytes of `rows` (a run's keys or values), which nothing asks for ahead of:
/// what the kernels' `prefetch_start` does for a product's rows.
#[inline(always)]
pub(super) fn ask_first(rows: &[f32]) {
    ask_for(&rows[..rows.len().min(PREFETCH_ROWS / 4)]);
}

/// What attention's first pass over a block of keys of an f32 KV cache, which reads them from memory, may ask for
/// ahead of them: the run's keys, and its values, from the block's start to the last position its tokens see (the
/// rows past those are never read, and nothing asks for them).
#[derive(Clone, Copy)]
pub(super) struct Ahead<'a>(pub &'a [f32], pub &'a [f32]);

impl Ahead<'_> {
    /// Asks for `len` floats of keys and of values [`PREFETCH_ROWS`] bytes after float `at` (counted from the
    /// block's start), as far as the rows go, into L2: the values are read only after the softmax, and the keys
    /// alone were read no slower so (SmolLM2-135M, 1024 tokens, two runs each: attention at positions 896–1023
    /// 2.99–3.00 ms a token asking into L2, 3.19–3.27 into L1).
    #[inline(always)]
    pub fn ask(self, at: usize, len: usize) {
        for rows in [self.0, self.1] {
            let from = (at + PREFETCH_ROWS / 4).min(rows.len());
            let rows = &rows[from..(from + len).min(rows.len())];
            #[cfg(target_arch = "x86_64")]
            crate::kernels::prefetch_lines_l2(rows.as_ptr().cast(), std::mem::size_of_val(rows));
            #[cfg(not(target_arch = "x86_64"))]
            let _ = rows;
        }
    }
}

/// Probability-weighted sums of value rows the way llama.cpp's batch attention computes `V·softmax(KQ)` (a
/// tinyBLAS f32 matmul over the positions): position i goes to partial sum i mod 16 of each output, multiply-added
/// in position order, and the 16 are added by [`reduce16`]. Callers feed positions in order with [`Self::add`].
///
/// Starting over costs nothing: partial sum `l` starts from 0 in a register when position `l`, the first to reach
/// it, is added (rather than being loaded from a row zeroed beforehand), and those no position reached count as 0
/// in [`Self::finish`]. Zeroing the 16 rows for every head of every token, and the softmax's maximum taken one score
/// at a time, cost 2–6% of a generated token's attention at 64 to 256 positions (AVX-512, in one process, each
/// way in turn).
pub struct WeightedSum {
    pub(super) dim: usize,
    /// `LANES` rows of `dim` partial sums; row `l` holds a sum only once position `l` has been added.
    pub(super) acc: Vec<f32>,
    /// Positions added since the start.
    pub(super) next: usize,
}

impl WeightedSum {
    pub fn new(dim: usize) -> WeightedSum {
        WeightedSum { dim, acc: vec![0.0; LANES * dim], next: 0 }
    }

    /// Starts over.
    pub fn clear(&mut self) {
        self.next = 0;
    }

    /// Whether the position `ahead` after the next one is the first to reach its partial sum, which then starts
    /// from 0 rather than from what its row holds.
    #[inline(always)]
    pub(super) fn first_at(&self, ahead: usize) -> bool {
        self.next + ahead < LANES
    }

    /// Adds `p · row` for the next position.
    #[inline(always)]
    pub fn add(&mut self, p: f32, row: &[f32]) {
        let lane = self.next % LANES;
        let first = self.first_at(0);
        self.next += 1;
        for (s, &v) in self.acc[lane * self.dim..(lane + 1) * self.dim].iter_mut().zip(row) {
            *s = v.mul_add(p, if first { 0.0 } else { *s });
        }
    }

    /// Adds `p[i] · rows[i]` for the next `p.len()` positions (`rows` holds them, `dim` apart): [`Self::add`] for
    /// each in turn, the same sums.
    #[inline(always)]
    pub fn add_block(&mut self, p: &[f32], rows: &[f32]) {
        for (&pi, row) in p.iter().zip(rows.chunks_exact(self.dim)) {
            self.add(pi, row);
        }
    }

    /// [`Self::add_block`] in AVX2 registers: each partial-sum row is loaded once for all its positions of the
    /// block (every 16th) rather than once per position, 64 outputs at a time. The same multiply-adds in the same
    /// order per output, so the same sums, bit for bit.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn add_block_avx2(&mut self, p: &[f32], rows: &[f32]) {
        use std::arch::x86_64::*;
        let dim = self.dim;
        if !dim.is_multiple_of(8) || rows.len() < p.len() * dim {
            return self.add_block(p, rows);
        }
        for l0 in 0..LANES.min(p.len()) {
            let lane = (self.next + l0) % LANES;
            let first = self.first_at(l0);
            let acc = &mut self.acc[lane * dim..(lane + 1) * dim];
            for d0 in (0..dim).step_by(64) {
                let w8 = (dim - d0).min(64) / 8;
                let mut a = [_mm256_setzero_ps(); 8];
                for k in (0..w8).filter(|_| !first) {
                    a[k] = _mm256_loadu_ps(acc[d0 + 8 * k..].as_ptr());
                }
                for i in (l0..p.len()).step_by(LANES) {
                    let pi = _mm256_set1_ps(p[i]);
                    let row = &rows[i * dim + d0..i * dim + d0 + 8 * w8];
                    for k in 0..w8 {
                        a[k] = _mm256_fmadd_ps(_mm256_loadu_ps(row[8 * k..].as_ptr()), pi, a[k]);
                    }
                }
                for k in 0..w8 {
                    _mm256_storeu_ps(acc[d0 + 8 * k..][..8].as_mut_ptr(), a[k]);
                }
            }
        }
        self.next += p.len();
    }

    /// The sums, into `out` (`dim` long): [`reduce16`]'s additions, done for every output at once.
    #[inline(always)]
    pub fn finish(&mut self, out: &mut [f32]) {
        let (dim, acc) = (self.dim, &mut self.acc);
        // Rows no position reached: 0.
        acc[self.next.min(LANES) * dim..].fill(0.0);
        let (lo, hi) = acc.split_at_mut(8 * dim);
        for (l, h) in lo.iter_mut().zip(hi.iter()) {
            *l += *h; // rows i and 8 + i, into row i (i < 8); addition commutes
        }
        let (lo, hi) = lo.split_at_mut(4 * dim);
        for (l, h) in lo.iter_mut().zip(hi.iter()) {
            *l += *h; // rows i and 4 + i (i < 4)
        }
        let (r01, r23) = lo.split_at(2 * dim);
        for (d, o) in out.iter_mut().enumerate() {
            *o = (r01[d] + r23[d]) + (r01[dim + d] + r23[dim + d]);
        }
    }
}

/// out = x / sqrt(mean(x²) + eps) · w, one row. The mean of squares is summed in f64, as ggml's `rms_norm` does,
/// though in eight chains rather than one: one chain of 576 dependent f64 additions took about half a microsecond,
/// and a generated token of SmolLM2-135M has 61 of them, while both threads wait. In f64 the order makes no
/// difference to the f32 mean but in the last bit of a rare tie.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let mut chains = [0f64; 8];
    let whole = x.chunks_exact(8);
    let rest: f64 = whole.remainder().iter().map(|&v| f64::from(v * v)).sum();
    for c in whole {
        for (s, &v) in chains.iter_mut().zip(c) {
            *s += f64::from(v * v);
        }
    }
    let ss = chains.iter().sum::<f64>() + rest;
    let scale = 1.0 / ((ss / x.len() as f64) as f32 + eps).sqrt();
    for ((o, &v), &g) in out.iter_mut().zip(x).zip(w) {
        *o = v * scale * g;
    }
}

/// eˣ as ggml's AVX-512 `ggml_v_expf` computes it (after Arm's optimized-routines `expf`): x = n·ln2 + b with n
/// rounded to an integer by the 1.5·2²³ trick, a degree-5 polynomial in b, scaled by 2ⁿ (`vscalefps`, one
/// rounding); beyond |n| > 192, 0 or +∞. Within 1.5 ulp of eˣ, and what llama.cpp's softmax and SiLU use.
#[inline(always)]
pub fn expf(x: f32) -> f32 {
    let c = f32::from_bits;
    let r = c(0x4b40_0000); // 1.5 · 2²³
    let z = x.mul_add(c(0x3fb8_aa3b), r); // x · log2(e) + r
    let n = z - r;
    // b = x − n·ln2, with ln2 in two parts.
    let b = (-n).mul_add(c(0x35bf_be8e), (-n).mul_add(c(0x3f31_7200), x));
    let u = b * b;
    let hi = c(0x3c07_2010).mul_add(b, c(0x3d2b_9f17));
    let mid = c(0x3e2a_af33).mul_add(b, c(0x3eff_fedb));
    let lo = c(0x3f7f_fff6).mul_add(b, 1.0);
    let j = hi.mul_add(u, mid).mul_add(u, lo);
    // vscalefps: j · 2ⁿ rounded once (the f64 product is exact; 2ⁿ is built from its bits, n being a whole number
    // within ±192 wherever the result is used). No branch, so that callers' loops vectorise.
    let two_n = f64::from_bits(((n as i64).wrapping_add(1023) as u64) << 52);
    let scaled = (f64::from(j) * two_n) as f32;
    let out_of_range = if n <= 0.0 { 0.0 } else { f32::INFINITY };
    if n.abs() > 192.0 { out_of_range } else { scaled }
}

/// In-place softmax of one row of scores, as ggml's `soft_max` (AVX-512): the maximum subtracted, [`expf`] in
/// blocks of 16 whose sums ([`reduce16`], the missing lanes of a last short block being masked positions, 0) add
/// up in f64, then every value times the reciprocal of the sum.
#[inline(always)]
pub fn softmax(s: &mut [f32]) {
    let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for v in s.iter_mut() {
        *v = expf(*v - max);
    }
    let mut sum = 0f64;
    for block in s.chunks(LANES) {
        let mut e = [0f32; LANES];
        e[..block.len()].copy_from_slice(block);
        sum += f64::from(reduce16(&e));
    }
    let inv = (1.0 / sum) as f32;
    for v in s.iter_mut() {
        *v *= inv;
    }
}

/// gate = silu(gate) · up for each row of `row` values, SwiGLU's elementwise part, as ggml's `swiglu`: silu(x) =
/// x / (1 + [`expf`](−x)) in blocks of 16, and with libm's `expf` for the tail of a row past its last whole block.
pub fn swiglu(gate: &mut [f32], up: &[f32], row: usize) {
    #[cfg(target_arch = "x86_64")]
    if super::ops512::avx512() && row >= LANES {
        // SAFETY: the AVX-512 VNNI kernel set is only active on a CPU with AVX-512 F.
        return unsafe { super::ops512::swiglu(gate, up, row) };
    }
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the AVX2 kernel set is only active on a CPU with AVX2 and FMA.
        return unsafe { swiglu_fma(gate, up, row) };
    }
    swiglu_any(gate, up, row)
}

/// [`swiglu`] with FMA compiled in.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn swiglu_fma(gate: &mut [f32], up: &[f32], row: usize) {
    swiglu_any(gate, up, row)
}

#[inline(always)]
pub(super) fn swiglu_any(gate: &mut [f32], up: &[f32], row: usize) {
    for (g, u) in gate.chunks_exact_mut(row).zip(up.chunks_exact(row)) {
        let whole = row / LANES * LANES;
        for (x, &u) in g[..whole].iter_mut().zip(&u[..whole]) {
            *x = *x / (1.0 + expf(0.0 - *x)) * u;
        }
        for (x, &u) in g[whole..].iter_mut().zip(&u[whole..]) {
            *x = *x / (1.0 + (-*x).exp()) * u;
        }
    }
}

/// y += x
pub fn add(y: &mut [f32], x: &[f32]) {
    for (a, &b) in y.iter_mut().zip(x) {
        *a += b;
    }
}

/// Checks that `dots`, the scores of `N` keys at once (`dots8_avx2`, `ops512::dots16`), gives [`dot`] of each key
/// bit for bit, for head sizes 64, 128 and 256, on values whose sums round differently in any other order
/// (magnitudes far apart).
#[cfg(all(test, target_arch = "x86_64"))]
pub(super) fn assert_dots_equal_dot<const N: usize>(dots: impl Fn(&[f32], &[f32], &mut [f32; N])) {
    for hd in [64, 128, 256] {
        let q: Vec<f32> = (0..hd).map(|i| (i as f32 * 0.37).sin() * [1.0, 1e4, 1e-3][i % 3]).collect();
        let keys: Vec<f32> = (0..N * hd).map(|i| (i as f32 * 0.113).cos() * [3.0, 1e-2, 7e3, 1.0][i % 4]).collect();
        let mut got = [0f32; N];
        dots(&q, &keys, &mut got);
        for k in 0..N {
            let want = dot(&q, &keys[k * hd..(k + 1) * hd]);
            assert_eq!(got[k].to_bits(), want.to_bits(), "head size {hd}, key {k}: {} vs {want}", got[k]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Eight keys at once give `dot` of each, bit for bit (see [`assert_dots_equal_dot`]).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn dots8_avx2_equal_dot_bit_for_bit() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            eprintln!("no AVX2 and FMA here: skipped");
            return;
        }
        // SAFETY: AVX2 and FMA were just detected.
        assert_dots_equal_dot::<8>(|q, keys, out| unsafe { dots8_avx2(q, keys, out) });
    }

    #[test]
    fn dot_matches_a_serial_sum_on_every_tail_length() {
        for n in 0..200 {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let serial: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
            assert!((f64::from(dot(&a, &b)) - serial).abs() < 1e-5, "n = {n}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_dot_is_the_portable_one_bit_for_bit() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            return;
        }
        for n in [0, 1, 63, 64, 65, 127, 128, 200, 256] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos() / 7.0).collect();
            // SAFETY: checked above.
            let fast = unsafe { dot_avx2(&a, &b) };
            assert_eq!(fast.to_bits(), dot(&a, &b).to_bits(), "n = {n}");
        }
    }

    #[test]
    fn reduce16_adds_in_gccs_order() {
        // 2²⁴ + 1 rounds back to 2²⁴ unless the ones meet first: the grouping shows in the result.
        let mut x = [0f32; 16];
        x[0] = 16_777_216.0;
        x[8] = 1.0;
        x[4] = 1.0;
        // (x0 + x8) = 2²⁴ (the 1 is lost), then + (x4 + x12) = 2²⁴ + 1 → 2²⁴ again.
        assert_eq!(reduce16(&x), 16_777_216.0);
        x[12] = 1.0;
        // (x4 + x12) = 2 survives.
        assert_eq!(reduce16(&x), 16_777_218.0);
    }

    #[test]
    fn expf_is_within_two_ulps_of_libm_and_saturates() {
        for i in -10_000..10_000 {
            let x = i as f32 * 0.0087;
            let (ours, libm) = (expf(x), x.exp());
            assert!(((ours - libm) / libm).abs() < 2.5 * f32::EPSILON, "x = {x}: {ours} vs {libm}");
        }
        assert_eq!(expf(f32::NEG_INFINITY), 0.0);
        assert_eq!(expf(-200.0), 0.0);
        assert_eq!(expf(200.0), f32::INFINITY);
        assert_eq!(expf(0.0), 1.0);
    }

    #[test]
    fn weighted_sum_equals_the_serial_sum() {
        let rows: Vec<Vec<f32>> = (0..37).map(|i| (0..5).map(|d| ((i * 5 + d) as f32 * 0.3).sin()).collect()).collect();
        let p: Vec<f32> = (0..37).map(|i| (i as f32 * 0.7).cos().abs()).collect();
        let mut ws = WeightedSum::new(5);
        for (p, r) in p.iter().zip(&rows) {
            ws.add(*p, r);
        }
        let mut out = [0f32; 5];
        ws.finish(&mut out);
        for d in 0..5 {
            let serial: f64 = p.iter().zip(&rows).map(|(p, r)| f64::from(*p) * f64::from(r[d])).sum();
            assert!((f64::from(out[d]) - serial).abs() < 1e-5);
        }
    }

    /// Blocks of positions (of 64, and shorter ones that leave the next block starting mid-way through the 16
    /// lanes) give what the positions one by one give, bit for bit; so do the AVX2 and AVX-512 builds, for head
    /// sizes of 64, 128 (two passes of 64), 72 (a pass of 64 and one of 8; AVX-512 falls back) and 80 (a pass of 64
    /// and one of 16).
    #[test]
    fn weighted_sum_blocks_equal_positions_one_by_one() {
        for dim in [64, 128, 72, 80] {
            let n = 200;
            let rows: Vec<f32> = (0..n * dim).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
            let p: Vec<f32> = (0..n).map(|i| (i as f32 * 0.71).cos().abs() * 1e-2).collect();
            let mut one = WeightedSum::new(dim);
            for (pi, row) in p.iter().zip(rows.chunks_exact(dim)) {
                one.add(*pi, row);
            }
            let mut want = vec![0f32; dim];
            one.finish(&mut want);
            let blocks = [64, 21, 64, 51];
            let mut block = WeightedSum::new(dim);
            let mut at = 0;
            for b in blocks {
                block.add_block(&p[at..at + b], &rows[at * dim..(at + b) * dim]);
                at += b;
            }
            let mut got = vec![0f32; dim];
            block.finish(&mut got);
            assert_eq!(got, want, "dim {dim}: blocks");
            #[cfg(target_arch = "x86_64")]
            {
                type AddBlock = unsafe fn(&mut WeightedSum, &[f32], &[f32]);
                let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
                let avx512 = is_x86_feature_detected!("avx512f");
                let builds: [(&str, bool, AddBlock); 2] = [
                    ("AVX2", avx2, WeightedSum::add_block_avx2),
                    ("AVX-512", avx512, WeightedSum::add_block_avx512),
                ];
                for (name, _, add_block) in builds.into_iter().filter(|b| b.1) {
                    let (mut simd, mut at) = (WeightedSum::new(dim), 0);
                    for b in blocks {
                        // SAFETY: the build's features were just detected.
                        unsafe { add_block(&mut simd, &p[at..at + b], &rows[at * dim..(at + b) * dim]) };
                        at += b;
                    }
                    let mut got = vec![0f32; dim];
                    simd.finish(&mut got);
                    assert_eq!(got, want, "dim {dim}: {name} blocks");
                }
            }
        }
    }

    /// A sum started over gives what a new one gives, bit for bit, in every build: nothing of the last one's partial
    /// sums is left, even where the new one has fewer positions than the 16 lanes (those count as 0).
    #[test]
    fn weighted_sum_started_over_forgets_the_last_one() {
        let dim = 64;
        let rows: Vec<f32> = (0..40 * dim).map(|i| (i as f32 * 0.29).sin() * 5.0).collect();
        let p: Vec<f32> = (0..40).map(|i| (i as f32 * 0.53).cos().abs()).collect();
        type AddBlock = unsafe fn(&mut WeightedSum, &[f32], &[f32]);
        // (Mutable for the x86-64 builds below.)
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut builds: Vec<(&str, AddBlock)> = vec![("portable", |w, p, r| w.add_block(p, r))];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                builds.push(("AVX2", WeightedSum::add_block_avx2));
            }
            if is_x86_feature_detected!("avx512f") {
                builds.push(("AVX-512", WeightedSum::add_block_avx512));
            }
        }
        for (name, add_block) in builds {
            for n in [1, 5, 16, 17, 40] {
                let mut fresh = WeightedSum::new(dim);
                let mut reused = WeightedSum::new(dim);
                // SAFETY: the build's features were detected above.
                unsafe {
                    add_block(&mut reused, &p, &rows);
                    reused.clear();
                    add_block(&mut fresh, &p[40 - n..], &rows[(40 - n) * dim..]);
                    add_block(&mut reused, &p[40 - n..], &rows[(40 - n) * dim..]);
                }
                let (mut want, mut got) = (vec![0f32; dim], vec![0f32; dim]);
                fresh.finish(&mut want);
                reused.finish(&mut got);
                assert_eq!(got, want, "{name}: {n} positions after 40");
                let serial: Vec<f32> =
                    (0..dim).map(|d| (40 - n..40).map(|i| p[i] * rows[i * dim + d]).sum::<f32>()).collect();
                for (g, s) in got.iter().zip(&serial) {
                    assert!((g - s).abs() <= 1e-4 * (1.0 + s.abs()), "{name}: {n} positions: {g} vs {s}");
                }
            }
        }
    }

    #[test]
    fn swiglu_matches_silu_times_up_on_blocks_and_tails() {
        let row = 37;
        let mut g: Vec<f32> = (0..2 * row).map(|i| (i as f32 * 0.41).sin() * 6.0).collect();
        let u: Vec<f32> = (0..2 * row).map(|i| (i as f32 * 0.13).cos()).collect();
        let want: Vec<f64> = g.iter().zip(&u).map(|(&x, &u)| f64::from(x) / (1.0 + (-f64::from(x)).exp()) * f64::from(u)).collect();
        swiglu(&mut g, &u, row);
        for (o, w) in g.iter().zip(&want) {
            assert!((f64::from(*o) - w).abs() < 1e-6, "{o} vs {w}");
        }
    }

    #[test]
    fn softmax_sums_to_one_and_survives_large_scores() {
        let mut s = vec![1000.0, 999.0, -1e30, 998.0];
        softmax(&mut s);
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(s[0] > s[1] && s[1] > s[3] && s[2] == 0.0);
    }

    #[test]
    fn rms_norm_of_a_constant_row_is_the_weight() {
        let mut out = [0f32; 4];
        rms_norm(&[3.0; 4], &[1.0, 2.0, 3.0, 4.0], 0.0, &mut out);
        assert_eq!(out, [1.0, 2.0, 3.0, 4.0]);
    }

    /// The eight chains and the leftover elements together give ggml's one chain of f64 additions, to the f32
    /// result's last bit, on rows with and without a whole number of eights and values of mixed magnitudes.
    #[test]
    fn rms_norm_equals_one_chain_of_additions() {
        for n in [7, 8, 576, 579, 2051] {
            let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.61).sin() * [1.0, 30.0, 1e-3][i % 3]).collect();
            let w: Vec<f32> = (0..n).map(|i| 0.5 + (i % 5) as f32).collect();
            let mut got = vec![0f32; n];
            rms_norm(&x, &w, 1e-5, &mut got);
            let mut ss = 0f64;
            for &v in &x {
                ss += f64::from(v * v);
            }
            let scale = 1.0 / ((ss / n as f64) as f32 + 1e-5).sqrt();
            let want: Vec<f32> = x.iter().zip(&w).map(|(&v, &g)| v * scale * g).collect();
            assert_eq!(got, want, "{n} elements");
        }
    }
}
