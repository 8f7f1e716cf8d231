//! `pocketlm chat MODEL [--system TEXT]`: an interactive conversation in the terminal.
//!
//! Each line typed is a user message; the reply streams as it is generated, with its figures after it. Ctrl-C
//! while a reply streams stops that reply (the conversation goes on); at the prompt it quits, as do `/quit` and
//! end of input. `/reset` starts a new conversation. The KV cache keeps the conversation, so each turn only
//! evaluates the new message.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use pocketlm::chat::{ChatError, Message, Prompt};
use pocketlm::quantize::CancelToken;

use crate::model_args::{open_session, stats_line, Sampling, Threads};

#[derive(clap::Args)]
pub struct Args {
    /// A GGUF model file (llama or qwen2).
    model: PathBuf,
    /// System prompt, the first message of every conversation.
    #[arg(long)]
    system: Option<String>,
    /// Most tokens per reply.
    #[arg(short = 'n', long, default_value_t = 1024)]
    n_predict: usize,
    #[command(flatten)]
    sampling: Sampling,
    #[command(flatten)]
    threads: Threads,
}

/// What Ctrl-C acts on: the reply being generated, if any.
struct Interrupt {
    generating: AtomicBool,
    current: Mutex<CancelToken>,
}

pub fn run(args: Args) -> Result<()> {
    let (mut session, params) = open_session(&args.model, &args.sampling, &args.threads, args.n_predict)?;

    let interrupt = Arc::new(Interrupt { generating: AtomicBool::new(false), current: Mutex::new(CancelToken::new()) });
    let handler = Arc::clone(&interrupt);
    ctrlc::set_handler(move || {
        if handler.generating.load(Ordering::SeqCst) {
            handler.current.lock().unwrap_or_else(|e| e.into_inner()).cancel();
        } else {
            eprintln!();
            std::process::exit(130);
        }
    })?;

    let tty = std::io::stdin().is_terminal();
    let fresh = |system: &Option<String>| -> Vec<Message> {
        system.iter().map(|s| Message::new("system", s.as_str())).collect()
    };
    let mut messages = fresh(&args.system);
    if tty {
        eprintln!(
            "Chatting with {} ({} tokens of context). /reset starts over, /quit or Ctrl-D leaves; Ctrl-C stops a reply.",
            args.model.display(),
            session.n_ctx()
        );
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if tty {
            eprint!("> ");
        }
        let Some(line) = lines.next() else { break };
        let line = line?;
        let text = line.trim();
        match text {
            "" => continue,
            "/quit" | "/exit" => break,
            "/reset" => {
                messages = fresh(&args.system);
                session.reset();
                eprintln!("(new conversation)");
                continue;
            }
            _ => {}
        }
        messages.push(Message::new("user", text));

        let cancel = CancelToken::new();
        *interrupt.current.lock().unwrap_or_else(|e| e.into_inner()) = cancel.clone();
        interrupt.generating.store(true, Ordering::SeqCst);
        let mut reply = String::new();
        let mut out = std::io::stdout().lock();
        let result = loop {
            let result = session.generate(
                Prompt::Chat(&messages),
                &params,
                &mut |piece| {
                    reply.push_str(piece);
                    // A failed write to the terminal is not worth stopping the reply for.
                    let _ = out.write_all(piece.as_bytes()).and_then(|()| out.flush());
                },
                &cancel,
            );
            // A conversation longer than the context: forget its oldest exchange and try again.
            let first = usize::from(args.system.is_some());
            if matches!(result, Err(ChatError::PromptTooLong { .. })) && messages.len() > first + 1 {
                let n = if messages.len() > first + 2 { 2 } else { 1 };
                messages.drain(first..first + n);
                eprintln!("(the oldest message no longer fits in the context and was dropped)");
                continue;
            }
            break result;
        };
        interrupt.generating.store(false, Ordering::SeqCst);
        writeln!(out)?;
        drop(out);
        match result {
            Ok(stats) => {
                eprintln!("{}", stats_line(&stats));
                // Even a stopped reply stays in the conversation: the model sees what it said.
                messages.push(Message::new("assistant", reply));
            }
            Err(e) => {
                // The turn failed: drop the message, keep the session.
                messages.pop();
                eprintln!("error: {e}");
            }
        }
    }
    Ok(())
}
