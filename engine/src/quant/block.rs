//! Byte-level block layouts shared by every quantizer.
//!
//! Every block struct is `#[repr(C)]` with only byte-array fields, so it has alignment 1 and no padding: a slice of
//! raw tensor bytes (from an mmap at any offset, or a `Vec<u8>`) can be viewed as a slice of blocks without copying.
//! Multi-byte fields are stored little-endian, as in GGUF files, and read through accessors.

use half::f16;

/// A plain-old-data block: `#[repr(C)]`, alignment 1, no padding, every bit pattern valid.
///
/// # Safety
/// Implementors must uphold exactly that: only `u8`/`i8` arrays (or structs of them) as fields, and a `SIZE` equal
/// to `size_of::<Self>()`. The `block!` uses below check the size at compile time.
pub unsafe trait Block: Sized {
    const SIZE: usize = std::mem::size_of::<Self>();
}

/// Declares that `$t` is a [`Block`] of exactly `$size` bytes with alignment 1, checked at compile time.
macro_rules! impl_block {
    ($t:ty, $size:expr) => {
        const _: () = assert!(std::mem::size_of::<$t>() == $size, "block size differs from ggml-common.h");
        const _: () = assert!(std::mem::align_of::<$t>() == 1, "blocks must have alignment 1");
        // SAFETY: the asserts above pin size and alignment; the struct is repr(C) of byte arrays only.
        unsafe impl $crate::quant::block::Block for $t {}
    };
}
pub(crate) use impl_block;

/// Views `bytes` as blocks. Panics if the length is not a whole number of blocks (a caller bug: the public entry
/// points in `quant` check lengths and return errors first).
pub fn as_blocks<B: Block>(bytes: &[u8]) -> &[B] {
    assert_eq!(bytes.len() % B::SIZE, 0, "byte length is not a whole number of blocks");
    // SAFETY: B has alignment 1 and no invalid bit patterns (Block's contract), and the length is a multiple of its
    // size, so every B in the new slice lies inside `bytes` and borrows it for the same lifetime.
    unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<B>(), bytes.len() / B::SIZE) }
}

/// Mutable twin of [`as_blocks`].
pub fn as_blocks_mut<B: Block>(bytes: &mut [u8]) -> &mut [B] {
    assert_eq!(bytes.len() % B::SIZE, 0, "byte length is not a whole number of blocks");
    // SAFETY: as in `as_blocks`; the exclusive borrow of `bytes` moves to the returned slice.
    unsafe { std::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<B>(), bytes.len() / B::SIZE) }
}

/// An IEEE half stored little-endian (ggml's `ggml_half`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct F16Le(pub [u8; 2]);

impl F16Le {
    pub fn get(self) -> f32 {
        f16::from_bits(u16::from_le_bytes(self.0)).to_f32()
    }
    pub fn set(&mut self, v: f32) {
        self.0 = fp32_to_fp16(v).to_le_bytes();
    }
    pub fn from_f32(v: f32) -> Self {
        F16Le(fp32_to_fp16(v).to_le_bytes())
    }
}

/// ggml's f32 → f16 (`GGML_FP32_TO_FP16`): round to nearest even, overflow to ±inf, and every NaN becomes the
/// canonical quiet NaN 0x7E00 with its sign — where the `half` crate would keep the payload.
pub fn fp32_to_fp16(v: f32) -> u16 {
    if v.is_nan() {
        return ((v.to_bits() >> 16) as u16 & 0x8000) | 0x7E00;
    }
    f16::from_f32(v).to_bits()
}

/// f16 bits → f32 (exact).
pub fn fp16_to_fp32(bits: u16) -> f32 {
    f16::from_bits(bits).to_f32()
}

