//! The per-tensor type policy of llama.cpp's quantizer: which ggml type each tensor of a model gets for a preset,
//! and how many bytes it will take — decided from names and shapes alone, before any weight is read.
//!
//! Port of `src/llama-quant.cpp` (llama.cpp as bundled by llama-cpp-python 0.3.36): `tensor_allows_quantization`
//! (which tensors are quantized at all), `llama_tensor_get_type` / `llama_tensor_get_type_impl` (the k-quant mixes),
//! `tensor_type_fallback` (rows that are not a whole number of blocks) and the order `llama-quantize` walks the
//! tensors in (`llama_model_loader::weights_map`, sorted by `weight_name_comparer`). Only the branches that the
//! presets of [`Preset`] reach are ported; the IQ/TQ/MXFP4 mixes, importance matrices and `--tensor-type`
//! patterns are not.
//!
//! What decides a tensor's type, in llama.cpp's order of precedence:
//!
//! 1. Tensors that are not quantized keep their source type: 1-D tensors (norms, biases, `rope_freqs`), names not
//!    ending in `weight`, norms, MoE router weights, position embeddings and a list of small special tensors
//!    ([`allows_quantization`]). `--leave-output-tensor` adds `output.weight` to them.
//! 2. `--token-embedding-type` / `--output-tensor-type` overrides, taken as given.
//! 3. For the float presets (F32, F16, BF16) everything else simply gets that type.
//! 4. Otherwise the preset's default type, changed by the mix rules unless `--pure`: the output matrix (or the
//!    token embedding when there is no `output.weight`, the tied-embedding case) gets Q6_K; `attn_v` and `ffn_down`
//!    get more bits on some layers (`use_more_bits`); and so on, per preset.
//! 5. Then the row-length fallback: when `ne[0]` is not a multiple of the type's block size, Q4_K→Q5_0,
//!    Q5_K→Q5_1, Q6_K→Q8_0, Q2_K/Q3_K→Q4_0, a 32-block type stays; and if that still does not fit, F16.
//!
//! Counters. llama.cpp numbers `attn_v` and (for dense models) `ffn_down` tensors by counting them as it walks the
//! model, not by parsing the layer from the name. It walks in its own order — block tensors by layer number, then
//! by name; the others first, by name — which is also the order it writes them, whatever the order of the input
//! file. [`Plan::order`] gives that order, so a writer can reproduce llama-quantize's files byte for byte.

use std::collections::HashSet;

use crate::quant::GgmlType;

use super::preset::Preset;

/// What the policy needs to know of the model, from its GGUF metadata (`{arch}.block_count`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelShape {
    /// `general.architecture` (`"llama"`, `"qwen2"`, …): a few rules are per architecture (Falcon; which
    /// architectures llama.cpp sizes as "70B").
    pub arch: String,
    /// `{arch}.block_count`.
    pub n_layer: u32,
    /// `{arch}.attention.head_count` (of the first layer, as llama.cpp's `n_head()` reads it).
    pub n_head: u32,
    /// `{arch}.attention.head_count_kv`; equal to `n_head` when the file has no such key.
    pub n_head_kv: u32,
    /// `{arch}.expert_count`; 0 for a dense model.
    pub n_expert: u32,
}

impl ModelShape {
    /// Query heads per KV head (`llama_hparams::n_gqa`), 0 when there are no KV heads.
    pub fn n_gqa(&self) -> u32 {
        self.n_head.checked_div(self.n_head_kv).unwrap_or(0)
    }

    /// Whether llama.cpp's model loader would size this model as `LLM_TYPE_70B` — the only model size the
    /// quantizer looks at (it gives `attn_v` more bits). From `load_arch_hparams` in `src/models/{llama,qwen2,
    /// deci,olmo,jais2}.cpp`.
    pub fn is_70b(&self) -> bool {
        match self.arch.as_str() {
            "llama" => self.n_expert != 8 && self.n_layer == 80 && self.n_head != self.n_head_kv,
            "qwen2" | "deci" | "olmo" => self.n_layer == 80,
            "jais2" => self.n_layer == 68,
            _ => false,
        }
    }

