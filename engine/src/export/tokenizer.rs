//! `tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json` from a byte-level BPE GGUF vocabulary
//! (`tokenizer.ggml.model = "gpt2"`).
//!
//! The vocabulary and merges are the GGUF's, verbatim: GGUF stores byte-level BPE tokens in the same GPT-2
//! byte-to-unicode spelling tokenizer.json uses. What the GGUF does not store is the pre-tokenizer itself, only its
//! name (`tokenizer.ggml.pre`); we write the pre-tokenizer, post-processor and decoder that the real tokenizer.json
//! of that family holds, so that the converters' fingerprint (encode a fixed text, hash the ids) finds the same name
//! again. The regexes are those of the original files (Meta's Llama 3 tokenizer.json, Qwen2's), which llama.cpp's
//! `llama-vocab.cpp` quotes above its adapted copies; SmolLM's is StarCoder's `Digits` + GPT-2 `ByteLevel`.
//!
//! Token types map as the converter derives them back: control tokens become special added tokens,
//! user-defined ones non-special added tokens, and `[PAD{i}]` filler (unused ids the converter invents for rows
//! the tokenizer does not cover) is left out, so the converter invents it again.

use std::collections::HashMap;

use super::json::J;
use super::source::bad_key;
use super::ExportError;
use crate::convert::vocab::token_type;
use crate::gguf::GgufFile;

/// Llama 3's split regex, as in Meta's tokenizer.json.
const LLAMA3_REGEX: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's: Llama 3's with single digits.
const QWEN2_REGEX: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// `tokenizer.ggml.pre` values we can write a tokenizer.json for.
pub const SUPPORTED_PRE: &[&str] = &["smollm", "gpt-2", "llama-bpe", "smaug-bpe", "qwen2"];

/// The parts of tokenizer.json that depend on the pre-tokenizer family.
struct Family {
    normalizer: J,
    pre_tokenizer: J,
    /// The post-processor when no special token is added (a `ByteLevel` with the family's flags).
    post_byte_level: J,
    decoder: J,
    /// The family's fingerprint includes a leading BOS: its tokenizer.json adds one (Llama 3).
    bos_in_fingerprint: bool,
    /// BPE `ignore_merges` (Llama 3 looks whole words up before merging; llama.cpp does too for llama-bpe).
    ignore_merges: bool,
    tokenizer_class: &'static str,
}

fn byte_level(add_prefix_space: bool, trim_offsets: bool, use_regex: bool) -> J {
    J::obj([
        ("type", J::str("ByteLevel")),
        ("add_prefix_space", J::Bool(add_prefix_space)),
        ("trim_offsets", J::Bool(trim_offsets)),
        ("use_regex", J::Bool(use_regex)),
    ])
}

fn split(regex: &str) -> J {
    J::obj([
        ("type", J::str("Split")),
        ("pattern", J::obj([("Regex", J::str(regex))])),
        ("behavior", J::str("Isolated")),
        ("invert", J::Bool(false)),
    ])
}

fn sequence(kind: &str, items: Vec<J>) -> J {
    J::obj([("type", J::str("Sequence")), (kind, J::Arr(items))])
}

fn family(pre: &str) -> Option<Family> {
    Some(match pre {
        // GPT-2's ByteLevel regex; SmolLM (StarCoder's tokenizer) splits digits first.
        "gpt-2" | "smollm" => Family {
            normalizer: J::Null,
            pre_tokenizer: if pre == "smollm" {
                sequence(
                    "pretokenizers",
                    vec![J::obj([("type", J::str("Digits")), ("individual_digits", J::Bool(true))]), byte_level(false, true, true)],
                )
            } else {
                byte_level(false, true, true)
            },
            post_byte_level: byte_level(true, false, true),
            decoder: byte_level(true, true, true),
            bos_in_fingerprint: false,
            ignore_merges: false,
            tokenizer_class: "GPT2Tokenizer",
        },
        // Llama 3; smaug-bpe is the same tokenizer without the BOS post-processor.
        "llama-bpe" | "smaug-bpe" => Family {
            normalizer: J::Null,
            pre_tokenizer: sequence("pretokenizers", vec![split(LLAMA3_REGEX), byte_level(false, true, false)]),
            post_byte_level: byte_level(true, false, true),
            decoder: byte_level(true, true, true),
            bos_in_fingerprint: pre == "llama-bpe",
            ignore_merges: true,
            tokenizer_class: "PreTrainedTokenizerFast",
        },
        "qwen2" => Family {
            normalizer: J::obj([("type", J::str("NFC"))]),
            pre_tokenizer: sequence("pretokenizers", vec![split(QWEN2_REGEX), byte_level(false, false, false)]),
            post_byte_level: byte_level(false, false, false),
            decoder: byte_level(false, false, false),
            bos_in_fingerprint: false,
            ignore_merges: false,
            tokenizer_class: "Qwen2Tokenizer",
        },
        _ => return None,
    })
}

