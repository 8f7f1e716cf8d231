//! The type policy against llama.cpp: the sizes DESIGN.md quotes, per-preset spot checks, and every type of every
//! tensor that llama.cpp's own quantizer chose for seven model shapes × 17 presets × a few option sets
//! (golden/quantize_policy.txt, made by scripts/check_policy_vs_llamacpp.py with llama-cpp-python 0.3.36).

use pocketlm::quant::GgmlType;
use pocketlm::quantize::{
    plan, tensor_bytes, ModelShape, Plan, PolicyError, PolicyOptions, Preset, TensorShape, GGUF_DEFAULT_ALIGNMENT,
};

use GgmlType as G;

// ---------------------------------------------------------------------------------------------------------------
// Model shapes, as convert_hf_to_gguf.py writes them with --outtype bf16: 2-D weights BF16, 1-D tensors F32,
// rope_freqs first. Keep in step with `llama_like` in scripts/check_policy_vs_llamacpp.py.

struct Spec {
    arch: &'static str,
    n_vocab: u64,
    dim: u64,
    n_layer: u32,
    ffn: u64,
    n_head: u32,
    n_kv: u32,
    head_dim: u64,
    tied: bool,
    rope_freqs: bool,
    qkv_bias: bool,
    n_expert: u32,
}

const LLAMA: Spec = Spec {
    arch: "llama",
    n_vocab: 0,
    dim: 0,
    n_layer: 0,
    ffn: 0,
    n_head: 0,
    n_kv: 0,
    head_dim: 0,
    tied: true,
    rope_freqs: false,
    qkv_bias: false,
    n_expert: 0,
};

/// SmolLM2-135M-Instruct.
const SMOLLM2: Spec =
    Spec { n_vocab: 49152, dim: 576, n_layer: 30, ffn: 1536, n_head: 9, n_kv: 3, head_dim: 64, ..LLAMA };
/// Llama 3.2 1B and 3B: tied embeddings, llama3 rope scaling (rope_freqs).
const LLAMA_1B: Spec = Spec {
    n_vocab: 128256,
    dim: 2048,
    n_layer: 16,
    ffn: 8192,
    n_head: 32,
    n_kv: 8,
    head_dim: 64,
    rope_freqs: true,
    ..LLAMA
};
const LLAMA_3B: Spec = Spec {
    n_vocab: 128256,
    dim: 3072,
    n_layer: 28,
    ffn: 8192,
    n_head: 24,
    n_kv: 8,
    head_dim: 128,
    rope_freqs: true,
    ..LLAMA
};
/// Qwen2.5-0.5B: q/k/v biases, width 896 (fallbacks), ffn 4864 = 19 × 256.
const QWEN2_05B: Spec = Spec {
    arch: "qwen2",
    n_vocab: 151936,
    dim: 896,
    n_layer: 24,
    ffn: 4864,
    n_head: 14,
    n_kv: 2,
    head_dim: 64,
    qkv_bias: true,
    ..LLAMA
};
/// Untied output; ffn 700 is not a multiple of 32, so ffn_down falls back to F16.
const TINY_UNTIED: Spec =
    Spec { n_vocab: 1000, dim: 256, n_layer: 8, ffn: 700, n_head: 4, n_kv: 1, head_dim: 64, tied: false, ..LLAMA };
/// 80 layers with GQA: llama.cpp sizes it as a 70B.
const LLAMA_80L: Spec =
    Spec { n_vocab: 512, dim: 256, n_layer: 80, ffn: 512, n_head: 8, n_kv: 2, head_dim: 32, tied: false, ..LLAMA };
/// Eight experts (the Mixtral rules), 3-D expert tensors.
const MOE8_TINY: Spec = Spec {
    n_vocab: 512,
    dim: 256,
    n_layer: 4,
    ffn: 512,
    n_head: 8,
    n_kv: 2,
    head_dim: 32,
    tied: false,
    n_expert: 8,
    ..LLAMA
};

fn spec(name: &str) -> &'static Spec {
    match name {
        "smollm2-135m" => &SMOLLM2,
        "llama-1b" => &LLAMA_1B,
        "llama-3b" => &LLAMA_3B,
        "qwen2-0.5b" => &QWEN2_05B,
        "tiny-untied" => &TINY_UNTIED,
        "llama-80l" => &LLAMA_80L,
        "moe8-tiny" => &MOE8_TINY,
        _ => panic!("golden names unknown model {name}"),
    }
}

