//! Shared by the `model_*` tests: the tiny checkpoints of this folder (see `scripts/make_model_fixtures.py`),
//! converted by our pipeline into a temp dir, and their transformers goldens.

#![allow(dead_code)] // each test file uses a different part

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pocketlm::model::Model;
use pocketlm::quantize::{quantize_model, CancelToken, Preset, QuantizeOptions};
use serde_json::Value as Json;

pub const FIXTURES: [&str; 3] = ["llama-tied", "llama-untied", "qwen2"];

pub fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/model_fixtures").join(name)
}

/// A fixture's `logits.json`: the token ids and transformers' logits for each (tokens × n_vocab).
pub struct Golden {
    pub tokens: Vec<u32>,
    pub logits: Vec<Vec<f32>>,
}

pub fn golden(name: &str) -> Golden {
    let path = fixture_dir(name).join("logits.json");
    let j: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let tokens = j["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect();
    let logits = j["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect())
        .collect();
    Golden { tokens, logits }
}

/// A directory removed when dropped. Tests run in parallel and may convert the same fixture: one per call.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("pocketlm-model-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `input` (a fixture folder or a GGUF) quantized by our pipeline to `preset` in a temp dir; the GGUF's path.
pub fn convert(input: &Path, preset: Preset, dir: &TempDir) -> PathBuf {
    let name = input.file_stem().unwrap().to_string_lossy();
    let out = dir.0.join(format!("{name}-{}.gguf", preset.name()));
    let opts = QuantizeOptions { preset, ..Default::default() };
    quantize_model(input, &out, &opts, &mut |_| {}, &CancelToken::new())
        .unwrap_or_else(|e| panic!("{}: conversion to {} failed: {e}", input.display(), preset.name()));
    out
}

/// Fixture `name` converted to an F32 GGUF and loaded (the temp dir lives as long as the guard).
pub fn load(name: &str) -> (Arc<Model>, TempDir) {
    let dir = TempDir::new(name);
    let path = convert(&fixture_dir(name), Preset::F32, &dir);
    (Arc::new(Model::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"))), dir)
}

/// Index of the largest value (the first of equals), and its margin over the runner-up.
pub fn argmax(v: &[f32]) -> (u32, f32) {
    let mut best = (0usize, f32::NEG_INFINITY);
    let mut second = f32::NEG_INFINITY;
    for (i, &x) in v.iter().enumerate() {
        if x > best.1 {
            second = best.1;
            best = (i, x);
        } else if x > second {
            second = x;
        }
    }
    (best.0 as u32, best.1 - second)
}
