//! The KV cache: keys (after RoPE) and values of every cached position, in blocks of [`BLOCK`] positions, laid out
//! [block][layer][kv head][position in block][dim]: a block of one head's keys is contiguous for the attention
//! loop, which reads them a block at a time, and the cache fills block by block as positions are used.
//!
//! Two storage types. F32 (the default): the logits then follow transformers' to 1e-6, and the demo model's cache
//! is 30 layers × 2 × 192 × 4 B = 45 KiB per position (90 MiB at 2048). F16, llama.cpp's default, halves that —
//! what a 3B model on a phone wants — at a rounding of keys and values to 11 significant bits; attention converts
//! a block of rows at a time back to f32 (F16C / NEON fp16 through `half`, detected at run time).
//!
//! The memory is anonymous pages that the OS zeroes as they are first touched, asked for in huge pages (Linux's
//! transparent huge pages, `MADV_HUGEPAGE`; elsewhere, or with them off, 4 KiB ones). It becomes resident as
//! positions are used, a block at a time (1.4 MiB of keys for SmolLM2-135M at f32, 2 MiB for a Llama-3.2-1B shape).
//! The cache used to be laid out [layer][kv head][position][dim], in 4 KiB pages: a generated token's attention
//! and cache writes then touched pages of every layer, KV head and keys or values, and a chat's new positions took
//! a fresh page of each every 16 (SmolLM2-135M: 11 page faults a token, at 16 µs each on the Xeon below). In huge
//! pages that layout made each layer's and head's first 2 MiB resident at the first token: the whole cache at a
//! context of 4096 (312 rather than 158 MiB resident, and the first token 0.6 s late with its page faults). In
//! blocks, a few huge pages hold every position used so far. Intel Xeon (2 vCPUs, family 6 model 167),
//! SmolLM2-135M Q4_K_M, 2 threads, the build before against this one (both changes, with the team's longer
//! spinning, `team`):
//! - `generate -n 600` at the CLI's context of 4096, two runs each: 132–135 → 160–165 tok/s (157–158 with huge
//!   pages in the old layout), first token after 0.02–0.03 s, peak resident 158 → 164 MiB, system time
//!   0.75–0.82 → 0.15–0.19 s; `-n 1500`: 88–93 → 128–129 tok/s;
//! - `bench -n 128`, three pairs in turn: 179–182 → 202–207 tok/s; each run against the bandwidth measured around
//!   it, medians 68–69% → 77–79%;
//! - `bench -p 512`: 627–657 and 647–667 tok/s, the same.

use half::f16;
use half::slice::HalfFloatSliceExt;
use memmap2::MmapMut;

use super::ModelError;

/// Positions per block of the cache: its rows are laid out [block][layer][kv head][position in block][dim].
pub(super) const BLOCK: usize = 64;

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

/// Keys or values of every layer, head and position: `len` elements of `ty`, in anonymous memory that the OS zeroes
/// as it is first touched, asked for in huge pages ([`crate::pages::anonymous_huge`]).
pub(super) struct Store {
    ty: KvType,
    len: usize,
    map: MmapMut,
}

/// Bytes of a huge page (x86-64 and aarch64 with 4 KiB pages), which a [`Store`]'s mapping is a multiple of.
const HUGE_PAGE: usize = 2 << 20;

/// The element types a [`Store`] holds: any bits are a valid value.
trait Element: Copy {}
impl Element for f32 {}
impl Element for f16 {}

impl Store {
    /// `n` zeroed elements; memory the system refuses is an error, not an abort. The mapping is a whole number of
    /// 2 MiB, so that its last part can be a huge page too (the bytes past the elements are never written).
    fn zeroed(ty: KvType, n: usize) -> std::io::Result<Store> {
        let bytes = n.checked_mul(ty.bytes()).and_then(|b| b.max(1).checked_next_multiple_of(HUGE_PAGE));
        let map = crate::pages::anonymous_huge(bytes.ok_or(std::io::ErrorKind::OutOfMemory)?)?;
        Ok(Store { ty, len: n, map })
    }

    /// The elements as `T`, the type `ty` names (checked).
    fn elements<T: Element>(&self) -> &[T] {
        assert_eq!(std::mem::size_of::<T>(), self.ty.bytes(), "KV cache element type");
        // SAFETY: the map holds `len` elements of that size and is page-aligned (so aligned for T); any bits are a
        // valid T ([`Element`]), and the borrow of `self` keeps the map alive and unwritten.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().cast::<T>(), self.len) }
    }

