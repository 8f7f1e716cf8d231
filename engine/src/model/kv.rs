//! The KV cache: keys (after RoPE) and values of every cached position, laid out [layer][kv head][position][dim]
//! so that one head's keys are contiguous for the attention loop and a context shift moves one block per head.
//!
//! Two storage types. F32 (the default): the logits then follow transformers' to 1e-6, and the demo model's cache
//! is 30 layers × 2 × 192 × 4 B = 45 KiB per position (90 MiB at 2048). F16, llama.cpp's default, halves that —
//! what a 3B model on a phone wants — at a rounding of keys and values to 11 significant bits; attention converts
//! a block of rows at a time back to f32 (F16C / NEON fp16 through `half`, detected at run time).
//!
//! The memory is anonymous pages that the OS zeroes as they are first touched, asked for in huge pages (Linux's
//! transparent huge pages, `MADV_HUGEPAGE`; elsewhere, or with them off, 4 KiB pages that become resident as
//! positions are used). In 4 KiB pages, a generated token's attention and cache writes touch pages per layer, KV
//! head and keys or values, whose TLB entries the weights streaming by in between may have pushed out (this
//! machine's counters are not visible to tell), and a chat's new positions take a fresh page of each every 16
//! (SmolLM2-135M: 11 page faults a token, at 16 µs each on the Xeon below). In 2 MiB pages the whole cache takes
//! a few TLB entries. Then each layer's and head's 2 MiB becomes resident once
//! touched: up to the whole cache from the first token, as llama.cpp's cache is from the start. Intel Xeon (2 vCPUs,
//! family 6 model 167), SmolLM2-135M Q4_K_M, `bench -n 128` on 2 threads, five pairs of runs in turn: 187–197 →
//! 190–205 tok/s, four of five faster (each run against the bandwidth measured around it: medians 73–77% →
//! 75–76%); with the team's longer spinning (`team`) as well, faster in each of eight rounds.

use half::f16;
use half::slice::HalfFloatSliceExt;
use memmap2::MmapMut;

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
    /// 2 MiB, so that its last part can be a huge page too (the rest of it is never touched).
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

    fn len(&self) -> usize {
        self.len
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

    /// The share of the keys' and values' memory mapped in huge pages so far ([`crate::pages::huge_mapped`]); None
    /// where the OS does not tell.
    pub fn huge_page_share(&self) -> Option<f64> {
        let [k, v] = [&self.k, &self.v].map(|s| crate::pages::huge_mapped(s.map.as_ptr()));
        let ((k_size, k_huge), (v_size, v_huge)) = (k?, v?);
        (k_size + v_size > 0).then(|| (k_huge + v_huge) as f64 / (k_size + v_size) as f64)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What is written at each (layer, head, position) reads back there (f32 exactly, f16 rounded), and a moved
    /// block lands where it was sent. Where Linux gives transparent huge pages, the written cache is in them.
    #[test]
    fn the_cache_keeps_what_is_written_in_huge_pages() {
        let (layers, heads, hd, n_ctx) = (3, 2, 64, 1024);
        let row = |l: usize, h: usize, p: usize| -> Vec<f32> {
            (0..hd).map(|i| ((l * 7 + h * 3 + p) % 97) as f32 + i as f32 / 64.0).collect()
        };
        for ty in [KvType::F32, KvType::F16] {
            let mut kv = KvCache::new(ty, layers, heads, hd, n_ctx, 1 << 30).unwrap();
            assert_eq!(kv.bytes(), 2 * layers * heads * hd * n_ctx * ty.bytes());
            for (l, h, p) in (0..layers).flat_map(|l| (0..heads).flat_map(move |h| (0..n_ctx).map(move |p| (l, h, p)))) {
                let at = kv.offset(l, h, p);
                kv.k.write(at, &row(l, h, p));
                kv.v.write(at, &row(l, h, p).iter().map(|x| -x).collect::<Vec<_>>());
            }
            let mut scratch = vec![0f32; 4 * hd];
            for (l, h, p) in [(0, 0, 0), (1, 1, 500), (2, 1, n_ctx - 1)] {
                let want = row(l, h, p);
                let near = |got: &[f32], sign: f32| got.iter().zip(&want).all(|(g, w)| (g - sign * w).abs() <= 0.05);
                assert!(near(kv.k.rows(kv.offset(l, h, p), hd, &mut scratch), 1.0), "{ty:?} keys at {l} {h} {p}");
                assert!(near(kv.v.rows(kv.offset(l, h, p), hd, &mut scratch), -1.0), "{ty:?} values at {l} {h} {p}");
            }
            assert_eq!(kv.k.f32s().is_some(), ty == KvType::F32);
            kv.move_positions(layers, 10, 2, 3, |_| {});
            let moved = kv.k.rows(kv.offset(1, 0, 3), hd, &mut scratch).to_vec();
            assert!(moved.iter().zip(row(1, 0, 11)).all(|(g, w)| (g - w).abs() <= 0.05), "{ty:?} moved");

            let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
            if let (Some(share), false) = (kv.huge_page_share(), thp.is_empty() || thp.contains("[never]")) {
                assert!(share > 0.0, "{ty:?}: none of the cache in huge pages");
            }
        }
    }
}
