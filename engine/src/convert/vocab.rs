//! The tokenizer half of the conversion: byte-level BPE vocabularies (`tokenizer.ggml.model = "gpt2"`), as
//! llama.cpp's converter writes them (`TextModel._set_vocab_gpt2`, `get_vocab_base`, `get_vocab_base_pre`, and
//! gguf-py `SpecialVocab`, llama.cpp from llama-cpp-python 0.3.36).
//!
//! - Tokens and types come from the tokenizer's full vocabulary (model vocab plus added tokens), padded with
//!   `[PAD{i}]` (unused) up to the config's `vocab_size`. Added tokens are control tokens when special or when they
//!   look special (`<|…|>`), user-defined otherwise; everything else is normal.
//! - The pre-tokenizer name is found as llama.cpp finds it: encode a fixed text, hash the ids, look the hash up
//!   in its table (`pre_hashes.rs`, generated from the converter). We encode with the `tokenizers` crate — the
//!   library transformers itself calls — so the ids are the ones the Python converter hashes; an unknown hash is an
//!   error, as it is there.
//! - Merges, special token ids, `add_bos/eos` and the chat template follow `SpecialVocab`: tokenizer.json first,
//!   then tokenizer_config.json, then config.json's `*_token_id`.
//!
//! transformers' tokenizer classes add a few behaviours on top of tokenizer.json; we mirror the ones that change
//! the output for Llama/Qwen2-family tokenizers: `LlamaTokenizerFast` rebuilds the BOS/EOS post-processor from
//! `add_bos_token`/`add_eos_token`; special tokens named in tokenizer_config.json and its `added_tokens_decoder`
//! become (special) added tokens; truncation and padding are off.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};
use tokenizers::{AddedToken, Tokenizer};

use super::metadata::{MetaValue, Metadata};
use super::pre_hashes::{CHKTXT, PRE_HASHES};
use super::sha256::sha256_hex;
use super::ConvertError;
use crate::hf::Checkpoint;

/// llama.cpp token types (`gguf.TokenType`).
pub mod token_type {
    pub const NORMAL: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const CONTROL: i32 = 3;
    pub const USER_DEFINED: i32 = 4;
    pub const UNUSED: i32 = 5;
    pub const BYTE: i32 = 6;
}

/// The tokenizer files of a checkpoint, parsed once. A missing tokenizer.json reads as an empty object, which
/// gguf-py's `SpecialVocab` treats the same way.
pub struct TokenizerFiles {
    pub dir: PathBuf,
    pub tokenizer_json_path: PathBuf,
    pub has_tokenizer_json: bool,
    pub tokenizer_json: Map<String, Json>,
    pub tokenizer_config: Option<Map<String, Json>>,
}

fn tok_err(file: &Path, reason: impl Into<String>) -> ConvertError {
    ConvertError::Tokenizer { file: file.to_path_buf(), reason: reason.into() }
}

impl TokenizerFiles {
    pub fn load(ckpt: &Checkpoint) -> Result<TokenizerFiles, ConvertError> {
        let path = ckpt.dir().join("tokenizer.json");
        let has_tokenizer_json = path.is_file();
        let tokenizer_json = if has_tokenizer_json { crate::hf::read_json(&path)? } else { Map::new() };
        let tokenizer_config = match ckpt.file("tokenizer_config.json") {
            Some(p) => Some(crate::hf::read_json::<Map<String, Json>>(&p)?),
            None => None,
        };
        Ok(TokenizerFiles {
            dir: ckpt.dir().to_path_buf(),
            tokenizer_json_path: path,
            has_tokenizer_json,
            tokenizer_json,
            tokenizer_config,
        })
    }

    /// gguf-py `LlamaHfVocab` takes BPE tokenizers with byte fallback and a `Sequence` decoder (SentencePiece
    /// converted to tokenizer.json) unless they are Llama-3-like (`ignore_merges`, no byte fallback).
    fn is_llama_hf_style(&self) -> bool {
        let model = self.tokenizer_json.get("model").and_then(Json::as_object);
        let get_bool = |k: &str, default: bool| model.and_then(|m| m.get(k)).and_then(Json::as_bool).unwrap_or(default);
        let is_bpe = model.and_then(|m| m.get("type")).and_then(Json::as_str) == Some("BPE");
        let is_llama3 = is_bpe && get_bool("ignore_merges", false) && !get_bool("byte_fallback", true);
        let decoder_seq =
            self.tokenizer_json.get("decoder").and_then(|d| d.get("type")).and_then(Json::as_str) == Some("Sequence");
        !is_llama3 && is_bpe && get_bool("byte_fallback", false) && decoder_seq
    }
}

