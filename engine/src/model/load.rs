//! Loading: map the file, read the hyperparameters, find and check every tensor the forward pass will touch.
//!
//! Tensor names and shapes are llama.cpp's (`LLM_TENSOR_NAMES`; ggml order, row length first). The output matrix
//! falls back to the token embedding when the file has none (tied embeddings: SmolLM2, Llama 3.2, Qwen2.5 small).

use std::path::Path;
use std::sync::OnceLock;

use super::hparams::{Arch, HParams};
use super::rope::Rope;
use super::ModelError;
use crate::gguf::GgufFile;
use crate::kernels::{self, Weight};
use crate::page_cache::Settled;

/// A weight matrix in the file: which tensor, and its shape as rows of `cols` weights.
#[derive(Clone, Copy, Debug)]
pub(super) struct Mat {
    index: usize,
    pub rows: usize,
    pub cols: usize,
}

/// One transformer block. Matrices stay in the file; 1-D tensors are small f32 copies.
pub(super) struct Layer {
    pub attn_norm: Vec<f32>,
    /// q: (n_head·head_dim) × n_embd; k, v: (n_head_kv·head_dim) × n_embd; o: n_embd × (n_head·head_dim).
    pub wq: Mat,
    pub wk: Mat,
    pub wv: Mat,
    pub wo: Mat,
    /// Qwen2's q/k/v biases (some Llama derivatives have them too, and an output bias).
    pub bq: Option<Vec<f32>>,
    pub bk: Option<Vec<f32>>,
    pub bv: Option<Vec<f32>>,
    pub bo: Option<Vec<f32>>,
    pub ffn_norm: Vec<f32>,
    /// gate, up: n_ff × n_embd; down: n_embd × n_ff.
    pub w_gate: Mat,
    pub w_up: Mat,
    pub w_down: Mat,
}

/// A loaded model: the mapped file and checked views of its weights. Share it between sessions with an `Arc`.
pub struct Model {
    gguf: GgufFile,
    hp: HParams,
    /// n_vocab × n_embd; rows are gathered per token.
    pub(super) tok_embd: Mat,
    pub(super) output_norm: Vec<f32>,
    /// n_vocab × n_embd: `output.weight`, or `token_embd.weight` when tied.
    pub(super) output: Mat,
    pub(super) layers: Vec<Layer>,
    pub(super) rope: Rope,
    /// What [`Model::settle_page_cache`] did, once it has run.
    page_cache: OnceLock<Option<Settled>>,
}

impl Model {
    /// Maps the GGUF file at `path` and checks that it holds a model PocketLM can run.
    pub fn load(path: impl AsRef<Path>) -> Result<Model, ModelError> {
        let gguf = GgufFile::open(path.as_ref())?;
        Model::from_gguf(gguf)
    }

