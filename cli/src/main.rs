//! `pocketlm`: shrink a language model, inspect it and run it. Each subcommand is a thin layer over the engine.

mod bench;
mod chat;
mod export_hf;
mod generate;
mod inspect;
mod model_args;
mod perplexity;
mod quantize;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "pocketlm", version, about = "Shrink a language model to GGUF, inspect it, and chat with it", propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a GGUF file's header, metadata, tensors and totals by type and tensor group.
    Inspect(inspect::Args),
    /// Rebuild a Hugging Face folder (config, safetensors, tokenizer) from a llama or qwen2 GGUF file.
    ExportHf(export_hf::Args),
    /// Quantize a Hugging Face checkpoint or a GGUF file to a llama.cpp preset (default Q4_K_M).
    Quantize(quantize::Args),
    /// Continue a prompt (or answer it with --chat), streaming the text.
    Generate(generate::Args),
    /// Chat with a model in the terminal.
    Chat(chat::Args),
    /// Measure prompt processing and generation speed (tokens per second), as llama-bench does.
    Bench(bench::Args),
    /// Measure perplexity on a text (llama.cpp's method), and KL divergence from a base model with --base.
    Perplexity(perplexity::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::ExportHf(args) => export_hf::run(args),
        Command::Quantize(args) => quantize::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Chat(args) => chat::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Perplexity(args) => perplexity::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (`pocketlm inspect … | head`) is not an error worth a message.
            if err.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}
