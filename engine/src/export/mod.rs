//! GGUF → Hugging Face: the reverse of [`crate::convert`], for `llama` and `qwen2` files with a byte-level BPE
//! vocabulary. It rebuilds a checkpoint folder that our converter and llama.cpp's `convert_hf_to_gguf.py` accept:
//!
//! ```text
//! OUTDIR/config.json              LlamaForCausalLM / Qwen2ForCausalLM, from {arch}.* keys     (config.rs)
//! OUTDIR/generation_config.json   special ids, general.sampling.*                             (config.rs)
//! OUTDIR/model.safetensors        every tensor dequantized, q/k un-permuted, narrowed          (safetensors.rs)
//! OUTDIR/tokenizer.json           vocab + merges + the family's pre-tokenizer (from `pre`)    (tokenizer.rs)
//! OUTDIR/tokenizer_config.json    chat template, special tokens, add_bos_token, max length    (tokenizer.rs)
//! OUTDIR/special_tokens_map.json
//! ```
//!
//! Names invert the converter's table, and the Llama q/k rows go back from llama.cpp's adjacent-pair RoPE order
//! to Hugging Face's rotate-half order ([`source`]). At `--dtype f32` the weights are exactly the dequantized GGUF
//! values, so converting the folder back at F32 gives the dequantized original bit for bit; BF16 (the default) and
//! F16 round each value to nearest even.
//!
//! Before a weight is written the folder is checked by running the converter's planner on it ([`verify`]): it must
//! give back the GGUF's tensor names and shapes, hyperparameters and tokenizer. The folder is built as
//! `.OUTDIR.partial-PID` beside OUTDIR and renamed into place only when complete, so OUTDIR is whole or absent.
//!
//! Not carried over: `general.*` (names, licence) and keys no Hugging Face file holds (e.g. llama.cpp's EOT/EOM ids,
//! which its loader re-derives from the tokens); [`ExportReport::not_carried`] lists them.

mod config;
mod json;
mod safetensors;
pub mod source;
mod tokenizer;
mod verify;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::atomic::AtomicFile;
use crate::convert::Architecture;
use crate::gguf::{GgufError, GgufFile};
pub use crate::hf::Dtype;
use crate::quant::GgmlType;
pub use crate::quantize::CancelToken;
use json::J;
pub use source::{ExportTensor, ModelParams, SourceModel};
pub use tokenizer::SUPPORTED_PRE;

/// Why an export stopped. Every variant names the file, and the key or tensor where there is one.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Gguf(#[from] GgufError),

    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{}: architecture {found:?} cannot be exported (supported: llama, qwen2)", file.display())]
    UnsupportedArchitecture { file: PathBuf, found: String },

    #[error("{}: metadata key {key:?} is missing", file.display())]
    MissingKey { file: PathBuf, key: String },

    #[error("{}: metadata key {key:?}: {reason}", file.display())]
    BadKey { file: PathBuf, key: String, reason: String },

    #[error("{}: tensor {tensor:?} is missing", file.display())]
    MissingTensor { file: PathBuf, tensor: String },

    #[error("{}: tensor {tensor:?}: {reason}", file.display())]
    Tensor { file: PathBuf, tensor: String, reason: String },

    #[error("{}: {reason}", file.display())]
    Model { file: PathBuf, reason: String },

    #[error("{}: RoPE scaling: {reason}", file.display())]
    RopeScaling { file: PathBuf, reason: String },

    #[error("{}: tensor {tensor:?}: value {value} at element {index} {reason}", file.display())]
    NonFinite { file: PathBuf, tensor: String, index: u64, value: f32, reason: String },

    #[error("{}: the exported folder would not convert back to the same model (the file's value vs the converted folder's):\n  {}", file.display(), problems.join("\n  "))]
    Verify { file: PathBuf, problems: Vec<String> },

    #[error("{}: {reason}", dir.display())]
    Output { dir: PathBuf, reason: String },

    #[error("cancelled")]
    Cancelled,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io { path: path.to_path_buf(), source }
}

/// What to write.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Storage type of every tensor in model.safetensors.
    pub dtype: Dtype,
    /// Replace an existing, non-empty OUTDIR (only one that holds a config.json: a model folder).
    pub force: bool,
}

