//! AVX2 + FMA kernels for x86-64 (ports of the algorithms in ggml's `ggml-cpu/arch/x86/quants.c`).

use super::RowKernel;
use crate::quant::GgmlType;

/// AVX2, FMA and F16C, detected at run time (std caches the CPUID result).
pub fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")
}

/// The AVX2 kernel for weights of type `ty`, if there is one.
pub fn kernel(_ty: GgmlType) -> Option<RowKernel> {
    None
}
