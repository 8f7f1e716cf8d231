//! The tokenizer a GGUF carries: byte-level BPE from `tokenizer.ggml.*`, as llama.cpp runs it.
//!
//! Encoding has two stages, as in llama.cpp (`llama_vocab::impl::tokenize`):
//! 1. special tokens are cut out of the text first, longest text first (`tokenizer_st_partition`): user-defined
//!    tokens always, control tokens (`<|im_start|>`, BOS…) only when `parse_special` is set, so that user text
//!    which happens to spell a control token cannot inject one;
//! 2. every remaining fragment goes through the pre-tokenizer that `tokenizer.ggml.pre` names ([`pre`]) and the
//!    BPE merges, run by the `tokenizers` crate (the engine of Hugging Face's tokenizers, which made llama.cpp's
//!    test vectors; `tests/tokenizer_llamacpp.rs` holds us to them).
//!
//! Decoding is per token: [`Tokenizer::token_bytes`] gives the bytes a token stands for, and [`Detokenizer`]
//! streams them out as whole UTF-8 characters.
//!
//! Only byte-level BPE (`tokenizer.ggml.model = "gpt2"`) is supported: Llama 3, Qwen, SmolLM, GPT-2 and kin.
//! SentencePiece (`"llama"`), WordPiece and the rest are refused with an error saying so.

mod bytes;
mod pre;
mod special;

use std::collections::BTreeSet;

use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;

pub use bytes::{byte_to_char, Detokenizer, Utf8Stream};
pub use special::TokenKind;

use crate::gguf::{GgufFile, Value};

/// A tokenizer that could not be built, or text that could not be encoded: which file, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {fault}")]
pub struct TokenizerError {
    pub file: String,
    pub fault: String,
}

/// Limit on the vocabulary size we accept: the largest real vocabularies are ~262k; this bounds what a hostile
/// file can make us build.
pub const MAX_VOCAB: usize = 4 << 20;

/// A byte-level BPE tokenizer built from a GGUF's metadata.
pub struct Tokenizer {
    file: String,
    pre: String,
    /// Model + normalizer + pre-tokenizer, without added tokens: special tokens are handled before it.
    bpe: tokenizers::Tokenizer,
    kinds: Vec<TokenKind>,
    /// Token `i` stands for `bytes[offsets[i]..offsets[i + 1]]`.
    bytes: Vec<u8>,
    offsets: Vec<usize>,
    /// Special tokens in matching order (text length descending, then id): (text, id, kind).
    specials: Vec<(String, u32, TokenKind)>,
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Option<u32>,
    eog: BTreeSet<u32>,
    add_bos: bool,
    add_eos: bool,
}

