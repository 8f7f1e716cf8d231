//! The ggml type table: ids, names and block geometry of every type a GGUF file may name.
//!
//! Ids and sizes are ggml's (`ggml/include/ggml.h`, `ggml/src/ggml-common.h`), so a tensor's byte size can be
//! computed for any file, even one whose type we cannot quantize or dequantize (IQ*, TQ*, MXFP4 …). Which types
//! have a codec is decided in `quant::codec`, not here.

use std::fmt;

/// QK_K: weights per super-block of the k-quants.
pub const QK_K: usize = 256;

macro_rules! ggml_types {
    ($( $variant:ident = $id:literal, $name:literal, $block:expr, $size:expr; )*) => {
        /// A ggml tensor type. The discriminant is ggml's type id, as stored in GGUF tensor infos.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum GgmlType { $( $variant = $id, )* }

        impl GgmlType {
            /// Every type ggml knows, in id order.
            pub const ALL: &'static [GgmlType] = &[ $( GgmlType::$variant, )* ];

            /// The type with ggml id `id`, or None for ids ggml never assigned or has retired (4, 5, 31–33, 36–38).
            pub fn from_id(id: u32) -> Option<GgmlType> {
                match id { $( $id => Some(GgmlType::$variant), )* _ => None }
            }

            /// ggml's name for the type (`"q4_K"`, `"f16"`, …), as `ggml_type_name` prints it.
            pub fn name(self) -> &'static str {
                match self { $( GgmlType::$variant => $name, )* }
            }

            /// Weights per block (1 for the plain float and integer types).
            pub fn block_size(self) -> usize {
                match self { $( GgmlType::$variant => $block, )* }
            }

            /// Bytes per block.
            pub fn type_size(self) -> usize {
                match self { $( GgmlType::$variant => $size, )* }
            }
        }
    };
}

ggml_types! {
    F32     = 0,  "f32",     1,     4;
    F16     = 1,  "f16",     1,     2;
    Q4_0    = 2,  "q4_0",    32,    2 + 16;
    Q4_1    = 3,  "q4_1",    32,    2 + 2 + 16;
    Q5_0    = 6,  "q5_0",    32,    2 + 4 + 16;
    Q5_1    = 7,  "q5_1",    32,    2 + 2 + 4 + 16;
    Q8_0    = 8,  "q8_0",    32,    2 + 32;
    Q8_1    = 9,  "q8_1",    32,    2 + 2 + 32;
    Q2_K    = 10, "q2_K",    QK_K,  2 + 2 + QK_K / 16 + QK_K / 4;
    Q3_K    = 11, "q3_K",    QK_K,  2 + QK_K / 4 + QK_K / 8 + 12;
    Q4_K    = 12, "q4_K",    QK_K,  2 + 2 + 12 + QK_K / 2;
    Q5_K    = 13, "q5_K",    QK_K,  2 + 2 + 12 + QK_K / 2 + QK_K / 8;
    Q6_K    = 14, "q6_K",    QK_K,  2 + QK_K / 16 + 3 * QK_K / 4;
    Q8_K    = 15, "q8_K",    QK_K,  4 + QK_K + QK_K / 16 * 2;
    IQ2_XXS = 16, "iq2_xxs", QK_K,  2 + QK_K / 8 * 2;
    IQ2_XS  = 17, "iq2_xs",  QK_K,  2 + QK_K / 8 * 2 + QK_K / 32;
    IQ3_XXS = 18, "iq3_xxs", QK_K,  2 + 3 * (QK_K / 8);
    IQ1_S   = 19, "iq1_s",   QK_K,  2 + QK_K / 8 + QK_K / 16;
    IQ4_NL  = 20, "iq4_nl",  32,    2 + 16;
    IQ3_S   = 21, "iq3_s",   QK_K,  2 + 13 * (QK_K / 32) + QK_K / 64;
    IQ2_S   = 22, "iq2_s",   QK_K,  2 + QK_K / 4 + QK_K / 16;
    IQ4_XS  = 23, "iq4_xs",  QK_K,  2 + 2 + QK_K / 64 + QK_K / 2;
    I8      = 24, "i8",      1,     1;
    I16     = 25, "i16",     1,     2;
    I32     = 26, "i32",     1,     4;
    I64     = 27, "i64",     1,     8;
    F64     = 28, "f64",     1,     8;
    IQ1_M   = 29, "iq1_m",   QK_K,  QK_K / 8 + QK_K / 16 + QK_K / 32;
    BF16    = 30, "bf16",    1,     2;
    TQ1_0   = 34, "tq1_0",   QK_K,  2 + QK_K / 64 + (QK_K - 4 * QK_K / 64) / 5;
    TQ2_0   = 35, "tq2_0",   QK_K,  2 + QK_K / 4;
    MXFP4   = 39, "mxfp4",   32,    1 + 16;
    NVFP4   = 40, "nvfp4",   64,    4 + 32;
    Q1_0    = 41, "q1_0",    128,   2 + 16;
    Q2_0    = 42, "q2_0",    64,    2 + 16;
}

