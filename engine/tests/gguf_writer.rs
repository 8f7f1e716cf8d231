//! The GGUF writer: what it writes reads back unchanged, its layout is llama.cpp's and gguf-py's byte for byte,
//! a misuse is an error rather than a broken file, and a file on disk appears only when complete.
//!
//! `golden/writer/gguf_py_small.gguf` was written by gguf-py 0.19.0 (llama.cpp's Python package); regenerate it
//! with `scripts/make_writer_golden.py`.

use std::fs;
use std::path::{Path, PathBuf};

use pocketlm::gguf::{Fault, GgufError, GgufFile, GgufWriter, Value, ValueType, MAX_ARRAY_DEPTH};
use pocketlm::quant::GgmlType;

/// An empty directory of this test's own under Cargo's per-target scratch space.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gguf_writer").join(test);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

/// Deterministic filler: byte i of a tensor is `(i × 7 + seed) mod 256`.
fn filler(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect()
}

/// Every value type, with edge values: extremes, an empty string, unicode, empty and nested arrays.
fn every_value() -> Vec<(String, Value)> {
    use Value::*;
    let kvs = vec![
        ("u8", U8(u8::MAX)),
        ("i8", I8(i8::MIN)),
        ("u16", U16(u16::MAX)),
        ("i16", I16(i16::MIN)),
        ("u32", U32(u32::MAX)),
        ("i32", I32(i32::MIN)),
        ("f32", F32(-f32::MIN_POSITIVE)),
        ("f32.inf", F32(f32::INFINITY)),
        ("bool.false", Bool(false)),
        ("bool.true", Bool(true)),
        ("string", String("llama".into())),
        ("string.empty", String("".into())),
        ("string.unicode", String("ünïcødé ✓ 🦙 \u{0} end".into())),
        ("ключ.🔑", String("a unicode key".into())),
        ("u64", U64(u64::MAX)),
        ("i64", I64(i64::MIN)),
        ("f64", F64(std::f64::consts::PI)),
        ("array.u8", Array(ValueType::U8, vec![U8(0), U8(255)])),
        ("array.f32", Array(ValueType::F32, vec![F32(1.5), F32(-0.0)])),
        ("array.str", Array(ValueType::String, vec!["".into(), "a".into(), "Ġthe".into()])),
        ("array.empty", Array(ValueType::I64, vec![])),
        ("array.empty.str", Array(ValueType::String, vec![])),
        (
            "array.nested",
            Array(
                ValueType::Array,
                vec![
                    Array(ValueType::U16, vec![U16(1), U16(2)]),
                    Array(ValueType::String, vec!["x".into()]),
                    Array(ValueType::Array, vec![Array(ValueType::Bool, vec![Bool(true)])]),
                    Array(ValueType::F64, vec![]),
                ],
            ),
        ),
    ];
    kvs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The 13 value types each appear in `every_value`.
#[test]
fn every_value_type_is_covered() {
    fn types(v: &Value, out: &mut Vec<ValueType>) {
        out.push(v.value_type());
        if let Value::Array(_, items) = v {
            items.iter().for_each(|i| types(i, out));
        }
    }
    let mut seen = vec![];
    every_value().iter().for_each(|(_, v)| types(v, &mut seen));
    for id in 0..13 {
        assert!(seen.contains(&ValueType::from_id(id).unwrap()), "type {id} missing");
    }
}

#[test]
fn every_value_type_round_trips() {
    for with_tensor in [false, true] {
        let mut w = GgufWriter::new(Vec::new(), "mem");
        for (k, v) in every_value() {
            w.add_kv(k, v).unwrap();
        }
        if with_tensor {
            w.add_tensor_info("t", &[3], GgmlType::F32).unwrap();
            w.write_tensor_data("t", &filler(12, 1)).unwrap();
        }
        let predicted = w.predicted_size();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() as u64, predicted);
        let file = GgufFile::from_bytes("mem", bytes).unwrap();
        assert_eq!(file.version(), 3);
        assert_eq!(file.metadata(), every_value().as_slice());
        assert_eq!(file.tensors().len(), usize::from(with_tensor));
    }
}