/// A model's tensors as owned (name, dims, type), and its shape.
struct Model {
    shape: ModelShape,
    tensors: Vec<(String, Vec<u64>, GgmlType)>,
}

impl Model {
    fn new(s: &Spec) -> Model {
        let mut ts: Vec<(String, Vec<u64>, GgmlType)> = Vec::new();
        let mut add = |name: String, dims: &[u64], ty| ts.push((name, dims.to_vec(), ty));
        let (dim, ffn, q_rows, kv_rows) =
            (s.dim, s.ffn, u64::from(s.n_head) * s.head_dim, u64::from(s.n_kv) * s.head_dim);
        if s.rope_freqs {
            add("rope_freqs.weight".into(), &[s.head_dim / 2], G::F32);
        }
        if !s.tied {
            add("output.weight".into(), &[dim, s.n_vocab], G::BF16);
        }
        add("token_embd.weight".into(), &[dim, s.n_vocab], G::BF16);
        for i in 0..s.n_layer {
            let b = |n: &str| format!("blk.{i}.{n}");
            add(b("attn_norm.weight"), &[dim], G::F32);
            if s.n_expert > 0 {
                let e = u64::from(s.n_expert);
                add(b("ffn_down_exps.weight"), &[ffn, dim, e], G::BF16);
                add(b("ffn_gate_exps.weight"), &[dim, ffn, e], G::BF16);
                add(b("ffn_gate_inp.weight"), &[dim, e], G::F32);
                add(b("ffn_up_exps.weight"), &[dim, ffn, e], G::BF16);
            } else {
                add(b("ffn_down.weight"), &[ffn, dim], G::BF16);
                add(b("ffn_gate.weight"), &[dim, ffn], G::BF16);
                add(b("ffn_up.weight"), &[dim, ffn], G::BF16);
            }
            add(b("ffn_norm.weight"), &[dim], G::F32);
            for (proj, rows) in [("k", kv_rows), ("output", 0), ("q", q_rows), ("v", kv_rows)] {
                if proj == "output" {
                    add(b("attn_output.weight"), &[q_rows, dim], G::BF16);
                    continue;
                }
                if s.qkv_bias {
                    add(b(&format!("attn_{proj}.bias")), &[rows], G::F32);
                }
                add(b(&format!("attn_{proj}.weight")), &[dim, rows], G::BF16);
            }
        }
        add("output_norm.weight".into(), &[dim], G::F32);
        let shape = ModelShape {
            arch: s.arch.into(),
            n_layer: s.n_layer,
            n_head: s.n_head,
            n_head_kv: s.n_kv,
            n_expert: s.n_expert,
        };
        Model { shape, tensors: ts }
    }

    fn shapes(&self) -> Vec<TensorShape<'_>> {
        self.tensors.iter().map(|(n, d, t)| TensorShape { name: n, dims: d, ty: *t }).collect()
    }

    fn plan(&self, preset: Preset, opts: &PolicyOptions) -> Result<Plan, PolicyError> {
        plan(&self.shape, &self.shapes(), preset, opts)
    }

    fn index(&self, name: &str) -> usize {
        self.tensors.iter().position(|(n, _, _)| n == name).unwrap_or_else(|| panic!("no tensor {name}"))
    }

    /// The planned type of tensor `name`.
    fn ty(&self, p: &Plan, name: &str) -> GgmlType {
        p.tensors[self.index(name)].ty
    }
}

fn q4_k_m() -> Preset {
    Preset::Q4_K_M
}

fn opts() -> PolicyOptions {
    PolicyOptions::default()
}

// ---------------------------------------------------------------------------------------------------------------
// The figures DESIGN.md quotes.

#[test]
fn llama_1b_q4_k_m_is_762_81_mib() {
    let m = Model::new(&LLAMA_1B);
    let p = m.plan(q4_k_m(), &opts()).unwrap();
    assert_eq!(p.data_bytes(), 799_862_912);
    // Every tensor is a multiple of 32 bytes here, so padding adds nothing.
    assert_eq!(p.padded_bytes(GGUF_DEFAULT_ALIGNMENT), 799_862_912);
    assert_eq!(p.n_fallback(), 0);
    assert_eq!(m.ty(&p, "token_embd.weight"), G::Q6_K, "tied: the embedding is the output matrix");
    assert_eq!(m.ty(&p, "rope_freqs.weight"), G::F32);
}

