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
