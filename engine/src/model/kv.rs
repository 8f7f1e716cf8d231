//! The KV cache: keys (after RoPE) and values of every cached position, laid out [layer][kv head][position][dim]
//! so that one head's keys are contiguous for the attention loop and a context shift moves one block per head.
//!
//! Two storage types. F32 (the default): the logits then follow transformers' to 1e-6, and the demo model's cache
//! is 30 layers × 2 × 192 × 4 B = 45 KiB per position (90 MiB at 2048). F16, llama.cpp's default, halves that —
//! what a 3B model on a phone wants — at a rounding of keys and values to 11 significant bits; attention converts
//! a block of rows at a time back to f32 (F16C / NEON fp16 through `half`, detected at run time).
//!
//! Pages are allocated zeroed and untouched, so the memory only becomes resident as positions are used.

use half::f16;
use half::slice::HalfFloatSliceExt;

use super::ModelError;

/// Storage type of a context's KV cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KvType {
    #[default]
    F32,
    F16,
}

impl KvType {
    pub fn bytes(self) -> usize {
        match self {
            KvType::F32 => 4,
            KvType::F16 => 2,
        }
    }
}

/// Keys or values of every layer, head and position.
pub(super) enum Store {
    F32(Vec<f32>),
    F16(Vec<f16>),
}

impl Store {
    /// `n` zeroed elements; an allocation the system refuses is an error, not an abort.
    fn zeroed(ty: KvType, n: usize) -> Result<Store, std::collections::TryReserveError> {
        // `vec![0; n]` takes zeroed pages from the OS untouched (calloc) but aborts when refused: ask first with
        // `try_reserve` (which touches nothing either).
        Ok(match ty {
            KvType::F32 => {
                Vec::<f32>::new().try_reserve_exact(n)?;
                Store::F32(vec![0.0; n])
            }
            KvType::F16 => {
                Vec::<f16>::new().try_reserve_exact(n)?;
                Store::F16(vec![f16::ZERO; n])
            }
        })
    }

    fn len(&self) -> usize {
        match self {
            Store::F32(v) => v.len(),
            Store::F16(v) => v.len(),
        }
    }

    /// Stores `src` at element `at`.
    pub fn write(&mut self, at: usize, src: &[f32]) {
        match self {
            Store::F32(v) => v[at..at + src.len()].copy_from_slice(src),
            Store::F16(v) => v[at..at + src.len()].convert_from_f32_slice(src),
        }
    }

    /// Elements `at..at + len` as f32: borrowed when stored as f32, else converted into `scratch`.
    pub fn rows<'a>(&'a self, at: usize, len: usize, scratch: &'a mut [f32]) -> &'a [f32] {
        match self {
            Store::F32(v) => &v[at..at + len],
            Store::F16(v) => {
                v[at..at + len].convert_to_f32_slice(&mut scratch[..len]);
                &scratch[..len]
            }
        }
    }

    /// The elements themselves, when stored as f32.
    pub fn f32s(&self) -> Option<&[f32]> {
        match self {
            Store::F32(v) => Some(v),
            Store::F16(_) => None,
        }
    }

    fn copy_within(&mut self, from: std::ops::Range<usize>, to: usize) {
        match self {
            Store::F32(v) => v.copy_within(from, to),
            Store::F16(v) => v.copy_within(from, to),
        }
    }
}

pub(super) struct KvCache {
    pub n_ctx: usize,
    n_head_kv: usize,
    head_dim: usize,
    pub ty: KvType,
    pub k: Store,
    pub v: Store,
}

impl KvCache {
    /// A cache of `n_ctx` positions, at most `max_bytes` large.
    pub fn new(
        ty: KvType,
        n_layer: usize,
        n_head_kv: usize,
        head_dim: usize,
        n_ctx: usize,
        max_bytes: usize,
    ) -> Result<KvCache, ModelError> {
        let bad = |reason: String| ModelError::BadContextSize { n_ctx, reason };
        let len = (n_layer * n_head_kv * head_dim).checked_mul(n_ctx).filter(|&n| n <= max_bytes / 2 / ty.bytes());
        let len =
            len.ok_or_else(|| bad(format!("its KV cache would pass PocketLM's limit of {} GiB", max_bytes >> 30)))?;
        let refused = |_| bad(format!("cannot allocate its {} MiB KV cache", (2 * len * ty.bytes()) >> 20));
        let k = Store::zeroed(ty, len).map_err(refused)?;
        let v = Store::zeroed(ty, len).map_err(refused)?;
        Ok(KvCache { n_ctx, n_head_kv, head_dim, ty, k, v })
    }

    /// Index of (layer, kv head, position) in `k` and `v`.
    pub fn offset(&self, layer: usize, head: usize, pos: usize) -> usize {
        ((layer * self.n_head_kv + head) * self.n_ctx + pos) * self.head_dim
    }

    pub fn bytes(&self) -> usize {
        (self.k.len() + self.v.len()) * self.ty.bytes()
    }

    /// Moves `n` positions of every layer and head from `from` to `to` (keys and values), then lets `rotate`
    /// turn each moved block of keys (n × head_dim, as f32).
    pub fn move_positions(&mut self, n_layer: usize, from: usize, to: usize, n: usize, rotate: impl Fn(&mut [f32])) {
        let hd = self.head_dim;
        let (mut keys, mut scratch) = (vec![0f32; n * hd], vec![0f32; n * hd]);
        for l in 0..n_layer {
            for h in 0..self.n_head_kv {
                let (dst, src) = (self.offset(l, h, to), self.offset(l, h, from));
                self.k.copy_within(src..src + n * hd, dst);
                self.v.copy_within(src..src + n * hd, dst);
                keys.copy_from_slice(self.k.rows(dst, n * hd, &mut scratch));
                rotate(&mut keys);
                self.k.write(dst, &keys);
            }
        }
    }
}
