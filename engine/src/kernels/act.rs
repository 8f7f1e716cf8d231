//! Activations in the form the dot-product kernels read: each token's row of f32 converted to
//! [`vec_dot_type`](super::vec_dot_type) of the weight, as llama.cpp pairs them.
//!
//! The quantizers are the engine's own byte-exact ports of ggml's `quantize_row_q8_K_ref`, `quantize_row_q8_0_ref`
//! and `quantize_row_q8_1_ref` (`crate::quant`), so our activations are the bytes llama.cpp's CPU backend makes.
//! F32 activations (for F32/F16/BF16 weights) are the f32 values, little-endian.

use rayon::prelude::*;

use crate::quant::GgmlType;

/// Below this many values a batch is quantized on the calling thread: a rayon round trip costs more.
const PARALLEL_MIN_VALUES: usize = 32 * 1024;

/// Bytes of one token's activation row of `cols` values in type `ty` (`cols` a whole number of its blocks).
pub fn row_bytes(ty: GgmlType, cols: usize) -> usize {
    cols / ty.block_size() * ty.type_size()
}

/// Converts `x` (`n_tokens × cols` f32) into `out`, resized to `n_tokens × row_bytes(ty, cols)`. `ty` is one of the
/// activation types (F32, Q8_0, Q8_1, Q8_K) and `cols` a whole number of its blocks: `kernels::matmul` checks both.
pub fn quantize_activations(ty: GgmlType, x: &[f32], cols: usize, out: &mut Vec<u8>) {
    let rb = row_bytes(ty, cols);
    let n_tokens = x.len() / cols;
    out.resize(n_tokens * rb, 0);
    let codec = ty.codec().expect("activation types all have a codec");
    if x.len() < PARALLEL_MIN_VALUES {
        for (src, dst) in x.chunks_exact(cols).zip(out.chunks_exact_mut(rb)) {
            (codec.quantize)(src, dst);
        }
    } else {
        x.par_chunks(cols).zip(out.par_chunks_mut(rb)).for_each(|(src, dst)| (codec.quantize)(src, dst));
    }
}
