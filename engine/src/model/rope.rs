//! Rotary position embedding, as ggml's `rope` computes it without YaRN: pair i of a head turns by
//! θ_i = p · s · base^(−2i/n_rot) / f_i, where s is the linear scaling factor and f_i the model's `rope_freqs`
//! (Llama 3's per-frequency divisors; 1 without). NORM mode pairs dimensions (2i, 2i+1) — the converter permuted
//! the q/k rows of Llama checkpoints for this — and NEOX mode pairs (i, i + n_rot/2), as Qwen2 is trained.
//!
//! Angles are computed in f64 from the position (transformers computes p·inv_freq in f32, ggml multiplies
//! base^(−2/n) up in f32): both are within a few ulps of this at the positions that matter.
//!
//! Rotations compose: turning a cached key by θ(Δ) moves it from position p to p + Δ, which is how
//! [`super::Context::shift`] re-positions the keys it keeps.

use super::hparams::{HParams, RopeMode};

pub struct Rope {
    mode: RopeMode,
    n_rot: usize,
    head_dim: usize,
    /// Angle per unit of position for each of the n_rot/2 pairs.
    inv_freq: Vec<f64>,
}

impl Rope {
    /// `factors`: the `rope_freqs.weight` divisors (n_rot/2 of them), when the model has them.
    pub fn new(hp: &HParams, factors: Option<&[f32]>) -> Rope {
        let half = hp.n_rot / 2;
        let base = f64::from(hp.rope_theta);
        let inv_freq = (0..half)
            .map(|i| {
                let f = factors.map_or(1.0, |f| f64::from(f[i]));
                f64::from(hp.rope_freq_scale) * base.powf(-2.0 * i as f64 / hp.n_rot as f64) / f
            })
            .collect();
        Rope { mode: hp.rope_mode, n_rot: hp.n_rot, head_dim: hp.head_dim, inv_freq }
    }

    /// Pairs per head that rotate.
    pub fn half(&self) -> usize {
        self.n_rot / 2
    }

    /// cos θ_i and sin θ_i at position `pos` (negative for a shift back), into `cs[..half]` and `cs[half..2·half]`.
    pub fn angles(&self, pos: f64, cs: &mut [f32]) {
        let half = self.half();
        for (i, &f) in self.inv_freq.iter().enumerate() {
            let (s, c) = (pos * f).sin_cos();
            cs[i] = c as f32;
            cs[half + i] = s as f32;
        }
    }

    /// Rotates each of the heads in `v` (n_heads × head_dim) by the angles `cs` from [`Rope::angles`].
    pub fn apply(&self, v: &mut [f32], cs: &[f32]) {
        let half = self.half();
        let (cos, sin) = cs[..2 * half].split_at(half);
        for head in v.chunks_exact_mut(self.head_dim) {
            match self.mode {
                RopeMode::Norm => {
                    for (i, pair) in head[..self.n_rot].chunks_exact_mut(2).enumerate() {
                        let (x0, x1) = (pair[0], pair[1]);
                        pair[0] = x0 * cos[i] - x1 * sin[i];
                        pair[1] = x0 * sin[i] + x1 * cos[i];
                    }
                }
                RopeMode::Neox => {
                    let (lo, hi) = head[..self.n_rot].split_at_mut(half);
                    for i in 0..half {
                        let (x0, x1) = (lo[i], hi[i]);
                        lo[i] = x0 * cos[i] - x1 * sin[i];
                        hi[i] = x0 * sin[i] + x1 * cos[i];
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
            rope.angles(7.0, &mut cs);
            rope.apply(&mut a, &cs);
            rope.angles(3.0, &mut cs);
            rope.apply(&mut b, &cs);
            rope.angles(4.0, &mut cs);
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
        rope.angles(1.0, &mut cs);
        rope.apply(&mut v, &cs);
        assert!((v[0] - 1f32.cos()).abs() < 1e-7 && (v[1] - 1f32.sin()).abs() < 1e-7);
    }
}
