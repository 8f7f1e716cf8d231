//! `export-hf` round trips: GGUF → Hugging Face folder → our converter gives back the GGUF's dequantized tensors bit
//! for bit (at `--dtype f32`), the same names and shapes, hyperparameters and tokenizer.
//!
//! The synthetic models are made here: a random Llama (GQA, untied, llama3 RoPE scaling, so `rope_freqs.weight`)
//! and a random Qwen2 (q/k/v biases, tied) as Hugging Face folders with the Llama 3.1 tokenizer fixture restricted
//! to llama.cpp's check text (still fingerprinted as `llama-bpe`), converted by our converter and written with
//! `GgufWriter` in a mix of ggml types. The real SmolLM2-135M-Instruct Q4_1 file is checked when present
//! (`POCKETLM_DEMO_MODEL`, or `models/` as `scripts/fetch-demo-model.sh` leaves it).

#[path = "support/demo.rs"]
mod demo;
use demo::demo_model;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use pocketlm::convert::{self, MetaValue};
use pocketlm::export::{export_hf, CancelToken, Dtype, ExportError, ExportOptions, ExportReport};
use pocketlm::gguf::{GgufFile, GgufWriter, Value, ValueType};
use pocketlm::hf::Checkpoint;
use pocketlm::quant::block::{bf16_to_fp32, fp16_to_fp32, fp32_to_bf16, fp32_to_fp16};
use pocketlm::quant::{self, GgmlType};
use serde_json::json;

/// A fresh, empty scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pocketlm-export-test-{}-{name}", std::process::id()));
    cleanup(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Removes a scratch folder, unless `POCKETLM_KEEP_SCRATCH` is set (to look at the folders by hand, or run
/// llama.cpp's converter on them).
fn cleanup(dir: &Path) {
    if std::env::var_os("POCKETLM_KEEP_SCRATCH").is_none() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/convert_fixtures").join(rel)
}

/// Deterministic weights: a xorshift generator scaled to ±`scale`, with an offset so norms sit near 1.
fn weights(n: usize, seed: u64, scale: f32, offset: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            offset + scale * ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0)
        })
        .collect()
}

/// Writes a safetensors file of F32 tensors (name order, as the reference writer does for one dtype).
fn write_safetensors(path: &Path, tensors: &[(String, Vec<u64>, Vec<f32>)]) {
    let mut sorted: Vec<&(String, Vec<u64>, Vec<f32>)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape, data) in &sorted {
        let end = offset + data.len() * 4;
        header.insert(name.clone(), json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}));
        offset = end;
    }
    let mut h = serde_json::to_vec(&header).unwrap();
    h.resize(h.len().next_multiple_of(8), b' ');
    let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&h);
    for (_, _, data) in sorted {
        bytes.extend(data.iter().flat_map(|v| v.to_le_bytes()));
    }
    std::fs::write(path, bytes).unwrap();
}

#[derive(Clone, Copy, PartialEq)]
enum Arch {
    Llama,
    Qwen2,
}

const VOCAB: u64 = 128256; // the Llama 3.1 fixture's ids go up to 128255
const HIDDEN: u64 = 32;
const HEADS: u64 = 4;
const KV_HEADS: u64 = 2;
const HEAD_DIM: u64 = HIDDEN / HEADS;
const FFN: u64 = 256; // a K-quant row for ffn_down
const LAYERS: u64 = 2;

