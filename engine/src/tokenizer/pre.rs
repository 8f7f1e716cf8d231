//! Pre-tokenizers by `tokenizer.ggml.pre` name: how text is cut into words before byte-level BPE merges them.
//!
//! A GGUF stores only the name of its pre-tokenizer. llama.cpp (`src/llama-vocab.cpp`, `llama_vocab::impl::load`
//! and the `regex_exprs` table of `llm_tokenizer_bpe`) maps each name to a list of regexes applied one after
//! another, every match and every gap becoming its own piece. Where llama.cpp had to rewrite a regex for its own
//! engine it quotes the original from the model's tokenizer.json; we use the originals, since the `tokenizers`
//! crate runs them with Oniguruma exactly as Hugging Face's tokenizers (which made llama.cpp's test vectors) do.
//! Every piece is then mapped to GPT-2's byte-level alphabet and merged.

use tokenizers::normalizers::unicode::NFC;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::SplitDelimiterBehavior;

/// GPT-2's split (its `ByteLevel` pre-tokenizer's regex).
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// Llama 3's split, as in Meta's tokenizer.json: numbers in groups of up to three.
const LLAMA3: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's: Llama 3's with single digits.
const QWEN2: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen3.5's: Qwen2's with combining marks kept inside words.
const QWEN35: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// One step of a pre-tokenizer sequence.
#[derive(Clone, Copy)]
enum Step {
    /// Cut out every match of the regex as its own piece (Hugging Face `Split` with `Isolated`).
    Split(&'static str),
    /// Every digit on its own (Hugging Face `Digits { individual_digits: true }`, StarCoder's first step).
    Digits,
}

/// What a `tokenizer.ggml.pre` name implies.
pub(crate) struct Family {
    steps: &'static [Step],
    /// Unicode NFC before splitting (Qwen's tokenizer.json has an NFC normalizer).
    nfc: bool,
    /// Look a whole piece up in the vocabulary before merging (Llama 3; llama.cpp's `ignore_merges`).
    pub ignore_merges: bool,
    /// llama.cpp's `add_bos` default for this name, used when the file has no `tokenizer.ggml.add_bos_token`.
    pub add_bos_default: bool,
}

use Step::{Digits as D, Split as S};

const fn fam(steps: &'static [Step], nfc: bool, ignore_merges: bool, add_bos_default: bool) -> Family {
    Family { steps, nfc, ignore_merges, add_bos_default }
}

/// The family of a pre-tokenizer name, or `None` when we do not know it. An absent name means llama.cpp's
/// "default" (with a warning there that quality degrades).
pub(crate) fn family(pre: &str) -> Option<Family> {
    Some(match pre {
        "gpt-2" | "phi-2" | "mpt" | "olmo" | "jais" | "roberta-bpe" | "exaone4" | "jina-es" | "jina-de"
        | "jina-v1-en" | "jina-v2-code" | "jina-v2-es" | "jina-v2-de" | "gigachat" | "mellum" | "trillion" => {
            fam(&[S(GPT2)], false, false, false)
        }
        "starcoder" | "refact" | "command-r" | "smollm" | "codeshell" | "exaone" | "minerva-7b" => {
            fam(&[D, S(GPT2)], false, false, false)
        }
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2" => {
            fam(&[S(LLAMA3)], false, true, true)
        }
        "dbrx" | "smaug-bpe" => fam(&[S(LLAMA3)], false, false, false),
        "qwen2" | "deepseek-r1-qwen" | "megrez" | "stablelm2" => fam(&[S(QWEN2)], true, false, false),
        "qwen35" => fam(&[S(QWEN35)], false, false, false),
        "falcon" => fam(&[S(r"[\p{P}\$\+<=>\^~\|`]+"), S(GPT2), S("[0-9][0-9][0-9]")], false, false, false),
        "deepseek-coder" => fam(
            &[S(r"[\r\n]"), S(r"\s?\p{L}+"), S(r"\s?\p{P}+"), S("[\u{4e00}-\u{9fa5}\u{800}-\u{4e00}\u{ac00}-\u{d7ff}]+"), S(r"\p{N}")],
            false,
            false,
            false,
        ),
        "deepseek-llm" => fam(
            &[
                S(r"[\r\n]"),
                S("\\s?[A-Za-z\u{b5}\u{c0}-\u{d6}\u{d8}-\u{f6}\u{f8}-\u{1ba}\u{1bc}-\u{1bf}\u{1c4}-\u{293}\u{295}-\u{2af}\u{370}-\u{373}\u{376}\u{377}\u{37b}-\u{37d}\u{37f}\u{386}\u{388}-\u{38a}\u{38c}\u{38e}-\u{3a1}\u{3a3}-\u{3f5}\u{3f7}-\u{481}\u{48a}-\u{52f}\u{531}-\u{556}\u{10a0}-\u{10c5}\u{13a0}-\u{13f5}\u{13f8}-\u{13fd}\u{1c90}-\u{1cba}\u{1cbd}-\u{1cbf}\u{1d00}-\u{1d2b}\u{1d6b}-\u{1d77}\u{1d79}-\u{1d9a}\u{1e00}-\u{1f15}\u{1f18}-\u{1f1d}\u{1f20}-\u{1f45}\u{1f48}-\u{1f4d}\u{1f50}-\u{1f57}\u{1f59}\u{1f5b}\u{1f5d}\u{1f5f}-\u{1f7d}\u{1f80}-\u{1fb4}\u{1fb6}-\u{1fbc}\u{1fbe}\u{1fc2}-\u{1fc4}\u{1fc6}-\u{1fcc}\u{1fd0}-\u{1fd3}\u{1fd6}-\u{1fdb}\u{1fe0}-\u{1fec}\u{1ff2}-\u{1ff4}\u{1ff6}-\u{1ffc}\u{2102}\u{2107}\u{210a}-\u{2113}\u{2115}\u{2119}-\u{211d}\u{2124}\u{2126}\u{2128}\u{212a}-\u{212d}\u{212f}-\u{2134}\u{2139}\u{213c}-\u{213f}\u{2145}-\u{2149}\u{214e}\u{2183}\u{2184}\u{2c00}-\u{2c7b}\u{2c7e}-\u{2ce4}\u{2ceb}-\u{2cee}\u{2cf2}\u{2cf3}\u{a640}-\u{a66d}\u{a680}-\u{a69b}\u{a722}-\u{a76f}\u{a771}-\u{a787}\u{a78b}-\u{a78e}\u{ab70}-\u{abbf}\u{fb00}-\u{fb06}\u{fb13}-\u{fb17}\u{ff21}-\u{ff3a}\u{ff41}-\u{ff5a}\u{10400}-\u{1044f}\u{104b0}-\u{104d3}\u{104d8}-\u{104fb}\u{10c80}-\u{10cb2}\u{10cc0}-\u{10cf2}\u{118a0}-\u{118df}\u{1e900}-\u{1e943}]+"),
                S("\\s?[!-/:-~\u{ff01}-\u{ff0f}\u{ff1a}-\u{ff5e}\u{2018}-\u{201f}\u{3000}-\u{3002}]+"),
                S(r"\s+$"),
                S("[\u{4e00}-\u{9fa5}\u{800}-\u{4e00}\u{ac00}-\u{d7ff}]+"),
                S(r"\p{N}+"),
            ],
            false,
            false,
            false,
        ),
        "default" => fam(
            &[S(r"[\p{P}\$\+<=>\^~\|]+"), S(GPT2), S(r"\p{N}+"), S("[0-9][0-9][0-9]")],
            false,
            false,
            false,
        ),
        _ => return None,
    })
}

