//! Converter tests: hostile checkpoints, the Hugging Face cache layout, and whole-plan comparisons with what
//! llama.cpp's `convert_hf_to_gguf.py` writes (canonical dumps made by `scripts/convert_dump_gguf.py`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use pocketlm::convert::{self, ConvertError, MetaValue};
use pocketlm::hf::{Checkpoint, HfError};

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
        MetaValue::F32Array(a) => {
            format!("array<float32>[{}] fnv={}", a.len(), fnv(a.iter().flat_map(|x| x.to_le_bytes())))
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
        let Ok(want) = std::fs::read_to_string(&expected) else {
            continue;
        };
        compare(&name, &dump(&dir, 0), &want);
        n += 1;
    }
    assert!(n > 0, "no NAME/ + NAME.expected.txt pairs in {}", root.display());
}

// ---- Committed fixtures (scripts/gen_convert_fixtures.py): config + tokenizer files and the converter's output.
// Their weights are written here with the generator's formula.

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("convert_fixtures")
}

/// A folder under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "pocketlm-convert-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `weights()` of gen_convert_fixtures.py: BF16 bits of k/64, k in -127..=127, hashed from name and index.
fn weight_bits(name: &str, n: u64) -> Vec<u16> {
    let mut seed: u64 = 0xcbf29ce484222325;
    for b in name.bytes() {
        seed = (seed ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    let seed = seed & 0xFFFF_FFFF;
    (0..n)
        .map(|i| {
            let mut x = (seed + i * 2654435761) & 0xFFFF_FFFF;
            x ^= x >> 15;
            x = (x * 2246822519) & 0xFFFF_FFFF;
            x ^= x >> 13;
            let v = ((x % 255) as f32 - 127.0) / 64.0;
            (v.to_bits() >> 16) as u16
        })
        .collect()
}

/// A tensor to write: name, dtype, shape, little-endian bytes.
struct St {
    name: String,
    dtype: &'static str,
    shape: Vec<u64>,
    bytes: Vec<u8>,
}

fn bf16_tensor(name: &str, shape: &[u64]) -> St {
    let bits = weight_bits(name, shape.iter().product());
    St {
        name: name.into(),
        dtype: "BF16",
        shape: shape.to_vec(),
        bytes: bits.iter().flat_map(|b| b.to_le_bytes()).collect(),
    }
}

/// Writes a safetensors file: 8-byte header length, JSON header (names sorted, offsets contiguous), data.
fn write_safetensors(path: &Path, tensors: &[St]) {
    let mut sorted: Vec<&St> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let mut offset = 0u64;
    for t in &sorted {
        let end = offset + t.bytes.len() as u64;
        header.insert(
            t.name.clone(),
            serde_json::json!({"dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut h = serde_json::to_string(&header).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(h.as_bytes());
    for t in &sorted {
        out.extend_from_slice(&t.bytes);
    }
    std::fs::write(path, out).unwrap();
}

/// The checkpoint tensors `gen_convert_fixtures.py` writes for a config.
fn tensors_for(cfg: &serde_json::Value) -> Vec<St> {
    let g = |k: &str| cfg[k].as_u64().unwrap();
    let (h, ff, v, nh, nkv, nl) = (
        g("hidden_size"),
        g("intermediate_size"),
        g("vocab_size"),
        g("num_attention_heads"),
        g("num_key_value_heads"),
        g("num_hidden_layers"),
    );
    let hd = h / nh;
    let (q, kv) = (nh * hd, nkv * hd);
    let mut t = vec![bf16_tensor("model.embed_tokens.weight", &[v, h]), bf16_tensor("model.norm.weight", &[h])];
    if !cfg["tie_word_embeddings"].as_bool().unwrap_or(false) {
        t.push(bf16_tensor("lm_head.weight", &[v, h]));
    }
    for i in 0..nl {
        let p = |s: &str| format!("model.layers.{i}.{s}");
        for (n, s) in [
            ("input_layernorm.weight", vec![h]),
            ("post_attention_layernorm.weight", vec![h]),
            ("self_attn.q_proj.weight", vec![q, h]),
            ("self_attn.k_proj.weight", vec![kv, h]),
            ("self_attn.v_proj.weight", vec![kv, h]),
            ("self_attn.o_proj.weight", vec![h, q]),
            ("mlp.gate_proj.weight", vec![ff, h]),
            ("mlp.up_proj.weight", vec![ff, h]),
            ("mlp.down_proj.weight", vec![h, ff]),
        ] {
            t.push(bf16_tensor(&p(n), &s));
        }
        if cfg["model_type"] == "qwen2" {
            for (n, s) in [("self_attn.q_proj.bias", q), ("self_attn.k_proj.bias", kv), ("self_attn.v_proj.bias", kv)] {
                t.push(bf16_tensor(&p(n), &[s]));
            }
        }
    }
    t
}

/// A fixture copied to `<temp>/<unique>/<name>/` (the converter names models after their folder).
struct Ckpt {
    _root: TempDir,
    dir: PathBuf,
}

/// Copies fixture `name` into a temp folder, letting `edit` change config and tensors, and writes the weights.
fn checkpoint_with(name: &str, edit: impl FnOnce(&mut serde_json::Value, &mut Vec<St>)) -> Ckpt {
    let root = TempDir::new(name);
    let dir = root.0.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixtures().join(name)).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let mut tensors = tensors_for(&cfg);
    edit(&mut cfg, &mut tensors);
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    write_safetensors(&dir.join("model.safetensors"), &tensors);
    Ckpt { _root: root, dir }
}

fn checkpoint(name: &str) -> Ckpt {
    checkpoint_with(name, |_, _| {})
}

fn plan_err(dir: &Path) -> ConvertError {
    match Checkpoint::open(dir) {
        Err(e) => ConvertError::Hf(e),
        Ok(c) => convert::plan(&c).expect_err("plan should fail"),
    }
}

#[test]
fn fixtures_match_convert_hf_to_gguf() {
    for name in ["llama31-tiny", "qwen25-tiny", "tinyllama-spm"] {
        let ck = checkpoint(name);
        let want = std::fs::read_to_string(fixtures().join(format!("{name}.expected.txt"))).unwrap();
        compare(name, &dump(&ck.dir, 0), &want);
    }
}

#[test]
fn special_tokens_and_template_of_llama31() {
    let ck = checkpoint("llama31-tiny");
    let ckpt = Checkpoint::open(&ck.dir).unwrap();
    let plan = convert::plan(&ckpt).unwrap();
    let m = &plan.metadata;
    assert_eq!(m.get("tokenizer.ggml.pre").and_then(MetaValue::as_str), Some("llama-bpe"));
    assert_eq!(m.get("tokenizer.ggml.bos_token_id").and_then(MetaValue::as_u32), Some(128000));
    assert_eq!(m.get("tokenizer.ggml.eos_token_id").and_then(MetaValue::as_u32), Some(128009));
    assert_eq!(m.get("tokenizer.ggml.add_bos_token"), Some(&MetaValue::Bool(true)));
    let Some(MetaValue::I32Array(types)) = m.get("tokenizer.ggml.token_type") else { panic!() };
    let Some(MetaValue::StringArray(tokens)) = m.get("tokenizer.ggml.tokens") else { panic!() };
    assert_eq!(tokens.len(), 128256);
    assert_eq!((tokens[128000].as_str(), types[128000]), ("<|begin_of_text|>", 3));
    assert_eq!((tokens[128255].as_str(), types[128255]), ("<|reserved_special_token_250|>", 3));
    assert_eq!((tokens[128009].as_str(), types[128009]), ("<|eot_id|>", 3));
    // The restricted vocabulary leaves holes, filled as the converter fills them.
    assert_eq!((tokens[127999].as_str(), types[127999]), ("[PAD127999]", 5));
    assert!(m.get("tokenizer.chat_template").and_then(MetaValue::as_str).unwrap().contains("<|start_header_id|>"));
    // rope_freqs first, no output.weight (tied embeddings), q/k permuted.
    assert_eq!(plan.tensors[0].name, "rope_freqs.weight");
    assert!(plan.tensors.iter().all(|t| t.name != "output.weight"));
    let q = plan.tensors.iter().find(|t| t.name == "blk.0.attn_q.weight").unwrap();
    assert_eq!(q.dims, [32, 32]);
    assert!(matches!(
        q.source,
        convert::Source::Checkpoint { transform: convert::Transform::PermuteRows { n_head: 4 }, .. }
    ));
    let k = plan.tensors.iter().find(|t| t.name == "blk.0.attn_k.weight").unwrap();
    assert!(matches!(
        k.source,
        convert::Source::Checkpoint { transform: convert::Transform::PermuteRows { n_head: 2 }, .. }
    ));
}

#[test]
fn hostile_safetensors_name_the_file() {
    let ck = checkpoint("llama31-tiny");
    let st = ck.dir.join("model.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    std::fs::write(&st, &bytes[..bytes.len() - 10]).unwrap();
    let e = Checkpoint::open(&ck.dir).err().unwrap();
    assert!(matches!(e, HfError::Safetensors { .. }), "{e}");
    let s = e.to_string();
    assert!(s.contains("model.safetensors") && s.contains("truncated"), "{s}");

    std::fs::write(&st, [0xff; 8]).unwrap();
    let s = Checkpoint::open(&ck.dir).err().unwrap().to_string();
    assert!(s.contains("exceeds the limit"), "{s}");

    let i64s = St { name: "model.norm.weight".into(), dtype: "I64", shape: vec![1], bytes: vec![0; 8] };
    write_safetensors(&st, &[i64s]);
    let e = Checkpoint::open(&ck.dir).err().unwrap();
    assert!(matches!(e, HfError::UnsupportedDtype { ref dtype, .. } if dtype == "I64"), "{e}");
}

#[test]
fn missing_extra_and_misshapen_tensors() {
    let ck = checkpoint_with("llama31-tiny", |_, t| t.retain(|t| t.name != "model.layers.1.mlp.up_proj.weight"));
    let e = plan_err(&ck.dir);
    assert!(matches!(e, ConvertError::MissingTensor { ref tensor, .. } if tensor == "blk.1.ffn_up.weight"), "{e}");

    let ck = checkpoint_with("llama31-tiny", |_, t| t.push(bf16_tensor("model.layers.0.mlp.experts.weight", &[4])));
    let e = plan_err(&ck.dir);
    assert!(
        matches!(e, ConvertError::UnknownTensor { ref tensor, .. } if tensor == "model.layers.0.mlp.experts.weight")
    );
    assert!(e.to_string().contains("model.safetensors"), "{e}");

    let ck = checkpoint_with("llama31-tiny", |c, _| c["intermediate_size"] = 64.into());
    let e = plan_err(&ck.dir);
    assert!(matches!(e, ConvertError::Shape { .. }), "{e}");
    assert!(
        e.to_string().contains("48") && e.to_string().contains("64") && e.to_string().contains("model.safetensors"),
        "{e}"
    );
}

#[test]
fn unsupported_architecture_lists_the_supported_ones() {
    let ck = checkpoint_with("llama31-tiny", |c, _| c["architectures"] = serde_json::json!(["GPT2LMHeadModel"]));
    let s = plan_err(&ck.dir).to_string();
    assert!(s.contains("GPT2LMHeadModel") && s.contains("LlamaForCausalLM") && s.contains("Qwen2ForCausalLM"), "{s}");
}

#[test]
fn unknown_pre_tokenizer_is_refused() {
    let ck = checkpoint("llama31-tiny");
    // Drop one merge: the check text tokenizes differently, so the fingerprint is unknown.
    let p = ck.dir.join("tokenizer.json");
    let mut tj: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    tj["model"]["merges"].as_array_mut().unwrap().remove(0);
    std::fs::write(&p, serde_json::to_string(&tj).unwrap()).unwrap();
    let e = plan_err(&ck.dir);
    assert!(matches!(e, ConvertError::UnknownPreTokenizer { .. }), "{e}");
}

/// tokenizer.json converted from SentencePiece, without tokenizer.model (gguf-py `LlamaHfVocab`).
#[test]
fn sentencepiece_tokenizer_json_without_model_file() {
    let root = TempDir::new("tinyllama-hf");
    let dir = root.0.join("tinyllama-hf");
    let ck = checkpoint("tinyllama-spm");
    std::fs::rename(&ck.dir, &dir).unwrap();
    std::fs::remove_file(dir.join("tokenizer.model")).unwrap();
    let want = std::fs::read_to_string(fixtures().join("tinyllama-hf.expected.txt")).unwrap();
    compare("tinyllama-hf", &dump(&dir, 0), &want);
}

#[test]
fn sentencepiece_vocabulary() {
    let ck = checkpoint("tinyllama-spm");
    let plan = convert::plan(&Checkpoint::open(&ck.dir).unwrap()).unwrap();
    let m = &plan.metadata;
    assert_eq!(m.get("tokenizer.ggml.model").and_then(MetaValue::as_str), Some("llama"));
    let Some(MetaValue::StringArray(tokens)) = m.get("tokenizer.ggml.tokens") else { panic!() };
    let Some(MetaValue::I32Array(types)) = m.get("tokenizer.ggml.token_type") else { panic!() };
    let Some(MetaValue::F32Array(scores)) = m.get("tokenizer.ggml.scores") else { panic!() };
    assert_eq!((tokens.len(), scores.len(), types.len()), (416, 416, 416));
    // <unk> is UNKNOWN in the model, but tokenizer_config lists it as a special added token, which wins (control);
    // <|im_start|> is a user-defined piece listed as a non-special added token, but looks special (control); then
    // a byte piece, the two tokens added by transformers, and padding.
    assert_eq!((tokens[0].as_str(), types[0]), ("<unk>", 3));
    assert_eq!((tokens[1].as_str(), types[1]), ("<s>", 3));
    assert_eq!((tokens[4].as_str(), types[4], scores[4]), ("<|im_start|>", 3, -1000.0));
    assert_eq!((tokens[5].as_str(), types[5]), ("<0x00>", 6));
    assert_eq!((tokens[400].as_str(), types[400]), ("<extra_user>", 4));
    assert_eq!((tokens[401].as_str(), types[401]), ("<|im_end|>", 3));
    assert_eq!((tokens[415].as_str(), types[415], scores[415]), ("[PAD415]", 5, -10000.0));
    assert!(m.get("tokenizer.chat_template").and_then(MetaValue::as_str).unwrap().contains("<|im_start|>"));
}

#[test]
fn corrupt_sentencepiece_model_names_the_file() {
    let ck = checkpoint("llama31-tiny");
    std::fs::write(ck.dir.join("tokenizer.model"), b"\x0a\x7f").unwrap();
    let e = plan_err(&ck.dir);
    assert!(matches!(e, ConvertError::Tokenizer { .. }), "{e}");
    assert!(e.to_string().contains("tokenizer.model"), "{e}");
}

#[test]
fn non_finite_weights_name_the_tensor() {
    let ck = checkpoint_with("llama31-tiny", |_, t| {
        let w = t.iter_mut().find(|t| t.name == "model.layers.1.self_attn.v_proj.weight").unwrap();
        w.bytes[6..8].copy_from_slice(&0x7fc0u16.to_le_bytes()); // element 3 := NaN
    });
    let ckpt = Checkpoint::open(&ck.dir).unwrap();
    let plan = convert::plan(&ckpt).unwrap();
    let v = plan.tensors.iter().find(|t| t.name == "blk.1.attn_v.weight").unwrap();
    let e = convert::load_tensor(&ckpt, v, &mut Vec::new()).unwrap_err();
    assert!(matches!(e, ConvertError::NonFinite { index: 3, .. }), "{e}");
    assert!(e.to_string().contains("blk.1.attn_v.weight") && e.to_string().contains("v_proj"), "{e}");
}

/// Splits a checkpoint's tensors over two shards with an index, as save_pretrained does.
fn shard(dir: &Path, tensors: &[St], index_edit: impl FnOnce(&mut serde_json::Value)) {
    let _ = std::fs::remove_file(dir.join("model.safetensors"));
    let (a, b) = tensors.split_at(tensors.len() / 2);
    let a: Vec<St> = a
        .iter()
        .map(|t| St { name: t.name.clone(), dtype: t.dtype, shape: t.shape.clone(), bytes: t.bytes.clone() })
        .collect();
    let b: Vec<St> = b
        .iter()
        .map(|t| St { name: t.name.clone(), dtype: t.dtype, shape: t.shape.clone(), bytes: t.bytes.clone() })
        .collect();
    write_safetensors(&dir.join("model-00001-of-00002.safetensors"), &a);
    write_safetensors(&dir.join("model-00002-of-00002.safetensors"), &b);
    let mut map = serde_json::Map::new();
    for t in &a {
        map.insert(t.name.clone(), "model-00001-of-00002.safetensors".into());
    }
    for t in &b {
        map.insert(t.name.clone(), "model-00002-of-00002.safetensors".into());
    }
    let mut index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": map});
    index_edit(&mut index);
    std::fs::write(dir.join("model.safetensors.index.json"), serde_json::to_string(&index).unwrap()).unwrap();
}

#[test]
fn shards_and_their_index_must_agree() {
    let ck = checkpoint("qwen25-tiny");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ck.dir.join("config.json")).unwrap()).unwrap();
    let tensors = tensors_for(&cfg);
    let single = dump(&ck.dir, 0);
    shard(&ck.dir, &tensors, |_| {});
    // Same plan and data from shards (tensor order follows the shards, so compare sorted lines).
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&dump(&ck.dir, 0)), sorted(&single));

    shard(&ck.dir, &tensors, |i| {
        i["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors".into();
        i["weight_map"]["ghost.weight"] = "model-00002-of-00002.safetensors".into();
    });
    let e = Checkpoint::open(&ck.dir).err().unwrap();
    assert!(
        matches!(e, HfError::IndexMismatch { ref missing, .. } if missing.contains(&"ghost.weight".to_string())),
        "{e}"
    );

    shard(&ck.dir, &tensors, |i| i["weight_map"]["model.norm.weight"] = "../escape.safetensors".into());
    assert!(Checkpoint::open(&ck.dir).err().unwrap().to_string().contains("bad shard file name"));
}

#[cfg(unix)]
#[test]
fn opens_the_hugging_face_cache_layout() {
    let src = checkpoint("qwen25-tiny");
    let root = TempDir::new("hub");
    let repo = root.0.join("models--Qwen--Qwen2.5-Tiny-Instruct");
    let rev = "0123456789abcdef0123456789abcdef01234567";
    let snap = repo.join("snapshots").join(rev);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs").join("main"), format!("{rev}\n")).unwrap();
    for (i, f) in ["config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"].iter().enumerate() {
        let blob = repo.join("blobs").join(format!("blob{i}"));
        std::fs::copy(src.dir.join(f), &blob).unwrap();
        std::os::unix::fs::symlink(format!("../../blobs/blob{i}"), snap.join(f)).unwrap();
    }
    for path in [&repo, &snap] {
        let ckpt = Checkpoint::open(path).unwrap();
        assert_eq!(ckpt.dir(), snap);
        assert_eq!(ckpt.repo_id(), Some("Qwen/Qwen2.5-Tiny-Instruct"));
        let plan = convert::plan(&ckpt).unwrap();
        let m = &plan.metadata;
        // Named after the repository, not the commit hash the snapshot folder is called.
        assert_eq!(m.get("general.name").and_then(MetaValue::as_str), Some("Qwen2.5 Tiny Instruct"));
        assert_eq!(m.get("general.organization").and_then(MetaValue::as_str), Some("Qwen"));
        assert_eq!(m.get("general.basename").and_then(MetaValue::as_str), Some("Qwen2.5-Tiny"));
    }
    let found = pocketlm::hf::cache::find_cached("Qwen/Qwen2.5-Tiny-Instruct", Some(&root.0)).unwrap();
    assert_eq!(found.dir, snap);
    std::fs::write(repo.join("refs").join("main"), "../../etc").unwrap();
    assert!(Checkpoint::open(&repo).err().unwrap().to_string().contains("not a commit hash"));
}

/// Whole real tokenizers (128,256 and 151,936 tokens; `scripts/fetch-test-tokenizers.sh` puts them in
/// `$POCKETLM_TOKENIZERS`) with tiny weights: the plan equals convert_hf_to_gguf.py's output, committed in
/// `convert_fixtures/full/`. Skipped when POCKETLM_TOKENIZERS is unset.
#[test]
fn whole_tokenizers_match_convert_hf_to_gguf() {
    let Some(toks) = std::env::var_os("POCKETLM_TOKENIZERS").map(PathBuf::from) else {
        eprintln!("POCKETLM_TOKENIZERS not set: skipped (scripts/fetch-test-tokenizers.sh fetches them)");
        return;
    };
    for name in ["llama3", "llama3_1", "qwen3"] {
        let root = TempDir::new(name);
        let dir = root.0.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let full = fixtures().join("full");
        std::fs::copy(full.join(name).join("config.json"), dir.join("config.json")).unwrap();
        for f in ["tokenizer.json", "tokenizer_config.json"] {
            std::fs::copy(toks.join(name).join(f), dir.join(f))
                .unwrap_or_else(|e| panic!("{}: {e}", toks.join(name).join(f).display()));
        }
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
        write_safetensors(&dir.join("model.safetensors"), &tensors_for(&cfg));
        let want = std::fs::read_to_string(full.join(format!("{name}.expected.txt"))).unwrap();
        compare(name, &dump(&dir, 0), &want);
    }
}
