//! The model library: `describe` on the demo GGUF, a quantization of it, the BF16 Hugging Face folder made from it
//! (plain and in the Hugging Face cache layout), tiny synthetic GGUFs and garbage; and every scanner on a fake tree
//! built in a temporary folder.

#[path = "support/demo.rs"]
mod demo;
use demo::demo_model;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use pocketlm::gguf::{GgufFile, GgufWriter, Value, ValueType};
use pocketlm::library::{
    describe, family_key, scan_all, scan_dir, scan_hf_cache, scan_lm_studio, scan_ollama, Format, LibraryError, Origin,
    Roots,
};
use pocketlm::quant::GgmlType;
use pocketlm::quantize::{CancelToken, Job, Preset, QuantizeOptions};

/// A fresh temporary folder per test (removed on drop).
struct Temp(PathBuf);

impl Temp {
    fn new(tag: &str) -> Temp {
        let dir = std::env::temp_dir().join(format!("pocketlm-library-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Temp(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// SmolLM2-135M has 134,515,008 weights: 49152×576 embeddings (tied), 30 layers of attention
/// (576·576·2 + 576·192·2) and feed-forward (3·576·1536), 61 norms of 576.
const SMOLLM2_PARAMS: u64 = 49152 * 576 + 30 * (2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536) + 61 * 576;

#[test]
fn the_demo_gguf() {
    let Some(model) = demo_model() else { return };
    let m = describe(&model).unwrap();
    assert_eq!(SMOLLM2_PARAMS, 134_515_008);
    // The file's own general.name is the training run's; the family comes from the file name.
    assert_eq!(m.name, "Smollm2 135M 8k Lc100K Mix1 Ep2");
    assert_eq!(m.family, "SmolLM2-135M-Instruct");
    assert_eq!(m.family_key, "smollm2135minstruct");
    assert_eq!(m.path, model.canonicalize().unwrap());
    assert_eq!(m.format, Format::Gguf);
    assert_eq!(m.architecture.as_deref(), Some("llama"));
    assert_eq!(m.parameters, Some(SMOLLM2_PARAMS));
    assert_eq!(m.type_label, "Q4_1");
    assert_eq!(m.size_on_disk, fs::metadata(&model).unwrap().len());
    assert!(m.runnable);
    assert_eq!((m.context_length, m.layers), (Some(8192), Some(30)));
    assert_eq!(m.repo_id, None);
    // Metadata as inspect prints it: every key in order, long arrays cut to 8 items.
    let f = GgufFile::open(&model).unwrap();
    assert_eq!(m.metadata.len(), f.metadata().len());
    assert_eq!(m.metadata[0], ("general.architecture".to_string(), "\"llama\"".to_string()));
    let tokens = &m.metadata.iter().find(|(k, _)| k == "tokenizer.ggml.tokens").unwrap().1;
    assert!(tokens.starts_with("[\"<|endoftext|>\", \"<|im_start|>\"") && tokens.ends_with(", … 49144 more]"), "{tokens}");
    // Summary: every tensor, by type and group; Q4_1 is 5 bits per weight, the F32 norms and Q8_0... push it up.
    assert_eq!(m.summary.total.tensors, 272);
    assert_eq!(m.summary.total.params, SMOLLM2_PARAMS);
    assert_eq!(m.summary.total.bytes, f.tensors().iter().map(|t| t.n_bytes).sum::<u64>());
    assert!(m.summary.by_type.iter().any(|(t, _)| *t == GgmlType::Q4_1));
    assert_eq!(m.summary.by_group.iter().map(|(_, t)| t.params).sum::<u64>(), SMOLLM2_PARAMS);
    let bpw = m.bits_per_weight.unwrap();
    assert!((5.0..6.5).contains(&bpw), "{bpw}");
    assert_eq!(bpw, m.summary.total.bits_per_weight());
}

#[test]
fn a_quantization_and_the_hugging_face_folder_are_the_same_family() {
    let Some(model) = demo_model() else { return };
    let tmp = Temp::new("family");
    let out = tmp.path().join("SmolLM2-135M-Instruct-Q4_K_M.gguf");
    let job = Job::plan(&model, &QuantizeOptions { preset: Preset::Q4_K_M, ..Default::default() }).unwrap();
    let predicted = job.predicted_file_bytes();
    job.run(&out, &mut |_| {}, &CancelToken::new()).unwrap();
    let q = describe(&out).unwrap();
    let demo = describe(&model).unwrap();
    assert_eq!(q.type_label, "Q4_K_M");
    assert_eq!(q.size_on_disk, predicted);
    assert_eq!(q.parameters, demo.parameters);
    assert_eq!(q.family, "SmolLM2-135M-Instruct");
    assert_eq!(q.family_key, demo.family_key);
    assert!(q.summary.by_type.iter().any(|(t, _)| *t == GgmlType::Q6_K), "Q4_K_M gives the embeddings Q6_K");
    assert!(q.bits_per_weight.unwrap() < demo.bits_per_weight.unwrap() + 1.0);

    let folder = model.with_file_name("SmolLM2-135M-Instruct");
    if !folder.join("config.json").is_file() {
        eprintln!("skipped the Hugging Face half: no {} (run scripts/make-demo-source.sh)", folder.display());
        return;
    }
    let hf = describe(&folder).unwrap();
    assert_eq!(hf.format, Format::HuggingFace);
    assert_eq!(hf.name, "SmolLM2-135M-Instruct");
    assert_eq!(hf.family_key, demo.family_key);
    assert_eq!(hf.type_label, "BF16");
    assert_eq!(hf.architecture.as_deref(), Some("llama"));
    assert_eq!(hf.parameters, Some(SMOLLM2_PARAMS));
    assert_eq!((hf.context_length, hf.layers), (Some(8192), Some(30)));
    assert!(!hf.runnable, "a checkpoint is quantized before it runs");
    // Every file export-hf writes counts: weights, config, tokenizer.
    let all: u64 = fs::read_dir(&folder).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert_eq!(hf.size_on_disk, all);
    assert_eq!(hf.summary.total.bytes, 2 * SMOLLM2_PARAMS, "BF16 on disk, norms included");
    assert_eq!(hf.bits_per_weight, Some(16.0));
    assert!(hf.summary.by_group.len() >= 4, "GGUF names, so groups: {:?}", hf.summary.by_group);
    assert!(hf.metadata.iter().any(|(k, v)| k == "llama.block_count" && v == "30"));

    // The same folder in the Hugging Face cache layout, files as symlinks into blobs/ (Unix only: symlinks).
    #[cfg(unix)]
    {
        let repo = tmp.path().join("hub").join("models--HuggingFaceTB--SmolLM2-135M-Instruct");
        let snap = repo.join("snapshots").join("0123abcd");
        fs::create_dir_all(&snap).unwrap();
        fs::create_dir_all(repo.join("blobs")).unwrap();
        for e in fs::read_dir(&folder).unwrap() {
            let e = e.unwrap();
            let blob = repo.join("blobs").join(e.file_name());
            std::os::unix::fs::symlink(e.path().canonicalize().unwrap(), &blob).unwrap();
            std::os::unix::fs::symlink(&blob, snap.join(e.file_name())).unwrap();
        }
        write(&repo.join("refs").join("main"), "0123abcd\n");
        let cached = describe(&repo).unwrap();
        assert_eq!(cached.repo_id.as_deref(), Some("HuggingFaceTB/SmolLM2-135M-Instruct"));
        assert_eq!(cached.name, "SmolLM2-135M-Instruct");
        assert_eq!(cached.path, snap.canonicalize().unwrap());
        assert_eq!(cached.size_on_disk, hf.size_on_disk, "symlinks count at their targets' size");
        let found = scan_hf_cache(&tmp.path().join("hub"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, snap);
        assert_eq!(describe(&found[0].path).unwrap().family_key, demo.family_key);
    }
}

/// A small model written with the engine's writer: `kvs`, then two matrices in `ty` and a norm in F32.
fn tiny_gguf(path: &Path, kvs: Vec<(&str, Value)>, ty: GgmlType) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = GgufWriter::create(path).unwrap();
    for (k, v) in kvs {
        w.add_kv(k, v).unwrap();
    }
    let tensors: [(&str, [u64; 2], GgmlType); 3] = [
        ("token_embd.weight", [64, 100], ty),
        ("blk.0.attn_q.weight", [64, 64], ty),
        ("blk.0.attn_norm.weight", [64, 1], GgmlType::F32),
    ];
    for (name, dims, t) in &tensors {
        let dims: &[u64] = if dims[1] == 1 { &dims[..1] } else { dims };
        w.add_tensor_info(*name, dims, *t).unwrap();
    }
    for (name, dims, t) in &tensors {
        let n: u64 = dims.iter().product();
        w.write_tensor_data(name, &vec![0u8; t.row_size(n).unwrap() as usize]).unwrap();
    }
    w.commit().unwrap();
}

#[test]
fn tiny_synthetic_ggufs() {
    let tmp = Temp::new("tiny");
    // No name, no file type: the file stem, and the type holding most weights.
    let bare = tmp.path().join("tiny-qwen.Q8_0.gguf");
    tiny_gguf(
        &bare,
        vec![
            ("general.architecture", "qwen2".into()),
            ("qwen2.block_count", Value::U32(1)),
            ("qwen2.context_length", Value::U32(512)),
        ],
        GgmlType::Q8_0,
    );
    let m = describe(&bare).unwrap();
    assert_eq!(m.name, "tiny-qwen.Q8_0");
    assert_eq!(m.family, "tiny-qwen");
    assert_eq!(m.type_label, "Q8_0");
    assert!(m.runnable);
    assert_eq!((m.context_length, m.layers), (Some(512), Some(1)));
    assert_eq!(m.parameters, Some(64 * 100 + 64 * 64 + 64));
    assert_eq!(m.summary.total.tensors, 3);
    assert_eq!(m.size_on_disk, fs::metadata(&bare).unwrap().len());

    // basename + size label; file type as text (gguf-py's enum name); an architecture the engine does not run.
    let named = tmp.path().join("model.gguf");
    tiny_gguf(
        &named,
        vec![
            ("general.architecture", "gemma2".into()),
            ("general.basename", "Tiny".into()),
            ("general.size_label", "10K".into()),
            ("general.file_type", "MOSTLY_Q4_1".into()),
        ],
        GgmlType::F16,
    );
    let m = describe(&named).unwrap();
    assert_eq!(m.name, "Tiny-10K");
    assert_eq!(m.family, "Tiny-10K", "a generic file name gives way to the model's own");
    assert_eq!(m.type_label, "Q4_1");
    assert!(!m.runnable);
    assert_eq!(m.architecture.as_deref(), Some("gemma2"));

    // A llama with experts is not runnable; a numeric file type maps to llama.cpp's name.
    let moe = tmp.path().join("moe.gguf");
    tiny_gguf(
        &moe,
        vec![
            ("general.architecture", "llama".into()),
            ("general.name", "Tiny MoE".into()),
            ("general.file_type", Value::U32(7)),
            ("llama.expert_count", Value::U32(8)),
            ("test.array", Value::Array(ValueType::U32, (0..20).map(Value::U32).collect())),
        ],
        GgmlType::Q8_0,
    );
    let m = describe(&moe).unwrap();
    assert_eq!((m.name.as_str(), m.type_label.as_str(), m.runnable), ("Tiny MoE", "Q8_0", false));
    assert_eq!(m.family_key, family_key("moe.gguf"), "a file name of its own names the family");
    let arr = &m.metadata.iter().find(|(k, _)| k == "test.array").unwrap().1;
    assert_eq!(arr, "[0, 1, 2, 3, 4, 5, 6, 7, … 12 more]");

    // No tensors at all: described, with no parameter count.
    let empty = tmp.path().join("empty-model.gguf");
    let mut w = GgufWriter::create(&empty).unwrap();
    w.add_kv("general.architecture", "llama".into()).unwrap();
    w.commit().unwrap();
    let m = describe(&empty).unwrap();
    assert_eq!((m.parameters, m.bits_per_weight, m.type_label.as_str()), (None, None, ""));
}

fn error_of(path: &Path) -> (LibraryError, String) {
    let e = describe(path).expect_err("not a model");
    let text = e.to_string();
    assert!(text.contains(&path.display().to_string()), "the error names the path: {text}");
    (e, text)
}

#[test]
fn garbage_is_a_clear_error_naming_the_file() {
    let tmp = Temp::new("garbage");
    let p = |n: &str| tmp.path().join(n);

    write(&p("notes.txt"), "hello, this is not a model\n");
    let (e, text) = error_of(&p("notes.txt"));
    assert!(matches!(e, LibraryError::NotAModel { .. }) && text.contains("not a GGUF model"), "{text}");

    write(&p("empty.gguf"), b"");
    let (_, text) = error_of(&p("empty.gguf"));
    assert!(text.contains("an empty file"), "{text}");

    write(&p("short.gguf"), b"GG");
    let (_, text) = error_of(&p("short.gguf"));
    assert!(text.contains("too short"), "{text}");

    // Truncated: a real GGUF cut at every kind of place (header, metadata, tensor infos, data).
    let whole = p("whole.gguf");
    tiny_gguf(&whole, vec![("general.architecture", "llama".into()), ("general.name", "x".repeat(100).into())], GgmlType::Q8_0);
    let bytes = fs::read(&whole).unwrap();
    for cut in [4, 10, 30, 90, 200, 300, bytes.len() - 1] {
        let path = p(&format!("cut-{cut}.gguf"));
        write(&path, &bytes[..cut]);
        let (e, text) = error_of(&path);
        assert!(matches!(e, LibraryError::Gguf(_)), "cut at {cut}: {text}");
    }
    let (_, text) = error_of(&p("cut-90.gguf"));
    assert!(text.contains("truncated"), "{text}");

    // Random bytes after a valid magic.
    let mut noise = b"GGUF".to_vec();
    noise.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    write(&p("noise.gguf"), &noise);
    error_of(&p("noise.gguf"));

    error_of(&p("does-not-exist.gguf"));

    // Folders: nothing in it; config.json without weights; config.json that is not JSON; weights that are not
    // safetensors.
    fs::create_dir_all(p("empty-folder")).unwrap();
    let (_, text) = error_of(&p("empty-folder"));
    assert!(text.contains("config.json"), "{text}");
    write(&p("no-weights/config.json"), r#"{"architectures": ["LlamaForCausalLM"]}"#);
    let (_, text) = error_of(&p("no-weights"));
    assert!(text.contains("safetensors"), "{text}");
    write(&p("bad-config/config.json"), "{ not json");
    write(&p("bad-config/model.safetensors"), b"");
    let (_, text) = error_of(&p("bad-config"));
    assert!(text.contains("config.json"), "{text}");
    write(&p("bad-weights/config.json"), r#"{"architectures": ["LlamaForCausalLM"]}"#);
    write(&p("bad-weights/model.safetensors"), [0xffu8; 64]);
    let (_, text) = error_of(&p("bad-weights"));
    assert!(text.contains("model.safetensors"), "{text}");
}

/// An Ollama manifest whose model layer is blob `digest`.
fn manifest(digest: &str) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
           "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:cc","size":1}},
           "layers":[{{"mediaType":"application/vnd.ollama.image.template","digest":"sha256:aa","size":10}},
                     {{"mediaType":"application/vnd.ollama.image.model","digest":"{digest}","size":1000}}]}}"#
    )
}

