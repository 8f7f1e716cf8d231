//! `pocketlm quantize INPUT [OUTPUT] [--preset Q4_K_M]`: a Hugging Face checkpoint or a GGUF file to a llama.cpp
//! preset, in one streaming pass, with a progress bar; Ctrl-C cancels and leaves no output file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pocketlm::quant::GgmlType;
use pocketlm::quantize::{CancelToken, Job, PolicyOptions, Preset, Progress, QuantizeOptions, Report};
use pocketlm::summary::{human_bytes, human_count};
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// A Hugging Face model folder (config.json, *.safetensors, tokenizer.json) or a GGUF file.
    input: Option<PathBuf>,
    /// Output GGUF file [default: INPUT-PRESET.gguf beside the input].
    output: Option<PathBuf>,
    /// llama.cpp preset: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K.
    #[arg(short, long, default_value = "Q4_K_M")]
    preset: Preset,
    /// Every quantizable tensor gets the preset's base type (no k-quant mix).
    #[arg(long)]
    pure: bool,
    /// Type of output.weight (e.g. q8_0).
    #[arg(long, value_parser = parse_type)]
    output_tensor_type: Option<GgmlType>,
    /// Type of token_embd.weight (e.g. q8_0).
    #[arg(long, value_parser = parse_type)]
    token_embedding_type: Option<GgmlType>,
    /// Show the plan (types and exact output size) without writing anything.
    #[arg(long)]
    dry_run: bool,
    /// List the presets with their sizes for INPUT (or just their names) and exit.
    #[arg(long)]
    list_presets: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_type(s: &str) -> Result<GgmlType, String> {
    GgmlType::from_name(s).ok_or_else(|| format!("unknown ggml type {s:?}"))
}

pub fn run(args: Args) -> Result<()> {
    let policy = PolicyOptions {
        pure: args.pure,
        output_tensor_type: args.output_tensor_type,
        token_embedding_type: args.token_embedding_type,
        ..PolicyOptions::default()
    };
    if args.list_presets {
        return list_presets(args.input.as_deref(), &policy);
    }
    let Some(input) = args.input else { bail!("give a model folder or GGUF file to quantize") };
    let opts = QuantizeOptions { preset: args.preset, policy };
    let job = Job::plan(&input, &opts)?;
    let output = args.output.unwrap_or_else(|| default_output(&input, args.preset));
    for w in job.warnings() {
        eprintln!("warning: {w}");
    }
    if args.dry_run {
        println!(
            "{} → {} ({}): {} of tensor data",
            input.display(),
            output.display(),
            args.preset,
            human_bytes(job.predicted_data_bytes())
        );
        return Ok(());
    }

    let cancel = CancelToken::new();
    let on_signal = cancel.clone();
    // Ctrl-C stops the job between slices of rows; the pipeline then deletes its temporary file.
    let _ = ctrlc::set_handler(move || on_signal.cancel());
    let bar = progress_bar();
    let mut on_progress = |p: &Progress| {
        bar.set_length(p.bytes_total);
        bar.set_position(p.bytes_done);
        bar.set_message(format!("{}/{} {} → {}", p.tensor, p.tensors, p.name, p.ty));
    };
    let result = job.run(&output, &mut on_progress, &cancel);
    bar.finish_and_clear();
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report_json(&report))?);
    } else {
        print!("{}", report_text(&report));
    }
    Ok(())
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(8));
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {percent:>3}% {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta} {wide_msg}")
            .expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

/// `models/SmolLM2-135M-Instruct.Q4_1.gguf` → `models/SmolLM2-135M-Instruct-Q4_K_M.gguf`; a folder `x/Model` →
/// `x/Model-Q4_K_M.gguf`.
fn default_output(input: &Path, preset: Preset) -> PathBuf {
    let name = input.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "model".into());
    let mut stem = name.strip_suffix(".gguf").unwrap_or(&name).to_string();
    // Drop a type suffix the input carries (".Q4_1", "-F16", "-bf16").
    if let Some(pos) = stem.rfind(['.', '-']) {
        let tail = &stem[pos + 1..];
        if GgmlType::from_name(tail).is_some() || tail.parse::<Preset>().is_ok() {
            stem.truncate(pos);
        }
    }
    input.with_file_name(format!("{stem}-{preset}.gguf"))
}

fn list_presets(input: Option<&Path>, policy: &PolicyOptions) -> Result<()> {
    let Some(input) = input else {
        for p in Preset::ALL {
            println!("{:<8} {}", p.to_string(), p.description());
        }
        return Ok(());
    };
    println!("{:<8} {:>12} {:>8}  description", "preset", "tensor data", "bpw");
    for &p in Preset::ALL {
        let opts = QuantizeOptions { preset: p, policy: *policy };
        match Job::plan(input, &opts) {
            Ok(job) => {
                let params: u64 = job.source().tensors().iter().map(|t| t.dims.iter().product::<u64>()).sum();
                let bytes = job.predicted_data_bytes();
                println!("{:<8} {:>12} {:>8.2}  {}", p.to_string(), human_bytes(bytes), bytes as f64 * 8.0 / params as f64, p.description());
            }
            Err(e) => println!("{:<8} {:>12}  ({e})", p.to_string(), "—"),
        }
    }
    Ok(())
}

fn report_text(r: &Report) -> String {
    let mut o = String::new();
    o += &format!(
        "{} ({}) → {} ({})\n",
        r.source.display(),
        human_bytes(r.source_bytes),
        r.output.display(),
        human_bytes(r.output_bytes)
    );
    o += &format!(
        "  {}: {} tensors, {} parameters, {:.2} bits per weight, {:+.2}% size, {:.1} s\n",
        r.preset,
        r.tensors.len(),
        human_count(r.summary.total.params),
        r.summary.total.bits_per_weight(),
        r.reduction_percent(),
        r.elapsed.as_secs_f64()
    );
    o += &format!("\n  {:<6} {:>8} {:>14} {:>12} {:>6}\n", "type", "tensors", "parameters", "size", "bpw");
    for (ty, t) in &r.summary.by_type {
        o += &format!("  {:<6} {:>8} {:>14} {:>12} {:>6.2}\n", ty.to_string(), t.tensors, t.params, human_bytes(t.bytes), t.bits_per_weight());
    }
    let fallbacks = r.tensors.iter().filter(|t| t.fallback_from.is_some()).count();
    if fallbacks > 0 {
        o += &format!("\n  {fallbacks} tensors used a fallback type: their rows are not a whole number of the preset type's blocks\n");
    }
    o
}

fn report_json(r: &Report) -> serde_json::Value {
    json!({
        "source": r.source.display().to_string(),
        "source_bytes": r.source_bytes,
        "output": r.output.display().to_string(),
        "output_bytes": r.output_bytes,
        "preset": r.preset.to_string(),
        "file_type": r.preset.file_type(),
        "reduction_percent": r.reduction_percent(),
        "bits_per_weight": r.summary.total.bits_per_weight(),
        "params": r.summary.total.params,
        "seconds": r.elapsed.as_secs_f64(),
        "by_type": r.summary.by_type.iter().map(|(ty, t)| json!({
            "type": ty.to_string(), "tensors": t.tensors, "params": t.params, "bytes": t.bytes,
        })).collect::<Vec<_>>(),
        "tensors": r.tensors.iter().map(|t| json!({
            "name": t.name, "shape": t.dims, "from": t.from.to_string(), "to": t.to.to_string(),
            "fallback_from": t.fallback_from.map(|f| f.to_string()), "bytes": t.bytes,
        })).collect::<Vec<_>>(),
        "warnings": r.warnings,
    })
}