    /// Checks and wraps an already opened file.
    pub fn from_gguf(gguf: GgufFile) -> Result<Model, ModelError> {
        let hp = HParams::read(&gguf)?;
        let l = Loader { f: &gguf };
        let (e, v, q, kv, ff) = (hp.n_embd, hp.n_vocab, hp.n_q(), hp.n_kv(), hp.n_ff);
        let tok_embd = l.mat("token_embd.weight", v, e)?;
        let output = match gguf.tensor("output.weight") {
            Some(_) => l.mat("output.weight", v, e)?,
            None => tok_embd,
        };
        let output_norm = l.vec("output_norm.weight", e)?;
        let factors = match gguf.tensor("rope_freqs.weight") {
            Some(_) if hp.arch == Arch::Llama => Some(l.vec("rope_freqs.weight", hp.n_rot / 2)?),
            _ => None,
        };
        if let Some(f) = &factors {
            if let Some(bad) = f.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
                return Err(ModelError::BadHParams {
                    file: gguf.path().into(),
                    reason: format!("rope_freqs.weight holds {bad}, not a positive frequency divisor"),
                });
            }
        }
        let rope = Rope::new(&hp, factors.as_deref());
        let mut layers = Vec::with_capacity(hp.n_layer);
        for i in 0..hp.n_layer {
            let n = |s: &str| format!("blk.{i}.{s}");
            let biases = hp.arch == Arch::Qwen2;
            let bias = |s: &str, len: usize, required: bool| -> Result<Option<Vec<f32>>, ModelError> {
                if required || gguf.tensor(&n(s)).is_some() {
                    l.vec(&n(s), len).map(Some)
                } else {
                    Ok(None)
                }
            };
            layers.push(Layer {
                attn_norm: l.vec(&n("attn_norm.weight"), e)?,
                wq: l.mat(&n("attn_q.weight"), q, e)?,
                wk: l.mat(&n("attn_k.weight"), kv, e)?,
                wv: l.mat(&n("attn_v.weight"), kv, e)?,
                wo: l.mat(&n("attn_output.weight"), e, q)?,
                bq: bias("attn_q.bias", q, biases)?,
                bk: bias("attn_k.bias", kv, biases)?,
                bv: bias("attn_v.bias", kv, biases)?,
                bo: bias("attn_output.bias", e, false)?,
                ffn_norm: l.vec(&n("ffn_norm.weight"), e)?,
                w_gate: l.mat(&n("ffn_gate.weight"), ff, e)?,
                w_up: l.mat(&n("ffn_up.weight"), ff, e)?,
                w_down: l.mat(&n("ffn_down.weight"), e, ff)?,
            });
        }
        Ok(Model { gguf, hp, tok_embd, output_norm, output, layers, rope, page_cache: OnceLock::new() })
    }

    pub fn hparams(&self) -> &HParams {
        &self.hp
    }

    /// Maps every page of the file, in huge pages where the OS can ([`GgufFile::settle_in_huge_pages`]), which
    /// generation runs faster on: once per model, as its first [`Context`](super::Context) is made (a model only
    /// looked at is not read). What it did, or None where it did nothing.
    pub fn settle_page_cache(&self) -> Option<Settled> {
        *self.page_cache.get_or_init(|| self.gguf.settle_in_huge_pages())
    }

    /// What [`Model::settle_page_cache`] did, if it has run and did anything.
    pub fn page_cache(&self) -> Option<Settled> {
        self.page_cache.get().copied().flatten()
    }

    /// The file, for the tokenizer and the chat template.
    pub fn gguf(&self) -> &GgufFile {
        &self.gguf
    }

    /// The matrix `m` as the kernels take it, borrowed from the mapping.
    pub(super) fn w(&self, m: &Mat) -> Weight<'_> {
        let t = &self.gguf.tensors()[m.index];
        Weight { ty: t.ty, data: self.gguf.tensor_data(t), rows: m.rows, cols: m.cols }
    }
}

struct Loader<'a> {
    f: &'a GgufFile,
}

impl Loader<'_> {
    fn find(&self, name: &str, dims: &[usize]) -> Result<usize, ModelError> {
        let file = self.f.path();
        let index = self
            .f
            .tensors()
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(|| ModelError::MissingTensor { file: file.into(), tensor: name.into() })?;
        let t = &self.f.tensors()[index];
        let expected: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
        if t.dims != expected {
            return Err(ModelError::TensorShape {
                file: file.into(),
                tensor: name.into(),
                expected,
                got: t.dims.clone(),
            });
        }
        Ok(index)
    }

    /// A matrix of `rows` rows of `cols` weights (ggml shape [cols, rows]) in a type the kernels compute with.
    fn mat(&self, name: &str, rows: usize, cols: usize) -> Result<Mat, ModelError> {
        let index = self.find(name, &[cols, rows])?;
        let ty = self.f.tensors()[index].ty;
        if !kernels::supports(ty) {
            return Err(ModelError::UnsupportedType { file: self.f.path().into(), tensor: name.into(), ty });
        }
        Ok(Mat { index, rows, cols })
    }

    /// A 1-D tensor of `len` values, as f32.
    fn vec(&self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        let t = &self.f.tensors()[self.find(name, &[len])?];
        let mut out = vec![0f32; len];
        crate::quant::dequantize(t.ty, self.f.tensor_data(t), &mut out).map_err(|_| ModelError::UnsupportedType {
            file: self.f.path().into(),
            tensor: name.into(),
            ty: t.ty,
        })?;
        Ok(out)
    }
}
