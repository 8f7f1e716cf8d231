//! A tiny byte-level vocabulary written in memory: what the tokenizer does with it, and the errors it gives for
//! every kind of broken tokenizer metadata (each naming the file and the key), never a panic.

use pocketlm::gguf::{GgufFile, GgufWriter, Value, ValueType};
use pocketlm::tokenizer::{byte_to_char, TokenKind, Tokenizer};

/// Ids 0–255 are the bytes, then "he", "ll", "hell", `<|im_start|>`, `<|im_end|>` (control), `<tool>` (user-defined).
const HE: u32 = 256;
const HELL: u32 = 258;
const IM_START: u32 = 259;
const IM_END: u32 = 260;
const TOOL: u32 = 261;

fn tokens() -> Vec<String> {
    let mut t: Vec<String> = (0..=255u8).map(|b| byte_to_char(b).to_string()).collect();
    t.extend(["he", "ll", "hell", "<|im_start|>", "<|im_end|>", "<tool>"].map(String::from));
    t
}

fn strings(v: &[String]) -> Value {
    Value::Array(ValueType::String, v.iter().map(|s| Value::String(s.clone())).collect())
}

/// The metadata of a good file; `edit` changes it before writing.
fn file(edit: impl FnOnce(&mut Vec<(String, Value)>)) -> GgufFile {
    let toks = tokens();
    let mut types = vec![Value::I32(1); 256 + 3];
    types.extend([Value::I32(3), Value::I32(3), Value::I32(4)]);
    let mut kv: Vec<(String, Value)> = vec![
        ("general.architecture".into(), "llama".into()),
        ("tokenizer.ggml.model".into(), "gpt2".into()),
        ("tokenizer.ggml.pre".into(), "gpt-2".into()),
        ("tokenizer.ggml.tokens".into(), strings(&toks)),
        ("tokenizer.ggml.token_type".into(), Value::Array(ValueType::I32, types)),
        ("tokenizer.ggml.merges".into(), strings(&["h e", "l l", "he ll"].map(String::from))),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(IM_START)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(IM_END)),
    ];
    edit(&mut kv);
    let mut w = GgufWriter::new(Vec::new(), "tiny.gguf");
    for (k, v) in kv {
        w.add_kv(k, v).unwrap();
    }
    GgufFile::from_bytes("tiny.gguf", w.finish().unwrap()).unwrap()
}

fn set(kv: &mut Vec<(String, Value)>, key: &str, v: Option<Value>) {
    kv.retain(|(k, _)| k != key);
    if let Some(v) = v {
        kv.push((key.into(), v));
    }
}

fn error(edit: impl FnOnce(&mut Vec<(String, Value)>)) -> String {
    match Tokenizer::from_gguf(&file(edit)) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn tiny_vocabulary_encodes_and_decodes() {
    let tok = Tokenizer::from_gguf(&file(|_| {})).unwrap();
    assert_eq!(tok.n_vocab(), 262);
    let b = |c: u8| u32::from(c);
    // "hello" merges to hell + o; the user-defined token always matches; control tokens only when parsed.
    // "hello " → "hello" (h e l l o → he ll o → hell o) and " "; " he" → Ġ + he.
    assert_eq!(tok.encode("hello <tool> he<|im_end|>", false, true).unwrap(), [HELL, b(b'o'), b(b' '), TOOL, b(b' '), HE, IM_END]);
    let plain = tok.encode("<|im_end|>", false, false).unwrap();
    assert_eq!(plain, "<|im_end|>".bytes().map(u32::from).collect::<Vec<_>>());
    assert_eq!(tok.kind(TOOL), Some(TokenKind::UserDefined));
    assert!(tok.is_end_of_generation(IM_END) && !tok.is_end_of_generation(IM_START));
    // Every string round-trips: all 256 bytes are tokens.
    for s in ["", " ", "\0\u{1}\u{7f}", "ünïcödé 🙂", "a\r\n\tb  c   ", "<tool><tool>"] {
        let ids = tok.encode(s, false, false).unwrap();
        assert_eq!(tok.decode(&ids), s);
    }
}

/// A change to the metadata of the good file.
type Edit = Box<dyn FnOnce(&mut Vec<(String, Value)>)>;

#[test]
fn broken_metadata_gives_errors_naming_file_and_key() {
    let cases: Vec<(&str, Edit)> = vec![
        ("tokenizer.ggml.model", Box::new(|kv| set(kv, "tokenizer.ggml.model", None))),
        ("\"llama\"", Box::new(|kv| set(kv, "tokenizer.ggml.model", Some("llama".into())))),
        ("\"no-such\"", Box::new(|kv| set(kv, "tokenizer.ggml.pre", Some("no-such".into())))),
        ("tokenizer.ggml.tokens", Box::new(|kv| set(kv, "tokenizer.ggml.tokens", None))),
        ("tokenizer.ggml.tokens", Box::new(|kv| set(kv, "tokenizer.ggml.tokens", Some(Value::U32(3))))),
        ("tokenizer.ggml.token_type", Box::new(|kv| set(kv, "tokenizer.ggml.token_type", Some(Value::Array(ValueType::I32, vec![Value::I32(1)]))))),
        (
            "tokenizer.ggml.token_type[0] = 9",
            Box::new(|kv| {
                let mut t = vec![Value::I32(1); 262];
                t[0] = Value::I32(9);
                set(kv, "tokenizer.ggml.token_type", Some(Value::Array(ValueType::I32, t)))
            }),
        ),
        ("tokenizer.ggml.merges", Box::new(|kv| set(kv, "tokenizer.ggml.merges", None))),
        ("tokenizer.ggml.merges[1]", Box::new(|kv| set(kv, "tokenizer.ggml.merges", Some(strings(&["h e".into(), "nospace".into()]))))),
        ("tokenizer.ggml.merges", Box::new(|kv| set(kv, "tokenizer.ggml.merges", Some(strings(&["x y".into()]))))),
    ];
    for (want, edit) in cases {
        let e = error(edit);
        assert!(e.starts_with("tiny.gguf: ") && e.contains(want), "{e:?} should name {want:?}");
    }
}

#[test]
fn out_of_range_role_ids_are_ignored_as_llama_cpp_does() {
    let tok = Tokenizer::from_gguf(&file(|kv| set(kv, "tokenizer.ggml.eos_token_id", Some(Value::U32(99_999))))).unwrap();
    // llama.cpp keeps its default for a byte-level vocabulary, id 11.
    assert_eq!(tok.eos(), Some(11));
    assert_eq!(tok.bos(), Some(IM_START));
}

/// The tokenizer and chat template are shared between threads by the app (a loaded model serves several chats).
#[test]
fn tokenizer_and_template_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Tokenizer>();
    assert_send_sync::<pocketlm::chat::template::ChatTemplate>();
}
