//! `rope_freqs.weight` for Llama 3.1+ RoPE scaling (`rope_type == "llama3"`): one factor per rotated pair that
//! llama.cpp divides the frequency by. Port of `LlamaModel.generate_extra_tensors` (llama.cpp, llama-cpp-python
//! 0.3.36).
//!
//! The converter computes in PyTorch float32, one element at a time: `freqs = 1 / base ** (arange(0, dim, 2) / dim)`
//! (with `a / t` for a Python number `a` being `t.reciprocal() * a`, and every Python number rounded to f32 when it
//! meets a tensor), then per element `wavelen = 2π / freq` and, between the two cut-offs, a smooth blend. We do
//! the same f32 operations in the same order, so the tensor is bit-identical. PyTorch's `pow` agrees with the
//! correctly rounded f64 result on every exponent we checked; we use that rather than the platform's `powf`.

use super::super::hf::RopeParams;

/// The llama3 rope factors for a head dimension `dim`, or `None` when the rope type is not llama3.
pub fn llama3_rope_freqs(rope: &RopeParams, dim: u64) -> Option<Vec<f32>> {
    if !rope.rope_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("llama3")) {
        return None;
    }
    let base = rope.rope_theta.unwrap_or(10000.0) as f32;
    let factor = rope.factor.unwrap_or(8.0);
    let low_freq_factor = rope.low_freq_factor.unwrap_or(1.0);
    let high_freq_factor = rope.high_freq_factor.unwrap_or(4.0);
    let old_context_len = rope.original_max_position_embeddings.unwrap_or(8192) as f64;
    // Python floats (f64): the wavelength cut-offs and the blend's denominator.
    let low_freq_wavelen = old_context_len / low_freq_factor;
    let high_freq_wavelen = old_context_len / high_freq_factor;
    let two_pi = 2.0 * std::f64::consts::PI;

    let dim_f = dim as f32;
    let mut out = Vec::with_capacity((dim / 2) as usize);
    for i in (0..dim).step_by(2) {
        let exponent = i as f32 / dim_f;
        let pow = (base as f64).powf(exponent as f64) as f32;
        let freq = 1.0f32 / pow;
        let wavelen = (1.0f32 / freq) * two_pi as f32;
        let value = if wavelen < high_freq_wavelen as f32 {
            1.0
        } else if wavelen > low_freq_wavelen as f32 {
            factor as f32
        } else {
            let ratio = (1.0f32 / wavelen) * old_context_len as f32;
            let smooth = (ratio - low_freq_factor as f32) / (high_freq_factor - low_freq_factor) as f32;
            let blended = (1.0f32 - smooth) / factor as f32 + smooth;
            1.0f32 / blended
        };
        out.push(value);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn llama3(theta: f64, factor: f64, orig: u64) -> RopeParams {
        RopeParams {
            rope_type: Some("llama3".into()),
            rope_theta: Some(theta),
            factor: Some(factor),
            low_freq_factor: Some(1.0),
            high_freq_factor: Some(4.0),
            original_max_position_embeddings: Some(orig),
            ..Default::default()
        }
    }

    #[test]
    fn none_without_llama3() {
        assert_eq!(llama3_rope_freqs(&RopeParams::default(), 64), None);
    }

    /// Golden bits from the converter's own code (torch 2.15 CPU) for Llama 3.2 1B/3B (head_dim 64, factor 32)
    /// and Llama 3.1 8B (head_dim 128, factor 8): see tests/convert_*.rs for how they were made.
    #[test]
    fn matches_torch_goldens() {
        let f = llama3_rope_freqs(&llama3(500000.0, 32.0, 8192), 64).unwrap();
        let bits: Vec<u32> = f.iter().map(|x| x.to_bits()).collect();
        assert_eq!(bits, LLAMA32_BITS);
        let f = llama3_rope_freqs(&llama3(500000.0, 8.0, 8192), 128).unwrap();
        let bits: Vec<u32> = f.iter().map(|x| x.to_bits()).collect();
        assert_eq!(bits, LLAMA31_BITS);
    }

    include!("rope_goldens.rs");
}
