//! SentencePiece vocabularies (`tokenizer.model`: Llama 2, TinyLlama, Mistral v0.1–v0.3), as llama.cpp's converter
//! writes them (`TextModel._set_vocab_sentencepiece` / `_create_vocab_sentencepiece`, llama-cpp-python 0.3.36):
//! `tokenizer.ggml.model = "llama"`, pre `default`, every piece with its score and type, then `added_tokens.json`
//! and tokenizer_config.json's `added_tokens_decoder` on top, `[PADn]` up to the config's vocab_size.
//!
//! `tokenizer.model` is a protobuf `ModelProto` (sentencepiece `sentencepiece_model.proto`): field 1 holds the
//! pieces, each a message of `piece` (1, string), `score` (2, float) and `type` (3, enum; NORMAL when absent). We
//! read just those, with every length checked against the buffer — no protobuf dependency, no trust in the file.

use std::path::Path;

use serde_json::{Map, Value as Json};

use super::vocab::{looks_special, token_type};
use super::ConvertError;

/// Largest tokenizer.model we read. Real ones are 0.5–5 MB (Gemma's 4 MB for 256k pieces).
pub const MAX_MODEL_BYTES: u64 = 64 << 20;

/// One SentencePiece entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    pub piece: String,
    pub score: f32,
    /// sentencepiece `Type`: NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6.
    pub kind: u64,
}

fn bad(file: &Path, reason: impl Into<String>) -> ConvertError {
    ConvertError::Tokenizer { file: file.to_path_buf(), reason: reason.into() }
}