    fn is_falcon(&self) -> bool {
        self.arch == "falcon"
    }
}

/// One tensor of the source model, as its GGUF tensor info describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorShape<'a> {
    /// GGUF name (`blk.3.attn_v.weight`).
    pub name: &'a str,
    /// Dimensions, `ne[0]` (the row length) first; at most 4.
    pub dims: &'a [u64],
    /// The type the tensor has in the source file.
    pub ty: GgmlType,
}

/// `llama-quantize`'s options that change types. `Default` is the plain command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyOptions {
    /// `--pure`: no mix rules; every quantized tensor gets the default type (fallbacks still apply).
    pub pure: bool,
    /// `--output-tensor-type`: type of `output.weight` (and of a tied `token_embd.weight`).
    pub output_tensor_type: Option<GgmlType>,
    /// `--token-embedding-type`: type of `token_embd.weight`.
    pub token_embedding_type: Option<GgmlType>,
    /// `--leave-output-tensor`: keep `output.weight` in its source type.
    pub leave_output_tensor: bool,
}

/// The decision for one tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorPlan {
    /// The type the tensor is written in. Equal to the source type means a plain copy.
    pub ty: GgmlType,
    /// The type the rules chose when its block did not fit the row length and `ty` is the fallback; llama.cpp
    /// warns about each of these and counts them (`n_fallback`).
    pub fallback_from: Option<GgmlType>,
    /// Bytes of tensor data in `ty`, without alignment padding.
    pub bytes: u64,
}

/// The decisions for a whole model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// One entry per input tensor, in the order of the input slice.
    pub tensors: Vec<TensorPlan>,
    /// Indices into the input in the order llama-quantize walks and writes the tensors.
    pub order: Vec<usize>,
}

/// GGUF's default data alignment (`general.alignment` absent): each tensor's data starts at a multiple of 32.
pub const GGUF_DEFAULT_ALIGNMENT: u64 = 32;

impl Plan {
    /// Tensor data bytes, without padding.
    pub fn data_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.bytes).sum()
    }

    /// Bytes of the data section as llama-quantize writes it: every tensor padded to `alignment` (a power of two;
    /// llama-quantize always uses [`GGUF_DEFAULT_ALIGNMENT`]). Add the padded header to get the file size.
    pub fn padded_bytes(&self, alignment: u64) -> u64 {
        self.tensors.iter().map(|t| pad_to(t.bytes, alignment)).sum()
    }

    /// How many tensors needed a fallback type (llama.cpp's "N of M tensor(s) required fallback quantization").
    pub fn n_fallback(&self) -> usize {
        self.tensors.iter().filter(|t| t.fallback_from.is_some()).count()
    }
}

/// `n` rounded up to a multiple of `alignment` (GGML_PAD).
pub fn pad_to(n: u64, alignment: u64) -> u64 {
    assert!(alignment.is_power_of_two(), "alignment {alignment} is not a power of two");
    (n + alignment - 1) & !(alignment - 1)
}

/// Bytes of a tensor of shape `dims` (`ne[0]` first) in type `ty`: rows × row size. None when `ne[0]` is not a
/// whole number of `ty`'s blocks or the size overflows.
pub fn tensor_bytes(dims: &[u64], ty: GgmlType) -> Option<u64> {
    let (&ne0, rest) = dims.split_first().unwrap_or((&1, &[]));
    let rows = rest.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))?;
    ty.row_size(ne0)?.checked_mul(rows)
}

/// Why no plan could be made. llama.cpp fails on the same inputs (the loader or the quantizer throws).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("tensor {0:?} appears twice")]
    DuplicateName(String),
    #[error("tensor {name:?} has {n_dims} dimensions; GGUF allows at most 4")]
    TooManyDims { name: String, n_dims: usize },
    #[error("cannot tell the layer of expert tensor {name:?} (want blk.N. with N < {n_layer})")]
    BadLayer { name: String, n_layer: u32 },
    #[error("tensor {name:?}: row length {ne0} does not fit {ty} and {ty} has no fallback type")]
    NoFallback { name: String, ty: GgmlType, ne0: u64 },
    #[error("tensor {name:?} of shape {dims:?} cannot be stored as {ty} (row length not a whole number of blocks, or too large)")]
    Size { name: String, dims: Vec<u64>, ty: GgmlType },
}

