//! The quantization pipeline: one streaming pass from a checkpoint or GGUF file to a GGUF file of a preset.
//!
//! mmap in → (convert) → slices of rows as f32 → quantize across all cores → stream out. Memory stays at one slice
//! of rows in and out (plus a whole q/k matrix when a checkpoint's rows must be permuted), whatever the model size.
//! The output is written the way `llama-quantize` writes it: the input's metadata in order with
//! `general.quantization_version` and `general.file_type` moved to the end, tensors in llama.cpp's order, data
//! aligned. It goes to a temporary file renamed into place only when complete, so an error or a cancel leaves
//! nothing behind.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::gguf::{file_layout, GgufError, GgufWriter, TensorDecl, Value, KEY_FILE_TYPE, KEY_QUANTIZATION_VERSION};
use crate::quant::{self, GgmlType};
use crate::summary::{Summary, TensorEntry};

use super::source::{ModelSource, SourceTensor};
use super::{plan, PolicyError, PolicyOptions, Preset, TensorShape, QUANTIZATION_VERSION};

/// Why a quantization stopped.
#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(transparent)]
    Hf(#[from] crate::hf::HfError),
    #[error(transparent)]
    Convert(#[from] crate::convert::ConvertError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("{}: {message}", path.display())]
    Model { path: PathBuf, message: String },
    #[error("tensor {name}: {message}")]
    Tensor { name: String, message: String },
    #[error("{}: tensor {tensor} has a non-finite value ({value}) at row {row}, column {col}", path.display())]
    NonFinite { path: PathBuf, tensor: String, row: usize, col: usize, value: f32 },
    #[error("{}: the output would replace the input", path.display())]
    SameFile { path: PathBuf },
    #[error("cancelled")]
    Cancelled,
}

/// A flag a UI or a Ctrl-C handler sets to stop a running job; the pipeline checks it between slices of rows.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// What to make.
#[derive(Clone, Debug)]
pub struct QuantizeOptions {
    pub preset: Preset,
    pub policy: PolicyOptions,
}

impl Default for QuantizeOptions {
    /// Q4_K_M, llama.cpp's recommended default and the paper's choice.
    fn default() -> Self {
        QuantizeOptions { preset: Preset::Q4_K_M, policy: PolicyOptions::default() }
    }
}

/// Where a running job is.
#[derive(Clone, Debug)]
pub struct Progress {
    /// 1-based index of the tensor being written, and how many there are.
    pub tensor: usize,
    pub tensors: usize,
    pub name: String,
    pub ty: GgmlType,
    /// Source bytes processed so far, of all.
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub elapsed: Duration,
}

impl Progress {
    pub fn fraction(&self) -> f64 {
        if self.bytes_total == 0 {
            1.0
        } else {
            self.bytes_done as f64 / self.bytes_total as f64
        }
    }
    /// Source bytes per second so far.
    pub fn rate(&self) -> f64 {
        self.bytes_done as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    /// Time left at the rate so far (None until something was done).
    pub fn eta(&self) -> Option<Duration> {
        (self.bytes_done > 0).then(|| Duration::from_secs_f64((self.bytes_total - self.bytes_done) as f64 / self.rate()))
    }
}

/// One tensor of the result.
#[derive(Clone, Debug)]
pub struct TensorReport {
    pub name: String,
    pub dims: Vec<u64>,
    pub from: GgmlType,
    pub to: GgmlType,
    /// The type the preset wanted when a row length forced a fallback.
    pub fallback_from: Option<GgmlType>,
    pub bytes: u64,
}

/// What a finished job made.
#[derive(Clone, Debug)]
pub struct Report {
    pub source: PathBuf,
    pub source_bytes: u64,
    pub output: PathBuf,
    pub output_bytes: u64,
    pub preset: Preset,
    pub tensors: Vec<TensorReport>,
    pub summary: Summary,
    pub warnings: Vec<String>,
    pub elapsed: Duration,
}

impl Report {
    /// Size change of the file against the source on disk, in percent (−68.66 for the paper's 3B Q4_K_M).
    pub fn reduction_percent(&self) -> f64 {
        if self.source_bytes == 0 {
            0.0
        } else {
            (self.output_bytes as f64 / self.source_bytes as f64 - 1.0) * 100.0
        }
    }
}

/// Weights per slice of rows: bounds memory (64 MiB of f32) and how long a cancel waits.
const SLICE_WEIGHTS: usize = 16 << 20;

/// A planned job: the source opened, every tensor's type decided, the exact output size known — before a weight is
/// read. [`Job::run`] then does the work.
pub struct Job {
    source: ModelSource,
    tensors: Vec<SourceTensor>,
    /// Output types per source tensor, and the order of the output file.
    plan: super::Plan,
    preset: Preset,
    warnings: Vec<String>,
    metadata: Vec<(String, Value)>,
}

impl Job {
    pub fn plan(input: &Path, opts: &QuantizeOptions) -> Result<Job, QuantizeError> {
        let source = ModelSource::open(input)?;
        let tensors = source.tensors();
        let shape = source.model_shape()?;
        let shapes: Vec<TensorShape> =
            tensors.iter().map(|t| TensorShape { name: &t.name, dims: &t.dims, ty: t.ty }).collect();
        let plan = plan(&shape, &shapes, opts.preset, &opts.policy)?;
        let mut warnings = Vec::new();
        // llama.cpp refuses to requantize without --allow-requantize, since quality suffers; we warn instead.
        let low: Vec<&SourceTensor> =
            tensors.iter().filter(|t| t.ty.is_quantized() && t.ty.bits_per_weight() < 8.0).collect();
        if let Some(first) = low.first() {
            warnings.push(format!(
                "requantizing from {} ({} tensors below 8 bits, e.g. {}): quality will be lower than quantizing the original weights",
                first.ty,
                low.len(),
                first.name
            ));
        }
        let mut metadata = source.metadata();
        // As llama-quantize: both keys are removed and appended, quantization version first.
        metadata.retain(|(k, _)| k != KEY_QUANTIZATION_VERSION && k != KEY_FILE_TYPE && !k.starts_with("split."));
        metadata.push((KEY_QUANTIZATION_VERSION.into(), Value::U32(QUANTIZATION_VERSION)));
        metadata.push((KEY_FILE_TYPE.into(), Value::U32(opts.preset.file_type())));
        Ok(Job { source, tensors, plan, preset: opts.preset, warnings, metadata })
    }

    pub fn source(&self) -> &ModelSource {
        &self.source
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Tensor data bytes of the output, from shapes and types alone.
    pub fn predicted_data_bytes(&self) -> u64 {
        self.plan.data_bytes()
    }

    /// The exact size of the output file — header, metadata, tensor infos, padding and aligned tensor data — from
    /// metadata, names, shapes and types alone, before anything is written. [`Job::run`] writes a file of exactly
    /// this many bytes: both go through the GGUF writer's layout ([`crate::gguf::file_layout`]).
    pub fn predicted_file_bytes(&self) -> u64 {
        let decls: Vec<TensorDecl<'_>> = self
            .plan
            .order
            .iter()
            .map(|&i| TensorDecl { name: &self.tensors[i].name, dims: &self.tensors[i].dims, ty: self.plan.tensors[i].ty })
            .collect();
        // The plan checked every tensor's blocks and size, so a layout always exists; saturate rather than panic.
        file_layout(&self.metadata, &decls).map_or(u64::MAX, |l| l.file_bytes())
    }

    fn writer_for(&self, out: GgufWriter<crate::gguf::AtomicFile>) -> Result<GgufWriter<crate::gguf::AtomicFile>, QuantizeError> {
        let mut w = out;
        for (k, v) in &self.metadata {
            w.add_kv(k.clone(), v.clone())?;
        }
        for &i in &self.plan.order {
            let t = &self.tensors[i];
            w.add_tensor_info(t.name.clone(), &t.dims, self.plan.tensors[i].ty)?;
        }
        Ok(w)
    }

    /// Writes the output, calling `on_progress` after every slice of rows; stops with [`QuantizeError::Cancelled`]
    /// (and no output file) once `cancel` is set.
    pub fn run(
        self,
        output: &Path,
        on_progress: &mut dyn FnMut(&Progress),
        cancel: &CancelToken,
    ) -> Result<Report, QuantizeError> {
        let start = Instant::now();
        let source_path = self.source.path();
        if same_file(&source_path, output) {
            return Err(QuantizeError::SameFile { path: output.to_path_buf() });
        }
        let mut w = self.writer_for(GgufWriter::create(output)?)?;
        let bytes_total: u64 = self.tensors.iter().map(|t| t.source_bytes).sum();
        let mut bytes_done = 0u64;
        let (mut rows_f32, mut scratch, mut packed) = (Vec::new(), Vec::new(), Vec::new());
        let mut reports = Vec::with_capacity(self.tensors.len());
        for (k, &i) in self.plan.order.iter().enumerate() {
            let t = &self.tensors[i];
            let to = self.plan.tensors[i].ty;
            let n = t.row_len();
            let rows_per_slice = (SLICE_WEIGHTS / n.max(1)).max(1);
            let n_rows = t.n_rows();
            let mut row = 0;
            while row < n_rows || (n_rows == 0 && row == 0) {
                if cancel.is_cancelled() {
                    return Err(QuantizeError::Cancelled); // the writer's temp file goes with it
                }
                let end = (row + rows_per_slice).min(n_rows);
                self.source.read_rows(i, t, row..end, &mut rows_f32, &mut scratch)?;
                packed.clear();
                packed.resize(quant::bytes_for(to, rows_f32.len()).expect("the policy only picks types whose blocks fit the rows"), 0);
                quant::quantize(to, &rows_f32, n, &mut packed)
                    .map_err(|e| QuantizeError::Tensor { name: t.name.clone(), message: e.to_string() })?;
                w.write_tensor_data(&t.name, &packed)?;
                bytes_done += t.source_bytes * (end - row) as u64 / n_rows.max(1) as u64;
                on_progress(&Progress {
                    tensor: k + 1,
                    tensors: self.tensors.len(),
                    name: t.name.clone(),
                    ty: to,
                    bytes_done,
                    bytes_total,
                    elapsed: start.elapsed(),
                });
                if n_rows == 0 {
                    break;
                }
                row = end;
            }
            reports.push(TensorReport {
                name: t.name.clone(),
                dims: t.dims.clone(),
                from: t.ty,
                to,
                fallback_from: self.plan.tensors[i].fallback_from,
                bytes: self.plan.tensors[i].bytes,
            });
        }
        if cancel.is_cancelled() {
            return Err(QuantizeError::Cancelled);
        }
        w.commit()?;
        let output_bytes = std::fs::metadata(output).map_err(|e| GgufError::new(output, crate::gguf::Fault::Io(e)))?.len();
        let entries: Vec<TensorEntry> = reports
            .iter()
            .map(|r| TensorEntry { name: r.name.clone(), dims: r.dims.clone(), ty: r.to, bytes: r.bytes })
            .collect();
        Ok(Report {
            source: source_path,
            source_bytes: self.source.size_on_disk(),
            output: output.to_path_buf(),
            output_bytes,
            preset: self.preset,
            tensors: reports,
            summary: Summary::new(&entries),
            warnings: self.warnings,
            elapsed: start.elapsed(),
        })
    }
}

/// Plans and runs in one call.
pub fn quantize_model(
    input: &Path,
    output: &Path,
    opts: &QuantizeOptions,
    on_progress: &mut dyn FnMut(&Progress),
    cancel: &CancelToken,
) -> Result<Report, QuantizeError> {
    Job::plan(input, opts)?.run(output, on_progress, cancel)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
