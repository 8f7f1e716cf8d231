//! Quantization presets: the file types `llama-quantize` accepts that PocketLM can write.
//!
//! A preset is a `llama_ftype` (`include/llama.h`): the number stored as `general.file_type`, a default ggml type
//! (`llama_ftype_get_default_type` in `src/llama-quant.cpp`) and, for the k-quant mixes (`_S`, `_M`, `_L`), the rules
//! in [`super::policy`] that give some tensors more bits. Names are `tools/quantize/quantize.cpp`'s, matched
//! case-insensitively, with its aliases (`Q4_K` = `Q4_K_M`, …) and its acceptance of the bare ftype number.
//!
//! Only presets whose every tensor type has a codec in [`crate::quant`] are listed: no IQ*, TQ*, MXFP4 or Q2_K_S
//! (which llama.cpp refuses to make without an importance matrix).

use std::fmt;
use std::str::FromStr;

use crate::quant::GgmlType;

macro_rules! presets {
    ($( $variant:ident = $ftype:literal, $name:literal, $ty:ident, $desc:literal; )*) => {
        /// A quantization preset (a llama.cpp file type).
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Preset { $( $variant, )* }

        impl Preset {
            /// Every preset, from the largest files to the smallest.
            pub const ALL: &'static [Preset] = &[ $( Preset::$variant, )* ];

            /// The name `llama-quantize` prints and model cards use (`"Q4_K_M"`).
            pub fn name(self) -> &'static str {
                match self { $( Preset::$variant => $name, )* }
            }

            /// The `llama_ftype` number, written as `general.file_type` (Q4_K_M = 15).
            pub fn file_type(self) -> u32 {
                match self { $( Preset::$variant => $ftype, )* }
            }

            /// The type every quantizable tensor gets unless a rule says otherwise.
            pub fn default_type(self) -> GgmlType {
                match self { $( Preset::$variant => GgmlType::$ty, )* }
            }

            /// One line for a picker: what the preset is, and llama.cpp's own size/quality figure for it.
            pub fn description(self) -> &'static str {
                match self { $( Preset::$variant => $desc, )* }
            }
        }
    };
}

// Figures after the semicolon are tools/quantize's (file size and perplexity increase on Llama 3 8B).
presets! {
    F32    = 0,  "F32",    F32,  "32-bit floats, no loss; 26.00G @ 7B";
    F16    = 1,  "F16",    F16,  "16-bit floats; 14.00G, +0.0020 ppl @ Mistral-7B";
    BF16   = 32, "BF16",   BF16, "bfloat16, the usual training type; 14.00G, -0.0050 ppl @ Mistral-7B";
    Q8_0   = 7,  "Q8_0",   Q8_0, "8-bit, near lossless; 7.96G, +0.0026 ppl @ Llama-3-8B";
    Q6_K   = 18, "Q6_K",   Q6_K, "6-bit k-quant; 6.14G, +0.0217 ppl @ Llama-3-8B";
    Q5_K_M = 17, "Q5_K_M", Q5_K, "5-bit k-quant, 6-bit where it matters; 5.33G, +0.0569 ppl @ Llama-3-8B";
    Q5_K_S = 16, "Q5_K_S", Q5_K, "5-bit k-quant; 5.21G, +0.1049 ppl @ Llama-3-8B";
    Q5_1   = 9,  "Q5_1",   Q5_1, "5-bit legacy quant with offset; 5.65G, +0.1062 ppl @ Llama-3-8B";
    Q5_0   = 8,  "Q5_0",   Q5_0, "5-bit legacy quant; 5.21G, +0.1316 ppl @ Llama-3-8B";
    Q4_K_M = 15, "Q4_K_M", Q4_K, "4-bit k-quant, 6-bit where it matters (recommended); 4.58G, +0.1754 ppl @ Llama-3-8B";
    Q4_K_S = 14, "Q4_K_S", Q4_K, "4-bit k-quant; 4.37G, +0.2689 ppl @ Llama-3-8B";
    Q4_1   = 3,  "Q4_1",   Q4_1, "4-bit legacy quant with offset; 4.78G, +0.4511 ppl @ Llama-3-8B";
    Q4_0   = 2,  "Q4_0",   Q4_0, "4-bit legacy quant; 4.34G, +0.4685 ppl @ Llama-3-8B";
    Q3_K_L = 13, "Q3_K_L", Q3_K, "3-bit k-quant, 5-bit where it matters; 4.03G, +0.5562 ppl @ Llama-3-8B";
    Q3_K_M = 12, "Q3_K_M", Q3_K, "3-bit k-quant, 4/5-bit where it matters; 3.74G, +0.6569 ppl @ Llama-3-8B";
    Q3_K_S = 11, "Q3_K_S", Q3_K, "3-bit k-quant; 3.41G, +1.6321 ppl @ Llama-3-8B";
    Q2_K   = 10, "Q2_K",   Q2_K, "2-bit k-quant, 3/4-bit where it matters; 2.96G, +3.5199 ppl @ Llama-3-8B";
}