#[test]
fn llama_3b_q4_k_m_size() {
    let p = Model::new(&LLAMA_3B).plan(q4_k_m(), &opts()).unwrap();
    assert_eq!(p.data_bytes(), 2_011_539_712);
    assert_eq!(p.n_fallback(), 0);
}

#[test]
fn smollm2_q4_k_m_falls_back_on_most_tensors() {
    let m = Model::new(&SMOLLM2);
    let p = m.plan(q4_k_m(), &opts()).unwrap();
    assert_eq!(p.data_bytes(), 103_668_480);
    // q, k, v, output, gate, up of 30 layers have rows of 576; ffn_down's rows are 1536 = 6 × 256.
    assert_eq!(p.n_fallback(), 180);
    // The tied embedding goes straight to Q8_0 (576 is not a multiple of 256): a rule, not a counted fallback.
    let embd = p.tensors[m.index("token_embd.weight")];
    assert_eq!((embd.ty, embd.fallback_from), (G::Q8_0, None));
    let q = p.tensors[m.index("blk.5.attn_q.weight")];
    assert_eq!((q.ty, q.fallback_from), (G::Q5_0, Some(G::Q4_K)));
    let v0 = p.tensors[m.index("blk.0.attn_v.weight")];
    assert_eq!((v0.ty, v0.fallback_from), (G::Q8_0, Some(G::Q6_K)));
    assert_eq!(m.ty(&p, "blk.0.ffn_down.weight"), G::Q6_K);
    assert_eq!(m.ty(&p, "blk.3.ffn_down.weight"), G::Q4_K);
}

#[test]
fn bf16_size_and_the_q4_k_m_reduction() {
    // 2 bytes per weight of the 2-D tensors, 4 for the 1-D ones (norms, rope_freqs), which stay F32.
    let m = Model::new(&LLAMA_1B);
    let bf16 = m.plan(Preset::BF16, &opts()).unwrap();
    let params_2d: u64 = m.tensors.iter().filter(|(_, d, _)| d.len() == 2).map(|(_, d, _)| d[0] * d[1]).sum();
    let params_1d: u64 = m.tensors.iter().filter(|(_, d, _)| d.len() == 1).map(|(_, d, _)| d[0]).sum();
    assert_eq!(params_2d + params_1d, 1_235_814_432, "Llama 3.2 1B's parameter count");
    assert_eq!(bf16.data_bytes(), 2 * params_2d + 4 * params_1d);
    assert_eq!(bf16.data_bytes(), 2_471_764_096);
    let q = m.plan(q4_k_m(), &opts()).unwrap();
    let reduction = 1.0 - q.data_bytes() as f64 / bf16.data_bytes() as f64;
    assert!((reduction - 0.6764).abs() < 1e-4, "{reduction}");

    // The 3B, as in the paper: 5.98 GiB BF16 → 1.87 GiB Q4_K_M, −68.66% (file sizes; tensor data here).
    let m3 = Model::new(&LLAMA_3B);
    let (b, q) = (m3.plan(Preset::BF16, &opts()).unwrap(), m3.plan(q4_k_m(), &opts()).unwrap());
    let gib = |n: u64| n as f64 / (1u64 << 30) as f64;
    assert!((gib(b.data_bytes()) - 5.98).abs() < 0.005, "{}", gib(b.data_bytes()));
    assert!((gib(q.data_bytes()) - 1.87).abs() < 0.005, "{}", gib(q.data_bytes()));
    let reduction = 1.0 - q.data_bytes() as f64 / b.data_bytes() as f64;
    assert!((reduction - 0.6866).abs() < 0.0005, "{reduction}");
}

// ---------------------------------------------------------------------------------------------------------------
// Spot checks per preset: attn_v and ffn_down on the first, a middle and the last layer, and the output matrix.