/// Decide every tensor's type and size, as `llama-quantize <in> <out> <preset>` with `opts` would.
///
/// `tensors` may come in any order (llama.cpp re-sorts them; see [`quantize_order`]); the plan has one entry per
/// input tensor, at the same index. Fails where llama.cpp fails: duplicate names, expert tensors without a valid
/// `blk.N.`, a type with no fallback for the row length, or an override type whose block does not fit the rows.
pub fn plan(
    model: &ModelShape,
    tensors: &[TensorShape],
    preset: Preset,
    opts: &PolicyOptions,
) -> Result<Plan, PolicyError> {
    let mut seen = HashSet::with_capacity(tensors.len());
    for t in tensors {
        if !seen.insert(t.name) {
            return Err(PolicyError::DuplicateName(t.name.to_string()));
        }
        if t.dims.len() > 4 {
            return Err(PolicyError::TooManyDims { name: t.name.to_string(), n_dims: t.dims.len() });
        }
    }

    let order = quantize_order(tensors);
    let mut state = MixState {
        model,
        preset,
        // init_quantize_state_counters: counted over every tensor, quantizable or not.
        n_attention_wv: tensors.iter().filter(|t| Category::of(t.name).is_attn_v_like()).count() as i64,
        tied_embeddings: !tensors.iter().any(|t| t.name == "output.weight"),
        i_attention_wv: 0,
        i_ffn_down: 0,
        i_ffn_gate: 0,
        i_ffn_up: 0,
    };

    let mut plans = vec![None; tensors.len()];
    for &i in &order {
        let t = &tensors[i];
        let (ty, fallback_from) = state.tensor_type(t, opts)?;
        let bytes = tensor_bytes(t.dims, ty).ok_or_else(|| PolicyError::Size {
            name: t.name.to_string(),
            dims: t.dims.to_vec(),
            ty,
        })?;
        plans[i] = Some(TensorPlan { ty, fallback_from, bytes });
    }
    let tensors = plans.into_iter().map(|p| p.expect("order is a permutation")).collect();
    Ok(Plan { tensors, order })
}

/// Indices of `tensors` in the order llama-quantize processes and writes them: tensors outside the blocks first,
/// then block by block (`blk.N.`, N compared as a number), each group sorted by name, byte-wise. This is the order
/// of `llama_model_loader::weights_map`, a `std::map` keyed by `weight_name_comparer`.
pub fn quantize_order(tensors: &[TensorShape]) -> Vec<usize> {
    let key = |i: usize| (block_index(tensors[i].name).unwrap_or(-1), tensors[i].name.as_bytes());
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by(|&a, &b| key(a).cmp(&key(b)));
    order
}

/// N of a `blk.N.` name, as `sscanf(name, "blk.%d.", &n)` reads it (the `.` after N is not checked).
fn block_index(name: &str) -> Option<i64> {
    let rest = name.strip_prefix("blk.")?.trim_start();
    let (sign, digits) = match rest.as_bytes().first() {
        Some(b'-') => (-1, &rest[1..]),
        Some(b'+') => (1, &rest[1..]),
        _ => (1, rest),
    };
    let end = digits.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(digits.len());
    // i32 in C; a layer number that does not fit is garbage either way.
    digits[..end].parse::<i32>().ok().map(|n| sign * i64::from(n))
}

/// The broad role of a tensor, from its name (`tensor_get_category`). Checked in this order: a name matching
/// several patterns takes the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Category {
    TokenEmbd,
    AttnQ,
    AttnV,
    AttnK,
    AttnQkv,
    AttnKvB,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Output,
    Other,
}

