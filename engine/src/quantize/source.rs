//! Where a quantization reads its weights from: a Hugging Face checkpoint (converted on the fly, as llama.cpp's
//! `convert_hf_to_gguf.py` would) or a GGUF file (requantized). Both hand out rows of a tensor as f32, a slice of
//! rows at a time, so a tensor larger than memory never needs to be whole.

use std::path::{Path, PathBuf};

use crate::convert::{self, metadata::MetaValue, ConversionPlan, Source as TensorSource, Transform};
use crate::gguf::{GgufFile, Value, ValueType};
use crate::hf::{safetensors::widen_into, Checkpoint, Dtype};
use rayon::prelude::*;
use crate::quant::{self, GgmlType};
use crate::quantize::ModelShape;

use super::QuantizeError;

/// A tensor as the source presents it, in GGUF terms.
#[derive(Clone, Debug)]
pub struct SourceTensor {
    pub name: String,
    /// ne order: `dims[0]` is the row length.
    pub dims: Vec<u64>,
    /// The type it would have in the GGUF that llama.cpp's quantizer reads (for a checkpoint, what
    /// `convert_hf_to_gguf.py --outtype auto` writes: 1-D tensors F32, matrices in their checkpoint dtype).
    pub ty: GgmlType,
    /// Bytes read from the source for this tensor (for progress).
    pub source_bytes: u64,
}

impl SourceTensor {
    pub fn row_len(&self) -> usize {
        self.dims[0] as usize
    }
    pub fn n_rows(&self) -> usize {
        self.dims[1..].iter().product::<u64>() as usize
    }
}

pub enum ModelSource {
    Checkpoint { ckpt: Box<Checkpoint>, plan: Box<ConversionPlan> },
    Gguf(Box<GgufFile>),
}

impl ModelSource {
    /// Opens `path`: a `.gguf` file, or a Hugging Face folder (also inside the HF cache layout).
    pub fn open(path: &Path) -> Result<ModelSource, QuantizeError> {
        if path.is_file() {
            return Ok(ModelSource::Gguf(Box::new(GgufFile::open(path)?)));
        }
        let ckpt = Checkpoint::open(path)?;
        let plan = convert::plan(&ckpt)?;
        Ok(ModelSource::Checkpoint { ckpt: Box::new(ckpt), plan: Box::new(plan) })
    }

    pub fn path(&self) -> PathBuf {
        match self {
            ModelSource::Checkpoint { ckpt, .. } => ckpt.dir().to_path_buf(),
            ModelSource::Gguf(f) => f.path().to_path_buf(),
        }
    }

    /// Bytes of the model on disk: the weight files of a checkpoint, or the whole GGUF.
    pub fn size_on_disk(&self) -> u64 {
        match self {
            ModelSource::Checkpoint { ckpt, .. } => ckpt.source_bytes(),
            ModelSource::Gguf(f) => f.file_size(),
        }
    }

    /// Metadata in the order llama.cpp's quantizer finds it in its input.
    pub fn metadata(&self) -> Vec<(String, Value)> {
        match self {
            ModelSource::Checkpoint { plan, .. } => {
                plan.metadata.entries().iter().map(|(k, v)| (k.clone(), meta_to_value(v))).collect()
            }
            ModelSource::Gguf(f) => f.metadata().to_vec(),
        }
    }

    pub fn tensors(&self) -> Vec<SourceTensor> {
        match self {
            ModelSource::Checkpoint { plan, .. } => plan
                .tensors
                .iter()
                .map(|t| {
                    let (ty, source_bytes) = match &t.source {
                        TensorSource::Generated(v) => (GgmlType::F32, 4 * v.len() as u64),
                        TensorSource::Checkpoint { dtype, .. } => {
                            let bytes = t.n_elements() * dtype.size() as u64;
                            let ty = if t.dims.len() == 1 { GgmlType::F32 } else { dtype_type(*dtype) };
                            (ty, bytes)
                        }
                    };
                    SourceTensor { name: t.name.clone(), dims: t.dims.clone(), ty, source_bytes }
                })
                .collect(),
            ModelSource::Gguf(f) => f
                .tensors()
                .iter()
                .map(|t| SourceTensor { name: t.name.clone(), dims: t.dims.clone(), ty: t.ty, source_bytes: t.n_bytes })
                .collect(),
        }
    }