/// A protobuf reader over a byte slice; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn bytes(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// Skips a field of wire type `wt`.
    fn skip(&mut self, wt: u64) -> Option<()> {
        match wt {
            0 => self.varint().map(|_| ()),
            1 => self.bytes(8).map(|_| ()),
            2 => {
                let n = self.varint()?;
                self.bytes(n).map(|_| ())
            }
            5 => self.bytes(4).map(|_| ()),
            _ => None,
        }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

/// Parses the pieces of a `ModelProto`.
pub fn parse_model(file: &Path, buf: &[u8]) -> Result<Vec<Piece>, ConvertError> {
    let corrupt = || bad(file, "not a SentencePiece model (malformed protobuf)");
    let mut r = Reader { buf, pos: 0 };
    let mut pieces = Vec::new();
    while !r.done() {
        let key = r.varint().ok_or_else(corrupt)?;
        let (field, wt) = (key >> 3, key & 7);
        if field == 1 && wt == 2 {
            let n = r.varint().ok_or_else(corrupt)?;
            let msg = r.bytes(n).ok_or_else(corrupt)?;
            let mut m = Reader { buf: msg, pos: 0 };
            let mut p = Piece { piece: String::new(), score: 0.0, kind: 1 };
            while !m.done() {
                let key = m.varint().ok_or_else(corrupt)?;
                match (key >> 3, key & 7) {
                    (1, 2) => {
                        let n = m.varint().ok_or_else(corrupt)?;
                        let s = m.bytes(n).ok_or_else(corrupt)?;
                        p.piece = String::from_utf8(s.to_vec())
                            .map_err(|_| bad(file, format!("piece {} is not UTF-8", pieces.len())))?;
                    }
                    (2, 5) => {
                        let b = m.bytes(4).ok_or_else(corrupt)?;
                        p.score = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    }
                    (3, 0) => p.kind = m.varint().ok_or_else(corrupt)?,
                    (_, wt) => m.skip(wt).ok_or_else(corrupt)?,
                }
            }
            pieces.push(p);
        } else {
            r.skip(wt).ok_or_else(corrupt)?;
        }
    }
    if pieces.is_empty() {
        return Err(bad(file, "SentencePiece model has no pieces"));
    }
    Ok(pieces)
}

/// What `_create_vocab_sentencepiece` returns.
pub struct SpmVocab {
    pub tokens: Vec<String>,
    pub scores: Vec<f32>,
    pub types: Vec<i32>,
}

/// Port of `_create_vocab_sentencepiece` for a model of `vocab_size` rows.
pub fn create_vocab(dir: &Path, model_path: &Path, vocab_size: u64) -> Result<SpmVocab, ConvertError> {
    let len = std::fs::metadata(model_path).map_err(|e| crate::hf::HfError::io(model_path, e))?.len();
    if len > MAX_MODEL_BYTES {
        return Err(bad(model_path, format!("{len} bytes is larger than the {MAX_MODEL_BYTES}-byte limit")));
    }
    let buf = std::fs::read(model_path).map_err(|e| crate::hf::HfError::io(model_path, e))?;
    let pieces = parse_model(model_path, &buf)?;

    let n = vocab_size as usize;
    let mut tokens: Vec<String> = (0..n).map(|i| format!("[PAD{i}]")).collect();
    let mut scores = vec![-10000.0f32; n];
    let mut types = vec![token_type::UNUSED; n];
    for (id, p) in pieces.iter().enumerate().take(n) {
        tokens[id] = p.piece.clone();
        scores[id] = p.score;
        // IsUnknown, IsControl, IsUnused, IsByte in that order; USER_DEFINED pieces stay NORMAL, as there.
        types[id] = match p.kind {
            2 => token_type::UNKNOWN,
            3 => token_type::CONTROL,
            5 => token_type::UNUSED,
            6 => token_type::BYTE,
            _ => token_type::NORMAL,
        };
    }

    let added_path = dir.join("added_tokens.json");
    if added_path.is_file() {
        let added: Map<String, Json> = crate::hf::read_json(&added_path)?;
        for (content, id) in &added {
            let Some(id) = id.as_u64().filter(|&i| i < vocab_size) else { continue };
            let i = id as usize;
            tokens[i] = content.clone();
            scores[i] = -1000.0;
            types[i] = token_type::USER_DEFINED;
        }
    }

    let cfg_path = dir.join("tokenizer_config.json");
    if cfg_path.is_file() {
        let cfg: Map<String, Json> = crate::hf::read_json(&cfg_path)?;
        if let Some(dec) = cfg.get("added_tokens_decoder").and_then(Json::as_object) {
            for (id, data) in dec {
                let id: u64 =
                    id.parse().map_err(|_| bad(&cfg_path, format!("added token id {id:?} is not a number")))?;
                if id >= vocab_size {
                    continue;
                }
                let Some(content) = data.get("content").and_then(Json::as_str) else {
                    return Err(bad(&cfg_path, format!("added token {id} has no content")));
                };
                let i = id as usize;
                let special = data.get("special").and_then(Json::as_bool).unwrap_or(false);
                if special || looks_special(content) {
                    types[i] = token_type::CONTROL;
                    tokens[i] = content.to_string();
                } else {
                    types[i] = token_type::USER_DEFINED;
                    tokens[i] = content.replace('\u{2581}', " ");
                }
                scores[i] = -1000.0;
            }
        }
    }
    Ok(SpmVocab { tokens, scores, types })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(s: &str, score: f32, kind: Option<u64>) -> Vec<u8> {
        let mut m = vec![0x0a, s.len() as u8];
        m.extend_from_slice(s.as_bytes());
        m.push(0x15);
        m.extend_from_slice(&score.to_le_bytes());
        if let Some(k) = kind {
            m.extend_from_slice(&[0x18, k as u8]);
        }
        let mut out = vec![0x0a, m.len() as u8];
        out.extend(m);
        out
    }

    #[test]
    fn parses_pieces_and_skips_other_fields() {
        let mut buf = piece("<unk>", 0.0, Some(2));
        buf.extend(piece("\u{2581}a", -1.5, None));
        buf.extend([0x12, 0x02, 0x08, 0x01]); // trainer_spec { 1: 1 }, skipped
        let p = parse_model(Path::new("t.model"), &buf).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].piece.as_str(), p[0].kind), ("<unk>", 2));
        assert_eq!((p[1].piece.as_str(), p[1].score, p[1].kind), ("\u{2581}a", -1.5, 1));
    }

    #[test]
    fn rejects_truncated_and_garbage() {
        let buf = piece("<unk>", 0.0, Some(2));
        for cut in 1..buf.len() {
            assert!(parse_model(Path::new("t.model"), &buf[..cut]).is_err(), "cut {cut}");
        }
        assert!(parse_model(Path::new("t.model"), &[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
            .is_err());
        assert!(parse_model(Path::new("t.model"), b"").is_err());
    }
}
