//! Our tokenizer against llama.cpp's own test vectors: `models/ggml-vocab-*.gguf` with `.gguf.inp` (test strings
//! separated by a `__ggml_vocab_test__` line) and `.gguf.out` (the expected ids per string, made by Hugging Face's
//! tokenizer with `add_special_tokens=False`, which llama.cpp's `tests/test-tokenizer-0.cpp` checks it reproduces
//! with add_special = false and parse_special = false).
//!
//! The vocabularies come from the llama-cpp-python 0.3.36 sdist (`scripts/fetch-llamacpp-vocabs.sh`) through
//! `POCKETLM_LLAMACPP_VOCABS`; without it the test is skipped with a note. Every vocabulary is tried: those we
//! build must match every vector; those we refuse are listed with the reason, and the ones we promise to support
//! must not be among them.

use std::path::{Path, PathBuf};

use pocketlm::gguf::GgufFile;
use pocketlm::tokenizer::Tokenizer;
use sha2::{Digest, Sha256};

/// Vocabularies that must build and pass (the pre-tokenizers of the models PocketLM targets).
const REQUIRED: &[&str] = &["llama-bpe", "qwen2", "gpt-2", "starcoder"];

fn vocab_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("POCKETLM_LLAMACPP_VOCABS").map(PathBuf::from);
    if dir.is_none() {
        eprintln!("skipped: POCKETLM_LLAMACPP_VOCABS not set (scripts/fetch-llamacpp-vocabs.sh fetches them)");
    }
    dir
}

/// (input, expected ids) pairs, parsed as test-tokenizer-0.cpp does.
fn vectors(gguf: &Path) -> Option<Vec<(String, Vec<u32>)>> {
    let inp = std::fs::read_to_string(format!("{}.inp", gguf.display())).ok()?;
    let out = std::fs::read_to_string(format!("{}.out", gguf.display())).ok()?;
    let sep = "\n__ggml_vocab_test__\n";
    let mut inputs: Vec<String> = inp.split(sep).map(str::to_string).collect();
    // The file ends with the marker and a newline: the last split piece is empty (C++'s loop stops there).
    if inputs.last().is_some_and(|s| s.is_empty()) {
        inputs.pop();
    }
    let outputs: Vec<Vec<u32>> =
        out.lines().map(|l| l.split_whitespace().map(|t| t.parse().expect("id in .out")).collect()).collect();
    assert_eq!(inputs.len(), outputs.len(), "{}: .inp and .out differ in length", gguf.display());
    Some(inputs.into_iter().zip(outputs).collect())
}

#[test]
fn llamacpp_vocab_vectors() {
    let Some(dir) = vocab_dir() else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "gguf"))
        .collect();
    files.sort();
    assert!(files.len() >= 19, "{}: expected llama.cpp's 19 vocabularies, found {}", dir.display(), files.len());

    let mut failures = Vec::new();
    let mut passed = Vec::new();
    let mut refused = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().trim_start_matches("ggml-vocab-").trim_end_matches(".gguf").to_string();
        let file = GgufFile::open(path).unwrap();
        let tok = match Tokenizer::from_gguf(&file) {
            Ok(t) => t,
            Err(e) => {
                refused.push((name, e.to_string()));
                continue;
            }
        };
        let Some(vecs) = vectors(path) else {
            eprintln!("{name}: builds ({} tokens, pre {:?}), no test vectors shipped", tok.n_vocab(), tok.pre());
            continue;
        };
        let mut ok = 0;
        for (text, want) in &vecs {
            let got = tok.encode(text, false, false).unwrap();
            if &got == want {
                ok += 1;
            } else if failures.len() < 40 {
                failures.push(format!("{name}: {text:?}\n  want {want:?}\n  got  {got:?}"));
            }
        }
        eprintln!("{name}: {ok}/{} vectors match (pre {:?})", vecs.len(), tok.pre());
        if ok == vecs.len() {
            passed.push(name);
        } else {
            failures.push(format!("{name}: {ok}/{} vectors match", vecs.len()));
        }
    }
    for (name, why) in &refused {
        eprintln!("not supported: {name}: {why}");
    }
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    for req in REQUIRED {
        assert!(passed.iter().any(|p| p == req), "{req} must be supported and pass; refused: {refused:?}");
    }
}

/// Detokenising what we encoded gives the input back, and streaming it never splits a character.
#[test]
fn llamacpp_vocab_round_trip() {
    let Some(dir) = vocab_dir() else { return };
    for name in ["llama-bpe", "gpt-2", "starcoder"] {
        let path = dir.join(format!("ggml-vocab-{name}.gguf"));
        let tok = Tokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
        for (text, _) in vectors(&path).unwrap() {
            let ids = tok.encode(&text, false, false).unwrap();
            assert_eq!(tok.decode(&ids), text, "{name}");
            let mut d = pocketlm::tokenizer::Detokenizer::new(&tok);
            let mut streamed = String::new();
            for &id in &ids {
                let piece = d.push(id);
                assert!(!piece.contains('\u{FFFD}') || text.contains('\u{FFFD}'), "{name}: broken character in {text:?}");
                streamed.push_str(&piece);
            }
            streamed.push_str(&d.flush());
            assert_eq!(streamed, text, "{name}");
        }
    }
}

