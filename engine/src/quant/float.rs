//! The plain float types, F32, F16 and BF16, as row codecs like the block types (block size 1).

use super::block::{bf16_to_fp32, fp16_to_fp32, fp32_to_bf16, fp32_to_fp16};

pub mod f32 {
    pub fn quantize_row_ref(x: &[f32], y: &mut [u8]) {
        for (v, o) in x.iter().zip(y.chunks_exact_mut(4)) {
            o.copy_from_slice(&v.to_le_bytes());
        }
    }
    pub fn dequantize_row(x: &[u8], y: &mut [f32]) {
        for (b, o) in x.chunks_exact(4).zip(y) {
            *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
    }
}

pub mod f16 {
    use super::*;
    pub fn quantize_row_ref(x: &[f32], y: &mut [u8]) {
        for (&v, o) in x.iter().zip(y.chunks_exact_mut(2)) {
            o.copy_from_slice(&fp32_to_fp16(v).to_le_bytes());
        }
    }
    pub fn dequantize_row(x: &[u8], y: &mut [f32]) {
        for (b, o) in x.chunks_exact(2).zip(y) {
            *o = fp16_to_fp32(u16::from_le_bytes([b[0], b[1]]));
        }
    }
}

pub mod bf16 {
    use super::*;
    pub fn quantize_row_ref(x: &[f32], y: &mut [u8]) {
        for (&v, o) in x.iter().zip(y.chunks_exact_mut(2)) {
            o.copy_from_slice(&fp32_to_bf16(v).to_le_bytes());
        }
    }
    pub fn dequantize_row(x: &[u8], y: &mut [f32]) {
        for (b, o) in x.chunks_exact(2).zip(y) {
            *o = bf16_to_fp32(u16::from_le_bytes([b[0], b[1]]));
        }
    }
}