impl Category {
    fn of(name: &str) -> Category {
        use Category::*;
        if name == "output.weight" {
            return Output;
        }
        if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
            return TokenEmbd;
        }
        const BY_SUBSTRING: &[(&str, Category)] = &[
            ("attn_qkv.weight", AttnQkv),
            ("attn_kv_b.weight", AttnKvB),
            ("attn_v.weight", AttnV),
            ("attn_k.weight", AttnK),
            ("attn_q.weight", AttnQ),
            ("attn_output.weight", AttnOutput),
            ("ffn_up", FfnUp),
            ("ffn_gate", FfnGate),
            ("ffn_down", FfnDown),
        ];
        BY_SUBSTRING.iter().find(|(pat, _)| name.contains(pat)).map_or(Other, |&(_, c)| c)
    }

    /// Tensors that carry V (alone or fused): the most sensitive to quantization, counted by `n_attention_wv`.
    fn is_attn_v_like(self) -> bool {
        matches!(self, Category::AttnV | Category::AttnQkv | Category::AttnKvB)
    }
}

/// Name fragments of 2-D `*weight` tensors llama.cpp never quantizes: small, or read by ops that want floats.
const NEVER_QUANTIZED: &[&str] = &[
    "_norm.weight",
    "ffn_gate_inp.weight", // MoE router
    "ffn_gate_tid2eid.weight",
    "altup",
    "laurel",
    "per_layer_model_proj",
    "ssm_conv1d",
    "shortconv.conv.weight",
    "indexer.k_proj.weight",
    "indexer.q_proj.weight",
    "time_mix_first.weight", // RWKV
    "time_mix_w0.weight",
    "time_mix_w1.weight",
    "time_mix_w2.weight",
    "time_mix_v0.weight",
    "time_mix_v1.weight",
    "time_mix_v2.weight",
    "time_mix_a0.weight",
    "time_mix_a1.weight",
    "time_mix_a2.weight",
    "time_mix_g1.weight",
    "time_mix_g2.weight",
    "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight",
    "time_mix_lerp_fused.weight",
    "attn_rel_b.weight", // T5 relative position bias
    ".position_embd",    // multimodal
    "sam.pos_embd",
    "sam.neck.",
    "sam.net_",
    ".rel_pos",
    ".patch_embd",
    ".patch_merger",
    "a.rvq.codebook",
    "mm.a.code_embd",
];

/// More of them, for GLM-5-Next only.
const NEVER_QUANTIZED_GLM5_NEXT: &[&str] = &[
    "hc_",
    "indexer.attn_q_b",
    "indexer.attn_k",
    "indexer.proj",
    "indexer_compressor_gate",
    "indexer_compressor_ape",
    "ssm_f_a.weight",
    "ssm_f_b.weight",
    "ssm_g_a.weight",
    "ssm_g_b.weight",
    "ssm_beta.weight",
    "attn_kv_a_mqa.weight",
    "attn_k_b.weight",
    "attn_v_b.weight",
];

/// Number of dimensions as ggml counts them: trailing dimensions of 1 do not count (`ggml_n_dims`).
fn n_dims(dims: &[u64]) -> usize {
    dims.iter().rposition(|&d| d > 1).map_or(1, |i| i + 1)
}

/// Whether llama.cpp quantizes this tensor at all (`tensor_allows_quantization`); if not it is copied as is.
pub fn allows_quantization(arch: &str, t: &TensorShape, opts: &PolicyOptions) -> bool {
    if n_dims(t.dims) < 2 {
        return false;
    }
    let name = t.name;
    // llama.cpp tests `name.rfind("weight") == name.size() - 6`; for a 5-byte name both sides are npos.
    let ends_in_weight = name.ends_with("weight") || name.len() == 5;
    ends_in_weight
        && !(opts.leave_output_tensor && name == "output.weight")
        && name != "position_embd.weight"
        && name != "token_types.weight"
        && !NEVER_QUANTIZED.iter().any(|p| name.contains(p))
        && !(arch == "glm5-next" && NEVER_QUANTIZED_GLM5_NEXT.iter().any(|p| name.contains(p)))
}