impl Default for ExportOptions {
    /// BF16, the type Llama/SmolLM/Qwen checkpoints are published in.
    fn default() -> Self {
        ExportOptions { dtype: Dtype::BF16, force: false }
    }
}

/// Where a running export is: called after each tensor.
#[derive(Clone, Debug)]
pub struct Progress<'a> {
    /// 1-based index of the tensor just written, and how many there are.
    pub tensor: usize,
    pub tensors: usize,
    pub hf_name: &'a str,
    pub gguf_name: &'a str,
    pub shape: &'a [u64],
    pub source_type: GgmlType,
    /// Bytes of model.safetensors written so far, of the total.
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// What an export made.
#[derive(Clone, Debug)]
pub struct ExportReport {
    pub out_dir: PathBuf,
    pub arch: Architecture,
    /// `tokenizer.ggml.pre`, found again by the converter's fingerprint.
    pub pre: String,
    pub dtype: Dtype,
    pub tensors: usize,
    pub params: u64,
    pub safetensors_bytes: u64,
    /// All files of the folder.
    pub total_bytes: u64,
    /// GGUF keys the folder does not carry (besides `general.*`).
    pub not_carried: Vec<String>,
}

/// The folder being built beside OUTDIR; removed on drop unless published.
struct StagingDir {
    path: PathBuf,
    published: bool,
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// `dir`'s parent, `.` for a bare name.
fn parent_of(dir: &Path) -> &Path {
    match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A sibling of `dir` named `.NAME.TAG-PID`.
fn sibling(dir: &Path, tag: &str) -> Result<PathBuf, ExportError> {
    let name = dir
        .file_name()
        .ok_or_else(|| ExportError::Output { dir: dir.into(), reason: "the output path has no folder name".into() })?;
    Ok(parent_of(dir).join(format!(".{}.{tag}-{}", name.to_string_lossy(), std::process::id())))
}

/// Refuses outputs we must not touch: a file, a non-empty folder without `force`, a non-model folder even with
/// it, and any folder holding the input. Returns whether OUTDIR exists (and will be replaced).
fn check_output(input: &Path, dir: &Path, force: bool) -> Result<bool, ExportError> {
    let refuse = |reason: String| Err(ExportError::Output { dir: dir.into(), reason });
    if !dir.exists() {
        return Ok(false);
    }
    if !dir.is_dir() {
        return refuse("exists and is not a folder".into());
    }
    let mut entries = fs::read_dir(dir).map_err(io_err(dir))?;
    if entries.next().is_none() {
        return Ok(true);
    }
    if !force {
        return refuse("exists and is not empty (use --force to replace it)".into());
    }
    if !dir.join("config.json").is_file() {
        return refuse("is not a model folder (no config.json): refusing to replace it even with --force".into());
    }
    let input = fs::canonicalize(input).map_err(io_err(input))?;
    let out = fs::canonicalize(dir).map_err(io_err(dir))?;
    if input.starts_with(&out) {
        return refuse(format!("holds the input {}: refusing to replace it", input.display()));
    }
    Ok(true)
}

/// Writes `value` as pretty JSON through a temporary file.
fn write_json(path: &Path, value: &J) -> Result<(), ExportError> {
    let mut file = AtomicFile::create(path).map_err(io_err(path))?;
    serde_json::to_writer_pretty(&mut file, value).map_err(|e| io_err(path)(e.into()))?;
    file.write_all(b"\n").map_err(io_err(path))?;
    file.commit().map_err(io_err(path))
}

/// Exports the GGUF `input` to the Hugging Face folder `out_dir`. `on_progress` is called after every tensor; once
/// `cancel` is cancelled (checked between slices of rows) the export stops with [`ExportError::Cancelled`] and leaves nothing behind.
pub fn export_hf(
    input: &Path,
    out_dir: &Path,
    opts: &ExportOptions,
    cancel: &CancelToken,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<ExportReport, ExportError> {
    let replace = check_output(input, out_dir, opts.force)?;
    let g = GgufFile::open(input)?;
    let src = SourceModel::read(&g)?;
    let vocab = tokenizer::Vocab::read(&g, src.params.n_vocab)?;
    let rope = config::rope_scaling(&g, src.arch, &src.params, src.rope_freqs.as_deref())?;
    let tok = tokenizer::build(&g, &vocab, src.params.context_length)?;
    let cfg = config::config_json(src.arch, &src.params, rope, &vocab.specials, opts.dtype);
    let gen = config::generation_config(&g, &vocab.specials);

    let staging = StagingDir { path: sibling(out_dir, "partial")?, published: false };
    if staging.path.exists() {
        fs::remove_dir_all(&staging.path).map_err(io_err(&staging.path))?;
    }
    fs::create_dir_all(&staging.path).map_err(io_err(&staging.path))?;
    let dir = &staging.path;
    write_json(&dir.join("config.json"), &cfg)?;
    write_json(&dir.join("generation_config.json"), &gen)?;
    write_json(&dir.join("tokenizer.json"), &tok.tokenizer_json)?;
    write_json(&dir.join("tokenizer_config.json"), &tok.tokenizer_config)?;
    write_json(&dir.join("special_tokens_map.json"), &tok.special_tokens_map)?;

    // Check the folder with the converter before spending time on weights: a placeholder model.safetensors with
    // the real header and a hole where the data goes (the planner reads headers only).
    let st_path = dir.join("model.safetensors");
    let (header, data_len) = safetensors::header(&src.tensors, opts.dtype);
    let total = header.len() as u64 + data_len;
    {
        let mut stub = fs::File::create(&st_path).map_err(io_err(&st_path))?;
        stub.write_all(&header).map_err(io_err(&st_path))?;
        stub.set_len(total).map_err(io_err(&st_path))?;
    }
    verify::check(dir, &g, &src)?;

    let mut out = AtomicFile::create(&st_path).map_err(io_err(&st_path))?;
    out.write_all(&header).map_err(io_err(&st_path))?;
    let mut bufs = safetensors::Buffers::default();
    let mut done = header.len() as u64;
    for (i, t) in src.tensors.iter().enumerate() {
        safetensors::write_tensor(&mut out, &g, t, opts.dtype, &mut bufs, cancel, io_err(&st_path))?;
        done += t.n_elements() * opts.dtype.size() as u64;
        on_progress(&Progress {
            tensor: i + 1,
            tensors: src.tensors.len(),
            hf_name: &t.hf_name,
            gguf_name: &t.gguf.name,
            shape: &t.shape,
            source_type: t.gguf.ty,
            bytes_done: done,
            bytes_total: total,
        });
    }
    out.commit().map_err(io_err(&st_path))?;
    // The file on disk must be what the header promised (a short write would show here).
    crate::hf::SafetensorsFile::open(&st_path)
        .map_err(|e| ExportError::Verify { file: input.into(), problems: vec![e.to_string()] })?;

    let total_bytes = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    publish(staging, out_dir, replace)?;
    Ok(ExportReport {
        out_dir: out_dir.to_path_buf(),
        arch: src.arch,
        pre: vocab.pre.clone(),
        dtype: opts.dtype,
        tensors: src.tensors.len(),
        params: src.tensors.iter().map(ExportTensor::n_elements).sum(),
        safetensors_bytes: total,
        total_bytes,
        not_carried: verify::not_carried(&g, &src),
    })
}

/// Renames the finished folder to `out_dir`. An existing `out_dir` (empty, or a model folder under `--force`) is
/// moved aside first and deleted only once the new folder is in place; if that rename fails it is moved back.
fn publish(mut staging: StagingDir, out_dir: &Path, replace: bool) -> Result<(), ExportError> {
    let old = if replace {
        let old = sibling(out_dir, "old")?;
        fs::rename(out_dir, &old).map_err(io_err(out_dir))?;
        Some(old)
    } else {
        None
    };
    if let Err(e) = fs::rename(&staging.path, out_dir) {
        if let Some(old) = &old {
            let _ = fs::rename(old, out_dir);
        }
        return Err(io_err(out_dir)(e));
    }
    staging.published = true;
    if let Some(old) = old {
        fs::remove_dir_all(&old).map_err(io_err(&old))?;
    }
    // Make the rename durable (best effort: not every platform can sync a directory).
    if let Ok(d) = fs::File::open(parent_of(out_dir)) {
        let _ = d.sync_all();
    }
    Ok(())
}