/// A random Hugging Face checkpoint with the Llama 3.1 tokenizer fixture.
fn synthetic_checkpoint(dir: &Path, arch: Arch) {
    let llama = arch == Arch::Llama;
    let mut config = json!({
        "architectures": [if llama { "LlamaForCausalLM" } else { "Qwen2ForCausalLM" }],
        "model_type": if llama { "llama" } else { "qwen2" },
        "vocab_size": VOCAB,
        "hidden_size": HIDDEN,
        "intermediate_size": FFN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "rope_theta": if llama { 500000.0 } else { 1000000.0 },
        "tie_word_embeddings": !llama,
        "bos_token_id": 128000,
        "eos_token_id": 128009,
        "torch_dtype": "float32"
    });
    if llama {
        config["rope_scaling"] = json!({
            "factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192, "rope_type": "llama3"
        });
    }
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config).unwrap()).unwrap();
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixture(&format!("llama31-tiny/{f}")), dir.join(f)).unwrap();
    }
    let mut tensors = Vec::new();
    let mut seed = 1;
    let mut add = |name: String, shape: Vec<u64>, scale: f32, offset: f32| {
        seed += 1;
        let n = shape.iter().product::<u64>() as usize;
        tensors.push((name, shape, weights(n, seed, scale, offset)));
    };
    add("model.embed_tokens.weight".into(), vec![VOCAB, HIDDEN], 0.5, 0.0);
    if llama {
        add("lm_head.weight".into(), vec![VOCAB, HIDDEN], 0.5, 0.0);
    }
    add("model.norm.weight".into(), vec![HIDDEN], 0.2, 1.0);
    for i in 0..LAYERS {
        let p = |s: &str| format!("model.layers.{i}.{s}");
        add(p("input_layernorm.weight"), vec![HIDDEN], 0.2, 1.0);
        add(p("post_attention_layernorm.weight"), vec![HIDDEN], 0.2, 1.0);
        add(p("self_attn.q_proj.weight"), vec![HEADS * HEAD_DIM, HIDDEN], 0.3, 0.0);
        add(p("self_attn.k_proj.weight"), vec![KV_HEADS * HEAD_DIM, HIDDEN], 0.3, 0.0);
        add(p("self_attn.v_proj.weight"), vec![KV_HEADS * HEAD_DIM, HIDDEN], 0.3, 0.0);
        add(p("self_attn.o_proj.weight"), vec![HIDDEN, HEADS * HEAD_DIM], 0.3, 0.0);
        add(p("mlp.gate_proj.weight"), vec![FFN, HIDDEN], 0.3, 0.0);
        add(p("mlp.up_proj.weight"), vec![FFN, HIDDEN], 0.3, 0.0);
        add(p("mlp.down_proj.weight"), vec![HIDDEN, FFN], 0.3, 0.0);
        if !llama {
            add(p("self_attn.q_proj.bias"), vec![HEADS * HEAD_DIM], 0.1, 0.0);
            add(p("self_attn.k_proj.bias"), vec![KV_HEADS * HEAD_DIM], 0.1, 0.0);
            add(p("self_attn.v_proj.bias"), vec![KV_HEADS * HEAD_DIM], 0.1, 0.0);
        }
    }
    write_safetensors(&dir.join("model.safetensors"), &tensors);
}

/// A GGUF metadata value for a converter value.
fn to_value(m: &MetaValue) -> Value {
    // An if-chain: MetaValue may gain variants this test does not need.
    if let MetaValue::U32(x) = m {
        Value::U32(*x)
    } else if let MetaValue::I32(x) = m {
        Value::I32(*x)
    } else if let MetaValue::F32(x) = m {
        Value::F32(*x)
    } else if let MetaValue::Bool(x) = m {
        Value::Bool(*x)
    } else if let MetaValue::String(x) = m {
        Value::String(x.clone())
    } else if let MetaValue::StringArray(x) = m {
        Value::Array(ValueType::String, x.iter().map(|s| Value::String(s.clone())).collect())
    } else if let MetaValue::I32Array(x) = m {
        Value::Array(ValueType::I32, x.iter().map(|v| Value::I32(*v)).collect())
    } else {
        panic!("no GGUF value for {m:?}")
    }
}

/// The type each synthetic tensor is stored in: a spread of codecs, K-quants where rows allow.
fn type_for(name: &str, ne0: u64) -> GgmlType {
    let ty = match name.split('.').collect::<Vec<_>>().as_slice() {
        ["token_embd", ..] => GgmlType::Q8_0,
        ["output", "weight"] => GgmlType::Q5_1,
        [_, "0", "attn_q", "weight"] => GgmlType::Q4_0,
        [_, _, "attn_q", "weight"] => GgmlType::Q5_0,
        [_, _, "attn_k", "weight"] => GgmlType::Q4_1,
        [_, _, "attn_v", "weight"] => GgmlType::Q8_0,
        [_, _, "attn_output", "weight"] => GgmlType::F16,
        [_, _, "ffn_gate", "weight"] => GgmlType::BF16,
        [_, _, "ffn_up", "weight"] => GgmlType::Q5_1,
        [_, "0", "ffn_down", "weight"] => GgmlType::Q4_K,
        [_, _, "ffn_down", "weight"] => GgmlType::Q6_K,
        _ => GgmlType::F32,
    };
    assert_eq!(ne0 % ty.block_size() as u64, 0, "{name}");
    ty
}