impl Tokenizer {
    /// Builds the tokenizer of `file`. Errors name the file and the key at fault.
    pub fn from_gguf(file: &GgufFile) -> Result<Tokenizer, TokenizerError> {
        let name = file.path().display().to_string();
        let fail = |fault: String| TokenizerError { file: name.clone(), fault };
        let model = file.get_str("tokenizer.ggml.model").ok_or_else(|| fail("no tokenizer.ggml.model: the file carries no tokenizer".into()))?;
        if model != "gpt2" {
            return Err(fail(format!(
                "tokenizer.ggml.model = {model:?}: only byte-level BPE (\"gpt2\") is supported, not SentencePiece, WordPiece or others"
            )));
        }
        // llama.cpp: an absent name means its "default" pre-tokenizer.
        let pre = file.get_str("tokenizer.ggml.pre").unwrap_or("default").to_string();
        let fam = pre::family(&pre).ok_or_else(|| fail(format!("tokenizer.ggml.pre = {pre:?} is a pre-tokenizer PocketLM does not know")))?;

        let texts: Vec<String> = match file.get("tokenizer.ggml.tokens").map(|v| v.as_str_array()) {
            Some(Some(a)) => a.into_iter().map(str::to_string).collect(),
            Some(None) => return Err(fail("tokenizer.ggml.tokens is not an array of strings".into())),
            None => return Err(fail("no tokenizer.ggml.tokens".into())),
        };
        let n = texts.len();
        if n == 0 || n > MAX_VOCAB {
            return Err(fail(format!("tokenizer.ggml.tokens has {n} tokens (expected 1 to {MAX_VOCAB})")));
        }
        let mut kinds = read_kinds(file, n).map_err(fail)?;
        let merges = read_merges(file).map_err(fail)?;

        // Role ids: out-of-range ids are ignored, as llama.cpp does (with a warning there).
        let key_id = |key: &str| file.get(key).and_then(Value::as_u64).filter(|&id| id < n as u64).map(|id| id as u32);
        // llama.cpp's defaults for a "gpt2" vocabulary are BOS = EOS = 11 (GPT-2's own files name theirs).
        let default = (11 < n).then_some(11);
        let bos = key_id("tokenizer.ggml.bos_token_id").or(default);
        let eos = key_id("tokenizer.ggml.eos_token_id").or(default);
        let flag = |key: &str| file.get(key).and_then(Value::as_bool);
        let add_bos = flag("tokenizer.ggml.add_bos_token").unwrap_or(fam.add_bos_default);
        let add_eos = flag("tokenizer.ggml.add_eos_token").unwrap_or(false);
        let roles = special::resolve(&texts, &mut kinds, key_id, eos);

        // The BPE model: later duplicates win, as in llama.cpp's text → id map.
        let vocab: tokenizers::models::bpe::Vocab = texts.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .ignore_merges(fam.ignore_merges)
            .build()
            .map_err(|e| fail(format!("tokenizer.ggml.merges: {e}")))?;
        let mut hf = tokenizers::Tokenizer::new(bpe);
        hf.with_normalizer(fam.normalizer());
        let pre_tok: PreTokenizerWrapper = fam.pre_tokenizer().map_err(fail)?;
        hf.with_pre_tokenizer(Some(pre_tok));

        let decoder = bytes::ByteDecoder::new();
        let mut all_bytes = Vec::new();
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        for (t, kind) in texts.iter().zip(&kinds) {
            match kind {
                TokenKind::Normal => all_bytes.extend(decoder.decode(t)),
                TokenKind::Unused => {}
                // Special tokens are spelled literally (llama.cpp's token_to_piece).
                _ => all_bytes.extend_from_slice(t.as_bytes()),
            }
            offsets.push(all_bytes.len());
        }

        let mut specials: Vec<(String, u32, TokenKind)> = texts
            .iter()
            .zip(&kinds)
            .enumerate()
            .filter(|(_, (t, k))| matches!(k, TokenKind::Control | TokenKind::UserDefined | TokenKind::Unknown) && !t.is_empty())
            .map(|(i, (t, k))| (t.clone(), i as u32, *k))
            .collect();
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));

        Ok(Tokenizer {
            file: name,
            pre,
            bpe: hf,
            kinds,
            bytes: all_bytes,
            offsets,
            specials,
            bos,
            eos,
            eot: roles.eot,
            eog: roles.eog,
            add_bos,
            add_eos,
        })
    }

    /// Token ids of `text`.
    ///
    /// `add_special`: add BOS in front if the model's `add_bos_token` says so ([`Tokenizer::add_bos`]) and EOS at
    /// the end if `add_eos_token` says so — llama.cpp's `add_special`. Pass `false` for text that continues a
    /// sequence. `parse_special`: control tokens spelled in the text (`<|im_start|>`) become their ids; without
    /// it they are encoded as the characters they are made of. User-defined tokens always match.
    ///
    /// Like llama.cpp, a BOS is added even if the text already starts with one; use [`Tokenizer::encode_prompt`]
    /// for rendered chat templates, which avoids the double BOS.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>, TokenizerError> {
        let mut out = Vec::new();
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        for frag in self.partition(text, parse_special) {
            match frag {
                Frag::Token(id) => out.push(id),
                Frag::Text(s) => {
                    let enc = self.bpe.encode_fast(s, false).map_err(|e| TokenizerError {
                        file: self.file.clone(),
                        fault: format!("encoding {} bytes of text: {e}", s.len()),
                    })?;
                    out.extend_from_slice(enc.get_ids());
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        Ok(out)
    }

    /// Ids of a prompt rendered by a chat template: special tokens parsed, BOS added when the model wants one and
    /// the template has not already written it (Llama 3's template starts with `<|begin_of_text|>`; llama.cpp
    /// would warn of a double BOS there, we simply do not add the second).
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let mut ids = self.encode(text, false, true)?;
        if self.add_bos {
            if let Some(bos) = self.bos {
                if ids.first() != Some(&bos) {
                    ids.insert(0, bos);
                }
            }
        }
        Ok(ids)
    }

    /// Cuts special tokens out of `text`, longest text first (llama.cpp's `tokenizer_st_partition`).
    fn partition<'a>(&self, text: &'a str, parse_special: bool) -> Vec<Frag<'a>> {
        let mut frags = vec![Frag::Text(text)];
        for (t, id, kind) in &self.specials {
            if !parse_special && matches!(kind, TokenKind::Control | TokenKind::Unknown) {
                continue;
            }
            if !frags.iter().any(|f| matches!(f, Frag::Text(s) if s.contains(t.as_str()))) {
                continue;
            }
            let mut next = Vec::with_capacity(frags.len() + 2);
            for f in frags {
                let Frag::Text(mut s) = f else {
                    next.push(f);
                    continue;
                };
                while let Some(at) = s.find(t.as_str()) {
                    if at > 0 {
                        next.push(Frag::Text(&s[..at]));
                    }
                    next.push(Frag::Token(*id));
                    s = &s[at + t.len()..];
                }
                if !s.is_empty() {
                    next.push(Frag::Text(s));
                }
            }
            frags = next;
        }
        frags
    }

    /// Decodes ids to text in one go (control tokens left out, bad bytes as U+FFFD).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut d = Detokenizer::new(self);
        let mut s: String = ids.iter().map(|&id| d.push(id)).collect();
        s.push_str(&d.flush());
        s
    }

    /// The file this tokenizer came from.
    pub fn file(&self) -> &str {
        &self.file
    }
    /// The `tokenizer.ggml.pre` name (or `"default"`).
    pub fn pre(&self) -> &str {
        &self.pre
    }
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }
    /// The end-of-turn token (`<|eot_id|>`, `<|im_end|>`…), from the file or found by its text as llama.cpp does.
    pub fn eot(&self) -> Option<u32> {
        self.eot
    }
    /// Whether a prompt starts with BOS: `tokenizer.ggml.add_bos_token`, else llama.cpp's default for the
    /// pre-tokenizer (true for Llama 3, false for other byte-level BPE).
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }
    /// Whether generating `id` ends the reply: EOS, EOT, EOM, FIM pad/repo/separator and every token spelled like
    /// an end marker, as llama.cpp's `llama_vocab_is_eog` decides.
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }
    /// The end-of-generation ids, ascending.
    pub fn eog_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.eog.iter().copied()
    }
    /// The bytes token `id` stands for: byte-level decoded for text tokens, the literal spelling for special ones,
    /// nothing for unused ones (llama.cpp's `token_to_piece` with `special = true`). Empty for an id outside the
    /// vocabulary. One deviation: a text token holding characters outside the byte-level alphabet (Command-R has
    /// some) keeps their UTF-8, where llama.cpp writes "[UNK_BYTE_0x…]".
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        let i = id as usize;
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.bytes[a..b],
            _ => &[],
        }
    }
    /// The kind of token `id` (`None` outside the vocabulary).
    pub fn kind(&self, id: u32) -> Option<TokenKind> {
        self.kinds.get(id as usize).copied()
    }
    /// Control and unknown tokens: not shown in text unless asked for.
    pub fn is_control(&self, id: u32) -> bool {
        matches!(self.kind(id), Some(TokenKind::Control | TokenKind::Unknown))
    }
    /// The id of a token by its exact vocabulary text (`"<|im_end|>"`).
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.bpe.token_to_id(text)
    }
    pub fn n_vocab(&self) -> usize {
        self.kinds.len()
    }
}