/// Layer indices at which the `_M` mixes spend more bits: the first and last eighth, and every third layer
/// between (`use_more_bits` in llama-quant.cpp). Integer division as in C.
pub fn use_more_bits(i_layer: i64, n_layer: i64) -> bool {
    i_layer < n_layer / 8 || i_layer >= 7 * n_layer / 8 || (i_layer - n_layer / 8) % 3 == 2
}

/// The walk's state: llama.cpp's `quantize_state_impl` counters.
struct MixState<'a> {
    model: &'a ModelShape,
    preset: Preset,
    n_attention_wv: i64,
    tied_embeddings: bool,
    i_attention_wv: i64,
    i_ffn_down: i64,
    i_ffn_gate: i64,
    i_ffn_up: i64,
}

impl MixState<'_> {
    /// `llama_tensor_get_type`: the written type, and the rule's type when a fallback replaced it.
    fn tensor_type(
        &mut self,
        t: &TensorShape,
        opts: &PolicyOptions,
    ) -> Result<(GgmlType, Option<GgmlType>), PolicyError> {
        if !allows_quantization(&self.model.arch, t, opts) {
            return Ok((t.ty, None));
        }
        let category = Category::of(t.name);
        // The overrides are taken as they are, without a fallback check (llama.cpp returns them early).
        if let (Some(ty), Category::TokenEmbd) = (opts.token_embedding_type, category) {
            return Ok((ty, None));
        }
        if let (Some(ty), Category::Output) = (opts.output_tensor_type, category) {
            return Ok((ty, None));
        }
        let default = self.preset.default_type();
        if !default.is_quantized() {
            // F32 / F16 / BF16: no mix, no fallback (every row length fits a float type).
            return Ok((default, None));
        }
        let ty = if opts.pure { default } else { self.mix_type(t, category, opts)? };
        fallback(t, ty)
    }

    /// `llama_tensor_get_type_impl` for the presets of [`Preset`]: the preset's default type, adjusted by role,
    /// layer and model. Advances the attn_v / ffn counters as llama.cpp does.
    fn mix_type(&mut self, t: &TensorShape, category: Category, opts: &PolicyOptions) -> Result<GgmlType, PolicyError> {
        use GgmlType as G;
        use Preset as P;
        let m = self.model;
        let preset = self.preset;
        let default = preset.default_type();
        let falcon = m.is_falcon();
        let ne0 = t.dims.first().copied().unwrap_or(1);

        // GLM-5-Next keeps these projections at Q8_0 or better.
        if m.arch == "glm5-next" && ["attn_q_a", "attn_q_b", "nextn.eh_proj"].iter().any(|p| t.name.contains(p)) {
            return Ok(G::Q8_0);
        }

        let ty = match category {
            // The output matrix, and the token embedding when it doubles as the output (tied embeddings).
            Category::Output | Category::TokenEmbd if category == Category::Output || self.tied_embeddings => {
                if let Some(ty) = opts.output_tensor_type {
                    ty
                } else if falcon || ne0 % default.block_size() as u64 != 0 {
                    G::Q8_0
                } else if default != G::Q8_0 {
                    G::Q6_K
                } else {
                    default
                }
            }
            // An untied token embedding keeps the default for these presets (only IQ/TQ mixes change it).
            Category::TokenEmbd => default,
            // attn_qkv and attn_kv_b take this branch too: llama.cpp's separate attn_qkv rules come after it in
            // an else-if chain and are never reached.
            c if c.is_attn_v_like() => {
                let (i, n) = (self.i_attention_wv, self.n_attention_wv);
                let mut ty = match preset {
                    P::Q2_K if m.n_gqa() >= 4 => G::Q4_K,
                    P::Q2_K => G::Q3_K,
                    P::Q3_K_M if i < 2 => G::Q5_K,
                    P::Q3_K_M => G::Q4_K,
                    P::Q3_K_L => G::Q5_K,
                    P::Q4_K_M | P::Q5_K_M if use_more_bits(i, n) => G::Q6_K,
                    P::Q4_K_S if i < 4 => G::Q5_K,
                    _ => default,
                };
                // A 70B's attn_v is 8x smaller than attn_q (GQA): more bits there cost little.
                if m.is_70b() && matches!(ty, G::Q3_K | G::Q4_K) {
                    ty = G::Q5_K;
                }
                if m.n_expert == 8 {
                    ty = G::Q8_0;
                }
                self.i_attention_wv += 1;
                ty
            }
            Category::AttnK if m.n_expert == 8 => G::Q8_0,
            Category::FfnDown => {
                let (i, n) = self.layer_info(self.i_ffn_down, t.name)?;
                let more = use_more_bits(i, n);
                let ty = match preset {
                    P::Q2_K => G::Q3_K,
                    P::Q3_K_M if i < n / 16 => G::Q5_K,
                    P::Q3_K_M if !falcon || more => G::Q4_K,
                    P::Q3_K_M => G::Q3_K,
                    P::Q3_K_L if falcon => G::Q4_K,
                    P::Q3_K_L => G::Q5_K,
                    P::Q4_K_M if falcon && i < n / 16 => G::Q6_K,
                    P::Q4_K_M if falcon && more => G::Q5_K,
                    P::Q4_K_M if !falcon && more => G::Q6_K,
                    P::Q5_K_M if more => G::Q6_K,
                    P::Q4_K_S if !falcon && i < n / 8 => G::Q5_K,
                    _ => default,
                };
                self.i_ffn_down += 1;
                ty
            }
            Category::AttnOutput if falcon => {
                if preset == P::Q3_K_L {
                    G::Q4_K
                } else {
                    default
                }
            }
            Category::AttnOutput if m.n_expert == 8 => match preset {
                P::Q2_K | P::Q3_K_S | P::Q3_K_M | P::Q4_K_S | P::Q4_K_M => G::Q5_K,
                _ => default,
            },
            Category::AttnOutput => match preset {
                P::Q2_K => G::Q3_K,
                P::Q3_K_M => G::Q4_K,
                P::Q3_K_L => G::Q5_K,
                _ => default,
            },
            // ffn_gate / ffn_up rules exist only for IQ3_XS, but the counters (and for MoE models the layer
            // lookup, which can fail) run for every preset.
            Category::FfnGate => {
                self.layer_info(self.i_ffn_gate, t.name)?;
                self.i_ffn_gate += 1;
                default
            }
            Category::FfnUp => {
                self.layer_info(self.i_ffn_up, t.name)?;
                self.i_ffn_up += 1;
                default
            }
            _ => default,
        };
        Ok(ty)
    }

    /// (layer, layer count) of an ffn tensor: the running counter for dense models; for MoE models the `blk.N.`
    /// of the name, since expert tensors need not come one per layer in order.
    fn layer_info(&self, counter: i64, name: &str) -> Result<(i64, i64), PolicyError> {
        let n_layer = i64::from(self.model.n_layer);
        if self.model.n_expert <= 1 {
            return Ok((counter, n_layer));
        }
        match block_index(name) {
            Some(i) if (0..n_layer).contains(&i) => Ok((i, n_layer)),
            _ => Err(PolicyError::BadLayer { name: name.to_string(), n_layer: self.model.n_layer }),
        }
    }
}