/// (preset, attn_v on layers [0, 1, 2, 3, 7, 15], ffn_down on the same layers, token_embd) for Llama-3.2-1B.
/// Layers with more bits in the _M mixes (use_more_bits, 16 layers): 0, 1, 4, 7, 10, 13, 14, 15.
#[rustfmt::skip]
const LLAMA_1B_SPOTS: &[(Preset, [G; 6], [G; 6], G)] = &[
    (Preset::F32,    [G::F32; 6],  [G::F32; 6],  G::F32),
    (Preset::F16,    [G::F16; 6],  [G::F16; 6],  G::F16),
    (Preset::BF16,   [G::BF16; 6], [G::BF16; 6], G::BF16),
    (Preset::Q8_0,   [G::Q8_0; 6], [G::Q8_0; 6], G::Q8_0),
    (Preset::Q4_0,   [G::Q4_0; 6], [G::Q4_0; 6], G::Q6_K),
    (Preset::Q4_1,   [G::Q4_1; 6], [G::Q4_1; 6], G::Q6_K),
    (Preset::Q5_0,   [G::Q5_0; 6], [G::Q5_0; 6], G::Q6_K),
    (Preset::Q5_1,   [G::Q5_1; 6], [G::Q5_1; 6], G::Q6_K),
    // GQA 4: attn_v Q4_K; ffn_down Q3_K.
    (Preset::Q2_K,   [G::Q4_K; 6], [G::Q3_K; 6], G::Q6_K),
    (Preset::Q3_K_S, [G::Q3_K; 6], [G::Q3_K; 6], G::Q6_K),
    // attn_v: Q5_K on the first two; ffn_down: Q5_K below n/16 = 1, else Q4_K.
    (Preset::Q3_K_M, [G::Q5_K, G::Q5_K, G::Q4_K, G::Q4_K, G::Q4_K, G::Q4_K],
                     [G::Q5_K, G::Q4_K, G::Q4_K, G::Q4_K, G::Q4_K, G::Q4_K], G::Q6_K),
    (Preset::Q3_K_L, [G::Q5_K; 6], [G::Q5_K; 6], G::Q6_K),
    // attn_v: Q5_K on the first four; ffn_down: Q5_K below n/8 = 2.
    (Preset::Q4_K_S, [G::Q5_K, G::Q5_K, G::Q5_K, G::Q5_K, G::Q4_K, G::Q4_K],
                     [G::Q5_K, G::Q5_K, G::Q4_K, G::Q4_K, G::Q4_K, G::Q4_K], G::Q6_K),
    (Preset::Q4_K_M, [G::Q6_K, G::Q6_K, G::Q4_K, G::Q4_K, G::Q6_K, G::Q6_K],
                     [G::Q6_K, G::Q6_K, G::Q4_K, G::Q4_K, G::Q6_K, G::Q6_K], G::Q6_K),
    (Preset::Q5_K_S, [G::Q5_K; 6], [G::Q5_K; 6], G::Q6_K),
    (Preset::Q5_K_M, [G::Q6_K, G::Q6_K, G::Q5_K, G::Q5_K, G::Q6_K, G::Q6_K],
                     [G::Q6_K, G::Q6_K, G::Q5_K, G::Q5_K, G::Q6_K, G::Q6_K], G::Q6_K),
    (Preset::Q6_K,   [G::Q6_K; 6], [G::Q6_K; 6], G::Q6_K),
];