/// Token kinds from `tokenizer.ggml.token_type` (all normal when absent).
fn read_kinds(file: &GgufFile, n: usize) -> Result<Vec<TokenKind>, String> {
    Ok(match file.get("tokenizer.ggml.token_type") {
        None => vec![TokenKind::Normal; n],
        Some(v) => {
            let items = v.as_array().map(|(_, items)| items).unwrap_or_default();
            if items.len() != n {
                return Err(format!("tokenizer.ggml.token_type: expected {n} integers, found {}", v.type_label()));
            }
            let mut kinds = Vec::with_capacity(n);
            for (i, t) in items.iter().enumerate() {
                let t = t.as_i64().ok_or_else(|| format!("tokenizer.ggml.token_type[{i}] is not an integer"))?;
                kinds.push(TokenKind::from_gguf(t).ok_or_else(|| format!("tokenizer.ggml.token_type[{i}] = {t} is not a token type"))?);
            }
            kinds
        }
    })
}

/// Merges from `tokenizer.ggml.merges`, each split at its first space after the first byte (as llama.cpp does).
fn read_merges(file: &GgufFile) -> Result<Vec<(String, String)>, String> {
    match file.get("tokenizer.ggml.merges") {
        None => Err("no tokenizer.ggml.merges: a BPE vocabulary needs its merges".into()),
        Some(v) => {
            let list = v.as_str_array().ok_or_else(|| "tokenizer.ggml.merges is not an array of strings".to_string())?;
            let mut merges = Vec::with_capacity(list.len());
            for (i, m) in list.into_iter().enumerate() {
                // llama.cpp splits at the first space after the first byte.
                let cut = m.as_bytes().iter().skip(1).position(|&b| b == b' ').map(|p| p + 1);
                let Some(cut) = cut else {
                    return Err(format!("tokenizer.ggml.merges[{i}] = {m:?} is not two tokens joined by a space"));
                };
                merges.push((m[..cut].to_string(), m[cut + 1..].to_string()));
            }
            Ok(merges)
        }
    }
}

enum Frag<'a> {
    Text(&'a str),
    Token(u32),
}