impl GgmlType {
    /// The type named `name`, case-insensitively (`"Q4_K"`, `"q4_k"`, `"BF16"`).
    pub fn from_name(name: &str) -> Option<GgmlType> {
        GgmlType::ALL.iter().copied().find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// The ggml id stored in GGUF tensor infos.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// Bytes of a row of `n` weights, or None when `n` is not a whole number of blocks or the size overflows.
    pub fn row_size(self, n: u64) -> Option<u64> {
        let block = self.block_size() as u64;
        if !n.is_multiple_of(block) {
            return None;
        }
        (n / block).checked_mul(self.type_size() as u64)
    }

    /// Whether the type packs several weights into blocks with shared scales (everything but plain numbers).
    pub fn is_quantized(self) -> bool {
        self.block_size() > 1
    }

    /// Bits per weight, as llama.cpp reports them (4.5 for Q4_K, 6.5625 for Q6_K).
    pub fn bits_per_weight(self) -> f64 {
        self.type_size() as f64 * 8.0 / self.block_size() as f64
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Upper case, as llama.cpp's tools and the model cards name types.
        f.write_str(&self.name().to_ascii_uppercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes_match_ggml_common_h() {
        // The static asserts of ggml-common.h, restated.
        assert_eq!(GgmlType::Q4_0.type_size(), 18);
        assert_eq!(GgmlType::Q5_0.type_size(), 22);
        assert_eq!(GgmlType::Q8_0.type_size(), 34);
        assert_eq!(GgmlType::Q8_1.type_size(), 36);
        assert_eq!(GgmlType::Q2_K.type_size(), 84);
        assert_eq!(GgmlType::Q3_K.type_size(), 110);
        assert_eq!(GgmlType::Q4_K.type_size(), 144);
        assert_eq!(GgmlType::Q5_K.type_size(), 176);
        assert_eq!(GgmlType::Q6_K.type_size(), 210);
        assert_eq!(GgmlType::Q8_K.type_size(), 292);
        assert_eq!(GgmlType::IQ4_XS.type_size(), 136);
        assert_eq!(GgmlType::TQ1_0.type_size(), 54);
        assert_eq!(GgmlType::IQ3_S.type_size(), 110);
    }

    #[test]
    fn ids_round_trip_and_retired_ids_are_unknown() {
        for &t in GgmlType::ALL {
            assert_eq!(GgmlType::from_id(t.id()), Some(t));
            assert_eq!(GgmlType::from_name(t.name()), Some(t));
        }
        for id in [4, 5, 31, 32, 33, 36, 37, 38, 43, 1000] {
            assert_eq!(GgmlType::from_id(id), None, "id {id}");
        }
        assert_eq!(GgmlType::from_name("Q4_K"), Some(GgmlType::Q4_K));
    }

    #[test]
    fn row_size_rejects_partial_blocks_and_overflow() {
        assert_eq!(GgmlType::Q4_K.row_size(512), Some(288));
        assert_eq!(GgmlType::Q4_K.row_size(576), None);
        assert_eq!(GgmlType::F32.row_size(u64::MAX), None);
        assert_eq!(GgmlType::Q6_K.bits_per_weight(), 6.5625);
    }
}