/// The same for SmolLM2-135M (30 layers, rows of 576: every 256-block type falls back) on layers
/// [0, 2, 3, 5, 15, 29]; more bits on 0, 1, 2, 5, 8, … 26, 27, 28, 29. ffn_down rows are 1536 and fit.
#[rustfmt::skip]
const SMOLLM2_SPOTS: &[(Preset, [G; 6], [G; 6], G)] = &[
    (Preset::F32,    [G::F32; 6],  [G::F32; 6],  G::F32),
    (Preset::F16,    [G::F16; 6],  [G::F16; 6],  G::F16),
    (Preset::BF16,   [G::BF16; 6], [G::BF16; 6], G::BF16),
    (Preset::Q8_0,   [G::Q8_0; 6], [G::Q8_0; 6], G::Q8_0),
    // The output rule picks Q6_K (576 is a multiple of Q4_0's 32), which then falls back to Q8_0.
    (Preset::Q4_0,   [G::Q4_0; 6], [G::Q4_0; 6], G::Q8_0),
    (Preset::Q4_1,   [G::Q4_1; 6], [G::Q4_1; 6], G::Q8_0),
    (Preset::Q5_0,   [G::Q5_0; 6], [G::Q5_0; 6], G::Q8_0),
    (Preset::Q5_1,   [G::Q5_1; 6], [G::Q5_1; 6], G::Q8_0),
    // GQA 3 < 4: attn_v Q3_K → Q4_0.
    (Preset::Q2_K,   [G::Q4_0; 6], [G::Q3_K; 6], G::Q8_0),
    (Preset::Q3_K_S, [G::Q4_0; 6], [G::Q3_K; 6], G::Q8_0),
    // attn_v Q5_K → Q5_1 on the first two, Q4_K → Q5_0 after; ffn_down Q5_K below 30/16 = 1.
    (Preset::Q3_K_M, [G::Q5_1, G::Q5_0, G::Q5_0, G::Q5_0, G::Q5_0, G::Q5_0],
                     [G::Q5_K, G::Q4_K, G::Q4_K, G::Q4_K, G::Q4_K, G::Q4_K], G::Q8_0),
    (Preset::Q3_K_L, [G::Q5_1; 6], [G::Q5_K; 6], G::Q8_0),
    (Preset::Q4_K_S, [G::Q5_1, G::Q5_1, G::Q5_1, G::Q5_0, G::Q5_0, G::Q5_0],
                     [G::Q5_K, G::Q5_K, G::Q4_K, G::Q4_K, G::Q4_K, G::Q4_K], G::Q8_0),
    // Q6_K → Q8_0 on the layers with more bits, Q4_K → Q5_0 elsewhere.
    (Preset::Q4_K_M, [G::Q8_0, G::Q8_0, G::Q5_0, G::Q8_0, G::Q5_0, G::Q8_0],
                     [G::Q6_K, G::Q6_K, G::Q4_K, G::Q6_K, G::Q4_K, G::Q6_K], G::Q8_0),
    (Preset::Q5_K_S, [G::Q5_1; 6], [G::Q5_K; 6], G::Q8_0),
    (Preset::Q5_K_M, [G::Q8_0, G::Q8_0, G::Q5_1, G::Q8_0, G::Q5_1, G::Q8_0],
                     [G::Q6_K, G::Q6_K, G::Q5_K, G::Q6_K, G::Q5_K, G::Q6_K], G::Q8_0),
    (Preset::Q6_K,   [G::Q8_0; 6], [G::Q6_K; 6], G::Q8_0),
];

fn check_spots(spec: &Spec, layers: [u32; 6], table: &[(Preset, [G; 6], [G; 6], G)]) {
    let m = Model::new(spec);
    assert_eq!(table.len(), Preset::ALL.len());
    for &(preset, attn_v, ffn_down, embd) in table {
        let p = m.plan(preset, &opts()).unwrap();
        for (k, l) in layers.iter().enumerate() {
            assert_eq!(m.ty(&p, &format!("blk.{l}.attn_v.weight")), attn_v[k], "{preset} attn_v layer {l}");
            assert_eq!(m.ty(&p, &format!("blk.{l}.ffn_down.weight")), ffn_down[k], "{preset} ffn_down layer {l}");
            // Norms are 1-D and keep their source type, F32.
            assert_eq!(m.ty(&p, &format!("blk.{l}.attn_norm.weight")), G::F32, "{preset}");
        }
        assert_eq!(m.ty(&p, "token_embd.weight"), embd, "{preset} token_embd");
        assert_eq!(m.ty(&p, "output_norm.weight"), G::F32, "{preset}");
    }
}

#[test]
fn llama_1b_types_per_preset() {
    check_spots(&LLAMA_1B, [0, 1, 2, 3, 7, 15], LLAMA_1B_SPOTS);
}

#[test]
fn smollm2_types_per_preset() {
    check_spots(&SMOLLM2, [0, 2, 3, 5, 15, 29], SMOLLM2_SPOTS);
}

