//! `pocketlm generate MODEL -p TEXT [-n N]`: continue a prompt (or answer it as a chat message with `--chat`),
//! streaming the text to stdout; figures go to stderr. Ctrl-C stops the generation and keeps what was written.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use pocketlm::chat::{Message, Prompt};
use pocketlm::quantize::CancelToken;

use crate::model_args::{open_session, stats_line, Sampling, Threads};

#[derive(clap::Args)]
pub struct Args {
    /// A GGUF model file (llama or qwen2).
    model: PathBuf,
    /// The prompt.
    #[arg(short, long)]
    prompt: String,
    /// Most tokens to generate.
    #[arg(short = 'n', long, default_value_t = 128)]
    n_predict: usize,
    /// Treat the prompt as a user message and answer it with the model's chat template.
    #[arg(long)]
    chat: bool,
    /// System prompt (with --chat).
    #[arg(long)]
    system: Option<String>,
    /// Print the figures as JSON on stderr instead of a line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    sampling: Sampling,
    #[command(flatten)]
    threads: Threads,
}

pub fn run(args: Args) -> Result<()> {
    let (mut session, params) = open_session(&args.model, &args.sampling, &args.threads, args.n_predict)?;

    let cancel = CancelToken::new();
    let on_ctrl_c = cancel.clone();
    ctrlc::set_handler(move || on_ctrl_c.cancel())?;

    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(Message::new("system", system.as_str()));
    }
    messages.push(Message::new("user", args.prompt.as_str()));
    let prompt = if args.chat { Prompt::Chat(&messages) } else { Prompt::Text(&args.prompt) };

    let mut out = std::io::stdout().lock();
    let mut write_err = None;
    let stop = cancel.clone();
    let stats = session.generate(
        prompt,
        &params,
        &mut |piece| {
            if write_err.is_none() {
                if let Err(e) = out.write_all(piece.as_bytes()).and_then(|()| out.flush()) {
                    // A closed pipe (`pocketlm generate … | head -c 100`): stop generating.
                    write_err = Some(e);
                    stop.cancel();
                }
            }
        },
        &cancel,
    )?;
    if let Some(e) = write_err {
        return Err(e.into());
    }
    writeln!(out)?;
    if args.json {
        eprintln!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        eprintln!("{} seed {}", stats_line(&stats), params.sampler.seed);
    }
    Ok(())
}
