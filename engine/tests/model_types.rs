//! Every weight type the kernels accept, through the whole model: a small random Llama (width 256, so that the
//! k-quants apply) is written with all its matrices — the tied embedding/output included — in type T, and its
//! logits are compared with those of the same model written in F32 with the weights T decodes to
//! (dequantize ∘ quantize). The two compute the same function of the same weights; they differ only by the
//! activation rounding the kernels do (Q8_K, Q8_0 or Q8_1 activations, as llama.cpp pairs them), so the bound is
//! tight per type, and a kernel, row-stride or embedding bug in any type shows at once.

use std::sync::Arc;

use pocketlm::gguf::{GgufFile, GgufWriter, Value};
use pocketlm::kernels;
use pocketlm::model::{Context, Model};
use pocketlm::quant::{bytes_for, dequantize, quantize, GgmlType};

const N_EMBD: usize = 256;
const N_FF: usize = 512;
const N_VOCAB: usize = 320;
const N_LAYER: usize = 2;
const N_HEAD: usize = 4;
const N_HEAD_KV: usize = 2;
const HEAD_DIM: usize = N_EMBD / N_HEAD;

/// splitmix64 → roughly N(0, σ²) (a sum of four uniforms).
fn normal(seed: u64, i: u64, sigma: f32) -> f32 {
    let mut z = (seed ^ i.wrapping_mul(0xD6E8_FEB8_6659_FD93)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let u = |k: u32| ((z >> (16 * k)) & 0xFFFF) as f32 / 65536.0;
    (u(0) + u(1) + u(2) + u(3) - 2.0) * 1.7320508 * sigma
}

/// (name, ggml dims, values) of every tensor of the model.
fn tensors() -> Vec<(String, Vec<u64>, Vec<f32>)> {
    let mut out = Vec::new();
    let mut add = |name: String, cols: usize, rows: usize, sigma: f32, offset: f32| {
        let seed = out.len() as u64 + 1;
        let v = (0..cols * rows).map(|i| offset + normal(seed, i as u64, sigma)).collect();
        let dims = if rows == 1 { vec![cols as u64] } else { vec![cols as u64, rows as u64] };
        out.push((name, dims, v));
    };
    let (q, kv) = (N_HEAD * HEAD_DIM, N_HEAD_KV * HEAD_DIM);
    add("token_embd.weight".into(), N_EMBD, N_VOCAB, 1.0, 0.0);
    add("output_norm.weight".into(), N_EMBD, 1, 0.1, 1.0);
    for l in 0..N_LAYER {
        let s = 1.0 / (N_EMBD as f32).sqrt();
        add(format!("blk.{l}.attn_norm.weight"), N_EMBD, 1, 0.1, 1.0);
        add(format!("blk.{l}.attn_q.weight"), N_EMBD, q, 2.0 * s, 0.0);
        add(format!("blk.{l}.attn_k.weight"), N_EMBD, kv, 2.0 * s, 0.0);
        add(format!("blk.{l}.attn_v.weight"), N_EMBD, kv, s, 0.0);
        add(format!("blk.{l}.attn_output.weight"), q, N_EMBD, s, 0.0);
        add(format!("blk.{l}.ffn_norm.weight"), N_EMBD, 1, 0.1, 1.0);
        add(format!("blk.{l}.ffn_gate.weight"), N_EMBD, N_FF, s, 0.0);
        add(format!("blk.{l}.ffn_up.weight"), N_EMBD, N_FF, s, 0.0);
        add(format!("blk.{l}.ffn_down.weight"), N_FF, N_EMBD, 1.0 / (N_FF as f32).sqrt(), 0.0);
    }
    out
}

/// The model with every matrix stored as `ty`, or — with `decoded` — as the F32 values `ty` decodes to.
fn model(ty: GgmlType, decoded: bool) -> Arc<Model> {
    let mut w = GgufWriter::new(Vec::new(), format!("random-{}.gguf", ty.name()));
    let kvs: [(&str, Value); 9] = [
        ("general.architecture", Value::String("llama".into())),
        ("llama.context_length", Value::U32(256)),
        ("llama.embedding_length", Value::U32(N_EMBD as u32)),
        ("llama.block_count", Value::U32(N_LAYER as u32)),
        ("llama.feed_forward_length", Value::U32(N_FF as u32)),
        ("llama.attention.head_count", Value::U32(N_HEAD as u32)),
        ("llama.attention.head_count_kv", Value::U32(N_HEAD_KV as u32)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("llama.rope.freq_base", Value::F32(10000.0)),
    ];
    for (k, v) in kvs {
        w.add_kv(k, v).unwrap();
    }
    let mut data = Vec::new();
    for (name, dims, values) in tensors() {
        if dims.len() == 1 {
            w.add_tensor_info(name.clone(), &dims, GgmlType::F32).unwrap();
            data.push((name, values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()));
            continue;
        }
        let mut q = vec![0u8; bytes_for(ty, values.len()).unwrap()];
        quantize(ty, &values, dims[0] as usize, &mut q).unwrap();
        if decoded {
            let mut back = vec![0f32; values.len()];
            dequantize(ty, &q, &mut back).unwrap();
            w.add_tensor_info(name.clone(), &dims, GgmlType::F32).unwrap();
            data.push((name, back.iter().flat_map(|v| v.to_le_bytes()).collect()));
        } else {
            w.add_tensor_info(name.clone(), &dims, ty).unwrap();
            data.push((name, q));
        }
    }
    for (name, bytes) in &data {
        w.write_tensor_data(name, bytes).unwrap();
    }
    let label = format!("random-{}.gguf", ty.name());
    Arc::new(Model::from_gguf(GgufFile::from_bytes(label, w.finish().unwrap()).unwrap()).unwrap())
}

/// Largest |a − b| over the logits, relative to the largest |b| of the same token.
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    a.chunks_exact(N_VOCAB)
        .zip(b.chunks_exact(N_VOCAB))
        .map(|(x, y)| {
            let scale = y.iter().fold(0f32, |m, v| m.max(v.abs()));
            x.iter().zip(y).fold(0f32, |m, (p, q)| m.max((p - q).abs())) / scale
        })
        .fold(0f32, f32::max)
}

#[test]
fn every_supported_type_computes_the_model_its_weights_decode_to() {
    let tokens: Vec<u32> = (0..20).map(|i| (i * 37 + 5) % N_VOCAB as u32).collect();
    let mut report = Vec::new();
    let mut failures = Vec::new();
    let types: Vec<GgmlType> = GgmlType::ALL.iter().copied().filter(|&t| kernels::supports(t)).collect();
    for &q4 in &[GgmlType::Q4_1, GgmlType::Q5_1, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::F16, GgmlType::BF16] {
        assert!(types.contains(&q4), "{q4} must be supported");
    }
    for ty in types {
        let logits = |m: Arc<Model>| Context::new(m, 32).unwrap().eval(&tokens, true).unwrap().to_vec();
        let (ours, reference) = (logits(model(ty, false)), logits(model(ty, true)));
        let err = rel_err(&ours, &reference);
        // Float weights meet f32 activations: only summation order differs. Integer kernels round the activations
        // to 8 bits per block: measured 0.8–1.7% of the logit scale on x86 (AVX2), bound 3%.
        let bound = match ty {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => 1e-5,
            _ => 3e-2,
        };
        report.push(format!("{:>5}: {err:.2e} (bound {bound:.0e})", ty.name()));
        if err.is_nan() || err > bound {
            failures.push(report.last().unwrap().clone());
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