/// Adds the tokenizer metadata for architecture `arch` to `meta`, in the converter's order: a SentencePiece
/// `tokenizer.model` when there is one (`_set_vocab_sentencepiece` is tried first, for Llama and Qwen2 alike);
/// for Llama, a tokenizer.json converted from SentencePiece (`_set_vocab_llama_hf`); else the byte-level BPE
/// `tokenizer.json` (`_set_vocab_gpt2`).
pub fn add_vocab(
    ckpt: &Checkpoint,
    arch: super::Architecture,
    vocab_size: u64,
    meta: &mut Metadata,
) -> Result<(), ConvertError> {
    let files = TokenizerFiles::load(ckpt)?;
    if arch == super::Architecture::Llama {
        // LlamaModel.set_vocab: tokenizer_config's add_prefix_space comes first.
        if let Some(b) = files.tokenizer_config.as_ref().and_then(|c| c.get("add_prefix_space")).and_then(Json::as_bool)
        {
            meta.set("tokenizer.ggml.add_space_prefix", MetaValue::Bool(b));
        }
    }

    let set_llama_vocab = |v: super::spm::SpmVocab, meta: &mut Metadata| {
        meta.set("tokenizer.ggml.model", MetaValue::String("llama".into()));
        meta.set("tokenizer.ggml.pre", MetaValue::String("default".into()));
        meta.set("tokenizer.ggml.tokens", MetaValue::StringArray(v.tokens));
        meta.set("tokenizer.ggml.scores", MetaValue::F32Array(v.scores));
        meta.set("tokenizer.ggml.token_type", MetaValue::I32Array(v.types));
    };
    if let Some(model) = ckpt.file("tokenizer.model") {
        let v = super::spm::create_vocab(ckpt.dir(), &model, vocab_size)?;
        let n = v.tokens.len() as u64;
        set_llama_vocab(v, meta);
        special_vocab(&files, ckpt.config_path(), false, Some(n), meta)?;
    } else if !files.has_tokenizer_json {
        return Err(ConvertError::UnsupportedTokenizer {
            file: files.tokenizer_json_path.clone(),
            reason: "no tokenizer.model or tokenizer.json (vocab.json/merges.txt-only tokenizers are not supported)"
                .into(),
        });
    } else if arch == super::Architecture::Llama && files.is_llama_hf_style() {
        let v = llama_hf_vocab(&files)?;
        let n = v.tokens.len() as u64;
        set_llama_vocab(v, meta);
        special_vocab(&files, ckpt.config_path(), false, Some(n), meta)?;
    } else {
        let base = vocab_base(&files, vocab_size)?;
        meta.set("tokenizer.ggml.model", MetaValue::String("gpt2".into()));
        meta.set("tokenizer.ggml.pre", MetaValue::String(base.pre));
        meta.set("tokenizer.ggml.tokens", MetaValue::StringArray(base.tokens));
        meta.set("tokenizer.ggml.token_type", MetaValue::I32Array(base.types));
        special_vocab(&files, ckpt.config_path(), true, None, meta)?;
    }

    // LlamaModel.set_vocab: "granite small models" — any Llama with a 49152 vocabulary (SmolLM too) gets no BOS.
    if arch == super::Architecture::Llama && vocab_size == 49152 {
        meta.set("tokenizer.ggml.add_bos_token", MetaValue::Bool(false));
    }
    Ok(())
}

