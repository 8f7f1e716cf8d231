//! NEON kernels for aarch64, with `sdot` where the CPU has the dot-product extension.

use super::RowKernel;
use crate::quant::GgmlType;

/// Whether the CPU has the Armv8.2 dot-product instructions (`sdot`/`udot`).
pub fn dotprod_available() -> bool {
    std::arch::is_aarch64_feature_detected!("dotprod")
}

/// The NEON kernel (with `sdot` when `dotprod`) for weights of type `ty`, if there is one.
pub fn kernel(_ty: GgmlType, _dotprod: bool) -> Option<RowKernel> {
    None
}
