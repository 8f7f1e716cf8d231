//! Quantizing a model: presets, the per-tensor type policy, and the streaming pipeline.
//!
//! - [`preset`]: the presets `llama-quantize` accepts that PocketLM can write (`Q4_K_M`, …), their
//!   `general.file_type` numbers and default types.
//! - [`policy`]: which ggml type every tensor gets for a preset — llama.cpp's k-quant mixes, its list of tensors
//!   never quantized, its row-length fallbacks and its tensor order — and the exact output size, all from names
//!   and shapes before a weight is read.
//! - [`source`] and the pipeline ([`Job`], [`quantize_model`]): one streaming pass from a Hugging Face checkpoint
//!   or a GGUF file to the output, with progress, cancel and a report.
//!
//! ```
//! use pocketlm::quant::GgmlType;
//! use pocketlm::quantize::{plan, ModelShape, PolicyOptions, Preset, TensorShape};
//!
//! let model = ModelShape { arch: "llama".into(), n_layer: 1, n_head: 8, n_head_kv: 2, n_expert: 0 };
//! let tensors = [
//!     TensorShape { name: "token_embd.weight", dims: &[512, 1000], ty: GgmlType::BF16 },
//!     TensorShape { name: "blk.0.attn_v.weight", dims: &[512, 128], ty: GgmlType::BF16 },
//!     TensorShape { name: "blk.0.attn_norm.weight", dims: &[512], ty: GgmlType::F32 },
//! ];
//! let p = plan(&model, &tensors, "Q4_K_M".parse().unwrap(), &PolicyOptions::default()).unwrap();
//! // No output.weight: the embedding doubles as the output matrix and gets Q6_K; norms stay F32.
//! assert_eq!(p.tensors[0].ty, GgmlType::Q6_K);
//! assert_eq!(p.tensors[1].ty, GgmlType::Q6_K); // the first layers' attn_v get more bits
//! assert_eq!(p.tensors[2].ty, GgmlType::F32);
//! assert_eq!(p.data_bytes(), 1000 * 420 + 128 * 420 + 512 * 4);
//! ```

mod pipeline;
pub mod policy;
pub mod preset;
pub mod source;

pub use pipeline::{quantize_model, CancelToken, Job, Progress, QuantizeError, QuantizeOptions, Report, TensorReport};

pub use policy::{
    plan, quantize_order, tensor_bytes, ModelShape, Plan, PolicyError, PolicyOptions, TensorPlan, TensorShape,
    GGUF_DEFAULT_ALIGNMENT,
};
pub use preset::{Preset, UnknownPreset, QUANTIZATION_VERSION};
