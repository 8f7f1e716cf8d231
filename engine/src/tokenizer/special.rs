//! Token kinds, special-token roles and the end-of-generation set, decided as llama.cpp decides them
//! (`llama_vocab::impl::load` in `src/llama-vocab.cpp`).
//!
//! A GGUF gives a type per token and ids for some roles (BOS, EOS, EOT, FIM…). llama.cpp then looks tokens up by
//! their text: a token spelled like an end-of-turn marker (`<|im_end|>`, `<|eot_id|>`, `<|end_of_text|>`, …) ends
//! generation and is made a control token even when the file says otherwise; FIM markers likewise. We follow that,
//! so that a model stops where llama.cpp's would. Where llama.cpp picks "the first" of several candidates in hash
//! order (EOT and FIM roles by text), we take all of them for the control marking, and for EOT the lowest id that
//! is not EOS (which agrees with llama.cpp on every vocabulary `tests/tokenizer_llamacpp.rs` checks).

use std::collections::BTreeSet;

/// What a token is, from `tokenizer.ggml.token_type` (llama.cpp's `llama_token_type`), after llama.cpp's fixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// Text: decoded through the byte-level alphabet (also type 6, byte tokens).
    Normal,
    /// Types 0 and 5 (undefined, unused, e.g. `[PAD…]` filler rows): ordinary entries to the BPE model, but they
    /// stand for no text (llama.cpp's `token_to_piece` gives nothing for them).
    Unused,
    /// `<unk>`: matched in text only when special tokens are parsed; not shown.
    Unknown,
    /// `<|im_start|>`, BOS, EOS…: matched in text only when special tokens are parsed; not shown by default.
    Control,
    /// Added tokens that are text (always matched in text, always shown, spelled literally).
    UserDefined,
}

impl TokenKind {
    pub(crate) fn from_gguf(t: i64) -> Option<TokenKind> {
        Some(match t {
            1 | 6 => TokenKind::Normal,
            0 | 5 => TokenKind::Unused,
            2 => TokenKind::Unknown,
            3 => TokenKind::Control,
            4 => TokenKind::UserDefined,
            _ => return None,
        })
    }
}

/// Texts that make a token end generation (llama.cpp's list).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// Texts llama.cpp takes for the EOT role when the file names none.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];

/// FIM roles: (GGUF key, texts llama.cpp takes when the key is absent, whether the role ends generation).
const FIM_ROLES: &[(&str, &[&str], bool)] = &[
    (
        "tokenizer.ggml.fim_pre_token_id",
        &["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"],
        false,
    ),
    (
        "tokenizer.ggml.fim_suf_token_id",
        &["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"],
        false,
    ),
    (
        "tokenizer.ggml.fim_mid_token_id",
        &["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"],
        false,
    ),
    ("tokenizer.ggml.fim_pad_token_id", &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"], true),
    ("tokenizer.ggml.fim_rep_token_id", &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"], true),
    ("tokenizer.ggml.fim_sep_token_id", &["<|file_sep|>"], true),
];

/// gpt-oss's structural tokens, which llama.cpp always shows.
const ALWAYS_SHOWN: &[&str] = &["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"];

/// The roles and the end-of-generation set.
pub(crate) struct Roles {
    pub eot: Option<u32>,
    pub eog: BTreeSet<u32>,
}

/// Applies llama.cpp's text-based fixes to `kinds` and works out EOT and the EOG set. `key_id(key)` reads a role
/// id from the file (already checked to be in range); `eos` is the EOS role.
pub(crate) fn resolve(
    texts: &[String],
    kinds: &mut [TokenKind],
    key_id: impl Fn(&str) -> Option<u32>,
    eos: Option<u32>,
) -> Roles {
    let ids_of = |list: &[&str]| -> Vec<u32> {
        texts.iter().enumerate().filter(|(_, t)| list.contains(&t.as_str())).map(|(i, _)| i as u32).collect()
    };
    let mut eog = BTreeSet::new();

    let eot = match key_id("tokenizer.ggml.eot_token_id") {
        Some(id) => Some(id),
        None => {
            let found = ids_of(EOT_TEXTS);
            for &id in &found {
                kinds[id as usize] = TokenKind::Control;
            }
            // llama.cpp takes the first match in hash-map order, which no rule reproduces; an end-of-turn marker
            // that is not EOS is what it lands on for Llama 3 (<|eot_id|>, not <|end_of_text|>), Qwen (<|im_end|>,
            // not <|endoftext|>) and SmolLM2 (<|endoftext|>, not <|im_end|>), so we prefer that.
            found.iter().copied().find(|&id| Some(id) != eos).or(found.first().copied())
        }
    };
    let eom = key_id("tokenizer.ggml.eom_token_id").or_else(|| ids_of(&["<|eom_id|>"]).first().copied());
    for &(key, list, ends) in FIM_ROLES {
        let ids = match key_id(key) {
            Some(id) => vec![id],
            None => {
                let found = ids_of(list);
                for &id in &found {
                    kinds[id as usize] = TokenKind::Control;
                }
                found
            }
        };
        if ends {
            eog.extend(ids);
        }
    }
    for id in ids_of(EOG_TEXTS) {
        kinds[id as usize] = TokenKind::Control;
        eog.insert(id);
    }
    for id in ids_of(ALWAYS_SHOWN) {
        kinds[id as usize] = TokenKind::UserDefined;
    }
    eog.extend(eos);
    eog.extend(eot);
    eog.extend(eom);

    // gpt-oss (o200k_harmony) and solar-open: "<|end|>" ends a message there, not the generation.
    let has = |eog: &BTreeSet<u32>, t: &str| eog.iter().any(|&id| texts[id as usize] == t);
    let has_call = has(&eog, "<|call|>") || has(&eog, "<|calls|>");
    if has(&eog, "<|end|>") && has_call && (has(&eog, "<|return|>") || has(&eog, "<|flush|>")) {
        for id in ids_of(&["<|end|>"]) {
            eog.remove(&id);
            kinds[id as usize] = TokenKind::UserDefined;
        }
    }
    // Gemma 4 and PLaMo: "</s>" is a normal token.
    if (has(&eog, "<|tool_response>") || has(&eog, "<|plamo:eos|>")) && has(&eog, "</s>") {
        for id in ids_of(&["</s>"]) {
            eog.remove(&id);
            kinds[id as usize] = TokenKind::Normal;
        }
    }
    Roles { eot, eog }
}