/// Three tensors whose sizes are not multiples of 64: 12 bytes of F32, 68 of Q8_0, 144 of Q4_K.
const TENSORS: [(&str, &[u64], GgmlType); 3] =
    [("a", &[3], GgmlType::F32), ("b.weight", &[32, 2], GgmlType::Q8_0), ("c", &[256, 1], GgmlType::Q4_K)];

/// A writer with `kvs` and the three tensors declared, no data written yet.
fn declared(kvs: &[(&str, Value)]) -> GgufWriter<Vec<u8>> {
    let mut w = GgufWriter::new(Vec::new(), "mem");
    for (k, v) in kvs {
        w.add_kv(*k, v.clone()).unwrap();
    }
    for (name, dims, ty) in TENSORS {
        w.add_tensor_info(name, dims, ty).unwrap();
    }
    w
}

fn tensor_len(i: usize) -> usize {
    let (_, dims, ty) = TENSORS[i];
    ty.row_size(dims.iter().product()).unwrap() as usize
}

/// Writes each tensor's filler in pieces of the given sizes (the last piece takes the rest).
fn write_in_pieces<W: std::io::Write>(w: &mut GgufWriter<W>, pieces: &[usize]) {
    for (i, (name, ..)) in TENSORS.iter().enumerate() {
        let data = filler(tensor_len(i), i as u8);
        let mut rest = data.as_slice();
        for &p in pieces {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at(p.min(rest.len()));
            w.write_tensor_data(name, piece).unwrap();
            rest = tail;
        }
        if !rest.is_empty() {
            w.write_tensor_data(name, rest).unwrap();
        }
    }
}

#[test]
fn a_custom_alignment_is_honoured() {
    let w = declared(&[("general.alignment", Value::U32(64)), ("k", "v".into())]);
    let predicted = w.predicted_size();
    let mut w = w;
    write_in_pieces(&mut w, &[]);
    let bytes = w.finish().unwrap();
    assert_eq!(bytes.len() as u64, predicted);
    assert_eq!(bytes.len() % 64, 0, "the last tensor is padded too");

    let file = GgufFile::from_bytes("mem", bytes.clone()).unwrap();
    assert_eq!(file.alignment(), 64);
    assert_eq!(file.data_offset() % 64, 0);
    let mut expected_offset = 0;
    for (i, t) in file.tensors().iter().enumerate() {
        assert_eq!(t.offset, expected_offset, "tensors are packed in order, each at the next multiple of 64");
        assert_eq!(file.tensor_data(t), filler(tensor_len(i), i as u8));
        let start = (file.data_offset() + t.offset + t.n_bytes) as usize;
        expected_offset = (t.offset + t.n_bytes).next_multiple_of(64);
        let end = (file.data_offset() + expected_offset) as usize;
        assert!(bytes[start..end].iter().all(|&b| b == 0), "padding after {} is zeros", t.name);
    }
}

#[test]
fn data_in_pieces_equals_data_in_one() {
    let whole = {
        let mut w = declared(&[("k", Value::U8(1))]);
        write_in_pieces(&mut w, &[]);
        w.finish().unwrap()
    };
    for pieces in [&[1usize, 7, 0, 3][..], &[0, 0], &[5; 40], &[1; 200]] {
        let mut w = declared(&[("k", Value::U8(1))]);
        write_in_pieces(&mut w, pieces);
        assert_eq!(w.finish().unwrap(), whole, "pieces {pieces:?}");
    }
}

#[test]
fn predicted_size_is_the_final_length() {
    let every = every_value();
    let cases: Vec<Vec<(&str, Value)>> = vec![
        vec![],
        vec![("general.alignment", Value::U32(1))],
        vec![("general.alignment", Value::U32(8)), ("s", "ü".into())],
        vec![("general.alignment", Value::U32(4096))],
        every.iter().map(|(k, v)| (k.as_str(), v.clone())).collect(),
    ];
    for kvs in &cases {
        // Metadata only, then with the three tensors.
        let mut w = GgufWriter::new(Vec::new(), "mem");
        for (k, v) in kvs {
            w.add_kv(*k, v.clone()).unwrap();
        }
        let predicted = w.predicted_size();
        assert_eq!(w.finish().unwrap().len() as u64, predicted);

        let mut w = declared(kvs);
        let predicted = w.predicted_size();
        write_in_pieces(&mut w, &[10]);
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() as u64, predicted);
        GgufFile::from_bytes("mem", bytes).unwrap();
    }
}

