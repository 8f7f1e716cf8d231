//! Activations in the form the dot-product kernels read: each token's row of f32 converted to
//! [`vec_dot_type`](super::vec_dot_type) of the weight, as llama.cpp pairs them.
//!
//! The quantizers are the engine's own byte-exact ports of ggml's `quantize_row_q8_K_ref`, `quantize_row_q8_0_ref`
//! and `quantize_row_q8_1_ref` (`crate::quant`), except that with AVX2 Q8_0 and Q8_1 go through
//! [`x86::act_quantizer`](super::x86::act_quantizer), which rounds as llama.cpp's x86 build does: our activations
//! are the bytes llama.cpp's CPU backend makes on x86-64.
//! F32 activations (for F32/F16/BF16 weights) are the f32 values, little-endian.
//!
//! One token's row is those blocks, followed for Q8_0 by each block's scale `d` and for Q8_1 by each block's
//! `d, s`, as little-endian f32. The f16 scales are converted once here rather than once per weight row in the
//! kernels' inner loops, where a batch would convert each of them `rows` times. The scalar references read only the
//! blocks (they zip them with the weight's blocks, which stops there).
//!
//! For the AVX-VNNI kernels, Q8_0 rows carry more per block, after the scales ([`RowLayout::vnni_per_block`]): the
//! 32 codes plus 128, as unsigned bytes, and `d` eight times over. `vpdpbusd` multiplies unsigned bytes by signed
//! ones, so with the activations made unsigned the weights' signed codes go in as they are (the +128 comes back out
//! through the weight codes' sums); `d` in every lane lets a kernel multiply it by the weight's `d` straight from
//! memory.

use super::Isa;
use crate::team::{Chunks, Parallel};
use crate::quant::GgmlType;

/// A row quantizer: whole blocks of f32 in, their bytes out.
pub type RowQuantizer = fn(&[f32], &mut [u8]);

/// Below this many values a batch is quantized on the calling thread: handing it to other threads costs more.
const PARALLEL_MIN_VALUES: usize = 32 * 1024;

/// Where the parts of one token's activation row lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowLayout {
    /// Bytes of the `vec_dot_type` blocks (at the start of the row).
    pub blocks: usize,
    /// f32 scales per block after the blocks: 1 (Q8_0: d), 2 (Q8_1: d, s) or 0.
    pub scales_per_block: usize,
    /// Bytes per block after the scales for the AVX-VNNI kernels: 64 (Q8_0 under [`Isa::Avx2Vnni`] and
    /// [`Isa::Avx512Vnni`]: 32 codes + 128, then `d` as 8 f32) or 0.
    pub vnni_per_block: usize,
    /// Bytes of the whole row.
    pub total: usize,
}

/// The row layout of `cols` activations of type `ty` (`cols` a whole number of its blocks) for the kernel set `isa`.
pub fn row_layout(isa: Isa, ty: GgmlType, cols: usize) -> RowLayout {
    let n_blocks = cols / ty.block_size();
    let blocks = n_blocks * ty.type_size();
    let scales_per_block = match ty {
        GgmlType::Q8_0 => 1,
        GgmlType::Q8_1 => 2,
        _ => 0,
    };
    let vnni_per_block = if ty == GgmlType::Q8_0 && matches!(isa, Isa::Avx2Vnni | Isa::Avx512Vnni) { 64 } else { 0 };
    let total = blocks + (4 * scales_per_block + vnni_per_block) * n_blocks;
    RowLayout { blocks, scales_per_block, vnni_per_block, total }
}

/// One token: blocks, then their scales as f32.
fn quantize_row(ty: GgmlType, quantize: RowQuantizer, src: &[f32], dst: &mut [u8], l: RowLayout) {
    let n_blocks = l.blocks / ty.type_size();
    let (q, rest) = dst.split_at_mut(l.blocks);
    let (scales, vnni) = rest.split_at_mut(4 * l.scales_per_block * n_blocks);
    quantize_blocks(ty, quantize, src, q, scales, vnni, l);
}

/// Whole blocks of one token's row: `src` into their codes `q`, scales `scales` and AVX-VNNI extras `vnni` (each
/// that part of the row's layout `l` for these blocks). Each block's bytes depend on its own values only.
fn quantize_blocks(
    ty: GgmlType,
    quantize: RowQuantizer,
    src: &[f32],
    q: &mut [u8],
    scales: &mut [u8],
    vnni: &mut [u8],
    l: RowLayout,
) {
    quantize(src, q);
    if l.scales_per_block > 0 {
        let half = |b: &[u8], i: usize| crate::quant::block::fp16_to_fp32(u16::from_le_bytes([b[i], b[i + 1]]));
        let per = 4 * l.scales_per_block;
        for (blk, s) in q.chunks_exact(ty.type_size()).zip(scales.chunks_exact_mut(per)) {
            s[..4].copy_from_slice(&half(blk, 0).to_le_bytes());
            if l.scales_per_block == 2 {
                s[4..8].copy_from_slice(&half(blk, 2).to_le_bytes());
            }
        }
        if l.vnni_per_block > 0 {
            // Q8_0 (34-byte blocks: f16 d, 32 i8 codes; one f32 scale each, just written).
            for ((blk, s), v) in q.chunks_exact(34).zip(scales.chunks_exact(4)).zip(vnni.chunks_exact_mut(64)) {
                let (codes, d) = v.split_at_mut(32);
                for (u, &c) in codes.iter_mut().zip(&blk[2..34]) {
                    *u = c ^ 0x80;
                }
                for lane in d.chunks_exact_mut(4) {
                    lane.copy_from_slice(s);
                }
            }
        }
    }
}