    /// The shape facts the type policy needs.
    pub fn model_shape(&self) -> Result<ModelShape, QuantizeError> {
        match self {
            ModelSource::Checkpoint { plan, .. } => Ok(ModelShape {
                arch: plan.arch.gguf_name().to_string(),
                n_layer: plan.hparams.n_layers as u32,
                n_head: plan.hparams.n_head as u32,
                n_head_kv: plan.hparams.n_head_kv as u32,
                n_expert: 0,
            }),
            ModelSource::Gguf(f) => {
                let arch = f.architecture().ok_or_else(|| QuantizeError::Model {
                    path: f.path().to_path_buf(),
                    message: "no general.architecture key".into(),
                })?;
                let get = |k: &str| f.get_u64(&format!("{arch}.{k}"));
                let n_layer = get("block_count").ok_or_else(|| QuantizeError::Model {
                    path: f.path().to_path_buf(),
                    message: format!("no {arch}.block_count key"),
                })?;
                let n_head = get("attention.head_count").unwrap_or(0);
                Ok(ModelShape {
                    arch: arch.to_string(),
                    n_layer: n_layer as u32,
                    n_head: n_head as u32,
                    n_head_kv: get("attention.head_count_kv").unwrap_or(n_head) as u32,
                    n_expert: get("expert_count").unwrap_or(0) as u32,
                })
            }
        }
    }

    /// Loads rows `rows` of tensor `index` (as listed by [`Self::tensors`]) as f32 into `out`, checking every value
    /// is finite. `scratch` holds a whole tensor for the few that must be transformed at once (permuted q/k).
    pub fn read_rows(
        &self,
        index: usize,
        t: &SourceTensor,
        rows: std::ops::Range<usize>,
        out: &mut Vec<f32>,
        scratch: &mut Vec<f32>,
    ) -> Result<(), QuantizeError> {
        let n = t.row_len();
        match self {
            ModelSource::Gguf(f) => {
                let info = &f.tensors()[index];
                let row_bytes = info.ty.row_size(n as u64).expect("checked when the file was opened") as usize;
                let range = rows.start * row_bytes..rows.end * row_bytes;
                out.clear();
                out.resize(rows.len() * n, 0.0);
                quant::dequantize(info.ty, &f.tensor_data(info)[range.clone()], out)
                    .map_err(|e| QuantizeError::Tensor { name: t.name.clone(), message: e.to_string() })?;
                f.release(info, range);
            }
            ModelSource::Checkpoint { ckpt, plan } => {
                let planned = &plan.tensors[index];
                match &planned.source {
                    TensorSource::Checkpoint { name, dtype, transform: Transform::None } => {
                        let (shard, info) = ckpt.tensor_info(name).ok_or_else(|| QuantizeError::Tensor {
                            name: t.name.clone(),
                            message: format!("checkpoint tensor {name} disappeared"),
                        })?;
                        let row_bytes = n * dtype.size();
                        let range = rows.start * row_bytes..rows.end * row_bytes;
                        // Widened in parallel: at BF16 → f32 speeds this pass is memory- and page-fault-bound.
                        const CHUNK: usize = 1 << 16;
                        out.clear();
                        out.resize(rows.len() * n, 0.0);
                        out.par_chunks_mut(CHUNK)
                            .zip(shard.bytes(info)[range.clone()].par_chunks(CHUNK * dtype.size()))
                            .for_each(|(o, b)| widen_into(*dtype, b, o));
                        shard.release(info, range);
                    }
                    _ => {
                        // Permuted or generated: small tensors, made whole once and sliced.
                        if rows.start == 0 {
                            convert::load_tensor(ckpt, planned, scratch)?;
                            if let TensorSource::Checkpoint { name, .. } = &planned.source {
                                if let Some((shard, info)) = ckpt.tensor_info(name) {
                                    shard.release(info, 0..info.end - info.start);
                                }
                            }
                        }
                        out.clear();
                        out.extend_from_slice(&scratch[rows.start * n..rows.end * n]);
                    }
                }
            }
        }
        if let Some(i) = out.par_iter().position_first(|v| !v.is_finite()) {
            let (row, col) = (rows.start + i / n, i % n);
            return Err(QuantizeError::NonFinite { path: self.path(), tensor: t.name.clone(), row, col, value: out[i] });
        }
        Ok(())
    }
}

fn dtype_type(d: Dtype) -> GgmlType {
    match d {
        Dtype::F32 => GgmlType::F32,
        Dtype::F16 => GgmlType::F16,
        Dtype::BF16 => GgmlType::BF16,
    }
}

/// The converter's metadata values as GGUF values (same types gguf-py writes).
pub fn meta_to_value(v: &MetaValue) -> Value {
    match v {
        MetaValue::U32(x) => Value::U32(*x),
        MetaValue::I32(x) => Value::I32(*x),
        MetaValue::F32(x) => Value::F32(*x),
        MetaValue::Bool(x) => Value::Bool(*x),
        MetaValue::String(s) => Value::String(s.clone()),
        MetaValue::StringArray(xs) => Value::Array(ValueType::String, xs.iter().cloned().map(Value::String).collect()),
        MetaValue::I32Array(xs) => Value::Array(ValueType::I32, xs.iter().map(|&x| Value::I32(x)).collect()),
        MetaValue::F32Array(xs) => Value::Array(ValueType::F32, xs.iter().map(|&x| Value::F32(x)).collect()),
    }
}
