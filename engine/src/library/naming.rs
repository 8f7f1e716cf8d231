//! Names of models: the type label of a GGUF's `general.file_type`, and the family a file or folder name belongs to
//! once its quantization suffixes are stripped.

use std::sync::OnceLock;

use regex::Regex;

use crate::quantize::Preset;

/// Set on `general.file_type` when llama.cpp guessed the type rather than being told (`LLAMA_FTYPE_GUESSED`).
const FTYPE_GUESSED: u32 = 1024;

/// The name llama.cpp gives a `general.file_type` (`llama_ftype`, `include/llama.h`): `15` → `"Q4_K_M"`,
/// `3` → `"Q4_1"`, `32` → `"BF16"`. `0` (every tensor F32) is `"F32"`. None for numbers llama.cpp never assigned
/// (and for the removed Q4_2/Q4_3, 5 and 6).
pub fn file_type_name(file_type: u32) -> Option<&'static str> {
    let ft = file_type & !FTYPE_GUESSED;
    if let Some(p) = Preset::from_file_type(ft) {
        return Some(p.name());
    }
    // The types PocketLM cannot write, by their llama.h numbers.
    Some(match ft {
        4 => "Q4_1_SOME_F16",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        33 => "Q4_0_4_4",
        34 => "Q4_0_4_8",
        35 => "Q4_0_8_8",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        _ => return None,
    })
}

/// A file type written as text (gguf-py's enum names, as some tools store them): `"MOSTLY_Q4_1"` → `"Q4_1"`,
/// `"ALL_F32"` → `"F32"`, `"q4_k_m"` → `"Q4_K_M"`.
pub fn file_type_label_from_text(s: &str) -> String {
    let up = s.trim().to_ascii_uppercase();
    let bare = up.strip_prefix("MOSTLY_").or_else(|| up.strip_prefix("ALL_")).unwrap_or(&up);
    bare.to_string()
}

/// Trailing parts of a name that say how it is stored, not what it is: `-Q4_K_M`, `.Q4_1`, `-bf16`, `-GGUF`,
/// `.gguf`, `-00001-of-00003`. Matched case-insensitively after a separator.
fn suffix_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?ix)
            [-_.\s]
            (?:
                (?:mostly_|all_)?
                (?:
                    i?q[1-8](?:_[a-z0-9]{1,2})*   # Q4_K_M, Q8_0, IQ4_XS, Q4_0_4_4
                  | tq[12]_0
                  | mxfp4(?:_moe)?
                  | b?f16 | fp16 | f32 | fp32 | bf16
                )
              | gguf | ggml
              | \d{5}-of-\d{5}                    # split files
            )
            $",
        )
        .expect("a valid pattern")
    })
}

/// The base model name of `name` with storage suffixes stripped: `"SmolLM2-135M-Instruct-Q4_K_M.gguf"`,
/// `"SmolLM2-135M-Instruct.Q4_1.gguf"` and `"SmolLM2-135M-Instruct"` all give `"SmolLM2-135M-Instruct"`.
/// Never strips a name to nothing.
pub fn family_name(name: &str) -> String {
    let mut s = name.trim();
    while let Some(m) = suffix_re().find(s).filter(|m| m.start() > 0) {
        s = s[..m.start()].trim_end();
    }
    s.to_string()
}

/// The key names of one family share: [`family_name`] lower-cased with spaces, dashes, underscores and dots removed,
/// so `"SmolLM2 135M Instruct"` and `"smollm2-135m-instruct.Q4_1.gguf"` compare equal.
pub fn family_key(name: &str) -> String {
    family_name(name)
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_' | '.') && !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_types_have_llama_cpp_names() {
        assert_eq!(file_type_name(15), Some("Q4_K_M"));
        assert_eq!(file_type_name(3), Some("Q4_1"));
        assert_eq!(file_type_name(7), Some("Q8_0"));
        assert_eq!(file_type_name(32), Some("BF16"));
        assert_eq!(file_type_name(0), Some("F32"));
        assert_eq!(file_type_name(1), Some("F16"));
        assert_eq!(file_type_name(30), Some("IQ4_XS"));
        assert_eq!(file_type_name(15 | FTYPE_GUESSED), Some("Q4_K_M"));
        assert_eq!(file_type_name(5), None);
        assert_eq!(file_type_name(999), None);
        assert_eq!(file_type_label_from_text("MOSTLY_Q4_1"), "Q4_1");
        assert_eq!(file_type_label_from_text("ALL_F32"), "F32");
        assert_eq!(file_type_label_from_text("q4_k_m"), "Q4_K_M");
    }

    #[test]
    fn families_strip_storage_suffixes() {
        for name in [
            "SmolLM2-135M-Instruct-Q4_K_M.gguf",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "SmolLM2-135M-Instruct",
            "SmolLM2-135M-Instruct-GGUF",
            "SmolLM2-135M-Instruct-bf16",
            "SmolLM2-135M-Instruct-IQ4_XS.gguf",
            "SmolLM2-135M-Instruct-Q8_0-00001-of-00002.gguf",
            "SmolLM2-135M-Instruct.f16.GGUF",
        ] {
            assert_eq!(family_name(name), "SmolLM2-135M-Instruct", "{name}");
        }
        // Digits that are part of the name stay: the 2 of SmolLM2, the 3.2 of Llama, the 8B.
        assert_eq!(family_name("Llama-3.2-1B-Instruct-Q4_K_M.gguf"), "Llama-3.2-1B-Instruct");
        assert_eq!(family_name("Qwen2.5-0.5B-Instruct-q8_0.gguf"), "Qwen2.5-0.5B-Instruct");
        assert_eq!(family_name("Q4_K_M"), "Q4_K_M", "never stripped to nothing");
    }

    #[test]
    fn family_keys_group_spellings_together() {
        let key = family_key("SmolLM2 135M Instruct");
        assert_eq!(key, "smollm2135minstruct");
        for name in ["SmolLM2-135M-Instruct-Q4_K_M.gguf", "smollm2_135m_instruct.Q4_1.gguf", "SmolLM2-135M-Instruct"] {
            assert_eq!(family_key(name), key, "{name}");
        }
        assert_ne!(family_key("SmolLM2-360M-Instruct"), key);
    }
}
