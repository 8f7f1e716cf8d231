//! A Hugging Face Llama checkpoint with deterministic pseudo-random BF16 weights in the shape of a real model, for
//! size and speed work where the values do not matter. Shared by `examples/random_checkpoint.rs` (the benchmark
//! and the golden script use it) and the tests that quantize such a checkpoint, so both see the same bytes.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

pub struct Shape {
    vocab: u64,
    dim: u64,
    ffn: u64,
    layers: u64,
    heads: u64,
    kv_heads: u64,
    llama3_rope: bool,
    rope_theta: f64,
    ctx: u64,
}

pub fn shape(name: &str) -> Option<Shape> {
    Some(match name {
        "llama-3.2-1b" => Shape { vocab: 128256, dim: 2048, ffn: 8192, layers: 16, heads: 32, kv_heads: 8, llama3_rope: true, rope_theta: 500000.0, ctx: 131072 },
        "llama-3.2-3b" => Shape { vocab: 128256, dim: 3072, ffn: 8192, layers: 28, heads: 24, kv_heads: 8, llama3_rope: true, rope_theta: 500000.0, ctx: 131072 },
        "smollm2-135m" => Shape { vocab: 49152, dim: 576, ffn: 1536, layers: 30, heads: 9, kv_heads: 3, llama3_rope: false, rope_theta: 100000.0, ctx: 8192 },
        _ => return None,
    })
}

/// splitmix64: a counter-based generator, so any element can be computed on its own.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Element `i` of a tensor: roughly N(0, σ²) (a sum of four uniforms).
fn normal(seed: u64, i: u64, sigma: f32) -> f32 {
    let r = splitmix64(seed ^ i.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let u = |k: u32| ((r >> (16 * k)) & 0xFFFF) as f32 / 65536.0;
    (u(0) + u(1) + u(2) + u(3) - 2.0) * 1.7320508 * sigma
}

fn tensors(s: &Shape) -> Vec<(String, Vec<u64>)> {
    let hd = s.dim / s.heads;
    let mut t = vec![("model.embed_tokens.weight".to_string(), vec![s.vocab, s.dim]), ("model.norm.weight".to_string(), vec![s.dim])];
    for l in 0..s.layers {
        let p = format!("model.layers.{l}");
        t.push((format!("{p}.input_layernorm.weight"), vec![s.dim]));
        t.push((format!("{p}.post_attention_layernorm.weight"), vec![s.dim]));
        t.push((format!("{p}.self_attn.q_proj.weight"), vec![s.heads * hd, s.dim]));
        t.push((format!("{p}.self_attn.k_proj.weight"), vec![s.kv_heads * hd, s.dim]));
        t.push((format!("{p}.self_attn.v_proj.weight"), vec![s.kv_heads * hd, s.dim]));
        t.push((format!("{p}.self_attn.o_proj.weight"), vec![s.dim, s.heads * hd]));
        t.push((format!("{p}.mlp.gate_proj.weight"), vec![s.ffn, s.dim]));
        t.push((format!("{p}.mlp.up_proj.weight"), vec![s.ffn, s.dim]));
        t.push((format!("{p}.mlp.down_proj.weight"), vec![s.dim, s.ffn]));
    }
    t.sort();
    t
}

fn config(s: &Shape) -> String {
    let rope_scaling = if s.llama3_rope {
        r#"{"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"}"#
    } else {
        "null"
    };
    format!(
        r#"{{
  "architectures": ["LlamaForCausalLM"],
  "model_type": "llama",
  "attention_bias": false,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "head_dim": {hd},
  "hidden_act": "silu",
  "hidden_size": {dim},
  "intermediate_size": {ffn},
  "max_position_embeddings": {ctx},
  "num_attention_heads": {heads},
  "num_hidden_layers": {layers},
  "num_key_value_heads": {kv},
  "rms_norm_eps": 1e-05,
  "rope_scaling": {rope_scaling},
  "rope_theta": {theta:.1},
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "vocab_size": {vocab}
}}
"#,
        hd = s.dim / s.heads,
        dim = s.dim,
        ffn = s.ffn,
        ctx = s.ctx,
        heads = s.heads,
        layers = s.layers,
        kv = s.kv_heads,
        theta = s.rope_theta,
        vocab = s.vocab
    )
}

fn write_safetensors(path: &Path, s: &Shape) -> std::io::Result<()> {
    let list = tensors(s);
    let mut header = String::from("{");
    let mut offset = 0u64;
    for (i, (name, dims)) in list.iter().enumerate() {
        let n: u64 = dims.iter().product();
        let shape: Vec<String> = dims.iter().map(u64::to_string).collect();
        if i > 0 {
            header.push(',');
        }
        header += &format!(r#""{name}":{{"dtype":"BF16","shape":[{}],"data_offsets":[{offset},{}]}}"#, shape.join(","), offset + 2 * n);
        offset += 2 * n;
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = BufWriter::with_capacity(1 << 22, File::create(path)?);
    out.write_all(&(header.len() as u64).to_le_bytes())?;
    out.write_all(header.as_bytes())?;
    let mut buf = Vec::with_capacity(1 << 22);
    for (t, (_, dims)) in list.iter().enumerate() {
        let n: u64 = dims.iter().product();
        let norm = dims.len() == 1;
        let seed = splitmix64(t as u64 + 1);
        let mut i = 0;
        while i < n {
            buf.clear();
            let end = (i + (1 << 20)).min(n);
            for j in i..end {
                // Norm weights near 1, matrices of σ 0.02; BF16 by truncation (any value serves here).
                let v = if norm { 1.0 + normal(seed, j, 0.05) } else { normal(seed, j, 0.02) };
                buf.extend_from_slice(&((v.to_bits() >> 16) as u16).to_le_bytes());
            }
            out.write_all(&buf)?;
            i = end;
        }
    }
    out.flush()
}

/// Writes `config.json`, `model.safetensors` (BF16) and the tokenizer files of `tok_dir` into `out_dir`.
pub fn write_checkpoint(s: &Shape, tok_dir: &Path, out_dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(out_dir)?;
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        fs::copy(tok_dir.join(f), out_dir.join(f))?;
    }
    fs::write(out_dir.join("config.json"), config(s))?;
    write_safetensors(&out_dir.join("model.safetensors"), s)
}