/// Everything needed to write a GGUF file, editable by the tests that want a broken one.
#[derive(Clone)]
struct Model {
    kvs: Vec<(String, Value)>,
    tensors: Vec<(String, Vec<u64>, GgmlType, Vec<u8>)>,
}

impl Model {
    /// Converts a checkpoint with our converter and quantizes it with [`type_for`].
    fn from_checkpoint(dir: &Path) -> Model {
        let ckpt = Checkpoint::open(dir).unwrap_or_else(|e| panic!("{e}"));
        let plan = convert::plan(&ckpt).unwrap_or_else(|e| panic!("{e}"));
        let kvs = plan.metadata.entries().iter().map(|(k, v)| (k.clone(), to_value(v))).collect();
        let mut tensors = Vec::new();
        let mut buf = Vec::new();
        for t in &plan.tensors {
            convert::load_tensor(&ckpt, t, &mut buf).unwrap_or_else(|e| panic!("{e}"));
            let ty = type_for(&t.name, t.dims[0]);
            let mut bytes = vec![0u8; quant::bytes_for(ty, buf.len()).unwrap()];
            quant::quantize(ty, &buf, t.dims[0] as usize, &mut bytes).unwrap();
            tensors.push((t.name.clone(), t.dims.clone(), ty, bytes));
        }
        Model { kvs, tensors }
    }

    fn write(&self, path: &Path) {
        let mut w = GgufWriter::create(path).unwrap();
        for (k, v) in &self.kvs {
            w.add_kv(k.clone(), v.clone()).unwrap();
        }
        for (name, dims, ty, _) in &self.tensors {
            w.add_tensor_info(name.clone(), dims, *ty).unwrap();
        }
        for (name, _, _, bytes) in &self.tensors {
            w.write_tensor_data(name, bytes).unwrap();
        }
        w.commit().unwrap();
    }

    fn set(&mut self, key: &str, v: Option<Value>) {
        self.kvs.retain(|(k, _)| k != key);
        if let Some(v) = v {
            self.kvs.push((key.into(), v));
        }
    }
}

fn export(gguf: &Path, out: &Path, dtype: Dtype, force: bool) -> Result<ExportReport, ExportError> {
    let opts = ExportOptions { dtype, force };
    let mut seen = 0;
    let r = export_hf(gguf, out, &opts, &CancelToken::new(), &mut |p| {
        seen += 1;
        assert_eq!(p.tensor, seen);
        assert!(p.bytes_done <= p.bytes_total);
    });
    if let Ok(r) = &r {
        assert_eq!(seen, r.tensors);
    }
    r
}

/// What a GGUF's tensor dequantizes to.
fn dequantized(g: &GgufFile, name: &str) -> Vec<f32> {
    let t = g.tensor(name).unwrap_or_else(|| panic!("no {name}"));
    let mut v = vec![0f32; t.n_elements() as usize];
    quant::dequantize(t.ty, g.tensor_data(t), &mut v).unwrap();
    v
}

/// Converts `out` with our converter and checks it against the GGUF `gguf`: tensor names and dims equal, each
/// tensor's data equal to `expect(dequantized GGUF value)` bit for bit, and every non-`general.*` key equal — the
/// converter may add only keys whose value the GGUF implies by omission.
fn assert_converts_back(gguf: &Path, out: &Path, expect: impl Fn(f32) -> f32) {
    let g = GgufFile::open(gguf).unwrap();
    let ckpt = Checkpoint::open(out).unwrap_or_else(|e| panic!("{e}"));
    let plan = convert::plan(&ckpt).unwrap_or_else(|e| panic!("{e}"));

    let want: BTreeSet<&str> = g.tensors().iter().map(|t| t.name.as_str()).collect();
    let got: BTreeSet<&str> = plan.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(got, want);
    let mut buf = Vec::new();
    for t in &plan.tensors {
        let src = g.tensor(&t.name).unwrap();
        assert_eq!(t.dims, src.dims, "{}", t.name);
        convert::load_tensor(&ckpt, t, &mut buf).unwrap_or_else(|e| panic!("{e}"));
        let orig = dequantized(&g, &t.name);
        // rope_freqs is regenerated by the converter from config.json: it must come out exactly, whatever dtype.
        let exact = t.name == "rope_freqs.weight";
        let bad = orig.iter().zip(&buf).position(|(o, b)| {
            let w = if exact { *o } else { expect(*o) };
            w.to_bits() != b.to_bits()
        });
        if let Some(i) = bad {
            panic!("{}: element {i}: GGUF {} → expected {}, got {}", t.name, orig[i], expect(orig[i]), buf[i]);
        }
        assert_eq!(buf.len(), orig.len(), "{}", t.name);
    }

    let arch = g.architecture().unwrap().to_string();
    let head_dim = g.get_u64(&format!("{arch}.embedding_length")).unwrap()
        / g.get_u64(&format!("{arch}.attention.head_count")).unwrap();
    for (k, v) in g.metadata() {
        if k.starts_with("general.") {
            continue;
        }
        let m = plan.metadata.get(k).unwrap_or_else(|| panic!("{k}: missing after the round trip"));
        assert_eq!(&to_value(m), v, "{k}");
    }
    for (k, m) in plan.metadata.entries() {
        if k.starts_with("general.") || g.get(k).is_some() {
            continue;
        }
        // Keys older converters left out, whose value the file implies.
        let implied = match k.as_str() {
            "tokenizer.ggml.add_eos_token" | "tokenizer.ggml.add_sep_token" => Some(Value::Bool(false)),
            k if k.ends_with(".attention.key_length") || k.ends_with(".attention.value_length") => {
                Some(Value::U32(head_dim as u32))
            }
            _ => None,
        };
        assert_eq!(Some(to_value(m)), implied, "{k}: added by the round trip");
    }
}