    /// As [`Store::elements`], to write.
    fn elements_mut<T: Element>(&mut self) -> &mut [T] {
        assert_eq!(std::mem::size_of::<T>(), self.ty.bytes(), "KV cache element type");
        // SAFETY: as in `elements`, and the mutable borrow of `self` is the only one.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr().cast::<T>(), self.len) }
    }

    /// Stores `src` at element `at`.
    pub fn write(&mut self, at: usize, src: &[f32]) {
        match self.ty {
            KvType::F32 => self.elements_mut::<f32>()[at..at + src.len()].copy_from_slice(src),
            KvType::F16 => self.elements_mut::<f16>()[at..at + src.len()].convert_from_f32_slice(src),
        }
    }

    /// Elements `at..at + len` as f32: borrowed when stored as f32, else converted into `scratch`.
    pub fn rows<'a>(&'a self, at: usize, len: usize, scratch: &'a mut [f32]) -> &'a [f32] {
        match self.ty {
            KvType::F32 => &self.elements::<f32>()[at..at + len],
            KvType::F16 => {
                self.elements::<f16>()[at..at + len].convert_to_f32_slice(&mut scratch[..len]);
                &scratch[..len]
            }
        }
    }

    /// The elements themselves, when stored as f32.
    pub fn f32s(&self) -> Option<&[f32]> {
        (self.ty == KvType::F32).then(|| self.elements::<f32>())
    }

    fn copy_within(&mut self, from: std::ops::Range<usize>, to: usize) {
        match self.ty {
            KvType::F32 => self.elements_mut::<f32>().copy_within(from, to),
            KvType::F16 => self.elements_mut::<f16>().copy_within(from, to),
        }
    }
}

