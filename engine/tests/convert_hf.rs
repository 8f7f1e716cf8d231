//! Converter tests: hostile checkpoints, the Hugging Face cache layout, and whole-plan comparisons with what
//! llama.cpp's `convert_hf_to_gguf.py` writes (canonical dumps made by `scripts/convert_dump_gguf.py`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use pocketlm::convert::{self, MetaValue};
use pocketlm::hf::Checkpoint;

/// FNV-1a 64: the same checksum `scripts/convert_dump_gguf.py` prints.
fn fnv(bytes: impl IntoIterator<Item = u8>) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

fn value_text(v: &MetaValue) -> String {
    match v {
        MetaValue::U32(x) => format!("uint32:{x}"),
        MetaValue::I32(x) => format!("int32:{x}"),
        MetaValue::F32(x) => format!("f32:{:08x}", x.to_bits()),
        MetaValue::Bool(b) => format!("bool:{b}"),
        MetaValue::String(s) => format!("str:{}", serde_json::to_string(s).unwrap()),
        MetaValue::StringArray(a) => {
            let bytes = a.iter().flat_map(|s| s.bytes().chain(std::iter::once(0)));
            format!("array<string>[{}] fnv={}", a.len(), fnv(bytes))
        }
        MetaValue::I32Array(a) => {
            format!("array<int32>[{}] fnv={}", a.len(), fnv(a.iter().flat_map(|x| x.to_le_bytes())))
        }
    }
}

/// The plan of `dir` in the canonical dump form, with `general.file_type` set to `file_type`.
fn dump(dir: &Path, file_type: u32) -> String {
    let ckpt = Checkpoint::open(dir).unwrap_or_else(|e| panic!("{e}"));
    let mut plan = convert::plan(&ckpt).unwrap_or_else(|e| panic!("{e}"));
    plan.metadata.set("general.file_type", MetaValue::U32(file_type));
    let mut out = String::new();
    for (k, v) in plan.metadata.entries() {
        writeln!(out, "kv {k} {}", value_text(v)).unwrap();
    }
    let mut buf = Vec::new();
    for t in &plan.tensors {
        convert::load_tensor(&ckpt, t, &mut buf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(buf.len() as u64, t.n_elements(), "{}", t.name);
        let dims: Vec<String> = t.dims.iter().map(u64::to_string).collect();
        writeln!(out, "tensor {} [{}] fnv={}", t.name, dims.join(","), fnv(buf.iter().flat_map(|x| x.to_le_bytes())))
            .unwrap();
    }
    out
}

fn compare(name: &str, got: &str, want: &str) {
    if got == want {
        return;
    }
    let g: Vec<&str> = got.lines().collect();
    let w: Vec<&str> = want.lines().collect();
    let mut msg = format!("{name}: plan differs from convert_hf_to_gguf.py\n");
    for i in 0..g.len().max(w.len()) {
        let (a, b) = (g.get(i).copied().unwrap_or("<none>"), w.get(i).copied().unwrap_or("<none>"));
        if a != b {
            let short = |s: &str| s.chars().take(200).collect::<String>();
            writeln!(msg, "line {i}:\n  ours:   {}\n  theirs: {}", short(a), short(b)).unwrap();
        }
    }
    panic!("{msg}");
}

/// Checkpoints converted by llama.cpp beforehand: `$POCKETLM_CONVERT_ORACLE/NAME/` (HF folder) next to
/// `NAME.expected.txt` (its `--outtype f32` GGUF dumped by scripts/convert_dump_gguf.py). Skipped when unset.
#[test]
fn matches_convert_hf_to_gguf_on_oracle_folders() {
    let Some(root) = std::env::var_os("POCKETLM_CONVERT_ORACLE").map(PathBuf::from) else {
        eprintln!("POCKETLM_CONVERT_ORACLE not set: skipped");
        return;
    };
    let mut n = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for dir in entries.into_iter().filter(|p| p.is_dir()) {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let expected = root.join(format!("{name}.expected.txt"));
        let Ok(want) = std::fs::read_to_string(&expected) else { continue };
        compare(&name, &dump(&dir, 0), &want);
        n += 1;
    }
    assert!(n > 0, "no NAME/ + NAME.expected.txt pairs in {}", root.display());
}