/// The special tokens transformers knows a tokenizer by (`all_special_tokens`): tokenizer_config.json's
/// `bos/eos/unk/sep/pad/cls/mask_token` and `additional_special_tokens`, special_tokens_map.json filling the gaps.
fn all_special_tokens(files: &TokenizerFiles) -> Result<Vec<String>, ConvertError> {
    let map_path = files.dir.join("special_tokens_map.json");
    let map: Map<String, Json> = if map_path.is_file() { crate::hf::read_json(&map_path)? } else { Map::new() };
    let get = |k: &str| {
        let from_cfg = files.tokenizer_config.as_ref().and_then(|c| c.get(k)).filter(|v| !v.is_null());
        from_cfg.or_else(|| map.get(k))
    };
    let mut out: Vec<String> = Vec::new();
    for typ in ["bos", "eos", "unk", "sep", "pad", "cls", "mask"] {
        if let Some(t) = token_content(get(&format!("{typ}_token"))) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    for t in get("additional_special_tokens").and_then(Json::as_array).into_iter().flatten() {
        if let Some(t) = token_content(Some(t)) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    Ok(out)
}

/// Port of gguf-py `LlamaHfVocab` (SentencePiece converted to tokenizer.json, no tokenizer.model): the model's
/// vocabulary in id order, then the added tokens past it; every score -1000; `<0xNN>` pieces are bytes, special
/// tokens control. Unlike the SentencePiece path the list is not padded to the config's vocab_size.
pub fn llama_hf_vocab(files: &TokenizerFiles) -> Result<super::spm::SpmVocab, ConvertError> {
    static BYTE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let byte = BYTE.get_or_init(|| regex::Regex::new(r"^<0x[0-9A-Fa-f]{2}>$").expect("valid pattern"));
    let path = &files.tokenizer_json_path;
    let (tok, added) = load_tokenizer(files)?;
    let base = tok.get_vocab_size(false) as u32;
    let reverse: HashMap<u32, String> = tok.get_vocab(true).into_iter().map(|(s, id)| (id, s)).collect();
    let specials = all_special_tokens(files)?;
    let special_ids: Vec<u32> = specials.iter().filter_map(|t| tok.token_to_id(t)).collect();

    let mut v = super::spm::SpmVocab { tokens: Vec::new(), scores: Vec::new(), types: Vec::new() };
    for id in 0..base {
        let text = reverse.get(&id).ok_or_else(|| tok_err(path, format!("no token has id {id}")))?;
        let t = if byte.is_match(text) {
            token_type::BYTE
        } else if special_ids.contains(&id) {
            token_type::CONTROL
        } else {
            token_type::NORMAL
        };
        v.tokens.push(text.clone());
        v.scores.push(-1000.0);
        v.types.push(t);
    }
    for a in added.range(base..).map(|(_, a)| a) {
        let t = if specials.contains(&a.content) { token_type::CONTROL } else { token_type::USER_DEFINED };
        v.tokens.push(a.content.clone());
        v.scores.push(-1000.0);
        v.types.push(t);
    }
    Ok(v)
}

/// What `get_vocab_base` returns.
pub struct VocabBase {
    pub tokens: Vec<String>,
    pub types: Vec<i32>,
    pub pre: String,
}

/// Flags of an added token that matter here.
#[derive(Clone, Debug)]
struct Added {
    content: String,
    special: bool,
    normalized: bool,
}

/// Loads tokenizer.json into the `tokenizers` crate, with transformers' adjustments applied.
fn load_tokenizer(files: &TokenizerFiles) -> Result<(Tokenizer, BTreeMap<u32, Added>), ConvertError> {
    let path = &files.tokenizer_json_path;
    let text = serde_json::to_string(&files.tokenizer_json).map_err(|e| tok_err(path, e.to_string()))?;
    let mut tok: Tokenizer = text.parse().map_err(|e| tok_err(path, format!("cannot load: {e}")))?;
    tok.with_truncation(None).map_err(|e| tok_err(path, e.to_string()))?;
    tok.with_padding(None);

    // Added tokens as transformers ends up with them: tokenizer.json's, then tokenizer_config's
    // added_tokens_decoder (same content: its flags win), then the special tokens it names.
    let mut extra: Vec<AddedToken> = Vec::new();
    if let Some(cfg) = &files.tokenizer_config {
        if let Some(dec) = cfg.get("added_tokens_decoder").and_then(Json::as_object) {
            let mut entries: Vec<(u64, &Map<String, Json>)> =
                dec.iter().filter_map(|(k, v)| Some((k.parse::<u64>().ok()?, v.as_object()?))).collect();
            entries.sort_by_key(|e| e.0);
            for (_, e) in entries {
                let Some(content) = e.get("content").and_then(Json::as_str) else {
                    continue;
                };
                let flag = |k: &str, d: bool| e.get(k).and_then(Json::as_bool).unwrap_or(d);
                let special = flag("special", false);
                let mut t = AddedToken::from(content, special);
                t.single_word = flag("single_word", false);
                t.lstrip = flag("lstrip", false);
                t.rstrip = flag("rstrip", false);
                t.normalized = flag("normalized", !special);
                extra.push(t);
            }
        }
    }
    let existing = tok.get_added_tokens_decoder();
    let differs = |t: &AddedToken| {
        !existing.values().any(|e| {
            e.content == t.content
                && e.special == t.special
                && e.normalized == t.normalized
                && e.lstrip == t.lstrip
                && e.rstrip == t.rstrip
                && e.single_word == t.single_word
        })
    };
    let extra: Vec<AddedToken> = extra.into_iter().filter(differs).collect();
    if !extra.is_empty() {
        tok.add_tokens(&extra);
    }
    if let Some(cfg) = &files.tokenizer_config {
        let mut specials = Vec::new();
        for typ in ["bos", "eos", "unk", "sep", "pad", "cls", "mask"] {
            if let Some(c) = token_content(cfg.get(&format!("{typ}_token"))) {
                specials.push(c);
            }
        }
        if let Some(list) = cfg.get("additional_special_tokens").and_then(Json::as_array) {
            specials.extend(list.iter().filter_map(|v| token_content(Some(v))));
        }
        let decoder = tok.get_added_tokens_decoder();
        let missing: Vec<AddedToken> = specials
            .into_iter()
            .filter(|c| !decoder.values().any(|t| t.content == *c))
            .map(|c| AddedToken::from(c, true))
            .collect();
        if !missing.is_empty() {
            tok.add_special_tokens(&missing);
        }
    }
    let added = tok
        .get_added_tokens_decoder()
        .into_iter()
        .map(|(id, t)| (id, Added { content: t.content, special: t.special, normalized: t.normalized }))
        .collect();
    Ok((tok, added))
}

/// A special token as tokenizer_config.json spells it: a string, or an `AddedToken` object with `content`.
fn token_content(v: Option<&Json>) -> Option<String> {
    match v? {
        Json::String(s) => Some(s.clone()),
        Json::Object(o) => o.get("content").and_then(Json::as_str).map(str::to_string),
        _ => None,
    }
}

/// Port of `get_vocab_base` and `get_vocab_base_pre`.
pub fn vocab_base(files: &TokenizerFiles, vocab_size: u64) -> Result<VocabBase, ConvertError> {
    let path = &files.tokenizer_json_path;
    let (tok, added) = load_tokenizer(files)?;
    let vocab = tok.get_vocab(true);
    let max_id = vocab.values().copied().max().unwrap_or(0);
    if u64::from(max_id) >= vocab_size {
        return Err(tok_err(
            path,
            format!(
                "token id {max_id} is not below the config's vocab_size {vocab_size}: tokenizer and model disagree"
            ),
        ));
    }
    let pre = pre_tokenizer_name(&tok, files)?;

    let reverse: HashMap<u32, &str> = vocab.iter().map(|(s, &id)| (id, s.as_str())).collect();
    // get_added_vocab(): content → id over the added tokens, later ids winning.
    let added_by_content: HashMap<&str, u32> = added.iter().map(|(&id, t)| (t.content.as_str(), id)).collect();
    let clean_up = files
        .tokenizer_config
        .as_ref()
        .and_then(|c| c.get("clean_up_tokenization_spaces"))
        .and_then(Json::as_bool)
        .unwrap_or(false);

    let n = vocab_size as usize;
    let mut tokens = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    for i in 0..vocab_size as u32 {
        let Some(&text) = reverse.get(&i) else {
            tokens.push(format!("[PAD{i}]"));
            types.push(token_type::UNUSED);
            continue;
        };
        let mut token = text.to_string();
        if let Some(&aid) = added_by_content.get(text) {
            let flags = added.get(&i).or_else(|| added.get(&aid)).expect("id from the same map");
            if !flags.normalized {
                // llama.cpp's tokenizer takes control/user-defined tokens as pre-normalized: the converter
                // normalizes the ones the tokenizer does not, by encoding and decoding them.
                token = round_trip(&tok, &token, clean_up).map_err(|e| tok_err(path, e))?;
            }
            if flags.special || looks_special(&token) {
                types.push(token_type::CONTROL);
            } else {
                token = token.replace('\u{2581}', " ");
                types.push(token_type::USER_DEFINED);
            }
        } else {
            types.push(token_type::NORMAL);
        }
        tokens.push(token);
    }
    Ok(VocabBase { tokens, types, pre })
}

/// `tokenizer.decode(tokenizer.encode(token, add_special_tokens=False))`, with transformers' optional clean-up.
fn round_trip(tok: &Tokenizer, token: &str, clean_up: bool) -> Result<String, String> {
    let enc = tok.encode(token, false).map_err(|e| e.to_string())?;
    let text = tok.decode(enc.get_ids(), false).map_err(|e| e.to_string())?;
    Ok(if clean_up { clean_up_tokenization(&text) } else { text })
}

/// transformers' `clean_up_tokenization`: removes the space before punctuation and English contractions.
fn clean_up_tokenization(s: &str) -> String {
    s.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}

/// `TextModel.does_token_look_special`.
pub fn looks_special(t: &str) -> bool {
    matches!(t, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (t.starts_with("<|") && t.ends_with("|>"))
        || (t.starts_with("<\u{ff5c}") && t.ends_with("\u{ff5c}>"))
        || (t.starts_with("<unused") && t.ends_with('>'))
}

/// The token ids the converter hashes: `tokenizer.encode(CHKTXT)` with special tokens, as transformers' tokenizer
/// class would produce them.
pub fn chk_token_ids(tok: &Tokenizer, files: &TokenizerFiles) -> Result<Vec<u32>, ConvertError> {
    let path = &files.tokenizer_json_path;
    let cfg = files.tokenizer_config.as_ref();
    let class = cfg.and_then(|c| c.get("tokenizer_class")).and_then(Json::as_str).unwrap_or("");
    if matches!(class, "LlamaTokenizer" | "LlamaTokenizerFast" | "CodeLlamaTokenizer" | "CodeLlamaTokenizerFast") {
        // LlamaTokenizerFast.update_post_processor: BOS if add_bos_token (default true), EOS if add_eos_token.
        let flag = |k: &str, d: bool| cfg.and_then(|c| c.get(k)).and_then(Json::as_bool).unwrap_or(d);
        let id_of = |k: &str| token_content(cfg.and_then(|c| c.get(k))).and_then(|t| tok.token_to_id(&t));
        let enc = tok.encode(CHKTXT, false).map_err(|e| tok_err(path, format!("cannot encode: {e}")))?;
        let mut ids = Vec::with_capacity(enc.get_ids().len() + 2);
        if flag("add_bos_token", true) {
            ids.extend(id_of("bos_token"));
        }
        ids.extend_from_slice(enc.get_ids());
        if flag("add_eos_token", false) {
            ids.extend(id_of("eos_token"));
        }
        return Ok(ids);
    }
    let enc = tok.encode(CHKTXT, true).map_err(|e| tok_err(path, format!("cannot encode: {e}")))?;
    Ok(enc.get_ids().to_vec())
}

/// Python's `str(list_of_ints)`: `[1, 2, 3]`.
fn python_list_repr(ids: &[u32]) -> String {
    let parts: Vec<String> = ids.iter().map(u32::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// The fingerprint llama.cpp's converter computes for a tokenizer.
pub fn chk_hash(tok: &Tokenizer, files: &TokenizerFiles) -> Result<String, ConvertError> {
    Ok(sha256_hex(python_list_repr(&chk_token_ids(tok, files)?).as_bytes()))
}

fn pre_tokenizer_name(tok: &Tokenizer, files: &TokenizerFiles) -> Result<String, ConvertError> {
    let hash = chk_hash(tok, files)?;
    // The converter's if-chain lets a later entry win when a hash is listed twice.
    match PRE_HASHES.iter().rev().find(|(h, _, _)| *h == hash) {
        Some((_, name, _)) => Ok((*name).to_string()),
        None => Err(ConvertError::UnknownPreTokenizer { file: files.tokenizer_json_path.clone(), hash }),
    }
}

/// Port of gguf-py `SpecialVocab(dir, load_merges, n_vocab=n_vocab).add_to_gguf(...)`.
pub fn special_vocab(
    files: &TokenizerFiles,
    config_json: &Path,
    load_merges: bool,
    n_vocab: Option<u64>,
    meta: &mut Metadata,
) -> Result<(), ConvertError> {
    let path = &files.tokenizer_json_path;
    let tj = &files.tokenizer_json;
    let mut types: Vec<&'static str> = vec!["bos", "eos", "unk", "sep", "pad", "cls", "mask"];
    let mut ids: Vec<(&'static str, u64)> = Vec::new();
    let mut add: Vec<(&'static str, bool)> = Vec::new();
    let set_add =
        |add: &mut Vec<(&'static str, bool)>, k: &'static str, v: bool| match add.iter_mut().find(|e| e.0 == k) {
            Some(e) => e.1 = v,
            None => add.push((k, v)),
        };
    let set_default = |add: &mut Vec<(&'static str, bool)>, k: &'static str, v: bool| {
        if !add.iter().any(|e| e.0 == k) {
            add.push((k, v));
        }
    };

    // Merges, in either tokenizer.json format.
    let merges = if load_merges { merges_of(tj).map_err(|r| tok_err(path, r))? } else { Vec::new() };

    // Normalizer flags.
    let mut lowercase = None;
    let mut strip_accents = None;
    if let Some(n) = tj.get("normalizer").filter(|n| truthy(n)) {
        parse_normalizer(n, &mut lowercase, &mut strip_accents);
    }
    let added_tokens: Vec<(String, Json)> = tj
        .get("added_tokens")
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| {
                    Some((t.get("content")?.as_str()?.to_string(), t.get("id").cloned().unwrap_or(Json::Null)))
                })
                .collect()
        })
        .unwrap_or_default();

    let mut tc: Option<Map<String, Json>> = files.tokenizer_config.clone();
    let tc_truthy = tc.as_ref().is_some_and(|m| !m.is_empty());
    if !tj.is_empty() {
        let get =
            |tc: &Option<Map<String, Json>>, k: &str| tc.as_ref().and_then(|m| m.get(k)).cloned().unwrap_or(Json::Null);
        let mut special_bos = get(&tc, "bos_token");
        let mut special_cls = get(&tc, "cls_token");
        let mut special_eos = get(&tc, "eos_token");
        let mut special_sep = get(&tc, "sep_token");
        if !truthy(&special_bos) && truthy(&special_cls) && tc_truthy {
            special_bos = special_cls.clone();
            tc.as_mut().unwrap().insert("bos_token".into(), special_bos.clone());
        }
        if !truthy(&special_eos) && truthy(&special_sep) && tc_truthy {
            special_eos = special_sep.clone();
            tc.as_mut().unwrap().insert("eos_token".into(), special_eos.clone());
        }
        if let Some(pp) = tj.get("post_processor").filter(|p| truthy(p)) {
            let processors: Vec<&Json> = match pp.get("processors").and_then(Json::as_array) {
                Some(list) => list.iter().collect(),
                None => vec![pp],
            };
            for processor in processors {
                match processor.get("type").and_then(Json::as_str) {
                    Some("ByteLevel") => {
                        set_default(&mut add, "bos", false);
                        set_default(&mut add, "eos", false);
                    }
                    Some("RobertaProcessing") => {
                        set_add(&mut add, "bos", true);
                        set_add(&mut add, "eos", true);
                        set_add(&mut add, "sep", true);
                        if !truthy(&special_cls) && tc_truthy {
                            special_cls = processor
                                .get("cls")
                                .and_then(|c| c.get(0))
                                .cloned()
                                .unwrap_or_else(|| special_bos.clone());
                            tc.as_mut().unwrap().insert("cls_token".into(), special_cls.clone());
                        }
                        if !truthy(&special_sep) && tc_truthy {
                            special_sep = processor
                                .get("sep")
                                .and_then(|c| c.get(0))
                                .cloned()
                                .unwrap_or_else(|| special_eos.clone());
                            tc.as_mut().unwrap().insert("sep_token".into(), special_sep.clone());
                        }
                    }
                    Some("TemplateProcessing") => {
                        let empty = Vec::new();
                        let single = processor.get("single").and_then(Json::as_array).unwrap_or(&empty);
                        let pair = processor.get("pair").and_then(Json::as_array).unwrap_or(&empty);
                        let special_id = |e: &Json| e.get("SpecialToken").and_then(|s| s.get("id")).cloned();
                        let mut special_first: Option<Json> = None;
                        let mut special_last: Option<Json> = None;
                        if single.len() > 1 {
                            special_first = special_id(&single[0]).filter(truthy);
                            if let Some(first) = special_first.clone() {
                                if !tc_truthy {
                                    special_bos = first.clone();
                                } else if first != special_bos && first != special_cls {
                                    if !truthy(&special_bos) {
                                        special_bos = first.clone();
                                        tc.as_mut().unwrap().insert("bos_token".into(), first.clone());
                                    }
                                    if !truthy(&special_cls) {
                                        special_cls = first.clone();
                                        tc.as_mut().unwrap().insert("cls_token".into(), first.clone());
                                    }
                                }
                                set_add(&mut add, "bos", first == special_bos || first == special_cls);
                            }
                            special_last = special_id(&single[single.len() - 1]).filter(truthy);
                            if let Some(last) = special_last.clone() {
                                if !tc_truthy {
                                    special_eos = last.clone();
                                } else if last != special_eos {
                                    let m = tc.as_mut().unwrap();
                                    if !types.contains(&"eot") {
                                        types.push("eot");
                                        m.insert("eot_token".into(), special_eos.clone());
                                    } else if !types.contains(&"eom") {
                                        types.push("eom");
                                        m.insert("eom_token".into(), special_eos.clone());
                                    }
                                    special_eos = last.clone();
                                    m.insert("eos_token".into(), last.clone());
                                }
                                set_add(&mut add, "eos", last == special_eos);
                            }
                        }
                        if !pair.is_empty() {
                            let start = usize::from(special_first.is_some() && special_id(&pair[0]) == special_first);
                            let stop_trim = usize::from(
                                special_last.is_some() && special_id(&pair[pair.len() - 1]) == special_last,
                            );
                            let end = pair.len().saturating_sub(stop_trim);
                            let mid: &[Json] = if start < end { &pair[start..end] } else { &[] };
                            if !mid.is_empty() {
                                let seq_id = |e: &Json| {
                                    e.get("Sequence")
                                        .and_then(|s| s.get("id"))
                                        .and_then(Json::as_str)
                                        .map(str::to_string)
                                };
                                let a = seq_id(&mid[0]);
                                let b = seq_id(&mid[mid.len() - 1]);
                                if a.as_deref() == Some("A") && b.as_deref() == Some("B") && mid.len() > 2 {
                                    let inner = &mid[1..mid.len() - 1];
                                    let mut add_sep = false;
                                    if let Some(entry) = special_id(&inner[0]).filter(truthy) {
                                        if (entry == special_sep || entry == special_eos) && special_last.is_none() {
                                            add_sep = true;
                                        }
                                    }
                                    if inner.len() == 2 {
                                        if let Some(entry) = special_id(&inner[1]).filter(truthy) {
                                            if entry == special_sep || entry == special_eos {
                                                add_sep = true;
                                            }
                                        }
                                    }
                                    set_add(&mut add, "sep", add_sep);
                                    if add_sep && !truthy(&special_sep) && tc_truthy {
                                        tc.as_mut().unwrap().insert("sep_token".into(), special_eos.clone());
                                    }
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    let mut chat_template: Option<ChatTemplate> = None;
    if let Some(tc) = tc.as_ref().filter(|m| !m.is_empty()) {
        let alt = chat_template_alt(&files.dir)?;
        chat_template = match tc.get("chat_template") {
            None => alt,
            Some(Json::Null) => None,
            Some(Json::String(s)) => Some(ChatTemplate::Single(s.clone())),
            Some(Json::Array(list)) => Some(ChatTemplate::Named(
                list.iter()
                    .filter_map(|e| {
                        Some((
                            e.get("name").and_then(Json::as_str).unwrap_or("").to_string(),
                            e.get("template").and_then(Json::as_str)?.to_string(),
                        ))
                    })
                    .collect(),
            )),
            Some(_) => None, // "Bad type for chat_template field": ignored, as the converter does.
        };
        for &typ in &types {
            if let Some(b) = tc.get(&format!("add_{typ}_token")).and_then(Json::as_bool) {
                set_default(&mut add, typ, b);
            }
            let Some(content) = token_content(tc.get(&format!("{typ}_token"))) else {
                continue;
            };
            let id = added_tokens.iter().find(|(c, _)| *c == content).map(|(_, id)| id.clone());
            set_special(&mut ids, typ, id.as_ref(), n_vocab, path)?;
        }
    }
    // config.json's *_token_id fill what is still unset (ints only: Llama 3.1 lists several EOS ids, skipped).
    let config: Map<String, Json> = crate::hf::read_json(config_json)?;
    for &typ in &types {
        let mut id = config.get(&format!("{typ}_token_id"));
        if id.is_none_or(Json::is_null) {
            id = config.get("text_config").and_then(|t| t.get(format!("{typ}_token_id")));
        }
        set_special(&mut ids, typ, id, n_vocab, config_json)?;
    }

    // add_to_gguf, in its order.
    if !merges.is_empty() {
        meta.set("tokenizer.ggml.merges", MetaValue::StringArray(merges));
    }
    for (typ, id) in ids {
        let key = match typ {
            "bos" => "tokenizer.ggml.bos_token_id",
            "eos" => "tokenizer.ggml.eos_token_id",
            "unk" => "tokenizer.ggml.unknown_token_id",
            "sep" => "tokenizer.ggml.seperator_token_id",
            "pad" => "tokenizer.ggml.padding_token_id",
            "mask" => "tokenizer.ggml.mask_token_id",
            "eot" => "tokenizer.ggml.eot_token_id",
            "eom" => "tokenizer.ggml.eom_token_id",
            _ => continue, // "cls": gguf-py has no writer for it and skips it.
        };
        let id =
            u32::try_from(id).map_err(|_| tok_err(config_json, format!("{typ} token id {id} does not fit u32")))?;
        meta.set(key, MetaValue::U32(id));
    }
    for (typ, v) in add {
        meta.set(&format!("tokenizer.ggml.add_{typ}_token"), MetaValue::Bool(v));
    }
    match chat_template {
        None => {}
        Some(ChatTemplate::Single(s)) => meta.set("tokenizer.chat_template", MetaValue::String(s)),
        Some(ChatTemplate::Named(list)) => {
            let mut default = None;
            let mut names: Vec<String> = Vec::new();
            for (name, template) in list {
                let name: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
                if name.is_empty() {
                    continue;
                }
                if name == "default" {
                    default = Some(template);
                } else {
                    meta.set(&format!("tokenizer.chat_template.{name}"), MetaValue::String(template));
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
            if !names.is_empty() {
                // gguf-py builds this list from a Python set: its order is not defined. We keep first-seen order.
                meta.set("tokenizer.chat_templates", MetaValue::StringArray(names));
            }
            if let Some(t) = default {
                meta.set("tokenizer.chat_template", MetaValue::String(t));
            }
        }
    }
    if let Some(b) = lowercase {
        meta.set("tokenizer.ggml.normalizer.lowercase", MetaValue::Bool(b));
    }
    if let Some(b) = strip_accents {
        meta.set("tokenizer.ggml.normalizer.strip_accents", MetaValue::Bool(b));
    }
    Ok(())
}

enum ChatTemplate {
    Single(String),
    Named(Vec<(String, String)>),
}

/// chat_template.jinja (plus additional_chat_templates/*.jinja) or chat_template.json, used when
/// tokenizer_config.json has no `chat_template` key.
fn chat_template_alt(dir: &Path) -> Result<Option<ChatTemplate>, ConvertError> {
    let jinja = dir.join("chat_template.jinja");
    let json = dir.join("chat_template.json");
    if jinja.is_file() {
        let default = std::fs::read_to_string(&jinja).map_err(|e| crate::hf::HfError::io(&jinja, e))?;
        let extra_dir = dir.join("additional_chat_templates");
        let mut extra = Vec::new();
        if extra_dir.is_dir() {
            for entry in std::fs::read_dir(&extra_dir).map_err(|e| crate::hf::HfError::io(&extra_dir, e))? {
                let p = entry.map_err(|e| crate::hf::HfError::io(&extra_dir, e))?.path();
                if p.extension().is_some_and(|x| x == "jinja") {
                    let name = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                    let t = std::fs::read_to_string(&p).map_err(|e| crate::hf::HfError::io(&p, e))?;
                    extra.push((name, t));
                }
            }
        }
        if extra.is_empty() {
            return Ok(Some(ChatTemplate::Single(default)));
        }
        extra.sort();
        let mut list = vec![("default".to_string(), default)];
        list.extend(extra);
        return Ok(Some(ChatTemplate::Named(list)));
    }
    if json.is_file() {
        let m: Map<String, Json> = crate::hf::read_json(&json)?;
        return Ok(match m.get("chat_template") {
            Some(Json::String(s)) => Some(ChatTemplate::Single(s.clone())),
            _ => None,
        });
    }
    Ok(None)
}

/// `SpecialVocab._set_special_token` with `n_vocab=None`: integers only, first one wins, negatives rejected.
fn set_special(
    ids: &mut Vec<(&'static str, u64)>,
    typ: &'static str,
    id: Option<&Json>,
    n_vocab: Option<u64>,
    file: &Path,
) -> Result<(), ConvertError> {
    let Some(Json::Number(n)) = id else {
        return Ok(());
    };
    if let Some(i) = n.as_i64().filter(|&i| i < 0) {
        return Err(tok_err(file, format!("invalid value for special token type {typ}: {i}")));
    }
    let Some(v) = n.as_u64() else { return Ok(()) }; // a float is not an int in Python either
    if n_vocab.is_some_and(|n| v >= n) {
        return Ok(()); // "out of range, must be under n_vocab - skipping"
    }
    if !ids.iter().any(|e| e.0 == typ) {
        ids.push((typ, v));
    }
    Ok(())
}

/// Python truthiness of a JSON value.
fn truthy(v: &Json) -> bool {
    match v {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64() != Some(0.0),
        Json::String(s) => !s.is_empty(),
        Json::Array(a) => !a.is_empty(),
        Json::Object(o) => !o.is_empty(),
    }
}

fn parse_normalizer(n: &Json, lowercase: &mut Option<bool>, strip_accents: &mut Option<bool>) {
    match n.get("type").and_then(Json::as_str) {
        Some("Lowercase") => *lowercase = Some(true),
        Some("StripAccents") => *strip_accents = Some(true),
        Some("BertNormalizer") => {
            if let Some(v) = n.get("lowercase") {
                *lowercase = v.as_bool();
            }
            if let Some(v) = n.get("strip_accents") {
                *strip_accents = v.as_bool();
            }
        }
        Some("Sequence") => {
            for sub in n.get("normalizers").and_then(Json::as_array).into_iter().flatten() {
                parse_normalizer(sub, lowercase, strip_accents);
            }
        }
        _ => {}
    }
}

/// tokenizer.json merges as `"a b"` strings. Since transformers 4.45 they may be `[a, b]` pairs, whose parts can
/// hold spaces: those are written as U+0120 (`' '` + 256), as gguf-py does.
pub fn merges_of(tj: &Map<String, Json>) -> Result<Vec<String>, String> {
    let Some(list) = tj.get("model").and_then(|m| m.get("merges")).and_then(Json::as_array) else {
        return Ok(Vec::new());
    };
    let Some(first) = list.first() else {
        return Ok(Vec::new());
    };
    if first.is_string() {
        return list
            .iter()
            .enumerate()
            .map(|(i, m)| m.as_str().map(str::to_string).ok_or_else(|| format!("merge {i} is not a string")))
            .collect();
    }
    let is_pair = |m: &Json| m.as_array().is_some_and(|p| p.len() == 2 && p.iter().all(Json::is_string));
    if !is_pair(first) {
        return Err("unknown tokenizer merges format".into());
    }
    list.iter()
        .enumerate()
        .map(|(i, m)| {
            let p = m.as_array().filter(|_| is_pair(m)).ok_or_else(|| format!("merge {i} is not a pair of strings"))?;
            let enc = |s: &Json| s.as_str().unwrap_or_default().replace(' ', "\u{120}");
            Ok(format!("{} {}", enc(&p[0]), enc(&p[1])))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_repr() {
        assert_eq!(python_list_repr(&[128000, 198, 4815]), "[128000, 198, 4815]");
        assert_eq!(python_list_repr(&[]), "[]");
    }

    #[test]
    fn special_looking_tokens() {
        assert!(looks_special("<|im_start|>"));
        assert!(looks_special("<unused12>"));
        assert!(looks_special("<\u{ff5c}begin\u{2581}of\u{2581}sentence\u{ff5c}>"));
        assert!(!looks_special("<s>"));
        assert!(!looks_special("<|x"));
    }

    #[test]
    fn merges_both_formats() {
        let old: Map<String, Json> = serde_json::from_str(r#"{"model":{"merges":["a b","Ġ t"]}}"#).unwrap();
        assert_eq!(merges_of(&old).unwrap(), ["a b", "Ġ t"]);
        let new: Map<String, Json> = serde_json::from_str(r#"{"model":{"merges":[["a","b"],["x y","z"]]}}"#).unwrap();
        assert_eq!(merges_of(&new).unwrap(), ["a b", "x\u{120}y z"]);
        let bad: Map<String, Json> = serde_json::from_str(r#"{"model":{"merges":[1]}}"#).unwrap();
        assert!(merges_of(&bad).is_err());
    }

    #[test]
    fn clean_up_matches_transformers() {
        assert_eq!(clean_up_tokenization("a . b ,c do n't"), "a. b,c don't");
    }
}