pub(super) struct KvCache {
    pub n_ctx: usize,
    n_layer: usize,
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
        let positions = n_ctx.checked_next_multiple_of(BLOCK);
        let len = positions.and_then(|p| (n_layer * n_head_kv * head_dim).checked_mul(p));
        let len = len.filter(|&n| n <= max_bytes / 2 / ty.bytes());
        let len =
            len.ok_or_else(|| bad(format!("its KV cache would pass PocketLM's limit of {} GiB", max_bytes >> 30)))?;
        let refused = |_| bad(format!("cannot allocate its {} MiB KV cache", (2 * len * ty.bytes()) >> 20));
        let k = Store::zeroed(ty, len).map_err(refused)?;
        let v = Store::zeroed(ty, len).map_err(refused)?;
        Ok(KvCache { n_ctx, n_layer, n_head_kv, head_dim, ty, k, v })
    }

    /// Index of (layer, kv head, position) in `k` and `v`. The rows of positions `c..c + m` of one layer and head
    /// are contiguous when `c..c + m` lies within one [`BLOCK`].
    pub fn offset(&self, layer: usize, head: usize, pos: usize) -> usize {
        let (block, row) = (pos / BLOCK, pos % BLOCK);
        (((block * self.n_layer + layer) * self.n_head_kv + head) * BLOCK + row) * self.head_dim
    }

    /// Bytes of the keys and values of the cache's `n_ctx` positions. (The memory mapped for them reaches on to a
    /// whole block and a whole 2 MiB; the positions past `n_ctx` are never written, and resident only as part of
    /// a huge page.)
    pub fn bytes(&self) -> usize {
        2 * self.n_layer * self.n_head_kv * self.head_dim * self.n_ctx * self.ty.bytes()
    }

    /// The share of the keys' and values' memory mapped in huge pages so far ([`crate::pages::huge_share`]; the two
    /// mappings are the same size); None where the OS does not tell.
    pub fn huge_page_share(&self) -> Option<f64> {
        let share = |s: &Store| crate::pages::huge_share(s.map.as_ptr());
        Some((share(&self.k)? + share(&self.v)?) / 2.0)
    }

    /// Moves `n` positions of every layer and head from `from` to `to` (keys and values; `to <= from`, as a
    /// context shift moves them), then lets `rotate` turn each moved key (head_dim values, as f32).
    pub fn move_positions(&mut self, from: usize, to: usize, n: usize, rotate: impl Fn(&mut [f32])) {
        assert!(to <= from, "KV positions move towards the start");
        let hd = self.head_dim;
        let (mut key, mut scratch) = (vec![0f32; hd], vec![0f32; hd]);
        // In order of position, so that each source row is read before a later one overwrites it.
        for p in 0..n {
            for (l, h) in (0..self.n_layer).flat_map(|l| (0..self.n_head_kv).map(move |h| (l, h))) {
                let (dst, src) = (self.offset(l, h, to + p), self.offset(l, h, from + p));
                self.k.copy_within(src..src + hd, dst);
                self.v.copy_within(src..src + hd, dst);
                key.copy_from_slice(self.k.rows(dst, hd, &mut scratch));
                rotate(&mut key);
                self.k.write(dst, &key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether 4 MiB of anonymous memory asked for in huge pages, once written, has some in them.
    fn huge_pages_given() -> bool {
        let Ok(mut map) = crate::pages::anonymous_huge(4 << 20) else { return false };
        map.iter_mut().step_by(4096).for_each(|b| *b = 1);
        crate::pages::huge_mapped(map.as_ptr()).is_some_and(|(_, huge)| huge > 0)
    }

    /// What is written at each (layer, head, position) reads back there (f32 exactly, f16 rounded), and moved
    /// positions land where they were sent, keys turned. Where Linux gives transparent huge pages, the written
    /// cache is in them.
    #[test]
    fn the_cache_keeps_what_is_written_in_huge_pages() {
        let (layers, heads, hd, n_ctx) = (3, 2, 64, 1000);
        let row = |l: usize, h: usize, p: usize| -> Vec<f32> {
            (0..hd).map(|i| ((l * 7 + h * 3 + p) % 97) as f32 + i as f32 / 64.0).collect()
        };
        for ty in [KvType::F32, KvType::F16] {
            let mut kv = KvCache::new(ty, layers, heads, hd, n_ctx, 1 << 30).unwrap();
            assert_eq!(kv.bytes(), 2 * layers * heads * hd * n_ctx * ty.bytes());
            let all = || (0..layers).flat_map(|l| (0..heads).flat_map(move |h| (0..n_ctx).map(move |p| (l, h, p))));
            for (l, h, p) in all() {
                let at = kv.offset(l, h, p);
                kv.k.write(at, &row(l, h, p));
                kv.v.write(at, &row(l, h, p).iter().map(|x| -x).collect::<Vec<_>>());
            }
            let (mut scratch, mut scratch_v) = (vec![0f32; 4 * hd], vec![0f32; hd]);
            for (l, h, p) in all() {
                let want = row(l, h, p);
                let near = |got: &[f32], sign: f32| got.iter().zip(&want).all(|(g, w)| (g - sign * w).abs() <= 0.05);
                assert!(near(kv.k.rows(kv.offset(l, h, p), hd, &mut scratch), 1.0), "{ty:?} keys at {l} {h} {p}");
                assert!(near(kv.v.rows(kv.offset(l, h, p), hd, &mut scratch), -1.0), "{ty:?} values at {l} {h} {p}");
            }
            assert_eq!(kv.k.f32s().is_some(), ty == KvType::F32);
            // Positions 70..130 to 40..100: across blocks, onto themselves in part.
            kv.move_positions(70, 40, 60, |key| key.iter_mut().for_each(|x| *x += 1.0));
            for (l, h, p) in [(0, 0, 0), (1, 1, 29), (2, 0, 30), (2, 1, 59)] {
                let at = kv.offset(l, h, 40 + p);
                let (key, value) = (kv.k.rows(at, hd, &mut scratch), kv.v.rows(at, hd, &mut scratch_v));
                let want = row(l, h, 70 + p);
                assert!(key.iter().zip(&want).all(|(g, w)| (g - w - 1.0).abs() <= 0.05), "{ty:?} moved key {p}");
                assert!(value.iter().zip(&want).all(|(g, w)| (g + w).abs() <= 0.05), "{ty:?} moved value {p}");
            }

            // Where memory asked for in huge pages gets them here (not with THP off, nor under qemu's emulation),
            // the cache's does.
            if huge_pages_given() {
                assert!(kv.huge_page_share().is_some_and(|s| s > 0.0), "{ty:?}: none of the cache in huge pages");
            }
        }
    }
}