#[test]
fn pure_skips_the_mix_but_not_the_fallback() {
    let pure = PolicyOptions { pure: true, ..opts() };
    let m = Model::new(&LLAMA_1B);
    let p = m.plan(q4_k_m(), &pure).unwrap();
    for (i, (name, dims, _)) in m.tensors.iter().enumerate() {
        let want = if dims.len() == 1 { G::F32 } else { G::Q4_K };
        assert_eq!(p.tensors[i].ty, want, "{name}");
    }
    let s = Model::new(&SMOLLM2);
    let p = s.plan(q4_k_m(), &pure).unwrap();
    assert_eq!(s.ty(&p, "token_embd.weight"), G::Q5_0);
    assert_eq!(s.ty(&p, "blk.0.attn_v.weight"), G::Q5_0);
    assert_eq!(s.ty(&p, "blk.0.ffn_down.weight"), G::Q4_K);
    assert_eq!(p.n_fallback(), 181, "the embedding too, this time");
}

#[test]
fn type_overrides() {
    let m = Model::new(&LLAMA_1B);
    // Tied: --output-tensor-type applies to token_embd.
    let o = PolicyOptions { output_tensor_type: Some(G::Q8_0), ..opts() };
    assert_eq!(m.ty(&m.plan(q4_k_m(), &o).unwrap(), "token_embd.weight"), G::Q8_0);
    // --token-embedding-type wins over it.
    let o = PolicyOptions { output_tensor_type: Some(G::Q8_0), token_embedding_type: Some(G::Q4_0), ..opts() };
    assert_eq!(m.ty(&m.plan(q4_k_m(), &o).unwrap(), "token_embd.weight"), G::Q4_0);
    // Overrides hold for the float presets too.
    let o = PolicyOptions { token_embedding_type: Some(G::Q8_0), ..opts() };
    let p = m.plan(Preset::F16, &o).unwrap();
    assert_eq!((m.ty(&p, "token_embd.weight"), m.ty(&p, "blk.0.attn_q.weight")), (G::Q8_0, G::F16));

    // Untied: each applies to its own tensor.
    let u = Model::new(&TINY_UNTIED);
    let o = PolicyOptions { output_tensor_type: Some(G::Q5_K), token_embedding_type: Some(G::Q3_K), ..opts() };
    let p = u.plan(q4_k_m(), &o).unwrap();
    assert_eq!((u.ty(&p, "output.weight"), u.ty(&p, "token_embd.weight")), (G::Q5_K, G::Q3_K));
    let p = u.plan(q4_k_m(), &opts()).unwrap();
    assert_eq!((u.ty(&p, "output.weight"), u.ty(&p, "token_embd.weight")), (G::Q6_K, G::Q4_K));
    // --leave-output-tensor keeps output.weight in its source type.
    let p = u.plan(q4_k_m(), &PolicyOptions { leave_output_tensor: true, ..opts() }).unwrap();
    assert_eq!(u.ty(&p, "output.weight"), G::BF16);

    // An override is taken as given, without a fallback: a type whose block does not fit the rows cannot be
    // planned (llama.cpp would fail while quantizing).
    let s = Model::new(&SMOLLM2);
    let o = PolicyOptions { token_embedding_type: Some(G::Q4_K), ..opts() };
    assert!(matches!(s.plan(q4_k_m(), &o), Err(PolicyError::Size { ty: G::Q4_K, .. })));
}

#[test]
fn qwen2_biases_stay_f32() {
    let m = Model::new(&QWEN2_05B);
    for preset in Preset::ALL {
        let p = m.plan(*preset, &opts()).unwrap();
        for proj in ["q", "k", "v"] {
            assert_eq!(m.ty(&p, &format!("blk.7.attn_{proj}.bias")), G::F32, "{preset}");
        }
    }
    let p = m.plan(q4_k_m(), &opts()).unwrap();
    // 896 = 3.5 × 256: Q4_K → Q5_0; ffn_down rows are 4864 = 19 × 256. More bits on layer 8 of 24, not 7.
    assert_eq!(m.ty(&p, "blk.7.attn_q.weight"), G::Q5_0);
    assert_eq!(m.ty(&p, "blk.7.ffn_down.weight"), G::Q4_K);
    assert_eq!(m.ty(&p, "blk.8.ffn_down.weight"), G::Q6_K);
    assert_eq!(m.ty(&p, "blk.8.attn_v.weight"), G::Q8_0, "Q6_K falls back to Q8_0 on rows of 896");
}