/// ggml's f32 → bf16 (`ggml_compute_fp32_to_bf16`): round to nearest even on the dropped 16 bits, subnormals kept,
/// NaN made quiet by setting bit 6 of the result.
pub fn fp32_to_bf16(v: f32) -> u16 {
    let u = v.to_bits();
    if u & 0x7fff_ffff > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    // Wrapping: for values near f32::MAX the carry rounds up into the exponent (to inf), as in ggml.
    (u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16
}

/// bf16 bits → f32 (exact: bf16 is the top half of an f32).
pub fn bf16_to_fp32(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// ggml's `nearest_int`: round to nearest, ties to even, by adding 1.5·2^23 and reading the mantissa. Only valid for
/// |x| ≤ 2^22, which ggml asserts in debug builds; we keep its release behaviour for anything else (including
/// NaN), so results match a release llama.cpp bit for bit.
#[inline]
pub fn nearest_int(x: f32) -> i32 {
    let val = x + 12582912.0;
    (val.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// C's `MAX(a, b)` macro, `a > b ? a : b`: with a NaN it returns `b`, unlike `f32::max`. The quantizers must
/// compare exactly as ggml does to stay bit-identical on hostile inputs.
#[inline]
pub fn c_max(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// C's `MIN(a, b)` macro, `a < b ? a : b`.
#[inline]
pub fn c_min(a: f32, b: f32) -> f32 {
    if a < b {
        a
    } else {
        b
    }
}

/// C's float → `int8_t` conversion of an already rounded value, as x86 compilers emit it (`cvttss2si`, then the low
/// byte). Equal to `as i8` for every value in range; kept explicit so out-of-range inputs behave as in ggml.
#[inline]
pub fn c_f32_to_i8(v: f32) -> i8 {
    c_f32_to_i32(v) as i8
}

/// C's float → `int` conversion on x86 (`cvttss2si`): truncation, and 0x8000_0000 for NaN or out of range.
#[inline]
pub fn c_f32_to_i32(v: f32) -> i32 {
    // A NaN is in no range, so it takes this branch too.
    if !(-2147483648.0..2147483648.0).contains(&v) {
        i32::MIN
    } else {
        v as i32
    }
}

/// [`c_f32_to_i32`] on a whole array, for the quantizers' inner loops. On x86-64 it is `cvttps_epi32`, four at a
/// time: the instruction C compilers emit when they vectorize these conversions (llama.cpp's build does, in
/// `quantize_row_q4_0_ref`), with the same result as `cvttss2si` by definition, and part of the SSE2 baseline every
/// x86-64 CPU has. Rust's own `as i32` saturates instead, which costs a scalar fix-up per value. Elsewhere, and for
/// a tail of fewer than four, the scalar conversion.
#[inline]
pub fn c_f32_to_i32_array<const N: usize>(v: &[f32; N]) -> [i32; N] {
    let mut out = [0i32; N];
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_cvttps_epi32, _mm_loadu_ps, _mm_storeu_si128};
        for (o, i) in out.chunks_exact_mut(4).zip(v.chunks_exact(4)) {
            // SAFETY: SSE2 is always enabled on x86-64; `i` and `o` are 4-element chunks, exactly the 16 bytes the
            // unaligned load and store touch.
            unsafe { _mm_storeu_si128(o.as_mut_ptr().cast::<__m128i>(), _mm_cvttps_epi32(_mm_loadu_ps(i.as_ptr()))) }
        }
        for (o, &i) in out.iter_mut().zip(v).skip(N / 4 * 4) {
            *o = c_f32_to_i32(i);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for (o, &i) in out.iter_mut().zip(v) {
        *o = c_f32_to_i32(i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        assert_eq!(nearest_int(0.5), 0);
        assert_eq!(nearest_int(1.5), 2);
        assert_eq!(nearest_int(2.5), 2);
        assert_eq!(nearest_int(-0.5), 0);
        assert_eq!(nearest_int(-1.5), -2);
        assert_eq!(nearest_int(-7.49), -7);
        assert_eq!(nearest_int(4194303.0), 4194303);
    }

    #[test]
    fn half_conversions_follow_ggml() {
        assert_eq!(fp32_to_fp16(1.0), 0x3C00);
        assert_eq!(fp32_to_fp16(65520.0), 0x7C00); // rounds up to inf
        assert_eq!(fp32_to_fp16(f32::from_bits(0x7fc1_2345)), 0x7E00);
        assert_eq!(fp32_to_fp16(-f32::NAN), 0xFE00);
        assert_eq!(fp32_to_bf16(1.0), 0x3F80);
        assert_eq!(fp32_to_bf16(f32::from_bits(0x3F80_8000)), 0x3F80); // tie → even
        assert_eq!(fp32_to_bf16(f32::from_bits(0x3F81_8000)), 0x3F82); // tie → even (up)
        assert_eq!(fp32_to_bf16(f32::from_bits(0x0000_0001)), 0x0000); // subnormal kept, rounds to 0
        assert_eq!(fp32_to_bf16(f32::from_bits(0x7f81_0000)), 0x7fc1); // NaN quieted
        assert_eq!(bf16_to_fp32(0x3F80), 1.0);
    }

    #[test]
    fn c_conversions_match_x86() {
        assert_eq!(c_f32_to_i8(127.0), 127);
        assert_eq!(c_f32_to_i8(-128.0), -128);
        assert_eq!(c_f32_to_i8(128.0), -128); // wraps through int, as the C code does
        assert_eq!(c_f32_to_i32(f32::NAN), i32::MIN);
        assert_eq!(c_max(1.0, f32::NAN).to_bits(), f32::NAN.to_bits());
        assert_eq!(c_max(f32::NAN, 1.0), 1.0);
    }

    #[test]
    fn array_conversion_equals_the_scalar_one() {
        let v: [f32; 19] = [
            0.0, -0.0, 0.5, -0.99, 16.99, -128.5, 127.9, 255.5, 2147483520.0, 2147483648.0, -2147483648.0,
            -2147483904.0, 1e20, -1e20, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -f32::NAN, 1e-45,
        ];
        let got = c_f32_to_i32_array(&v);
        for (&g, &x) in got.iter().zip(&v) {
            assert_eq!(g, c_f32_to_i32(x), "{x}");
        }
    }
}

/// Test data shared by the quantizer tests: deterministic normal samples and the round-trip error of a codec.
#[cfg(test)]
pub(crate) mod testing {
    /// `n` samples of N(0, 1) from a fixed seed (xorshift64* and Box-Muller; no extra crates).
    pub fn normal(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut uniform = move || {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            // 53 random bits in (0, 1]: never 0, so the logarithm below stays finite.
            ((s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) + 1) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (u1, u2) = (uniform(), uniform());
                ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
            })
            .collect()
    }

    /// Root-mean-square error of `x` after quantizing and dequantizing it with blocks of `block_weights` weights
    /// stored in `block_bytes` bytes.
    pub fn round_trip_rmse(
        quantize: fn(&[f32], &mut [u8]),
        dequantize: fn(&[u8], &mut [f32]),
        x: &[f32],
        block_weights: usize,
        block_bytes: usize,
    ) -> f64 {
        let mut q = vec![0u8; x.len() / block_weights * block_bytes];
        let mut back = vec![0f32; x.len()];
        quantize(x, &mut q);
        dequantize(&q, &mut back);
        let sum: f64 = x.iter().zip(&back).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
        (sum / x.len() as f64).sqrt()
    }
}