/// Special token roles: GGUF id key, tokenizer_config name.
const SPECIALS: [(&str, &str); 6] = [
    ("tokenizer.ggml.bos_token_id", "bos_token"),
    ("tokenizer.ggml.eos_token_id", "eos_token"),
    ("tokenizer.ggml.unknown_token_id", "unk_token"),
    ("tokenizer.ggml.seperator_token_id", "sep_token"),
    ("tokenizer.ggml.padding_token_id", "pad_token"),
    ("tokenizer.ggml.mask_token_id", "mask_token"),
];

/// The GGUF vocabulary, read and checked.
pub struct Vocab {
    pub pre: String,
    pub tokens: Vec<String>,
    pub types: Vec<i32>,
    pub merges: Vec<String>,
    /// (tokenizer_config name, token id) of the special tokens the file names, in [`SPECIALS`] order.
    pub specials: Vec<(&'static str, u32)>,
    pub add_bos: bool,
    pub add_eos: Option<bool>,
    pub add_space_prefix: Option<bool>,
    /// (name, template); the unnamed default is `"default"`.
    pub chat_templates: Vec<(String, String)>,
}

impl Vocab {
    pub fn read(f: &GgufFile, n_vocab: u64) -> Result<Vocab, ExportError> {
        let err = |key: &str, reason: String| bad_key(f, key, reason);
        let missing = |key: &str| ExportError::MissingKey { file: f.path().into(), key: key.into() };
        let model = f.get_str("tokenizer.ggml.model").ok_or_else(|| missing("tokenizer.ggml.model"))?;
        if model != "gpt2" {
            return Err(err(
                "tokenizer.ggml.model",
                format!("{model:?}: only byte-level BPE (\"gpt2\") vocabularies can be exported; SentencePiece (\"llama\") is not supported"),
            ));
        }
        let pre = f.get_str("tokenizer.ggml.pre").ok_or_else(|| missing("tokenizer.ggml.pre"))?;
        if family(pre).is_none() {
            return Err(err(
                "tokenizer.ggml.pre",
                format!("{pre:?} is not a pre-tokenizer we can write (supported: {})", SUPPORTED_PRE.join(", ")),
            ));
        }
        let strings = |key: &str| -> Result<Option<Vec<String>>, ExportError> {
            match f.get(key) {
                None => Ok(None),
                Some(v) => v
                    .as_str_array()
                    .map(|a| Some(a.into_iter().map(str::to_string).collect()))
                    .ok_or_else(|| err(key, format!("expected an array of strings, found {}", v.type_label()))),
            }
        };
        let tokens = strings("tokenizer.ggml.tokens")?.ok_or_else(|| missing("tokenizer.ggml.tokens"))?;
        if tokens.len() as u64 > n_vocab {
            return Err(err(
                "tokenizer.ggml.tokens",
                format!("{} tokens, more than the {n_vocab} rows of token_embd.weight", tokens.len()),
            ));
        }
        let types: Vec<i32> = match f.get("tokenizer.ggml.token_type") {
            None => vec![token_type::NORMAL; tokens.len()],
            Some(v) => {
                let items = v.as_array().map(|(_, items)| items).unwrap_or_default();
                let types: Option<Vec<i32>> =
                    items.iter().map(|x| x.as_i64().and_then(|t| i32::try_from(t).ok())).collect();
                match types {
                    Some(t) if t.len() == tokens.len() => t,
                    _ => {
                        return Err(err(
                            "tokenizer.ggml.token_type",
                            format!("expected {} integers, one per token, found {}", tokens.len(), v.type_label()),
                        ))
                    }
                }
            }
        };
        let merges = strings("tokenizer.ggml.merges")?.unwrap_or_default();
        if let Some((i, m)) = merges.iter().enumerate().find(|(_, m)| m.matches(' ').count() != 1) {
            return Err(err("tokenizer.ggml.merges", format!("merge {i} {m:?} is not two parts joined by one space")));
        }
        let mut specials = Vec::new();
        for (key, name) in SPECIALS {
            let Some(v) = f.get(key) else { continue };
            let id = v.as_u64().filter(|&id| id < tokens.len() as u64).ok_or_else(|| {
                err(key, format!("{} is not the id of one of the {} tokens", v.summary(1), tokens.len()))
            })?;
            specials.push((name, id as u32));
        }
        let flag = |key: &str| -> Result<Option<bool>, ExportError> {
            match f.get(key) {
                None => Ok(None),
                Some(v) => {
                    v.as_bool().map(Some).ok_or_else(|| err(key, format!("expected a bool, found {}", v.type_label())))
                }
            }
        };
        let mut chat_templates = Vec::new();
        if let Some(t) = f.get_str("tokenizer.chat_template") {
            chat_templates.push(("default".to_string(), t.to_string()));
        }
        for name in strings("tokenizer.chat_templates")?.unwrap_or_default() {
            let key = format!("tokenizer.chat_template.{name}");
            let t = f.get_str(&key).ok_or_else(|| missing(&key))?;
            chat_templates.push((name, t.to_string()));
        }
        Ok(Vocab {
            pre: pre.to_string(),
            tokens,
            types,
            merges,
            specials,
            add_bos: flag("tokenizer.ggml.add_bos_token")?.unwrap_or(false),
            add_eos: flag("tokenizer.ggml.add_eos_token")?,
            add_space_prefix: flag("tokenizer.ggml.add_space_prefix")?,
            chat_templates,
        })
    }