#[test]
fn f16_fallback_for_rows_not_a_multiple_of_32() {
    let m = Model::new(&TINY_UNTIED);
    for preset in [Preset::Q4_K_M, Preset::Q4_0, Preset::Q8_0] {
        let p = m.plan(preset, &opts()).unwrap();
        let d = p.tensors[m.index("blk.3.ffn_down.weight")];
        assert_eq!(d.ty, G::F16, "{preset}");
        assert!(d.fallback_from.is_some());
    }
    // Float presets never fall back.
    assert_eq!(m.plan(Preset::BF16, &opts()).unwrap().n_fallback(), 0);
}

#[test]
fn input_order_does_not_matter() {
    // llama.cpp walks tensors in its own order, so the attn_v / ffn_down counters see the same sequence.
    let m = Model::new(&SMOLLM2);
    let mut rev = Model::new(&SMOLLM2);
    rev.tensors.reverse();
    let (a, b) = (m.plan(q4_k_m(), &opts()).unwrap(), rev.plan(q4_k_m(), &opts()).unwrap());
    for (name, _, _) in &m.tensors {
        assert_eq!(m.ty(&a, name), rev.ty(&b, name), "{name}");
    }
    let names = |m: &Model, p: &Plan| p.order.iter().map(|&i| m.tensors[i].0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&m, &a), names(&rev, &b));
    // Outside the blocks first, by name; then blk.0 … blk.29 by number, each block by name.
    assert_eq!(
        names(&m, &a)[..4],
        ["output_norm.weight", "token_embd.weight", "blk.0.attn_k.weight", "blk.0.attn_norm.weight"]
    );
    let blk10 = names(&m, &a).iter().position(|n| n == "blk.10.attn_k.weight").unwrap();
    assert_eq!(names(&m, &a)[blk10 - 1], "blk.9.ffn_up.weight");
}

#[test]
fn seventy_b_and_eight_expert_rules() {
    // 80 layers with GQA count as a 70B: attn_v Q4_K becomes Q5_K (layer 10 of 80 gets no extra bits from the mix).
    let m = Model::new(&LLAMA_80L);
    let p = m.plan(q4_k_m(), &opts()).unwrap();
    assert_eq!(m.ty(&p, "blk.10.attn_v.weight"), G::Q5_K);
    assert_eq!(m.ty(&p, "blk.10.ffn_down.weight"), G::Q4_K);
    assert_eq!(m.ty(&p, "blk.0.attn_v.weight"), G::Q6_K);
    // Eight experts (Mixtral): attn_v and attn_k Q8_0, attn_output Q5_K; the router stays F32.
    let m = Model::new(&MOE8_TINY);
    let p = m.plan(q4_k_m(), &opts()).unwrap();
    assert_eq!(m.ty(&p, "blk.2.attn_v.weight"), G::Q8_0);
    assert_eq!(m.ty(&p, "blk.2.attn_k.weight"), G::Q8_0);
    assert_eq!(m.ty(&p, "blk.2.attn_output.weight"), G::Q5_K);
    assert_eq!(m.ty(&p, "blk.2.ffn_gate_inp.weight"), G::F32);
    assert_eq!(m.ty(&p, "blk.0.ffn_down_exps.weight"), G::Q4_K, "4 layers: 0 is not in the first eighth");
    assert_eq!(m.ty(&p, "blk.3.ffn_down_exps.weight"), G::Q6_K);
    assert_eq!(p.tensors[m.index("blk.3.ffn_down_exps.weight")].bytes, 8 * 256 * (512 / 256 * 210));
}

#[test]
fn errors_llama_cpp_also_fails_on() {
    let dims = [256u64, 256];
    let t = |name| TensorShape { name, dims: &dims, ty: G::F16 };
    let dense = ModelShape { arch: "llama".into(), n_layer: 2, n_head: 4, n_head_kv: 4, n_expert: 0 };
    let dup = [t("blk.0.attn_q.weight"), t("blk.0.attn_q.weight")];
    assert_eq!(plan(&dense, &dup, q4_k_m(), &opts()), Err(PolicyError::DuplicateName("blk.0.attn_q.weight".into())));
    // MoE ffn tensors must name their layer.
    let moe = ModelShape { n_expert: 4, ..dense.clone() };
    for bad in ["ffn_down_exps.weight", "blk.2.ffn_up_exps.weight"] {
        assert!(matches!(plan(&moe, &[t(bad)], q4_k_m(), &opts()), Err(PolicyError::BadLayer { .. })), "{bad}");
    }
    assert!(plan(&moe, &[t("blk.1.ffn_up_exps.weight")], q4_k_m(), &opts()).is_ok());
}