#[test]
fn scan_ollama_follows_manifests_to_blobs() {
    let tmp = Temp::new("ollama");
    let root = tmp.path();
    let hex1 = "1".repeat(64);
    let hex2 = "ab".repeat(32);
    let blob1 = root.join("blobs").join(format!("sha256-{hex1}"));
    let blob2 = root.join("blobs").join(format!("sha256-{hex2}"));
    tiny_gguf(&blob1, vec![("general.architecture", "llama".into()), ("general.name", "Llama 3.2 1B Instruct".into())], GgmlType::Q8_0);
    write(&blob2, b"GGUF");
    write(&root.join("blobs/sha256-aa"), b"{{ .Prompt }}");
    let m = root.join("manifests");
    write(&m.join("registry.ollama.ai/library/llama3.2/1b"), manifest(&format!("sha256:{hex1}")));
    write(&m.join("registry.ollama.ai/library/llama3.2/latest"), manifest(&format!("sha256:{hex1}")));
    write(&m.join("registry.ollama.ai/someone/tiny/q8"), manifest(&format!("sha256:{hex2}")));
    write(&m.join("hf.co/bartowski/SmolLM2-GGUF/Q4_K_M"), manifest(&format!("sha256:{hex2}")));
    // Skipped, none fatal: bad JSON, no model layer, a blob that is gone, a digest that climbs out of blobs/, a
    // manifest over the size limit, a directory where a tag file should be.
    write(&m.join("registry.ollama.ai/library/broken/latest"), "{ this is not json");
    write(&m.join("registry.ollama.ai/library/nomodel/latest"), r#"{"layers":[{"mediaType":"x","digest":"sha256:aa"}]}"#);
    write(&m.join("registry.ollama.ai/library/gone/latest"), manifest(&format!("sha256:{}", "9".repeat(64))));
    write(&m.join("registry.ollama.ai/library/evil/latest"), manifest("sha256:../../../etc/passwd"));
    let mut huge = manifest(&format!("sha256:{hex1}"));
    huge.push_str(&" ".repeat(1 << 20));
    write(&m.join("registry.ollama.ai/library/huge/latest"), huge);
    fs::create_dir_all(m.join("registry.ollama.ai/library/odd/latest")).unwrap();

    let found = scan_ollama(root);
    let got: Vec<(&str, &Path)> = found.iter().map(|f| (f.name_hint.as_deref().unwrap(), f.path.as_path())).collect();
    assert_eq!(
        got,
        [
            ("hf.co/bartowski/SmolLM2-GGUF:Q4_K_M", blob2.as_path()),
            ("llama3.2:1b", blob1.as_path()),
            ("llama3.2:latest", blob1.as_path()),
            ("someone/tiny:q8", blob2.as_path()),
        ]
    );
    assert!(found.iter().all(|f| f.origin == Origin::Ollama));
    // A blob is a GGUF without an extension; it describes by its own name, the digest is no family.
    let d = describe(&found[1].path).unwrap();
    assert_eq!((d.name.as_str(), d.family_key.as_str()), ("Llama 3.2 1B Instruct", "llama321binstruct"));
    assert!(describe(&found[0].path).is_err(), "a truncated blob is an error, not a panic");

    assert!(scan_ollama(&root.join("nowhere")).is_empty());
}

/// A minimal Hugging Face folder: config.json and an (empty-headed) safetensors file; enough to be found.
fn fake_hf(dir: &Path) {
    write(&dir.join("config.json"), r#"{"architectures": ["LlamaForCausalLM"]}"#);
    write(&dir.join("model.safetensors"), b"\x02\x00\x00\x00\x00\x00\x00\x00{}");
}

fn set_mtime(dir: &Path, secs_ago: u64) {
    let t = SystemTime::now() - Duration::from_secs(secs_ago);
    fs::File::open(dir).unwrap().set_modified(t).unwrap();
}

#[test]
fn scan_hf_cache_takes_one_snapshot_per_repository() {
    let tmp = Temp::new("hfcache");
    let root = tmp.path();
    // Two snapshots, no ref: the newer one.
    let a = root.join("models--org--alpha/snapshots");
    fake_hf(&a.join("old111"));
    fake_hf(&a.join("new222"));
    set_mtime(&a.join("old111"), 1000);
    set_mtime(&a.join("new222"), 10);
    // Two snapshots and refs/main naming the older: refs/main wins.
    let b = root.join("models--beta/snapshots");
    fake_hf(&b.join("aaa"));
    fake_hf(&b.join("bbb"));
    set_mtime(&b.join("aaa"), 1000);
    set_mtime(&b.join("bbb"), 10);
    write(&root.join("models--beta/refs/main"), "aaa");
    // refs/main naming a snapshot that is not there (or not usable): the newest usable one.
    let c = root.join("models--org--gamma/snapshots");
    fake_hf(&c.join("ccc"));
    write(&root.join("models--org--gamma/refs/main"), "../../escape");
    // Not found: a snapshot without weights, a dataset, stray files.
    write(&root.join("models--org--noweights/snapshots/x/config.json"), "{}");
    fake_hf(&root.join("datasets--org--data/snapshots/x"));
    write(&root.join("version.txt"), "1");

    let found = scan_hf_cache(root);
    let got: Vec<(&str, PathBuf)> = found.iter().map(|f| (f.name_hint.as_deref().unwrap(), f.path.clone())).collect();
    assert_eq!(
        got,
        [("beta", b.join("aaa")), ("org/alpha", a.join("new222")), ("org/gamma", c.join("ccc"))],
        "one snapshot per repository, in folder-name order"
    );
    assert!(found.iter().all(|f| f.origin == Origin::HfCache));
    assert!(scan_hf_cache(&root.join("nowhere")).is_empty());
}

#[test]
fn scan_lm_studio_and_scan_dir() {
    let tmp = Temp::new("lms");
    let root = tmp.path().join("lmstudio");
    let repo = root.join("lmstudio-community/SmolLM2-135M-Instruct-GGUF");
    write(&repo.join("SmolLM2-135M-Instruct-Q4_K_M.gguf"), b"GGUF");
    write(&repo.join("SmolLM2-135M-Instruct-Q8_0.gguf"), b"GGUF");
    write(&repo.join("mmproj-SmolVLM-f16.gguf"), b"GGUF");
    write(&repo.join("README.md"), "hi");
    write(&root.join("loose.gguf"), b"GGUF"); // not <publisher>/<repo>/: not LM Studio's layout
    let found = scan_lm_studio(&root);
    let hints: Vec<&str> = found.iter().map(|f| f.name_hint.as_deref().unwrap()).collect();
    assert_eq!(hints, ["lmstudio-community/SmolLM2-135M-Instruct-Q4_K_M", "lmstudio-community/SmolLM2-135M-Instruct-Q8_0"]);
    assert_eq!(found[0].path, repo.join("SmolLM2-135M-Instruct-Q4_K_M.gguf"));
    assert!(found.iter().all(|f| f.origin == Origin::LmStudio));

    let dir = tmp.path().join("mine");
    tiny_gguf(&dir.join("tiny.Q8_0.gguf"), vec![("general.architecture", "llama".into())], GgmlType::Q8_0);
    write(&dir.join(".tiny-Q4_K_M.gguf.partial-123"), b"GGUF"); // a writer's temporary file
    write(&dir.join(".hidden.gguf"), b"GGUF");
    write(&dir.join("mmproj-x.gguf"), b"GGUF");
    write(&dir.join("notes.txt"), "x");
    fake_hf(&dir.join("SmolLM2-135M-Instruct"));
    fs::create_dir_all(dir.join("empty-sub")).unwrap();
    let found = scan_dir(&dir);
    let got: Vec<(&str, PathBuf)> = found.iter().map(|f| (f.name_hint.as_deref().unwrap(), f.path.clone())).collect();
    assert_eq!(got, [("SmolLM2-135M-Instruct", dir.join("SmolLM2-135M-Instruct")), ("tiny.Q8_0", dir.join("tiny.Q8_0.gguf"))]);
    assert!(found.iter().all(|f| f.origin == Origin::Folder));
    assert_eq!(describe(&found[1].path).unwrap().type_label, "Q8_0");

    // All at once, a folder given twice listed once.
    let roots = Roots { lm_studio: vec![root.clone()], folders: vec![dir.clone(), dir.clone()], ..Default::default() };
    assert_eq!(scan_all(&roots).len(), 4);
}