/// `general.quantization_version` of every file llama-quantize writes (`GGML_QNT_VERSION`): the block layouts of
/// the legacy quants changed at versions 1 and 2.
pub const QUANTIZATION_VERSION: u32 = 2;

/// `tools/quantize`'s short names for the medium mixes.
const ALIASES: &[(&str, Preset)] = &[("Q3_K", Preset::Q3_K_M), ("Q4_K", Preset::Q4_K_M), ("Q5_K", Preset::Q5_K_M)];

impl Preset {
    /// The preset named `name`, case-insensitively, accepting `llama-quantize`'s aliases (`q4_k` = Q4_K_M).
    pub fn from_name(name: &str) -> Option<Preset> {
        let name = name.trim();
        Preset::ALL
            .iter()
            .map(|&p| (p.name(), p))
            .chain(ALIASES.iter().copied())
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, p)| p)
    }

    /// The preset whose `llama_ftype` number is `file_type`.
    pub fn from_file_type(file_type: u32) -> Option<Preset> {
        Preset::ALL.iter().copied().find(|p| p.file_type() == file_type)
    }
}

/// The error of parsing a preset name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown quantization preset {0:?} (expected one of F32, F16, BF16, Q8_0, Q6_K, Q5_K_M, … Q2_K)")]
pub struct UnknownPreset(pub String);

impl FromStr for Preset {
    type Err = UnknownPreset;

    /// A name as [`Preset::from_name`] takes it, or the bare ftype number, as `llama-quantize` accepts both.
    fn from_str(s: &str) -> Result<Preset, UnknownPreset> {
        Preset::from_name(s)
            .or_else(|| s.trim().parse::<u32>().ok().and_then(Preset::from_file_type))
            .ok_or_else(|| UnknownPreset(s.to_string()))
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_types_are_llama_h_numbers() {
        // include/llama.h, enum llama_ftype.
        let want = [
            ("F32", 0),
            ("F16", 1),
            ("Q4_0", 2),
            ("Q4_1", 3),
            ("Q8_0", 7),
            ("Q5_0", 8),
            ("Q5_1", 9),
            ("Q2_K", 10),
            ("Q3_K_S", 11),
            ("Q3_K_M", 12),
            ("Q3_K_L", 13),
            ("Q4_K_S", 14),
            ("Q4_K_M", 15),
            ("Q5_K_S", 16),
            ("Q5_K_M", 17),
            ("Q6_K", 18),
            ("BF16", 32),
        ];
        assert_eq!(Preset::ALL.len(), want.len());
        for (name, ft) in want {
            let p = Preset::from_name(name).unwrap();
            assert_eq!(p.file_type(), ft, "{name}");
            assert_eq!(Preset::from_file_type(ft), Some(p));
            assert_eq!(p.to_string(), name);
        }
    }

    #[test]
    fn default_types_follow_llama_ftype_get_default_type() {
        use GgmlType as T;
        let want = [
            (Preset::F32, T::F32),
            (Preset::F16, T::F16),
            (Preset::BF16, T::BF16),
            (Preset::Q8_0, T::Q8_0),
            (Preset::Q4_0, T::Q4_0),
            (Preset::Q4_1, T::Q4_1),
            (Preset::Q5_0, T::Q5_0),
            (Preset::Q5_1, T::Q5_1),
            (Preset::Q2_K, T::Q2_K),
            (Preset::Q3_K_S, T::Q3_K),
            (Preset::Q3_K_M, T::Q3_K),
            (Preset::Q3_K_L, T::Q3_K),
            (Preset::Q4_K_S, T::Q4_K),
            (Preset::Q4_K_M, T::Q4_K),
            (Preset::Q5_K_S, T::Q5_K),
            (Preset::Q5_K_M, T::Q5_K),
            (Preset::Q6_K, T::Q6_K),
        ];
        for (p, t) in want {
            assert_eq!(p.default_type(), t, "{p}");
        }
    }

    #[test]
    fn names_parse_like_llama_quantize() {
        assert_eq!("q4_k_m".parse(), Ok(Preset::Q4_K_M));
        assert_eq!(" Q4_K ".parse(), Ok(Preset::Q4_K_M));
        assert_eq!("q3_k".parse(), Ok(Preset::Q3_K_M));
        assert_eq!("Q5_K".parse(), Ok(Preset::Q5_K_M));
        assert_eq!("bf16".parse(), Ok(Preset::BF16));
        assert_eq!("15".parse(), Ok(Preset::Q4_K_M));
        assert_eq!("0".parse(), Ok(Preset::F32));
        assert!("Q4_K_X".parse::<Preset>().is_err());
        assert!("IQ4_XS".parse::<Preset>().is_err(), "no codec for IQ types");
        assert!("19".parse::<Preset>().is_err());
    }
}
