//! ggml block types: the type table, and a bit-exact quantizer and dequantizer per supported type.
//!
//! Each type lives in its own module with its `#[repr(C)]` block struct (ggml's field names, size asserted at
//! compile time), `quantize_row_ref` — a port of ggml's `quantize_row_*_ref`, the definition llama.cpp's quantizer
//! uses when there is no importance matrix — and `dequantize_row`. This module only dispatches, through one table,
//! and splits tensors into rows that run in parallel. It knows nothing of models or files.

pub mod block;
mod float;
mod k_common;
mod k_lanes;
mod q2_k;
mod q3_k;
mod q4_0;
mod q4_1;
mod q4_k;
mod q5_0;
mod q5_1;
mod q5_k;
mod q6_k;
mod q8_0;
mod q8_1;
mod q8_k;
mod types;

use rayon::prelude::*;
pub use types::{GgmlType, QK_K};

/// Row codec of one type: `quantize` turns a whole number of blocks of f32 into bytes, `dequantize` the reverse.
/// Lengths are checked by the public functions below before either is called.
#[derive(Clone, Copy)]
pub struct Codec {
    pub quantize: fn(&[f32], &mut [u8]),
    pub dequantize: fn(&[u8], &mut [f32]),
}

macro_rules! codec {
    ($m:path) => {{
        use $m as m;
        Codec { quantize: m::quantize_row_ref, dequantize: m::dequantize_row }
    }};
}

impl GgmlType {
    /// The quantizer and dequantizer of this type, or None for the types we only recognise (IQ*, TQ*, MXFP4,
    /// integers, …).
    pub fn codec(self) -> Option<Codec> {
        use GgmlType as T;
        Some(match self {
            T::F32 => codec!(float::f32),
            T::F16 => codec!(float::f16),
            T::BF16 => codec!(float::bf16),
            T::Q4_0 => codec!(q4_0),
            T::Q4_1 => codec!(q4_1),
            T::Q5_0 => codec!(q5_0),
            T::Q5_1 => codec!(q5_1),
            T::Q8_0 => codec!(q8_0),
            T::Q8_1 => codec!(q8_1),
            T::Q2_K => codec!(q2_k),
            T::Q3_K => codec!(q3_k),
            T::Q4_K => codec!(q4_k),
            T::Q5_K => codec!(q5_k),
            T::Q6_K => codec!(q6_k),
            T::Q8_K => codec!(q8_k),
            _ => return None,
        })
    }
}

/// Why a quantize or dequantize call was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QuantError {
    #[error("type {0} cannot be quantized or dequantized by PocketLM")]
    Unsupported(GgmlType),
    #[error("a row of {n_per_row} weights is not a whole number of {ty} blocks of {block}")]
    PartialBlock { ty: GgmlType, n_per_row: usize, block: usize },
    #[error("{what}: expected {expected} elements, got {got}")]
    Length { what: &'static str, expected: usize, got: usize },
}

fn checked_codec(ty: GgmlType, n_per_row: usize) -> Result<Codec, QuantError> {
    let codec = ty.codec().ok_or(QuantError::Unsupported(ty))?;
    if n_per_row == 0 || !n_per_row.is_multiple_of(ty.block_size()) {
        return Err(QuantError::PartialBlock { ty, n_per_row, block: ty.block_size() });
    }
    Ok(codec)
}

fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), QuantError> {
    if expected == got {
        Ok(())
    } else {
        Err(QuantError::Length { what, expected, got })
    }
}

/// Rows below this many weights are grouped so that a task is worth scheduling.
const MIN_WEIGHTS_PER_TASK: usize = 16 * 1024;

/// Quantizes `src`, rows of `n_per_row` weights, into `dst` (exactly `rows × row_size` bytes). Rows are
/// independent and run in parallel on the current rayon pool; the bytes equal llama.cpp's
/// `ggml_quantize_chunk` without an importance matrix.
pub fn quantize(ty: GgmlType, src: &[f32], n_per_row: usize, dst: &mut [u8]) -> Result<(), QuantError> {
    let codec = checked_codec(ty, n_per_row)?;
    let row_bytes = n_per_row / ty.block_size() * ty.type_size();
    if !src.len().is_multiple_of(n_per_row) {
        return Err(QuantError::Length { what: "source (whole rows)", expected: src.len() / n_per_row * n_per_row, got: src.len() });
    }
    check_len("destination bytes", src.len() / n_per_row * row_bytes, dst.len())?;
    let rows_per_task = MIN_WEIGHTS_PER_TASK.div_ceil(n_per_row).max(1);
    src.par_chunks(n_per_row * rows_per_task)
        .zip(dst.par_chunks_mut(row_bytes * rows_per_task))
        .for_each(|(s, d)| {
            for (sr, dr) in s.chunks_exact(n_per_row).zip(d.chunks_exact_mut(row_bytes)) {
                (codec.quantize)(sr, dr);
            }
        });
    Ok(())
}

/// Dequantizes `src` (a whole number of blocks of `ty`) into `dst`, in parallel.
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    let codec = checked_codec(ty, ty.block_size())?;
    let (bs, ts) = (ty.block_size(), ty.type_size());
    if !src.len().is_multiple_of(ts) {
        return Err(QuantError::Length { what: "source bytes (whole blocks)", expected: src.len() / ts * ts, got: src.len() });
    }
    check_len("destination", src.len() / ts * bs, dst.len())?;
    let blocks_per_task = MIN_WEIGHTS_PER_TASK.div_ceil(bs);
    src.par_chunks(ts * blocks_per_task)
        .zip(dst.par_chunks_mut(bs * blocks_per_task))
        .for_each(|(s, d)| (codec.dequantize)(s, d));
    Ok(())
}

/// Bytes needed for `n` weights of `ty`, or None when `n` is not a whole number of blocks.
pub fn bytes_for(ty: GgmlType, n: usize) -> Option<usize> {
    ty.row_size(n as u64).and_then(|b| usize::try_from(b).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_checks_lengths() {
        let src = vec![0.5f32; 64];
        let mut dst = vec![0u8; 68];
        assert_eq!(quantize(GgmlType::Q8_0, &src, 32, &mut dst), Ok(()));
        assert!(matches!(quantize(GgmlType::Q8_0, &src, 48, &mut dst), Err(QuantError::PartialBlock { .. })));
        assert!(matches!(quantize(GgmlType::Q8_0, &src, 32, &mut dst[..60]), Err(QuantError::Length { .. })));
        assert_eq!(quantize(GgmlType::IQ2_XXS, &src, 32, &mut dst), Err(QuantError::Unsupported(GgmlType::IQ2_XXS)));
        let mut back = vec![0f32; 64];
        dequantize(GgmlType::Q8_0, &dst, &mut back).unwrap();
        assert!(back.iter().all(|&v| (v - 0.5).abs() < 1e-3));
    }
}