/// `tensor_type_fallback`: a compatible type when the row length `ne[0]` is not a multiple of `ty`'s block.
/// Returns (type, Some(ty)) when it had to fall back.
fn fallback(t: &TensorShape, ty: GgmlType) -> Result<(GgmlType, Option<GgmlType>), PolicyError> {
    use GgmlType as G;
    let ne0 = t.dims.first().copied().unwrap_or(1);
    let fits = |ty: GgmlType| ne0 % ty.block_size() as u64 == 0;
    if fits(ty) {
        return Ok((ty, None));
    }
    // 256-weight types fall back to a 32-weight type of a few more bits.
    let to = match ty {
        G::IQ1_S | G::IQ1_M | G::IQ2_XXS | G::IQ2_XS | G::IQ2_S | G::IQ3_XXS | G::IQ3_S | G::IQ4_XS => G::IQ4_NL,
        G::Q2_0 | G::Q2_K | G::Q3_K | G::TQ1_0 | G::TQ2_0 => G::Q4_0,
        G::Q4_K => G::Q5_0,
        G::Q5_K => G::Q5_1,
        G::Q6_K => G::Q8_0,
        // Already a 32-weight type: nothing smaller to go to, so F16 below.
        _ if ty.block_size() <= 32 => ty,
        _ => return Err(PolicyError::NoFallback { name: t.name.to_string(), ty, ne0 }),
    };
    // Row length not even a multiple of 32 ("must use F16 due to unusual shape").
    let to = if fits(to) { to } else { G::F16 };
    Ok((to, Some(ty)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_more_bits_on_16_and_30_layers() {
        let layers = |n: i64| (0..n).filter(|&i| use_more_bits(i, n)).collect::<Vec<_>>();
        // 16 layers: n/8 = 2, 7n/8 = 14.
        assert_eq!(layers(16), [0, 1, 4, 7, 10, 13, 14, 15]);
        // 30 layers (SmolLM2): n/8 = 3, 7n/8 = 26.
        assert_eq!(layers(30), [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29]);
    }

    #[test]
    fn block_index_reads_like_sscanf() {
        assert_eq!(block_index("blk.12.attn_v.weight"), Some(12));
        assert_eq!(block_index("blk.3"), Some(3));
        assert_eq!(block_index("blk.x.attn_v.weight"), None);
        assert_eq!(block_index("token_embd.weight"), None);
        assert_eq!(block_index("blk.-1.a"), Some(-1));
    }

    #[test]
    fn n_dims_ignores_trailing_ones() {
        assert_eq!(n_dims(&[2048]), 1);
        assert_eq!(n_dims(&[2048, 1]), 1);
        assert_eq!(n_dims(&[2048, 1, 1, 1]), 1);
        assert_eq!(n_dims(&[1, 4]), 2);
        assert_eq!(n_dims(&[]), 1);
    }

    #[test]
    fn categories_follow_tensor_get_category() {
        assert_eq!(Category::of("output.weight"), Category::Output);
        assert_eq!(Category::of("token_embd.weight"), Category::TokenEmbd);
        assert_eq!(Category::of("blk.0.attn_v.weight"), Category::AttnV);
        assert_eq!(Category::of("blk.0.attn_qkv.weight"), Category::AttnQkv);
        assert_eq!(Category::of("blk.0.attn_kv_b.weight"), Category::AttnKvB);
        assert_eq!(Category::of("blk.0.attn_k.weight"), Category::AttnK);
        assert_eq!(Category::of("blk.0.attn_v.bias"), Category::Other);
        assert_eq!(Category::of("blk.0.ffn_down_exps.weight"), Category::FfnDown);
        assert_eq!(Category::of("blk.0.ffn_gate_inp.weight"), Category::FfnGate);
    }

    #[test]
    fn fallbacks_follow_tensor_type_fallback() {
        use GgmlType as G;
        let fb = |ne0: u64, ty: GgmlType| fallback(&TensorShape { name: "x.weight", dims: &[ne0, 4], ty: G::F32 }, ty);
        let cases = [
            (576, G::Q4_K, G::Q5_0),
            (576, G::Q5_K, G::Q5_1),
            (576, G::Q6_K, G::Q8_0),
            (576, G::Q3_K, G::Q4_0),
            (576, G::Q2_K, G::Q4_0),
            (700, G::Q4_K, G::F16),
            (700, G::Q8_0, G::F16),
            (700, G::Q4_0, G::F16),
        ];
        for (ne0, from, to) in cases {
            assert_eq!(fb(ne0, from), Ok((to, Some(from))), "{from} at {ne0}");
        }
        assert_eq!(fb(512, G::Q4_K), Ok((G::Q4_K, None)));
        assert!(matches!(fb(576, G::Q8_K), Err(PolicyError::NoFallback { .. })));
    }
}