    fn special(&self, name: &str) -> Option<u32> {
        self.specials.iter().find(|(n, _)| *n == name).map(|(_, id)| *id)
    }

    /// Whether the GGUF's add-BOS/EOS flags are what the family's own post-processor implies; if not, we leave the
    /// post-processor out and let tokenizer_config.json's `add_*_token` say it (both converters read it then).
    fn flags_need_config(&self, fam: &Family) -> bool {
        !fam.bos_in_fingerprint && (self.add_bos || self.add_eos == Some(true))
    }
}

/// The three tokenizer files, as JSON values.
pub struct TokenizerFiles {
    pub tokenizer_json: J,
    pub tokenizer_config: J,
    pub special_tokens_map: J,
}

fn is_pad_filler(id: usize, text: &str) -> bool {
    text.strip_prefix("[PAD").and_then(|r| r.strip_suffix(']')) == Some(id.to_string().as_str())
}

/// Builds the tokenizer files. `path` names the GGUF in errors.
pub fn build(f: &GgufFile, v: &Vocab, model_max_length: u64) -> Result<TokenizerFiles, ExportError> {
    let fam = family(&v.pre).expect("checked by Vocab::read");
    let err = |key: &str, reason: String| bad_key(f, key, reason);

    let mut vocab: Vec<(String, J)> = Vec::with_capacity(v.tokens.len());
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(v.tokens.len());
    let mut added = Vec::new();
    let mut added_decoder = Vec::new();
    for (id, (text, &ty)) in v.tokens.iter().zip(&v.types).enumerate() {
        let special = match ty {
            token_type::NORMAL => None,
            token_type::CONTROL => Some(true),
            token_type::USER_DEFINED => Some(false),
            token_type::UNUSED if is_pad_filler(id, text) => continue,
            token_type::UNUSED => None,
            other => {
                return Err(err(
                    "tokenizer.ggml.token_type",
                    format!("token {id} {text:?} has type {other}, which a byte-level BPE tokenizer.json cannot express"),
                ))
            }
        };
        if let Some(first) = seen.insert(text, id) {
            return Err(err("tokenizer.ggml.tokens", format!("tokens {first} and {id} are both {text:?}")));
        }
        vocab.push((text.clone(), J::U64(id as u64)));
        if let Some(special) = special {
            let flags = [
                ("single_word", J::Bool(false)),
                ("lstrip", J::Bool(false)),
                ("rstrip", J::Bool(false)),
                ("normalized", J::Bool(false)),
                ("special", J::Bool(special)),
            ];
            let mut entry = vec![("id".to_string(), J::U64(id as u64)), ("content".to_string(), J::str(text))];
            entry.extend(flags.iter().map(|(k, v)| (k.to_string(), v.clone())));
            added.push(J::Obj(entry));
            // tokenizer_config.json spells the same entry keyed by id, its fields sorted.
            added_decoder.push((
                id.to_string(),
                J::obj([
                    ("content", J::str(text)),
                    ("lstrip", J::Bool(false)),
                    ("normalized", J::Bool(false)),
                    ("rstrip", J::Bool(false)),
                    ("single_word", J::Bool(false)),
                    ("special", J::Bool(special)),
                ]),
            ));
        }
    }

    let post_processor = if fam.bos_in_fingerprint {
        let bos = v.special("bos_token").ok_or_else(|| {
            err("tokenizer.ggml.bos_token_id", format!("missing: a {:?} tokenizer adds a BOS token", v.pre))
        })?;
        let bos_text = &v.tokens[bos as usize];
        let special = |type_id: u64| J::obj([("SpecialToken", J::obj([("id", J::str(bos_text)), ("type_id", J::U64(type_id))]))]);
        let seq = |id: &str, type_id: u64| J::obj([("Sequence", J::obj([("id", J::str(id)), ("type_id", J::U64(type_id))]))]);
        let template = J::obj([
            ("type", J::str("TemplateProcessing")),
            ("single", J::Arr(vec![special(0), seq("A", 0)])),
            ("pair", J::Arr(vec![special(0), seq("A", 0), special(1), seq("B", 1)])),
            (
                "special_tokens",
                J::obj([(
                    bos_text.as_str(),
                    J::obj([
                        ("id", J::str(bos_text)),
                        ("ids", J::Arr(vec![J::U64(u64::from(bos))])),
                        ("tokens", J::Arr(vec![J::str(bos_text)])),
                    ]),
                )]),
            ),
        ]);
        sequence("processors", vec![fam.post_byte_level.clone(), template])
    } else if v.flags_need_config(&fam) {
        J::Null
    } else {
        fam.post_byte_level.clone()
    };

    let model = J::obj([
        ("type", J::str("BPE")),
        ("dropout", J::Null),
        ("unk_token", J::Null),
        ("continuing_subword_prefix", J::Null),
        ("end_of_word_suffix", J::Null),
        ("fuse_unk", J::Bool(false)),
        ("byte_fallback", J::Bool(false)),
        ("ignore_merges", J::Bool(fam.ignore_merges)),
        ("vocab", J::Obj(vocab)),
        ("merges", J::Arr(v.merges.iter().map(J::str).collect())),
    ]);
    let tokenizer_json = J::obj([
        ("version", J::str("1.0")),
        ("truncation", J::Null),
        ("padding", J::Null),
        ("added_tokens", J::Arr(added)),
        ("normalizer", fam.normalizer),
        ("pre_tokenizer", fam.pre_tokenizer),
        ("post_processor", post_processor),
        ("decoder", fam.decoder),
        ("model", model),
    ]);

    // tokenizer_config.json, keys sorted as transformers writes them.
    let content = |name: &str| v.special(name).map(|id| J::str(&v.tokens[id as usize]));
    let chat_template = match v.chat_templates.as_slice() {
        [] => None,
        [(name, t)] if name == "default" => Some(J::str(t)),
        list => Some(J::Arr(
            list.iter().map(|(n, t)| J::obj([("name", J::str(n)), ("template", J::str(t))])).collect(),
        )),
    };
    let mut cfg: Vec<(String, J)> = vec![("add_bos_token".into(), J::Bool(v.add_bos))];
    if let Some(b) = v.add_eos {
        cfg.push(("add_eos_token".into(), J::Bool(b)));
    }
    if let Some(b) = v.add_space_prefix {
        cfg.push(("add_prefix_space".into(), J::Bool(b)));
    }
    cfg.push(("added_tokens_decoder".into(), J::Obj(added_decoder)));
    cfg.push(("bos_token".into(), J::opt(content("bos_token"))));
    if let Some(t) = chat_template {
        cfg.push(("chat_template".into(), t));
    }
    cfg.push(("clean_up_tokenization_spaces".into(), J::Bool(false)));
    cfg.push(("eos_token".into(), J::opt(content("eos_token"))));
    if let Some(t) = content("mask_token") {
        cfg.push(("mask_token".into(), t));
    }
    cfg.push(("model_max_length".into(), J::U64(model_max_length)));
    cfg.push(("pad_token".into(), J::opt(content("pad_token"))));
    if let Some(t) = content("sep_token") {
        cfg.push(("sep_token".into(), t));
    }
    cfg.push(("tokenizer_class".into(), J::str(fam.tokenizer_class)));
    cfg.push(("unk_token".into(), J::opt(content("unk_token"))));

    let mut map: Vec<(&str, u32)> = v.specials.clone();
    map.sort_by_key(|(name, _)| *name);
    let special_tokens_map = J::obj(map.into_iter().map(|(name, id)| {
        let text = &v.tokens[id as usize];
        let tok = J::obj([
            ("content", J::str(text)),
            ("lstrip", J::Bool(false)),
            ("normalized", J::Bool(false)),
            ("rstrip", J::Bool(false)),
            ("single_word", J::Bool(false)),
        ]);
        (name, tok)
    }));

    Ok(TokenizerFiles { tokenizer_json, tokenizer_config: J::Obj(cfg), special_tokens_map })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_pre_has_a_family() {
        for pre in SUPPORTED_PRE {
            assert!(family(pre).is_some(), "{pre}");
        }
        assert!(family("deepseek-llm").is_none());
    }

    #[test]
    fn pad_filler_is_exact() {
        assert!(is_pad_filler(7, "[PAD7]"));
        assert!(!is_pad_filler(7, "[PAD8]"));
        assert!(!is_pad_filler(7, "[PAD]"));
    }
}