fn ident(x: f32) -> f32 {
    x
}

/// Builds the synthetic GGUF for `arch` under `dir`.
fn synthetic_gguf(dir: &Path, arch: Arch) -> (Model, PathBuf) {
    let hf = dir.join("source-hf");
    std::fs::create_dir_all(&hf).unwrap();
    synthetic_checkpoint(&hf, arch);
    let model = Model::from_checkpoint(&hf);
    let path = dir.join("model.gguf");
    model.write(&path);
    (model, path)
}

#[test]
fn synthetic_llama_round_trips() {
    let dir = scratch("llama");
    let (model, gguf) = synthetic_gguf(&dir, Arch::Llama);
    assert!(model.tensors.iter().any(|t| t.0 == "rope_freqs.weight"));
    assert!(model.tensors.iter().any(|t| t.0 == "output.weight"));

    let out = dir.join("f32");
    let r = export(&gguf, &out, Dtype::F32, false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((r.pre.as_str(), r.tensors), ("llama-bpe", 2 + 1 + 9 * LAYERS as usize));
    assert!(r.not_carried.is_empty(), "{:?}", r.not_carried);
    assert_converts_back(&gguf, &out, ident);
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["rope_scaling"]["factor"], 32.0);
    assert_eq!(config["tie_word_embeddings"], false);
    assert_eq!(config["torch_dtype"], "float32");
    assert_eq!(config["num_key_value_heads"], KV_HEADS);

    // Narrowed exports hold the dequantized values rounded to nearest even.
    let out = dir.join("bf16");
    export(&gguf, &out, Dtype::BF16, false).unwrap_or_else(|e| panic!("{e}"));
    assert_converts_back(&gguf, &out, |x| bf16_to_fp32(fp32_to_bf16(x)));
    let out = dir.join("f16");
    export(&gguf, &out, Dtype::F16, false).unwrap_or_else(|e| panic!("{e}"));
    assert_converts_back(&gguf, &out, |x| fp16_to_fp32(fp32_to_fp16(x)));
    cleanup(&dir);
}

#[test]
fn synthetic_qwen2_round_trips() {
    let dir = scratch("qwen2");
    let (model, gguf) = synthetic_gguf(&dir, Arch::Qwen2);
    assert!(model.tensors.iter().any(|t| t.0 == "blk.1.attn_k.bias"));
    let out = dir.join("f32");
    export(&gguf, &out, Dtype::F32, false).unwrap_or_else(|e| panic!("{e}"));
    assert_converts_back(&gguf, &out, ident);
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "Qwen2ForCausalLM");
    assert_eq!(config["tie_word_embeddings"], true);
    assert_eq!(config["rope_theta"], 1000000.0);

    // RoPE scaling stored as keys (linear, yarn) goes to rope_scaling and comes back key for key.
    let mut m = model.clone();
    m.set("qwen2.rope.scaling.type", Some(Value::String("yarn".into())));
    m.set("qwen2.rope.scaling.factor", Some(Value::F32(4.0)));
    m.set("qwen2.rope.scaling.original_context_length", Some(Value::U32(32768)));
    m.set("qwen2.rope.scaling.yarn_beta_fast", Some(Value::F32(32.0)));
    let yarn = dir.join("yarn.gguf");
    m.write(&yarn);
    let out = dir.join("yarn");
    export(&yarn, &out, Dtype::F32, false).unwrap_or_else(|e| panic!("{e}"));
    assert_converts_back(&yarn, &out, ident);
    m.set("qwen2.rope.scaling.type", Some(Value::String("linear".into())));
    m.set("qwen2.rope.scaling.original_context_length", None);
    m.set("qwen2.rope.scaling.yarn_beta_fast", None);
    let linear = dir.join("linear.gguf");
    m.write(&linear);
    let out = dir.join("linear");
    export(&linear, &out, Dtype::F32, false).unwrap_or_else(|e| panic!("{e}"));
    assert_converts_back(&linear, &out, ident);
    cleanup(&dir);
}

