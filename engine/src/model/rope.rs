//! Rotary position embedding, as ggml's `rope` computes it without YaRN: pair i of a head turns by
//! θ_i = p · s · base^(−2i/n_rot) / f_i, where s is the linear scaling factor and f_i the model's `rope_freqs`
//! (Llama 3's per-frequency divisors; 1 without). NORM mode pairs dimensions (2i, 2i+1) — the converter permuted
//! the q/k rows of Llama checkpoints for this — and NEOX mode pairs (i, i + n_rot/2), as Qwen2 is trained.
//!
//! The arithmetic is ggml's, step for step (see `ops` for why that matters): base^(−2/n_rot) once in f32 (libm
//! `powf`), the angle of pair i by multiplying the position up by it i times in f32, libm's `cosf`/`sinf`, and each
//! rotated value with its first product fused into the subtraction or addition, as GCC contracts ggml's
//! `x0*cos - x1*sin` with FMA.
//!
//! Rotations compose: turning a cached key by θ(Δ) moves it from position p to p + Δ, which is how
//! [`super::Context::shift`] re-positions the keys it keeps.

use super::hparams::{HParams, RopeMode};

pub struct Rope {
    mode: RopeMode,
    n_rot: usize,
    head_dim: usize,
    /// base^(−2/n_rot): the angle of pair i + 1 over that of pair i.
    theta_scale: f32,
    freq_scale: f32,
    /// The `rope_freqs` divisors, one per pair, when the model has them.
    factors: Option<Vec<f32>>,
}

impl Rope {
    /// `factors`: the `rope_freqs.weight` divisors (n_rot/2 of them), when the model has them.
    pub fn new(hp: &HParams, factors: Option<&[f32]>) -> Rope {
        Rope {
            mode: hp.rope_mode,
            n_rot: hp.n_rot,
            head_dim: hp.head_dim,
            theta_scale: hp.rope_theta.powf(-2.0 / hp.n_rot as f32),
            freq_scale: hp.rope_freq_scale,
            factors: factors.map(<[f32]>::to_vec),
        }
    }

    /// Pairs per head that rotate.
    pub fn half(&self) -> usize {
        self.n_rot / 2
    }

    /// cos θ_i and sin θ_i at position `pos` (negative for a shift back), into `cs[..half]` and `cs[half..2·half]`.
    pub fn angles(&self, pos: i64, cs: &mut [f32]) {
        let half = self.half();
        let mut theta = pos as f32;
        for i in 0..half {
            let f = self.factors.as_ref().map_or(1.0, |f| f[i]);
            let t = self.freq_scale * (theta / f);
            cs[i] = t.cos();
            cs[half + i] = t.sin();
            theta *= self.theta_scale;
        }
    }

    /// Rotates each of the heads in `v` (n_heads × head_dim) by the angles `cs` from [`Rope::angles`].
    pub fn apply(&self, v: &mut [f32], cs: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if super::ops::avx2_fma() {
            // SAFETY: the AVX2 kernel set is only active on a CPU with AVX2 and FMA.
            return unsafe { self.apply_fma(v, cs) };
        }
        self.apply_any(v, cs)
    }

    /// [`Rope::apply`] with FMA compiled in (`mul_add` one instruction rather than a libm call).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn apply_fma(&self, v: &mut [f32], cs: &[f32]) {
        self.apply_any(v, cs)
    }

    #[inline(always)]
    fn apply_any(&self, v: &mut [f32], cs: &[f32]) {
        let half = self.half();
        let (cos, sin) = cs[..2 * half].split_at(half);
        // x0·cos − x1·sin and x0·sin + x1·cos, each with its first product fused.
        let turn = |x0: f32, x1: f32, c: f32, s: f32| (x0.mul_add(c, -(x1 * s)), x0.mul_add(s, x1 * c));
        for head in v.chunks_exact_mut(self.head_dim) {
            match self.mode {
                RopeMode::Norm => {
                    for (i, pair) in head[..self.n_rot].chunks_exact_mut(2).enumerate() {
                        (pair[0], pair[1]) = turn(pair[0], pair[1], cos[i], sin[i]);
                    }
                }
                RopeMode::Neox => {
                    let (lo, hi) = head[..self.n_rot].split_at_mut(half);
                    for i in 0..half {
                        (lo[i], hi[i]) = turn(lo[i], hi[i], cos[i], sin[i]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hparams::Arch;

    fn hp(mode: RopeMode) -> HParams {
        HParams {
            arch: Arch::Llama,
            n_vocab: 1,
            n_embd: 8,
            n_layer: 1,
            n_head: 1,
            n_head_kv: 1,
            head_dim: 8,
            n_ff: 1,
            n_ctx_train: 16,
            n_rot: 8,
            rope_mode: mode,
            rope_theta: 10000.0,
            rope_freq_scale: 1.0,
            eps: 1e-5,
        }
    }

    #[test]
    fn rotations_compose_and_keep_norms() {
        for mode in [RopeMode::Norm, RopeMode::Neox] {
            let rope = Rope::new(&hp(mode), Some(&[1.0, 2.0, 4.0, 8.0]));
            let x: Vec<f32> = (0..8).map(|i| i as f32 - 3.5).collect();
            let (mut a, mut b) = (x.clone(), x.clone());
            let mut cs = [0f32; 8];
            rope.angles(7, &mut cs);
            rope.apply(&mut a, &cs);
            rope.angles(3, &mut cs);
            rope.apply(&mut b, &cs);
            rope.angles(4, &mut cs);
            rope.apply(&mut b, &cs);
            for (p, q) in a.iter().zip(&b) {
                assert!((p - q).abs() < 1e-5, "{mode:?}: {a:?} vs {b:?}");
            }
            let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>();
            assert!((n(&a) - n(&x)).abs() < 1e-3);
        }
    }

    #[test]
    fn norm_mode_turns_the_first_pair_by_the_position() {
        let rope = Rope::new(&hp(RopeMode::Norm), None);
        let mut v = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let mut cs = [0f32; 8];
        rope.angles(1, &mut cs);
        rope.apply(&mut v, &cs);
        assert!((v[0] - 1f32.cos()).abs() < 1e-7 && (v[1] - 1f32.sin()).abs() < 1e-7);
    }
}
