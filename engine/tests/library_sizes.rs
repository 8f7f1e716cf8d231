//! `Job::predicted_file_bytes` is the size of the file `Job::run` writes, to the byte: on the demo model for
//! several presets (k-quant mixes with their per-tensor rules, legacy quants, floats), on the BF16 Hugging Face
//! folder made from it when present, and on small synthetic GGUFs whose metadata stresses the header sum (a
//! non-default `general.alignment`, long strings, string arrays, nested arrays, names of odd lengths).

#[path = "support/demo.rs"]
mod demo;
use demo::demo_model;

use std::path::{Path, PathBuf};

use pocketlm::gguf::{file_layout, header_bytes, GgufFile, GgufWriter, TensorDecl, Value, ValueType};
use pocketlm::quant::GgmlType;
use pocketlm::quantize::{CancelToken, Job, Preset, QuantizeOptions};

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pocketlm-library-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Plans `input` at `preset`, runs it, and checks the prediction against the file on disk and the report.
fn check(input: &Path, preset: Preset, out: &Path) -> u64 {
    let job = Job::plan(input, &QuantizeOptions { preset, ..Default::default() }).unwrap_or_else(|e| panic!("{preset}: {e}"));
    let predicted = job.predicted_file_bytes();
    let data = job.predicted_data_bytes();
    assert!(predicted > data, "{preset}: a file is more than its unpadded tensor data ({predicted} vs {data})");
    let report = job.run(out, &mut |_| {}, &CancelToken::new()).unwrap_or_else(|e| panic!("{preset}: {e}"));
    let on_disk = std::fs::metadata(out).unwrap().len();
    assert_eq!(predicted, on_disk, "{preset} of {}: predicted {predicted} bytes, wrote {on_disk}", input.display());
    assert_eq!(report.output_bytes, on_disk);
    // The prediction's parts agree with what a reader finds in the file.
    let f = GgufFile::open(out).unwrap();
    let h = header_bytes(f.metadata().iter().map(|(k, v)| (k.as_str(), v)), f.tensors().iter().map(|t| (t.name.as_str(), t.dims.len())));
    assert_eq!(h.next_multiple_of(f.alignment()), f.data_offset(), "{preset}: header size");
    std::fs::remove_file(out).unwrap();
    predicted
}