/// The export's error for `model`, written to a scratch file.
fn export_error(dir: &Path, name: &str, model: &Model) -> String {
    let path = dir.join(format!("{name}.gguf"));
    model.write(&path);
    let out = dir.join(format!("{name}-out"));
    let e = export(&path, &out, Dtype::F32, false).expect_err(name).to_string();
    assert!(!out.exists(), "{name}: an output folder after an error");
    eprintln!("{name}: {e}");
    e
}

#[test]
fn bad_input_is_refused_with_file_and_key_or_tensor() {
    let dir = scratch("bad");
    let (model, _) = synthetic_gguf(&dir, Arch::Llama);

    let mut m = model.clone();
    m.set("general.architecture", Some(Value::String("gpt2".into())));
    let e = export_error(&dir, "gpt2", &m);
    assert!(e.contains("gpt2.gguf") && e.contains("\"gpt2\"") && e.contains("llama, qwen2"), "{e}");

    let mut m = model.clone();
    m.set("llama.block_count", None);
    let e = export_error(&dir, "no-layers", &m);
    assert!(e.contains("no-layers.gguf") && e.contains("llama.block_count"), "{e}");

    let mut m = model.clone();
    m.set("tokenizer.ggml.pre", Some(Value::String("deepseek-llm".into())));
    let e = export_error(&dir, "pre", &m);
    assert!(e.contains("tokenizer.ggml.pre") && e.contains("deepseek-llm") && e.contains("smollm"), "{e}");

    let mut m = model.clone();
    m.set("tokenizer.ggml.model", Some(Value::String("llama".into())));
    let e = export_error(&dir, "spm", &m);
    assert!(e.contains("tokenizer.ggml.model") && e.contains("SentencePiece"), "{e}");

    // A type we cannot dequantize (IQ2_XXS: 66 bytes per 256 weights).
    let mut m = model.clone();
    let t = m.tensors.iter_mut().find(|t| t.0 == "blk.0.ffn_down.weight").unwrap();
    t.2 = GgmlType::IQ2_XXS;
    t.3 = vec![0; quant::bytes_for(GgmlType::IQ2_XXS, (FFN * HIDDEN) as usize).unwrap()];
    let e = export_error(&dir, "iq2", &m);
    assert!(e.contains("blk.0.ffn_down.weight") && e.contains("IQ2_XXS"), "{e}");

    // A tensor no Llama checkpoint has.
    let mut m = model.clone();
    m.tensors.push(("blk.0.attn_q_norm.weight".into(), vec![HEAD_DIM], GgmlType::F32, vec![0; HEAD_DIM as usize * 4]));
    let e = export_error(&dir, "qnorm", &m);
    assert!(e.contains("blk.0.attn_q_norm.weight") && e.contains("no Hugging Face name"), "{e}");

    // A missing block weight.
    let mut m = model.clone();
    m.tensors.retain(|t| t.0 != "blk.1.attn_v.weight");
    let e = export_error(&dir, "no-v", &m);
    assert!(e.contains("blk.1.attn_v.weight") && e.contains("missing"), "{e}");

    // rope_freqs that no llama3 parameters reproduce.
    let mut m = model.clone();
    let t = m.tensors.iter_mut().find(|t| t.0 == "rope_freqs.weight").unwrap();
    t.3[0..4].copy_from_slice(&1.5f32.to_le_bytes());
    let e = export_error(&dir, "rope", &m);
    assert!(e.contains("rope_freqs.weight") && e.contains("llama3"), "{e}");

    // A shape the hyperparameters do not imply.
    let mut m = model.clone();
    m.set("llama.feed_forward_length", Some(Value::U32(128)));
    let e = export_error(&dir, "ffn", &m);
    assert!(e.contains("ffn.gguf") && e.contains("ffn_") && e.contains("128"), "{e}");

    // A flag the tokenizer family cannot carry back (llama-bpe always adds BOS): caught by the self-check.
    let mut m = model.clone();
    m.set("tokenizer.ggml.add_bos_token", Some(Value::Bool(false)));
    let e = export_error(&dir, "nobos", &m);
    assert!(e.contains("would not convert back") && e.contains("add_bos_token"), "{e}");

    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(".partial-") || n.contains(".old-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    cleanup(&dir);
}

#[test]
fn values_the_folder_cannot_hold_are_refused() {
    let dir = scratch("values");
    let (model, _) = synthetic_gguf(&dir, Arch::Qwen2);
    let with_norm = |v: f32| {
        let mut m = model.clone();
        let t = m.tensors.iter_mut().find(|t| t.0 == "output_norm.weight").unwrap();
        t.3[12..16].copy_from_slice(&v.to_le_bytes());
        m
    };
    // A NaN in the file: the converter would refuse the folder, so the export does first.
    let e = export_error(&dir, "nan", &with_norm(f32::NAN));
    assert!(e.contains("output_norm.weight") && e.contains("element 3") && e.contains("NaN"), "{e}");
    // 1e5 is fine in BF16 and F32 but infinite in F16.
    let path = dir.join("big.gguf");
    with_norm(1e5).write(&path);
    let e = export(&path, &dir.join("big-f16"), Dtype::F16, false).unwrap_err().to_string();
    assert!(e.contains("output_norm.weight") && e.contains("overflows F16"), "{e}");
    assert!(!dir.join("big-f16").exists());
    export(&path, &dir.join("big-bf16"), Dtype::BF16, false).unwrap_or_else(|e| panic!("{e}"));
    cleanup(&dir);
}

#[test]
fn output_folder_is_whole_or_absent() {
    let dir = scratch("outdir");
    let (_, gguf) = synthetic_gguf(&dir, Arch::Qwen2);
    let out = dir.join("out");

    // An empty folder is fine to fill.
    std::fs::create_dir_all(&out).unwrap();
    export(&gguf, &out, Dtype::BF16, false).unwrap_or_else(|e| panic!("{e}"));
    // A non-empty one needs --force, and then is replaced whole.
    let e = export(&gguf, &out, Dtype::BF16, false).unwrap_err().to_string();
    assert!(e.contains("--force") && e.contains("out"), "{e}");
    std::fs::write(out.join("stale.txt"), "x").unwrap();
    export(&gguf, &out, Dtype::F32, true).unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.join("stale.txt").exists());
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    assert!(config.contains("\"float32\""));

    // --force never deletes a folder that is not a model, nor one holding the input.
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "keep me").unwrap();
    let e = export(&gguf, &other, Dtype::F32, true).unwrap_err().to_string();
    assert!(e.contains("not a model folder"), "{e}");
    assert!(other.join("notes.txt").exists());
    std::fs::write(dir.join("config.json"), "{}").unwrap();
    let e = export(&gguf, &dir, Dtype::F32, true).unwrap_err().to_string();
    assert!(e.contains("holds the input"), "{e}");
    assert!(gguf.exists());

    // A cancelled export leaves nothing.
    let cancelled = dir.join("cancelled");
    let opts = ExportOptions { dtype: Dtype::F32, force: false };
    let cancel = CancelToken::new();
    cancel.cancel();
    let e = export_hf(&gguf, &cancelled, &opts, &cancel, &mut |_| {}).unwrap_err();
    assert!(matches!(e, ExportError::Cancelled), "{e}");
    assert!(!cancelled.exists());
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    cleanup(&dir);
}


/// The check: export-hf at F32, then our converter at F32, gives back the dequantized original exactly.
#[test]
fn demo_model_round_trips_exactly() {
    let Some(gguf) = demo_model() else { return };
    let dir = scratch("smollm2");
    let out = dir.join("SmolLM2-135M-Instruct");
    let r = export(&gguf, &out, Dtype::F32, false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((r.pre.as_str(), r.tensors, r.params), ("smollm", 272, 134_515_008));
    assert!(r.not_carried.is_empty(), "{:?}", r.not_carried);
    assert_converts_back(&gguf, &out, ident);
    cleanup(&dir);
}
