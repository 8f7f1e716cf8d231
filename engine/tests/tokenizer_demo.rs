//! The tokenizer of the real demo model (SmolLM2-135M-Instruct) against transformers' (`golden/tokenizer_smollm2.json`,
//! made by `scripts/make_tokenizer_goldens.py`): text with unicode, emoji, code, numbers and special tokens, with
//! special tokens parsed and not; then the roles llama.cpp gives SmolLM2's tokens, detokenisation and prompts.

use pocketlm::gguf::GgufFile;
use pocketlm::tokenizer::{Detokenizer, TokenKind, Tokenizer};
use serde_json::Value;
use sha2::{Digest, Sha256};

#[path = "support/demo.rs"]
mod demo;

fn demo_tokenizer() -> Option<Tokenizer> {
    let path = demo::demo_model()?;
    Some(Tokenizer::from_gguf(&GgufFile::open(path).unwrap()).unwrap())
}

#[test]
fn demo_model_ids_match_transformers() {
    let Some(path) = demo::demo_model() else { return };
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/tokenizer_smollm2.json")).unwrap(),
    )
    .unwrap();
    let sha = format!("{:x}", Sha256::digest(std::fs::read(&path).unwrap()));
    assert_eq!(sha, golden["model_sha256"].as_str().unwrap(), "another demo model; rerun scripts/make_tokenizer_goldens.py");
    let tok = Tokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    let mut n = 0;
    for c in cases {
        let text = c["text"].as_str().unwrap();
        let parse_special = c["parse_special"].as_bool().unwrap();
        let want: Vec<u32> = c["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let got = tok.encode(text, false, parse_special).unwrap();
        assert_eq!(got, want, "{text:?} parse_special={parse_special}");
        // Decoding with special tokens rendered gives the text back, streamed or not.
        let mut d = Detokenizer::new(&tok).render_special(true);
        let mut streamed = String::new();
        for &id in &got {
            streamed.push_str(&d.push(id));
        }
        streamed.push_str(&d.flush());
        assert_eq!(streamed, text);
        n += 1;
    }
    assert_eq!(n, 28);
}

#[test]
fn demo_model_special_tokens_and_roles() {
    let Some(tok) = demo_tokenizer() else { return };
    assert_eq!(tok.n_vocab(), 49152);
    assert_eq!(tok.pre(), "smollm");
    let id = |t: &str| tok.token_id(t).unwrap_or_else(|| panic!("{t}"));
    assert_eq!((id("<|endoftext|>"), id("<|im_start|>"), id("<|im_end|>")), (0, 1, 2));
    assert_eq!((tok.bos(), tok.eos()), (Some(1), Some(2)));
    assert!(!tok.add_bos(), "SmolLM2's GGUF says add_bos_token = false");
    // As llama.cpp 0.3.36 (llama-cpp-python) reports for this file: EOT 0 '<|endoftext|>' (found by its text),
    // EOG = <|endoftext|>, <|im_end|> (EOS) and <reponame> (FIM repo, found by its text).
    assert_eq!(tok.eot(), Some(0));
    assert_eq!(tok.eog_ids().collect::<Vec<_>>(), [0, 2, 4]);
    for t in ["<|im_start|>", "Hello", "<filename>"] {
        assert!(!tok.is_end_of_generation(id(t)), "{t} does not end generation");
    }
    assert_eq!(tok.kind(1), Some(TokenKind::Control));
    assert_eq!(tok.token_bytes(id("Ġworld")), b" world");
    assert_eq!(tok.token_bytes(2), b"<|im_end|>");
    assert_eq!(tok.token_bytes(u32::MAX), b"");
    // Control tokens are not shown unless asked.
    assert_eq!(tok.decode(&[1, 19556, 905, 2]), "Hello world");
}

#[test]
fn prompt_bos_is_added_once() {
    let Some(tok) = demo_tokenizer() else { return };
    // SmolLM2 adds no BOS: the prompt is exactly the parsed template text.
    let text = "<|im_start|>user\nHi<|im_end|>\n";
    assert_eq!(tok.encode_prompt(text).unwrap(), tok.encode(text, false, true).unwrap());
    assert_eq!(tok.encode(text, true, true).unwrap(), tok.encode(text, false, true).unwrap());
}

/// Streaming never emits a broken character, even when every token holds a fraction of one, and gives the same
/// text as decoding in one go.
#[test]
fn streaming_detokenizer_keeps_characters_whole() {
    let Some(tok) = demo_tokenizer() else { return };
    let text = "emoji 🙂👍🏽 🇫🇷 家族 👨‍👩‍👧 naïve";
    // Byte tokens: each UTF-8 byte of a character is its own token here.
    let byte_ids: Vec<u32> = text
        .bytes()
        .map(|b| tok.token_id(&pocketlm::tokenizer::byte_to_char(b).to_string()).expect("every byte is a token"))
        .collect();
    for ids in [tok.encode(text, false, false).unwrap(), byte_ids] {
        let mut d = Detokenizer::new(&tok);
        let mut out = String::new();
        let mut held_back = 0;
        for &id in &ids {
            let piece = d.push(id);
            assert!(!piece.contains('\u{FFFD}'), "broken character in {piece:?}");
            if piece.is_empty() {
                held_back += 1;
            }
            out.push_str(&piece);
        }
        assert_eq!(d.flush(), "");
        assert_eq!(out, text);
        assert_eq!(out, tok.decode(&ids));
        assert!(held_back > 0, "some token must have ended mid-character");
    }
    // A truncated stream ends in U+FFFD at flush, not before.
    let mut d = Detokenizer::new(&tok);
    let first = tok.token_id(&pocketlm::tokenizer::byte_to_char(0xF0).to_string()).unwrap();
    assert_eq!(d.push(first), "");
    assert_eq!(d.flush(), "\u{FFFD}");
    // A continuation byte with nothing before it can never become a character: replaced at once.
    let bad = tok.token_id(&pocketlm::tokenizer::byte_to_char(0x80).to_string()).unwrap();
    let a = tok.token_id("a").unwrap();
    let mut d = Detokenizer::new(&tok);
    assert_eq!(d.push(bad), "\u{FFFD}");
    assert_eq!(d.push(a), "a");
}

#[test]
fn files_that_are_not_byte_level_bpe_are_refused_by_name() {
    let Some(dir) = std::env::var_os("POCKETLM_LLAMACPP_VOCABS").map(std::path::PathBuf::from) else {
        eprintln!("skipped: POCKETLM_LLAMACPP_VOCABS not set");
        return;
    };
    let path = dir.join("ggml-vocab-llama-spm.gguf");
    let err = Tokenizer::from_gguf(&GgufFile::open(&path).unwrap()).err().expect("SentencePiece is refused").to_string();
    assert!(err.contains("ggml-vocab-llama-spm.gguf") && err.contains("\"llama\""), "{err}");
}