/// Roles, kinds, pieces and special-token parsing as llama.cpp itself decides them (`golden/tokenizer_llamacpp.json`,
/// made with llama-cpp-python 0.3.36 by `scripts/make_llamacpp_tokenizer_goldens.py`).
#[test]
fn llamacpp_roles_pieces_and_special_parsing() {
    let Some(dir) = vocab_dir() else { return };
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/tokenizer_llamacpp.json")).unwrap(),
    )
    .unwrap();
    let opt = |v: &serde_json::Value| v.as_u64().map(|x| x as u32);
    let ids = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect::<Vec<_>>();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, want) in golden["files"].as_object().unwrap() {
        let path = if name == "demo" {
            match pocketlm_demo() {
                Some(p) => p,
                None => continue,
            }
        } else {
            dir.join(name)
        };
        let tok = Tokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
        let mut check = |what: &str, ok: bool, detail: String| {
            if !ok {
                failures.push(format!("{name}: {what}: {detail}"));
            }
        };
        check("n_vocab", tok.n_vocab() as u64 == want["n_vocab"].as_u64().unwrap(), String::new());
        check("bos", tok.bos() == opt(&want["bos"]), format!("{:?} vs {}", tok.bos(), want["bos"]));
        check("eos", tok.eos() == opt(&want["eos"]), format!("{:?} vs {}", tok.eos(), want["eos"]));
        check("eot", tok.eot() == opt(&want["eot"]), format!("{:?} vs {}", tok.eot(), want["eot"]));
        check("add_bos", tok.add_bos() == want["add_bos"].as_bool().unwrap(), String::new());
        let eog: Vec<u32> = tok.eog_ids().collect();
        check("eog", eog == ids(&want["eog"]), format!("{eog:?} vs {}", want["eog"]));
        let control: Vec<u32> =
            (0..tok.n_vocab() as u32).filter(|&i| tok.kind(i) == Some(pocketlm::tokenizer::TokenKind::Control)).collect();
        check("control", control == ids(&want["control"]), format!("{control:?} vs {}", want["control"]));
        let mut h = Sha256::new();
        for i in 0..tok.n_vocab() as u32 {
            let b = tok.token_bytes(i);
            h.update((b.len() as u32).to_le_bytes());
            h.update(b);
        }
        let pieces = format!("{:x}", h.finalize());
        // Command-R's vocabulary has text tokens with characters outside the byte-level alphabet (`™`, U+200D):
        // llama.cpp spells those as "[UNK_BYTE_0x…]" debugging text, we keep their UTF-8, so its pieces differ.
        if name == "ggml-vocab-command-r.gguf" {
            check("pieces (expected to differ)", pieces != want["pieces_sha256"].as_str().unwrap(), String::new());
        } else {
            check("pieces", pieces == want["pieces_sha256"].as_str().unwrap(), String::new());
        }
        for t in want["texts"].as_array().unwrap() {
            let (text, add, parse) = (t["text"].as_str().unwrap(), t["add_special"].as_bool().unwrap(), t["parse_special"].as_bool().unwrap());
            let got = tok.encode(text, add, parse).unwrap();
            check("encode", got == ids(&t["ids"]), format!("{text:?} add={add} parse={parse}: {got:?} vs {}", t["ids"]));
            checked += 1;
        }
    }
    eprintln!("{checked} special-token encodings checked");
    assert!(failures.is_empty(), "{} differences from llama.cpp:\n{}", failures.len(), failures.join("\n"));
}

fn pocketlm_demo() -> Option<PathBuf> {
    let p = std::env::var_os("POCKETLM_DEMO_MODEL").map(PathBuf::from);
    if p.is_none() {
        eprintln!("demo model skipped: POCKETLM_DEMO_MODEL not set");
    }
    p
}

/// Llama 3 wants a BOS and its template writes one: the prompt gets exactly one (llama.cpp's add_special would
/// give two, with a warning).
#[test]
fn llama3_prompt_gets_one_bos() {
    let Some(dir) = vocab_dir() else { return };
    let tok = Tokenizer::from_gguf(&GgufFile::open(dir.join("ggml-vocab-llama-bpe.gguf")).unwrap()).unwrap();
    assert!(tok.add_bos());
    let bos = tok.bos().unwrap();
    assert_eq!(bos, 128000);
    let with = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>";
    let ids = tok.encode_prompt(with).unwrap();
    assert_eq!(ids.iter().filter(|&&i| i == bos).count(), 1);
    assert_eq!(ids[0], bos);
    assert_eq!(&tok.encode(with, true, true).unwrap()[..2], [bos, bos]);
    let without = &with["<|begin_of_text|>".len()..];
    assert_eq!(tok.encode_prompt(without).unwrap(), ids);
    // Without parse_special, control tokens are plain text and never become ids.
    assert!(!tok.encode(with, false, false).unwrap().contains(&bos));
}