#[test]
fn tensor_bytes_are_rows_times_row_size() {
    assert_eq!(tensor_bytes(&[2048, 8192], G::Q4_K), Some(8192 * 1152));
    assert_eq!(tensor_bytes(&[256, 512, 8], G::Q6_K), Some(512 * 8 * 210));
    assert_eq!(tensor_bytes(&[576], G::F32), Some(2304));
    assert_eq!(tensor_bytes(&[576, 10], G::Q4_K), None);
    assert_eq!(tensor_bytes(&[u64::MAX / 2, 4], G::F32), None);
}

// ---------------------------------------------------------------------------------------------------------------
// Every tensor of every golden run.

const GOLDEN: &str = include_str!("golden/quantize_policy.txt");

fn parse_options(label: &str) -> PolicyOptions {
    let mut o = opts();
    for part in label.split(',') {
        match part.split_once('=') {
            None if part == "default" => {}
            None if part == "pure" => o.pure = true,
            None if part == "leave-output" => o.leave_output_tensor = true,
            Some(("out", t)) => o.output_tensor_type = Some(G::from_name(t).unwrap()),
            Some(("embd", t)) => o.token_embedding_type = Some(G::from_name(t).unwrap()),
            _ => panic!("unknown option {part:?} in golden file"),
        }
    }
    o
}

/// Decode the golden type list: groups separated by ` | `, `type*n` runs, a trailing `xk` repeating a group.
fn decode_types(s: &str) -> Vec<GgmlType> {
    let mut out = Vec::new();
    for group in s.split(" | ") {
        let mut items: Vec<&str> = group.split(' ').collect();
        let repeat = match items.last().and_then(|l| l.strip_prefix('x')) {
            Some(k) => {
                items.pop();
                k.parse().unwrap()
            }
            None => 1,
        };
        let mut types = Vec::new();
        for item in items {
            let (name, n) = item.split_once('*').map_or((item, 1), |(t, n)| (t, n.parse().unwrap()));
            let ty = G::from_name(name).unwrap_or_else(|| panic!("unknown type {name}"));
            types.extend(std::iter::repeat_n(ty, n));
        }
        for _ in 0..repeat {
            out.extend_from_slice(&types);
        }
    }
    out
}

#[test]
fn every_type_matches_llama_cpp() {
    let mut runs = 0;
    for line in GOLDEN.lines() {
        if let Some(rest) = line.strip_prefix("#order ") {
            let (model, names) = rest.split_once('\t').unwrap();
            let m = Model::new(spec(model));
            let p = m.plan(q4_k_m(), &opts()).unwrap();
            let ours: Vec<&str> = p.order.iter().map(|&i| m.tensors[i].0.as_str()).collect();
            assert_eq!(ours, names.split(' ').collect::<Vec<_>>(), "{model}: tensor order");
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let [model, preset, options, data, padded, fallbacks, types] = cols[..] else {
            panic!("bad golden line {line:?}")
        };
        let ctx = format!("{model} {preset} {options}");
        let m = Model::new(spec(model));
        let result = m.plan(preset.parse().unwrap(), &parse_options(options));
        if data == "data=invalid" {
            assert!(matches!(result, Err(PolicyError::Size { .. })), "{ctx}: {result:?}");
            continue;
        }
        let p = result.unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let want = decode_types(types);
        let got: Vec<GgmlType> = p.order.iter().map(|&i| p.tensors[i].ty).collect();
        assert_eq!(got.len(), want.len(), "{ctx}");
        for (k, (&g, &w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{ctx}: {}", m.tensors[p.order[k]].0);
        }
        assert_eq!(format!("data={}", p.data_bytes()), data, "{ctx}");
        assert_eq!(format!("padded={}", p.padded_bytes(GGUF_DEFAULT_ALIGNMENT)), padded, "{ctx}");
        let n_fallback = fallbacks.split(' ').next().unwrap();
        assert_eq!(format!("fallbacks={}", p.n_fallback()), n_fallback, "{ctx}");
        runs += 1;
    }
    assert!(runs > 100, "golden file has only {runs} runs");
}