impl Family {
    /// The normalizer, if any.
    pub(crate) fn normalizer(&self) -> Option<NormalizerWrapper> {
        self.nfc.then(|| NFC.into())
    }

    /// The steps, then the byte-level mapping (without its own regex: the steps have split already).
    pub(crate) fn pre_tokenizer(&self) -> Result<PreTokenizerWrapper, String> {
        let mut seq: Vec<PreTokenizerWrapper> = Vec::with_capacity(self.steps.len() + 1);
        for step in self.steps {
            seq.push(match *step {
                Step::Split(re) => Split::new(SplitPattern::Regex(re.to_string()), SplitDelimiterBehavior::Isolated, false)
                    .map_err(|e| format!("pre-tokenizer regex {re:?}: {e}"))?
                    .into(),
                Step::Digits => Digits::new(true).into(),
            });
        }
        seq.push(ByteLevel::new(false, false, false).into());
        Ok(Sequence::new(seq).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_builds() {
        for pre in ["gpt-2", "smollm", "llama-bpe", "qwen2", "qwen35", "falcon", "deepseek-coder", "deepseek-llm", "default"] {
            let f = family(pre).unwrap_or_else(|| panic!("{pre}"));
            f.pre_tokenizer().unwrap_or_else(|e| panic!("{pre}: {e}"));
        }
        assert!(family("no-such-pre").is_none());
    }
}
