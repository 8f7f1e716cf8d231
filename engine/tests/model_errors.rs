//! Files the model loader must refuse with an error that names the file and the fault, never a panic: an
//! unsupported architecture, a missing key or tensor, a tensor of the wrong shape or of a type no kernel computes,
//! and a file that is not GGUF at all. Each bad file is the converted `llama-tied` fixture rewritten with one
//! change by our GGUF writer.

#[path = "model_fixtures/common.rs"]
mod common;

use common::{convert, fixture_dir, TempDir};
use pocketlm::gguf::{GgufFile, GgufWriter, Value};
use pocketlm::model::{Model, ModelError};
use pocketlm::quant::GgmlType;
use pocketlm::quantize::Preset;

const LABEL: &str = "edited.gguf";

/// One change to a tensor: drop it, or declare it with another shape/type and these bytes.
enum Edit {
    Drop,
    Replace(Vec<u64>, GgmlType, Vec<u8>),
}

/// The fixture's GGUF rewritten with `kv` applied to the metadata and `tensor` to one tensor, then loaded.
fn load_edited(kv: impl Fn(&str, &Value) -> Option<Value>, tensor: Option<(&str, Edit)>) -> Result<Model, ModelError> {
    let dir = TempDir::new("errors");
    let src = GgufFile::open(convert(&fixture_dir("llama-tied"), Preset::F32, &dir)).unwrap();
    let mut w = GgufWriter::new(Vec::new(), LABEL);
    for (k, v) in src.metadata() {
        if k == "general.alignment" {
            continue;
        }
        if let Some(v) = kv(k, v) {
            w.add_kv(k.clone(), v).unwrap();
        }
    }
    let mut data = Vec::new();
    for t in src.tensors() {
        match &tensor {
            Some((name, Edit::Drop)) if *name == t.name => continue,
            Some((name, Edit::Replace(dims, ty, bytes))) if *name == t.name => {
                w.add_tensor_info(t.name.clone(), dims, *ty).unwrap();
                data.push((t.name.clone(), bytes.clone()));
            }
            _ => {
                w.add_tensor_info(t.name.clone(), &t.dims, t.ty).unwrap();
                data.push((t.name.clone(), src.tensor_data(t).to_vec()));
            }
        }
    }
    for (name, bytes) in &data {
        w.write_tensor_data(name, bytes).unwrap();
    }
    Model::from_gguf(GgufFile::from_bytes(LABEL, w.finish().unwrap()).unwrap())
}

fn keep(_: &str, v: &Value) -> Option<Value> {
    Some(v.clone())
}

fn expect_err(r: Result<Model, ModelError>, words: &[&str]) -> ModelError {
    let e = r.err().expect("the file must be refused");
    let msg = e.to_string();
    assert!(msg.contains(LABEL), "the message names the file: {msg}");
    for w in words {
        assert!(msg.contains(w), "{msg:?} should mention {w:?}");
    }
    e
}

#[test]
fn the_unedited_file_loads() {
    let m = load_edited(keep, None).unwrap();
    assert_eq!(m.hparams().n_layer, 2);
}

#[test]
fn unsupported_architecture() {
    let e = expect_err(
        load_edited(
            |k, v| Some(if k == "general.architecture" { Value::String("gpt2".into()) } else { v.clone() }),
            None,
        ),
        &["\"gpt2\"", "not supported"],
    );
    assert!(matches!(e, ModelError::UnsupportedArchitecture { .. }));
}

#[test]
fn missing_key() {
    let e = expect_err(load_edited(|k, v| (k != "llama.block_count").then(|| v.clone()), None), &["llama.block_count"]);
    assert!(matches!(e, ModelError::MissingKey { .. }));
}

#[test]
fn missing_tensor() {
    let e = expect_err(
        load_edited(keep, Some(("blk.1.ffn_down.weight", Edit::Drop))),
        &["blk.1.ffn_down.weight", "missing"],
    );
    assert!(matches!(e, ModelError::MissingTensor { .. }));
}

#[test]
fn wrong_shape() {
    // attn_q declared with half its rows (64 × 32 instead of 64 × 64).
    let edit = Edit::Replace(vec![64, 32], GgmlType::F32, vec![0; 64 * 32 * 4]);
    let e = expect_err(load_edited(keep, Some(("blk.0.attn_q.weight", edit))), &["blk.0.attn_q.weight", "[64, 32]"]);
    assert!(matches!(e, ModelError::TensorShape { .. }));
}

#[test]
fn type_without_a_kernel() {
    // IQ4_NL: a type ggml knows (blocks of 32 in 18 bytes) that PocketLM has no kernel for.
    let edit = Edit::Replace(vec![64, 64], GgmlType::IQ4_NL, vec![0; 64 * 2 * 18]);
    let e = expect_err(load_edited(keep, Some(("blk.0.attn_q.weight", edit))), &["blk.0.attn_q.weight", "IQ4_NL"]);
    assert!(matches!(e, ModelError::UnsupportedType { .. }));
}

#[test]
fn not_a_gguf_file() {
    let dir = TempDir::new("not-gguf");
    let path = dir.0.join("model.gguf");
    std::fs::write(&path, "this is not a model").unwrap();
    let e = Model::load(&path).err().unwrap();
    assert!(e.to_string().contains("model.gguf") && e.to_string().contains("not a GGUF file"), "{e}");
    let e = Model::load(dir.0.join("absent.gguf")).err().unwrap();
    assert!(e.to_string().contains("absent.gguf"), "{e}");
}
