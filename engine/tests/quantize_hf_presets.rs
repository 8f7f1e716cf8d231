//! The Hugging Face path, for every preset: the demo model exported to a BF16 folder (`export_hf`, as
//! `scripts/make-demo-source.sh` does), then quantized in one pass, must give the same file — every key, and every
//! tensor's name, order, type and bytes — that llama.cpp's two steps give (`convert_hf_to_gguf.py --outtype bf16`
//! on the same folder, then `llama_model_quantize`). Golden: `golden/quantize/smollm2-hf-bf16.json`
//! (`scripts/make_quantize_goldens.py`).
//!
//! Needs the demo model (`scripts/fetch-demo-model.sh`; `scripts/test.sh` sets `POCKETLM_DEMO_MODEL`).

#[path = "support/demo.rs"]
mod demo;
use demo::demo_model;

use std::path::Path;

use pocketlm::export::{export_hf, ExportOptions};
use pocketlm::gguf::GgufFile;
use pocketlm::quantize::{quantize_model, CancelToken, Preset, QuantizeOptions};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// model.safetensors of the exported demo folder the golden was made from.
const EXPORT_SHA256: &str = "7ef915c9bf9d94d8d70211970476878352a5b95855c589ae987916d7a455242b";


#[test]
fn every_preset_from_the_bf16_folder_equals_llama_cpp_tensor_for_tensor() {
    let Some(model) = demo_model() else { return };
    let golden_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/quantize/smollm2-hf-bf16.json");
    let golden: Json = serde_json::from_str(&std::fs::read_to_string(golden_path).unwrap()).unwrap();
    let dir = std::env::temp_dir().join(format!("pocketlm-hf-presets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let folder = dir.join("SmolLM2-135M-Instruct");
    export_hf(&model, &folder, &ExportOptions::default(), &CancelToken::new(), &mut |_| {}).unwrap();
    let st = std::fs::read(folder.join("model.safetensors")).unwrap();
    assert_eq!(format!("{:x}", Sha256::digest(&st)), EXPORT_SHA256, "the export is not the golden's source");
    drop(st);

    let presets = golden["presets"].as_object().unwrap();
    assert_eq!(presets.len(), Preset::ALL.len());
    let mut failures = Vec::new();
    for (name, g) in presets {
        let out = dir.join(format!("{name}.gguf"));
        let opts = QuantizeOptions { preset: name.parse().unwrap(), ..Default::default() };
        quantize_model(&folder, &out, &opts, &mut |_| {}, &CancelToken::new()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let f = GgufFile::open(&out).unwrap();
        let expected = g["tensors"].as_array().unwrap();
        if f.tensors().len() != expected.len() {
            failures.push(format!("{name}: {} tensors, llama.cpp {}", f.tensors().len(), expected.len()));
        }
        for (t, e) in f.tensors().iter().zip(expected) {
            let digest = format!("{:x}", Sha256::digest(f.tensor_data(t)));
            if t.name != e[0] || u64::from(t.ty.id()) != e[1] || digest != e[2] {
                failures.push(format!("{name}: {} ({}) differs from llama.cpp's {} (type {})", t.name, t.ty, e[0], e[1]));
                break;
            }
        }
        drop(f);
        // Metadata too: our converter writes the keys convert_hf_to_gguf.py writes, so the files are the same.
        let file = std::fs::read(&out).unwrap();
        if format!("{:x}", Sha256::digest(&file)) != g["sha256"].as_str().unwrap() {
            failures.push(format!("{name}: tensors equal, but the file differs from llama.cpp's (metadata)"));
        }
        std::fs::remove_file(&out).unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