/// The quantizer of activation type `ty` for the kernel set `isa`: with AVX2, llama.cpp's x86 rounding.
fn quantizer(isa: Isa, ty: GgmlType) -> RowQuantizer {
    let reference = ty.codec().expect("activation types all have a codec").quantize;
    #[cfg(target_arch = "x86_64")]
    if isa.is_avx2() {
        return super::x86::act_quantizer(ty).unwrap_or(reference);
    }
    let _ = isa;
    reference
}

/// One token's activation row, written a few blocks at a time by the threads that computed those values: for a
/// generated token, each thread that has run its rows of gate and up quantizes their SwiGLU for down itself, and
/// each run of attention heads its output for the attention output's product, so that no thread converts the
/// whole row while the others wait (and reads the others' values to do so). The bytes are
/// [`quantize_activations`]'s, block for block, once every block has been written.
pub struct ActRow<'a> {
    ptr: *mut u8,
    ty: GgmlType,
    quantize: RowQuantizer,
    layout: RowLayout,
    cols: usize,
    _row: std::marker::PhantomData<&'a mut [u8]>,
}

// SAFETY: an `ActRow` writes only through `write`, whose callers promise disjoint blocks (as `Chunks` does for its
// chunks); the quantizer is a plain function.
unsafe impl Sync for ActRow<'_> {}

impl<'a> ActRow<'a> {
    /// A row of `cols` activations of type `ty` (one of the activation types, `cols` a whole number of its
    /// blocks) for the kernel set `isa`, in `out`, resized to the row's bytes.
    pub fn new(isa: Isa, ty: GgmlType, cols: usize, out: &'a mut Vec<u8>) -> ActRow<'a> {
        let layout = row_layout(isa, ty, cols);
        out.resize(layout.total, 0);
        let quantize = quantizer(isa, ty);
        ActRow { ptr: out.as_mut_ptr(), ty, quantize, layout, cols, _row: std::marker::PhantomData }
    }

    /// The row, once every block has been written.
    pub fn bytes(self) -> &'a [u8] {
        // SAFETY: `new` made the row of `layout.total` bytes out of the buffer this borrows for 'a, and `self`,
        // through which alone it was written, is gone.
        unsafe { std::slice::from_raw_parts(self.ptr, self.layout.total) }
    }

    /// Values per block: each [`write`](Self::write) starts at a multiple of it.
    pub fn block(&self) -> usize {
        self.ty.block_size()
    }

    /// Quantizes `src`, the row's values `first..first + src.len()`, into their blocks. Out of range, or not
    /// whole blocks: nothing is written (a caller bug: debug builds stop here).
    ///
    /// # Safety
    /// No two calls whose values overlap may run at once.
    pub unsafe fn write(&self, first: usize, src: &[f32]) {
        let bs = self.block();
        let end = first + src.len();
        if !first.is_multiple_of(bs) || !end.is_multiple_of(bs) || end > self.cols {
            debug_assert!(false, "blocks {first}..{end} of a row of {} ({bs} each)", self.cols);
            return;
        }
        let (l, ts, n_blocks) = (self.layout, self.ty.type_size(), self.cols / bs);
        let (b0, b1) = (first / bs, end / bs);
        let per = 4 * l.scales_per_block;
        // SAFETY: the three parts of blocks b0..b1 lie inside the row (`new` sized it to the layout), and the
        // caller writes no other call's blocks at the same time.
        let part = |at: usize, len: usize| unsafe { std::slice::from_raw_parts_mut(self.ptr.add(at), len) };
        let q = part(b0 * ts, (b1 - b0) * ts);
        let scales = part(l.blocks + b0 * per, (b1 - b0) * per);
        let vnni = part(l.blocks + n_blocks * per + b0 * l.vnni_per_block, (b1 - b0) * l.vnni_per_block);
        quantize_blocks(self.ty, self.quantize, src, q, scales, vnni, l);
    }
}

/// Converts `x` (`n_tokens × cols` f32) into `out`, resized to `n_tokens × row_layout(isa, ty, cols).total`. `ty` is
/// one of the activation types (F32, Q8_0, Q8_1, Q8_K) and `cols` a whole number of its blocks: `kernels::matmul`
/// checks both. With `isa` AVX2, Q8_0 and Q8_1 go through llama.cpp's x86 rounding.
/// Large batches are split by tokens across the threads of `par`.
pub fn quantize_activations(par: &dyn Parallel, isa: Isa, ty: GgmlType, x: &[f32], cols: usize, out: &mut Vec<u8>) {
    let l = row_layout(isa, ty, cols);
    let n_tokens = x.len() / cols;
    out.resize(n_tokens * l.total, 0);
    let quantize = quantizer(isa, ty);
    if x.len() < PARALLEL_MIN_VALUES {
        for (src, dst) in x.chunks_exact(cols).zip(out.chunks_exact_mut(l.total)) {
            quantize_row(ty, quantize, src, dst, l);
        }
    } else {
        let rows = Chunks::new(&mut out[..n_tokens * l.total], l.total);
        // SAFETY: piece t takes only row t.
        par.for_each(n_tokens, &|t| quantize_row(ty, quantize, &x[t * cols..][..cols], unsafe { rows.get(t) }, l));
    }
}
