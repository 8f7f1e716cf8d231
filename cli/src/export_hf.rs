//! `pocketlm export-hf MODEL.gguf OUTDIR [--dtype bf16|f16|f32] [--force]`: a llama/qwen2 GGUF back to a Hugging
//! Face folder (config, safetensors, tokenizer) that our converter and llama.cpp's accept. One progress line per
//! tensor on stderr; Ctrl-C cancels; the folder appears only when complete.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use pocketlm::export::{export_hf, CancelToken, Dtype, ExportOptions, Progress};
use pocketlm::summary::{human_bytes, human_count};

#[derive(clap::Args)]
pub struct Args {
    /// The GGUF file (architecture llama or qwen2, byte-level BPE vocabulary).
    model: PathBuf,
    /// The Hugging Face folder to create.
    out_dir: PathBuf,
    /// Storage type of the weights: bf16, f16, or f32 (the dequantized values exactly).
    #[arg(long, default_value = "bf16", value_parser = parse_dtype)]
    dtype: Dtype,
    /// Replace OUTDIR if it is an existing model folder.
    #[arg(long)]
    force: bool,
    /// No progress lines.
    #[arg(short, long)]
    quiet: bool,
}

fn parse_dtype(s: &str) -> Result<Dtype, String> {
    match s.to_ascii_lowercase().as_str() {
        "bf16" | "bfloat16" => Ok(Dtype::BF16),
        "f16" | "fp16" | "float16" => Ok(Dtype::F16),
        "f32" | "fp32" | "float32" => Ok(Dtype::F32),
        _ => Err(format!("unknown dtype {s:?} (bf16, f16 or f32)")),
    }
}

fn shape(dims: &[u64]) -> String {
    let parts: Vec<String> = dims.iter().map(u64::to_string).collect();
    format!("[{}]", parts.join(", "))
}

pub fn run(args: Args) -> Result<()> {
    let opts = ExportOptions { dtype: args.dtype, force: args.force };
    let start = Instant::now();
    let mut stderr = std::io::stderr().lock();
    let quiet = args.quiet;
    let mut on_progress = |p: &Progress| {
        if quiet {
            return;
        }
        let width = p.tensors.to_string().len();
        // A failed write to stderr is no reason to stop an export.
        let _ = writeln!(
            stderr,
            "[{:>width$}/{}] {:<52} {:<14} {:>5} → {}   {:>3.0}%",
            p.tensor,
            p.tensors,
            p.hf_name,
            shape(p.shape),
            p.source_type.to_string(),
            args.dtype,
            100.0 * p.bytes_done as f64 / p.bytes_total.max(1) as f64,
        );
    };
    // Ctrl-C stops the export between slices of rows; the half-built folder beside OUTDIR is then deleted.
    let cancel = CancelToken::new();
    let on_signal = cancel.clone();
    let _ = ctrlc::set_handler(move || on_signal.cancel());
    let report = export_hf(&args.model, &args.out_dir, &opts, &cancel, &mut on_progress)
        .with_context(|| format!("exporting {} to {}", args.model.display(), args.out_dir.display()))?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}: {} {} tensors, {} parameters, {} ({} in model.safetensors), tokenizer pre {:?}, in {secs:.1} s",
        report.out_dir.display(),
        report.tensors,
        report.dtype,
        human_count(report.params),
        human_bytes(report.total_bytes),
        human_bytes(report.safetensors_bytes),
        report.pre,
    );
    println!("checked: our converter reads the folder back to the same tensors, hyperparameters and tokenizer");
    if !report.not_carried.is_empty() {
        println!("not carried over: {}", report.not_carried.join(", "));
    }
    Ok(())
}
