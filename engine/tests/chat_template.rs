//! Chat templates rendered by us against transformers 4.57.6 (`golden/chat_templates.json`, made by
//! `scripts/make_chat_template_goldens.py`): SmolLM2's (from the demo GGUF), Llama 3 / 3.1 and Qwen3's
//! tokenizer_config.json templates, the official Llama 3.1 / 3.2 / 3.3, Qwen 2.5 / 3 and SmolLM3 templates, and an
//! inline template of ours that exercises tojson, loop controls, Python string methods, strftime_now and
//! raise_exception. Every case must match byte for byte, and a conversation the reference refuses must be refused.

use std::path::{Path, PathBuf};

use minijinja::Value as J;
use pocketlm::chat::template::{ChatTemplate, Message, RenderOptions};
use pocketlm::gguf::GgufFile;
use serde_json::Value;
use sha2::{Digest, Sha256};

#[path = "support/demo.rs"]
mod demo;

fn golden() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/chat_templates.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).map(PathBuf::from)
}

/// The template source of a golden case, or `None` (with the reason) when its asset is not available here.
fn source(case: &Value) -> Result<String, String> {
    let src = case["source"].as_str().unwrap();
    if src == "inline" {
        return Ok(case["template_source"].as_str().unwrap().to_string());
    }
    if src == "gguf" {
        let model = demo::demo_model().ok_or("no demo model")?;
        let f = GgufFile::open(model).unwrap();
        return Ok(f.get_str("tokenizer.chat_template").unwrap().to_string());
    }
    if let Some(name) = src.strip_prefix("hf:") {
        let dir = env_dir("POCKETLM_TOKENIZERS").ok_or("POCKETLM_TOKENIZERS not set")?;
        let cfg: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(name).join("tokenizer_config.json")).unwrap()).unwrap();
        return Ok(cfg["chat_template"].as_str().unwrap().to_string());
    }
    if let Some(file) = src.strip_prefix("llamacpp:") {
        let dir = env_dir("POCKETLM_LLAMACPP_VOCABS").ok_or("POCKETLM_LLAMACPP_VOCABS not set")?;
        return Ok(std::fs::read_to_string(dir.join("templates").join(file)).unwrap());
    }
    panic!("unknown source {src}")
}

fn extra(case: &Value) -> Vec<(String, J)> {
    case["extra"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Bool(b) => J::from(*b),
                Value::String(s) => J::from(s.clone()),
                other => panic!("extra {k}: {other}"),
            };
            (k.clone(), v)
        })
        .collect()
}

#[test]
fn templates_render_as_transformers_does() {
    let g = golden();
    let now = g["now_unix"].as_i64().unwrap();
    let (mut passed, mut refused, mut skipped) = (0, 0, std::collections::BTreeSet::new());
    let mut failures = Vec::new();
    for case in g["cases"].as_array().unwrap() {
        let name = case["template"].as_str().unwrap();
        let src = match source(case) {
            Ok(s) => s,
            Err(why) => {
                skipped.insert(format!("{name} ({why})"));
                continue;
            }
        };
        let sha = format!("{:x}", Sha256::digest(src.as_bytes()));
        assert_eq!(
            sha,
            case["sha256"].as_str().unwrap(),
            "{name}: the template differs from the one the golden was made from; rerun scripts/make_chat_template_goldens.py"
        );
        let tmpl = ChatTemplate::new(name, &src, case["bos_token"].as_str().unwrap(), case["eos_token"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{e}"));
        let messages: Vec<Message> = case["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| Message::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
            .collect();
        let opts = RenderOptions {
            add_generation_prompt: case["add_generation_prompt"].as_bool().unwrap(),
            now: Some(now),
            extra: extra(case),
        };
        let label = format!("{name}/{} agp={} extra={}", case["conversation"], opts.add_generation_prompt, case["extra"]);
        match (tmpl.render_with(&messages, &opts), case.get("expected")) {
            (Ok(got), Some(want)) if got == want.as_str().unwrap() => passed += 1,
            (Ok(got), Some(want)) => failures.push(format!("{label}:\n--- want\n{}\n--- got\n{got}", want.as_str().unwrap())),
            (Err(e), None) => {
                let want = case["error"].as_str().unwrap();
                let msg = want.split_once(": ").map_or(want, |(_, m)| m);
                assert!(e.to_string().contains(msg), "{label}: error {e} should say {msg:?}");
                refused += 1;
            }
            (Ok(got), None) => failures.push(format!("{label}: rendered {got:?}, the reference refused: {}", case["error"])),
            (Err(e), Some(_)) => failures.push(format!("{label}: {e}")),
        }
    }
    eprintln!("{passed} renderings match, {refused} refusals match; skipped: {skipped:?}");
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n\n"));
    assert!(passed > 0);
}

#[test]
fn demo_model_template_and_special_tokens_come_from_the_file() {
    let Some(model) = demo::demo_model() else { return };
    let f = GgufFile::open(model).unwrap();
    let t = ChatTemplate::from_gguf(&f).unwrap();
    assert!(!t.is_fallback());
    let out = t.render(&[Message::new("user", "Hi")], true).unwrap();
    assert_eq!(
        out,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn file_without_template_falls_back_to_chatml() {
    let Some(dir) = env_dir("POCKETLM_LLAMACPP_VOCABS") else {
        eprintln!("skipped: POCKETLM_LLAMACPP_VOCABS not set");
        return;
    };
    let f = GgufFile::open(dir.join("ggml-vocab-gpt-2.gguf")).unwrap();
    assert!(f.get("tokenizer.chat_template").is_none());
    let t = ChatTemplate::from_gguf(&f).unwrap();
    assert!(t.is_fallback());
    let msgs = [Message::new("system", "S"), Message::new("user", "U"), Message::new("assistant", "A")];
    assert_eq!(
        t.render(&msgs, false).unwrap(),
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
    );
    assert!(t.render(&msgs, true).unwrap().ends_with("A<|im_end|>\n<|im_start|>assistant\n"));
}

#[test]
fn bad_templates_give_errors_naming_the_source() {
    let e = ChatTemplate::new("model.gguf", "{% for m in messages %}{{ m.content ", "", "").err().expect("syntax error");
    let s = e.to_string();
    assert!(s.starts_with("model.gguf: chat template: "), "{s}");
    let t = ChatTemplate::new("model.gguf", "{{ raise_exception('no system role here') }}", "", "").unwrap();
    let e = t.render(&[Message::new("user", "x")], false).unwrap_err().to_string();
    assert!(e.contains("no system role here") && e.starts_with("model.gguf"), "{e}");
    let t = ChatTemplate::new("model.gguf", "{{ strftime_now('%Q') }}", "", "").unwrap();
    assert!(t.render(&[], false).is_err());
}