/// llama.cpp and gguf-py pad the tensor infos to the alignment even when no tensor follows.
#[test]
fn a_file_without_tensors_is_padded_like_llama_cpp() {
    let mut w = GgufWriter::new(Vec::new(), "mem");
    w.add_kv("general.architecture", "llama".into()).unwrap();
    let bytes = w.finish().unwrap();
    // 24 header + 8 + 20 key + 4 type + 8 + 5 value = 69, padded to 96.
    assert_eq!(bytes.len(), 96);
    assert!(bytes[69..].iter().all(|&b| b == 0));
}

// -----------------------------------------------------------------------------------------------------------------
// Misuse

fn misuse<T>(result: Result<T, GgufError>) -> String {
    match result {
        Err(GgufError { fault: Fault::Misuse(m), .. }) => m,
        Err(e) => panic!("expected a misuse error, got {e}"),
        Ok(_) => panic!("expected a misuse error, got Ok"),
    }
}

fn fault<T>(result: Result<T, GgufError>) -> Fault {
    match result {
        Err(e) => e.fault,
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn data_out_of_order_is_refused() {
    let mut w = declared(&[]);
    let m = misuse(w.write_tensor_data("b.weight", &[0; 68]));
    assert!(m.contains("\"a\" is next"), "{m}");
    let mut w = declared(&[]);
    w.write_tensor_data("a", &[0; 12]).unwrap();
    misuse(w.write_tensor_data("c", &[0; 144]));
    misuse(w.write_tensor_data("nonexistent", &[]));
    // Half of "b.weight", then "c": still "b.weight" is next.
    w.write_tensor_data("b.weight", &[0; 34]).unwrap();
    misuse(w.write_tensor_data("c", &[0; 144]));
    assert_eq!(w.next_tensor().map(|t| t.0), Some("b.weight"));
}

#[test]
fn too_many_bytes_are_refused() {
    let mut w = declared(&[]);
    misuse(w.write_tensor_data("a", &[0; 13]));
    w.write_tensor_data("a", &[0; 10]).unwrap();
    misuse(w.write_tensor_data("a", &[0; 3]));
    w.write_tensor_data("a", &[0; 2]).unwrap();
    // "a" is complete: one more byte for it is data out of order.
    misuse(w.write_tensor_data("a", &[0]));
    write_rest(&mut w, 1);
    let m = misuse(w.write_tensor_data("c", &[0]));
    assert!(m.contains("after every tensor"), "{m}");
}

fn write_rest<W: std::io::Write>(w: &mut GgufWriter<W>, from: usize) {
    for (i, (name, ..)) in TENSORS.iter().enumerate().skip(from) {
        w.write_tensor_data(name, &filler(tensor_len(i), i as u8)).unwrap();
    }
}

#[test]
fn finishing_with_tensors_missing_is_refused() {
    misuse(declared(&[]).finish());
    let mut w = declared(&[]);
    w.write_tensor_data("a", &[0; 12]).unwrap();
    w.write_tensor_data("b.weight", &[0; 67]).unwrap();
    let m = misuse(w.finish());
    assert!(m.contains("\"b.weight\" at 67 of 68 bytes and 1 more"), "{m}");
}

#[test]
fn declarations_after_data_began_are_refused() {
    let mut w = declared(&[]);
    w.write_tensor_data("a", &[0; 4]).unwrap();
    misuse(w.add_kv("late", Value::U8(1)));
    misuse(w.add_tensor_info("late", &[32], GgmlType::F32));
    // The refusals changed nothing: the file completes and reads back.
    w.write_tensor_data("a", &[0; 8]).unwrap();
    write_rest(&mut w, 1);
    let file = GgufFile::from_bytes("mem", w.finish().unwrap()).unwrap();
    assert!(file.get("late").is_none() && file.tensor("late").is_none());
}

#[test]
fn duplicates_are_refused() {
    let mut w = GgufWriter::new(Vec::new(), "mem");
    w.add_kv("k", Value::U8(1)).unwrap();
    assert!(matches!(fault(w.add_kv("k", Value::U8(1))), Fault::DuplicateKey(ref k) if k == "k"));
    w.add_tensor_info("t", &[32], GgmlType::F32).unwrap();
    assert!(matches!(fault(w.add_tensor_info("t", &[64], GgmlType::F16)), Fault::DuplicateTensor(ref n) if n == "t"));
}

#[test]
fn a_refused_duplicate_alignment_does_not_change_the_layout() {
    let mut w = declared(&[("general.alignment", Value::U32(64))]);
    assert!(matches!(fault(w.add_kv("general.alignment", Value::U32(128))), Fault::DuplicateKey(_)));
    write_in_pieces(&mut w, &[]);
    let file = GgufFile::from_bytes("mem", w.finish().unwrap()).unwrap();
    assert_eq!(file.alignment(), 64);
    for (i, t) in file.tensors().iter().enumerate() {
        assert_eq!(file.tensor_data(t), filler(tensor_len(i), i as u8));
    }
}

#[test]
fn bad_alignments_are_refused() {
    let mut w = GgufWriter::new(Vec::new(), "mem");
    for v in [Value::U32(0), Value::U32(48), Value::U64(32), Value::I32(32), Value::from("32")] {
        assert!(matches!(fault(w.add_kv("general.alignment", v)), Fault::BadAlignment(_)));
    }
    // None of them was kept: the key is still free.
    w.add_kv("general.alignment", Value::U32(16)).unwrap();
}

#[test]
fn heterogeneous_arrays_are_refused() {
    let mut w = GgufWriter::new(Vec::new(), "mem");
    misuse(w.add_kv("a", Value::Array(ValueType::U32, vec![Value::U32(1), Value::I32(2)])));
    misuse(w.add_kv("a", Value::Array(ValueType::String, vec![Value::U8(1)])));
    let inner_bad = Value::Array(ValueType::Array, vec![Value::Array(ValueType::U8, vec![Value::Bool(true)])]);
    misuse(w.add_kv("a", inner_bad));
    // None was kept.
    w.add_kv("a", Value::Array(ValueType::U8, vec![])).unwrap();
}

#[test]
fn arrays_nested_beyond_the_readers_limit_are_refused() {
    let nest = |depth: usize| {
        (1..depth).fold(Value::Array(ValueType::U8, vec![]), |v, _| Value::Array(ValueType::Array, vec![v]))
    };
    let mut w = GgufWriter::new(Vec::new(), "mem");
    misuse(w.add_kv("deep", nest(MAX_ARRAY_DEPTH + 1)));
    w.add_kv("deep", nest(MAX_ARRAY_DEPTH)).unwrap();
    let file = GgufFile::from_bytes("mem", w.finish().unwrap()).unwrap();
    assert_eq!(file.get("deep"), Some(&nest(MAX_ARRAY_DEPTH)));
}

#[test]
fn bad_tensor_declarations_are_refused() {
    let mut w = GgufWriter::new(Vec::new(), "mem");
    let mut declare = |dims: &[u64], ty| fault(w.add_tensor_info("t", dims, ty));
    assert!(matches!(declare(&[], GgmlType::F32), Fault::BadDimCount { n_dims: 0, .. }));
    assert!(matches!(declare(&[1; 5], GgmlType::F32), Fault::BadDimCount { n_dims: 5, .. }));
    assert!(matches!(declare(&[33], GgmlType::Q8_0), Fault::PartialBlock { ne0: 33, .. }));
    assert!(matches!(declare(&[16, 2], GgmlType::Q8_0), Fault::PartialBlock { ne0: 16, .. }));
    for dims in [&[1u64 << 63][..], &[1 << 32, 1 << 32], &[1 << 62, 2], &[u64::MAX, 0], &[0, 1 << 40, 1 << 40]] {
        assert!(matches!(declare(dims, GgmlType::F32), Fault::ShapeOverflow { .. }), "{dims:?}");
    }
    // Fits ggml's int64 as elements, not a u64 as bytes.
    assert!(matches!(declare(&[1 << 62], GgmlType::F64), Fault::ShapeOverflow { .. }));
    // Each fits, their offsets together do not: 2^63 − 1 bytes (2^63 padded) and 2^63 − 64 fill the u64 to
    // 2^64 − 64; 64 more bytes overflow it.
    w.add_tensor_info("big1", &[i64::MAX as u64], GgmlType::I8).unwrap();
    w.add_tensor_info("big2", &[(1 << 63) - 64], GgmlType::I8).unwrap();
    let f = fault(w.add_tensor_info("big3", &[64], GgmlType::I8));
    assert!(matches!(f, Fault::ShapeOverflow { ref name, .. } if name == "big3"), "{f:?}");
    // Nor may a larger alignment push them over (big2 padded to 2^31 is 2^63).
    let m = misuse(w.add_kv("general.alignment", Value::U32(1 << 31)));
    assert!(m.contains("beyond 2^64"), "{m}");
    w.add_kv("general.alignment", Value::U32(64)).unwrap();
    assert_eq!(w.predicted_size(), u64::MAX, "saturated");
}

// -----------------------------------------------------------------------------------------------------------------
// Files on disk

/// The in-memory bytes of the three-tensor file with one key.
fn in_memory() -> Vec<u8> {
    let mut w = declared(&[("general.name", "atomic".into())]);
    write_in_pieces(&mut w, &[]);
    w.finish().unwrap()
}

fn temp_name(dest: &Path) -> String {
    format!(".{}.partial-{}", dest.file_name().unwrap().to_str().unwrap(), std::process::id())
}

fn create_declared(path: &Path) -> GgufWriter<pocketlm::gguf::AtomicFile> {
    let mut w = GgufWriter::create(path).unwrap();
    w.add_kv("general.name", "atomic".into()).unwrap();
    for (name, dims, ty) in TENSORS {
        w.add_tensor_info(name, dims, ty).unwrap();
    }
    w
}

#[test]
fn a_committed_file_appears_only_at_commit_with_the_in_memory_bytes() {
    let dir = scratch("commit");
    let path = dir.join("model.gguf");
    let mut w = create_declared(&path);
    write_in_pieces(&mut w, &[50]);
    assert!(!path.exists(), "nothing at the final path before commit");
    assert_eq!(files_in(&dir), [temp_name(&path)]);
    w.commit().unwrap();
    assert_eq!(files_in(&dir), ["model.gguf"], "the temporary file is gone");
    assert_eq!(fs::read(&path).unwrap(), in_memory());
    GgufFile::open(&path).unwrap();
}

#[test]
fn a_commit_replaces_an_existing_file_only_when_complete() {
    let dir = scratch("replace");
    let path = dir.join("model.gguf");
    fs::write(&path, b"old").unwrap();
    let mut w = create_declared(&path);
    write_in_pieces(&mut w, &[]);
    assert_eq!(fs::read(&path).unwrap(), b"old");
    w.commit().unwrap();
    assert_eq!(fs::read(&path).unwrap(), in_memory());
}

#[test]
fn a_dropped_writer_leaves_nothing() {
    let dir = scratch("dropped");
    let path = dir.join("model.gguf");
    // Dropped before any data, and in the middle of a tensor.
    drop(create_declared(&path));
    assert_eq!(files_in(&dir), Vec::<String>::new());
    let mut w = create_declared(&path);
    w.write_tensor_data("a", &[0; 12]).unwrap();
    w.write_tensor_data("b.weight", &[0; 20]).unwrap();
    drop(w);
    assert_eq!(files_in(&dir), Vec::<String>::new());
}

#[test]
fn a_failed_commit_leaves_nothing() {
    let dir = scratch("failed");
    let path = dir.join("model.gguf");
    // A tensor missing: finish refuses, the temporary file goes.
    let mut w = create_declared(&path);
    w.write_tensor_data("a", &[0; 12]).unwrap();
    assert!(matches!(w.commit().err().unwrap().fault, Fault::Misuse(_)));
    assert_eq!(files_in(&dir), Vec::<String>::new());

    // The rename fails (a non-empty directory holds the name): the temporary file goes too.
    fs::create_dir(&path).unwrap();
    fs::write(path.join("keep"), b"").unwrap();
    let mut w = create_declared(&path);
    write_in_pieces(&mut w, &[]);
    assert!(matches!(w.commit().err().unwrap().fault, Fault::Io(_)));
    assert_eq!(files_in(&dir), ["model.gguf"]);
    assert_eq!(files_in(&path), ["keep"]);
}

// -----------------------------------------------------------------------------------------------------------------
// Byte identity with gguf-py / llama.cpp

/// The content of `golden/writer/gguf_py_small.gguf`, as `scripts/make_writer_golden.py` writes it with gguf-py.
fn gguf_py_small() -> Vec<u8> {
    let mut w = GgufWriter::new(Vec::new(), "ours");
    let kvs: Vec<(&str, Value)> = vec![
        ("general.architecture", "llama".into()),
        ("general.name", "writer golden ✓".into()),
        ("llama.context_length", Value::U32(2048)),
        ("llama.rope.freq_base", Value::F32(10000.0)),
        ("test.i8", Value::I8(-7)),
        ("test.u16", Value::U16(65535)),
        ("test.i64", Value::I64(-(1 << 40))),
        ("test.f64", Value::F64(0.1)),
        ("test.bool", Value::Bool(true)),
        ("tokenizer.ggml.tokens", Value::Array(ValueType::String, vec!["<s>".into(), "Ġthe".into(), "ü".into()])),
        (
            "tokenizer.ggml.scores",
            Value::Array(ValueType::F32, vec![Value::F32(0.0), Value::F32(-1.5), Value::F32(2.25)]),
        ),
        ("tokenizer.ggml.token_type", Value::Array(ValueType::I32, vec![Value::I32(3), Value::I32(1), Value::I32(1)])),
        ("general.file_type", Value::U32(7)),
    ];
    for (k, v) in kvs {
        w.add_kv(k, v).unwrap();
    }
    let tensors: [(&str, &[u64], GgmlType); 3] = [
        ("token_embd.weight", &[4, 3], GgmlType::F32),
        ("blk.0.attn_q.weight", &[64, 2], GgmlType::Q8_0),
        ("output_norm.weight", &[256], GgmlType::Q4_K),
    ];
    for (name, dims, ty) in tensors {
        w.add_tensor_info(name, dims, ty).unwrap();
    }
    // F32 values (i − 5) / 4; the quantized tensors' bytes are filler (the writer does not look inside blocks).
    let f32s: Vec<u8> = (0..12).flat_map(|i| ((i as f32 - 5.0) / 4.0).to_le_bytes()).collect();
    w.write_tensor_data("token_embd.weight", &f32s).unwrap();
    w.write_tensor_data("blk.0.attn_q.weight", &filler(136, 1)).unwrap();
    w.write_tensor_data("output_norm.weight", &filler(144, 2)).unwrap();
    w.finish().unwrap()
}

#[test]
fn our_writer_reproduces_gguf_py_byte_for_byte() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/writer/gguf_py_small.gguf");
    let golden = fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (make it with scripts/make_writer_golden.py)", path.display()));
    let ours = gguf_py_small();
    if let Some(i) = ours.iter().zip(&golden).position(|(a, b)| a != b) {
        panic!("first difference at byte {i} (ours {} bytes, gguf-py {})", ours.len(), golden.len());
    }
    assert_eq!(ours.len(), golden.len(), "one file is a prefix of the other");
}

/// The fuzz seeds are gguf-py files too (`make_writer_golden.py --seeds`): every value type, nested arrays, a
/// custom alignment and a tensor of each codec type. They must stay valid, and read as gguf-py wrote them.
#[test]
fn gguf_py_fuzz_seeds_read_back() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    let open = |name: &str| GgufFile::open(seeds.join(name)).unwrap_or_else(|e| panic!("{e}"));
    for name in ["metadata_only.gguf", "align64.gguf"] {
        open(name);
    }
    let every = open("every_value.gguf");
    let nested = Value::Array(
        ValueType::Array,
        vec![
            Value::Array(ValueType::I32, vec![Value::I32(1), Value::I32(2)]),
            Value::Array(ValueType::String, vec!["x".into()]),
            Value::Array(ValueType::Array, vec![Value::Array(ValueType::Bool, vec![Value::Bool(true)])]),
        ],
    );
    assert_eq!(every.get("arr.nested"), Some(&nested));
    assert_eq!(every.get("i64"), Some(&Value::I64(i64::MIN)));
    assert_eq!(every.get("str"), Some(&Value::from("ünï")));
    let codecs = open("codecs.gguf");
    let with_codec = codecs.tensors().iter().filter(|t| t.ty.codec().is_some()).count();
    assert_eq!(with_codec, codecs.tensors().len());
    assert_eq!(open("align64.gguf").alignment(), 64);
}
