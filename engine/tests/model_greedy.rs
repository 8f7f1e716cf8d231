//! SmolLM2-135M-Instruct, greedy: the demo model requantized by our pipeline to F32 and to F16 must continue five
//! prompts (chat-templated and plain) with transformers' 64 tokens, token for token.
//!
//! Golden: `golden/greedy_smollm2.json`, made by `scripts/make_greedy_golden.py` — transformers 4.57.6 in float32
//! on the folders `pocketlm export-hf --dtype f32|f16` writes from the same Q4_1 file (the f16 folder holds the
//! f16-rounded weights our F16 GGUF holds; both sides then compute in f32). A mismatch reports both sides' margin
//! between the best and second-best logit, so that a near-tie can be told from a fault.
//!
//! Needs the demo model (`scripts/fetch-demo-model.sh`; `scripts/test.sh` sets `POCKETLM_DEMO_MODEL`).

#[path = "model_fixtures/common.rs"]
mod common;
#[path = "support/demo.rs"]
mod demo;

use std::path::Path;
use std::sync::Arc;

use common::{argmax, convert, TempDir};
use pocketlm::model::{Context, Model};
use pocketlm::quantize::Preset;
use serde_json::Value as Json;

fn ids(v: &Json) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect()
}

#[test]
fn greedy_tokens_equal_transformers_at_f32_and_f16() {
    let Some(demo) = demo::demo_model() else { return };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/greedy_smollm2.json");
    let golden: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let dir = TempDir::new("greedy");
    let mut failures = Vec::new();
    for (preset, key) in [(Preset::F32, "f32"), (Preset::F16, "f16")] {
        let model = Arc::new(Model::load(convert(&demo, preset, &dir)).unwrap());
        for run in golden["runs"][key].as_array().unwrap() {
            let (prompt, expected) = (ids(&run["prompt"]), ids(&run["generated"]));
            let margins: Vec<f64> = run["margins"].as_array().unwrap().iter().map(|m| m.as_f64().unwrap()).collect();
            let mut ctx = Context::new(model.clone(), 512).unwrap();
            let mut logits = ctx.eval(&prompt, false).unwrap();
            let mut got = Vec::new();
            for (i, &want) in expected.iter().enumerate() {
                let (tok, margin) = argmax(logits);
                got.push(tok);
                if tok != want {
                    failures.push(format!(
                        "{key} {:?}: token {i} is {tok} (our margin {margin:.4}), \
                         transformers {want} (margin {:.4})\n  ours: {got:?}\n  theirs: {expected:?}",
                        run["text"].as_str().unwrap(),
                        margins[i]
                    ));
                    break;
                }
                logits = ctx.eval(&[tok], false).unwrap();
            }
        }
        drop(model);
        let _ = std::fs::remove_file(dir.0.join(format!(
            "{}-{}.gguf",
            demo.file_stem().unwrap().to_string_lossy(),
            preset.name()
        )));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
