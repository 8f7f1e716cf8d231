//! `pocketlm perplexity MODEL [--base BASE.gguf] [--text FILE] [-c 512]`: quality on a text, by llama.cpp's method
//! (non-overlapping chunks, second half of each scored). With `--base`, also the KL divergence of MODEL's next-token
//! distributions from BASE's (say, a Q4_K_M file from its F16 or F32 original) and how often their top tokens agree.
//! Without `--text`, the text bundled with the engine.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use pocketlm::eval::{divergence, perplexity, EvalParams, EvalProgress, TEXT};
use pocketlm::quantize::CancelToken;

use crate::model_args::{load, Threads};

#[derive(clap::Args)]
pub struct Args {
    /// The GGUF model to measure.
    model: PathBuf,
    /// A reference model with the same vocabulary (e.g. the unquantized original): adds KL divergence.
    #[arg(long)]
    base: Option<PathBuf>,
    /// UTF-8 text file [default: the text bundled with PocketLM, ~1,400 tokens].
    #[arg(long)]
    text: Option<PathBuf>,
    /// Tokens per chunk.
    #[arg(short = 'c', long, default_value_t = 512)]
    ctx_size: usize,
    /// Evaluate at most this many chunks.
    #[arg(long)]
    chunks: Option<usize>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    threads: Threads,
}

pub fn run(args: Args) -> Result<()> {
    args.threads.apply()?;
    let text = match &args.text {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        None => TEXT.to_string(),
    };
    let params = EvalParams { n_ctx: args.ctx_size, max_chunks: args.chunks };
    let model = load(&args.model)?;
    let cancel = CancelToken::new();
    let on_ctrl_c = cancel.clone();
    ctrlc::set_handler(move || on_ctrl_c.cancel())?;
    let mut progress = |p: EvalProgress| {
        if !args.json {
            eprint!("\rchunk {}/{}: perplexity {:.4} ({:.1} s)   ", p.chunk, p.n_chunks, p.perplexity, p.seconds);
            if p.chunk == p.n_chunks {
                eprintln!();
            }
        }
    };
    match &args.base {
        None => {
            let r = perplexity(&model, &text, &params, &mut progress, &cancel)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "perplexity {:.4} ± {:.4} over {} tokens ({} chunks of {}) in {:.1} s",
                    r.perplexity, r.stderr, r.scored_tokens, r.n_chunks, r.n_ctx, r.seconds
                );
            }
        }
        Some(base) => {
            let base_model = load(base)?;
            let d = divergence(&base_model, &model, &text, &params, &mut progress, &cancel)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                println!("base  perplexity {:.4} ± {:.4}", d.base.perplexity, d.base.stderr);
                println!("model perplexity {:.4} ± {:.4}", d.model.perplexity, d.model.stderr);
                println!(
                    "KL divergence from base: mean {:.6}, median {:.6}, 99th percentile {:.6}, max {:.6}",
                    d.kl_mean, d.kl_median, d.kl_p99, d.kl_max
                );
                println!(
                    "same top token as base: {:.2}% of {} tokens",
                    100.0 * d.top1_agreement,
                    d.model.scored_tokens
                );
            }
        }
    }
    Ok(())
}