#[test]
fn predicted_file_bytes_is_the_written_size_on_the_demo_model() {
    let Some(model) = demo_model() else { return };
    let dir = temp_dir("sizes-demo");
    let mut sizes = Vec::new();
    for preset in [Preset::Q4_K_M, Preset::Q8_0, Preset::Q4_0, Preset::Q3_K_S, Preset::Q6_K, Preset::F16] {
        sizes.push((preset, check(&model, preset, &dir.join(format!("{preset}.gguf")))));
    }
    // Not one number for all: the presets really differ in size.
    let q8 = sizes.iter().find(|(p, _)| *p == Preset::Q8_0).unwrap().1;
    let q4 = sizes.iter().find(|(p, _)| *p == Preset::Q4_K_M).unwrap().1;
    assert!(q8 > q4, "Q8_0 {q8} should be larger than Q4_K_M {q4}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn predicted_file_bytes_is_the_written_size_from_a_hugging_face_folder() {
    // `scripts/make-demo-source.sh` makes this folder from the demo model; skip when it was not made.
    let Some(model) = demo_model() else { return };
    let folder = model.with_file_name("SmolLM2-135M-Instruct");
    if !folder.join("config.json").is_file() {
        eprintln!("skipped: no {} (run scripts/make-demo-source.sh)", folder.display());
        return;
    }
    let dir = temp_dir("sizes-hf");
    for preset in [Preset::Q4_K_M, Preset::BF16] {
        check(&folder, preset, &dir.join(format!("{preset}.gguf")));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

const N_EMBD: u64 = 256;
const N_FF: u64 = 512;
const N_VOCAB: u64 = 320;
const N_LAYER: u64 = 2;

/// A small Llama-shaped GGUF in F32 with `extra` metadata; values are a ramp (the size cannot depend on them).
fn synthetic(path: &Path, extra: Vec<(&str, Value)>) {
    let mut w = GgufWriter::create(path).unwrap();
    let mut kvs: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("general.name", Value::String("Synthetic Tiny".into())),
        ("llama.context_length", Value::U32(256)),
        ("llama.embedding_length", Value::U32(N_EMBD as u32)),
        ("llama.block_count", Value::U32(N_LAYER as u32)),
        ("llama.feed_forward_length", Value::U32(N_FF as u32)),
        ("llama.attention.head_count", Value::U32(4)),
        ("llama.attention.head_count_kv", Value::U32(2)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
    ];
    kvs.extend(extra);
    for (k, v) in kvs {
        w.add_kv(k, v).unwrap();
    }
    let mut tensors: Vec<(String, Vec<u64>)> = vec![
        ("token_embd.weight".into(), vec![N_EMBD, N_VOCAB]),
        ("output_norm.weight".into(), vec![N_EMBD]),
        ("output.weight".into(), vec![N_EMBD, N_VOCAB]),
    ];
    for l in 0..N_LAYER {
        for (t, dims) in [
            ("attn_norm", vec![N_EMBD]),
            ("attn_q", vec![N_EMBD, N_EMBD]),
            ("attn_k", vec![N_EMBD, N_EMBD / 2]),
            ("attn_v", vec![N_EMBD, N_EMBD / 2]),
            ("attn_output", vec![N_EMBD, N_EMBD]),
            ("ffn_norm", vec![N_EMBD]),
            ("ffn_gate", vec![N_EMBD, N_FF]),
            ("ffn_up", vec![N_EMBD, N_FF]),
            ("ffn_down", vec![N_FF, N_EMBD]),
        ] {
            tensors.push((format!("blk.{l}.{t}.weight"), dims));
        }
    }
    for (name, dims) in &tensors {
        w.add_tensor_info(name.clone(), dims, GgmlType::F32).unwrap();
    }
    for (name, dims) in &tensors {
        let n: u64 = dims.iter().product();
        let bytes: Vec<u8> = (0..n).flat_map(|i| ((i % 97) as f32 / 97.0 - 0.5).to_le_bytes()).collect();
        w.write_tensor_data(name, &bytes).unwrap();
    }
    w.commit().unwrap();
}

#[test]
fn predicted_file_bytes_is_the_written_size_on_synthetic_models() {
    let dir = temp_dir("sizes-synthetic");
    let strings = |n: usize| Value::Array(ValueType::String, (0..n).map(|i| Value::String("é".repeat(i % 7))).collect());
    let nested = Value::Array(
        ValueType::Array,
        vec![Value::Array(ValueType::U16, vec![Value::U16(1); 3]), Value::Array(ValueType::U16, vec![])],
    );
    let variants: Vec<(&str, Vec<(&str, Value)>)> = vec![
        ("plain", vec![]),
        (
            "aligned-64",
            vec![
                ("general.alignment", Value::U32(64)),
                ("general.description", Value::String("x".repeat(1001))),
                ("tokenizer.ggml.tokens", strings(333)),
                ("test.nested", nested),
                ("test.i64", Value::I64(-5)),
                ("test.f64", Value::F64(0.25)),
                ("test.bool", Value::Bool(true)),
            ],
        ),
        ("aligned-4096", vec![("general.alignment", Value::U32(4096))]),
    ];
    for (tag, extra) in variants {
        let input = dir.join(format!("{tag}.gguf"));
        synthetic(&input, extra);
        for preset in [Preset::Q4_K_M, Preset::Q5_0, Preset::Q2_K, Preset::BF16] {
            check(&input, preset, &dir.join(format!("{tag}-{preset}.gguf")));
        }
        // The input was written by the same writer: its layout is what file_layout says it is.
        let f = GgufFile::open(&input).unwrap();
        let decls: Vec<TensorDecl> = f.tensors().iter().map(|t| TensorDecl { name: &t.name, dims: &t.dims, ty: t.ty }).collect();
        let layout = file_layout(f.metadata(), &decls).unwrap();
        assert_eq!(layout.file_bytes(), f.file_size(), "{tag}");
        assert_eq!(layout.data_offset, f.data_offset(), "{tag}");
        assert_eq!(layout.alignment, f.alignment(), "{tag}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn file_layout_refuses_what_the_writer_refuses() {
    let meta = vec![("general.alignment".to_string(), Value::U32(48))];
    assert_eq!(file_layout(&meta, &[]), None, "an alignment that is not a power of two");
    let partial = [TensorDecl { name: "t", dims: &[100, 2], ty: GgmlType::Q4_K }];
    assert_eq!(file_layout(&[], &partial), None, "a row that is not whole blocks");
    let empty = file_layout(&[], &[]).unwrap();
    // Magic, version and two counts, padded to 32 even with nothing in it (as llama.cpp writes it).
    assert_eq!((empty.header_bytes, empty.data_offset, empty.file_bytes()), (24, 32, 32));
    let mut w = GgufWriter::new(Vec::new(), "empty.gguf");
    w.add_kv("a", Value::String("b".into())).unwrap();
    let one = [TensorDecl { name: "w", dims: &[32, 3], ty: GgmlType::Q8_0 }];
    w.add_tensor_info("w", &[32, 3], GgmlType::Q8_0).unwrap();
    let layout = file_layout(&[("a".to_string(), Value::String("b".into()))], &one).unwrap();
    // 24 + (8+1 + 4 + 8+1) + (8+1 + 4 + 16 + 4 + 8) = 87 → 96; 3 rows of 34 bytes = 102 → 128.
    assert_eq!((layout.header_bytes, layout.data_offset, layout.data_bytes), (87, 96, 128));
    assert_eq!(w.predicted_size(), layout.file_bytes());
    w.write_tensor_data("w", &[0u8; 102]).unwrap();
    assert_eq!(w.finish().unwrap().len() as u64, layout.file_bytes());
}
