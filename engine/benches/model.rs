//! Inference speed on a real model: prompt processing (a 128-token prompt in one `eval`) and token generation (64
//! single-token `eval`s after it), in tokens per second, on the rayon pool (`RAYON_NUM_THREADS`, default all
//! cores). `scripts/bench_model_llamacpp.py` times llama.cpp doing the same on the same file.
//! `POCKETLM_BENCH_KV=f16` uses an f16 KV cache (default f32); `POCKETLM_BENCH_PROMPT=N` another prompt length
//! (generation then runs at a context of N, where attention weighs more).
//!
//! ```text
//! cargo bench -p pocketlm --bench model                    # the demo model (POCKETLM_DEMO_MODEL or models/)
//! cargo bench -p pocketlm --bench model -- MODEL.gguf ...  # any llama/qwen2 GGUF
//! ```

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use pocketlm::model::{Context, KvType, Model};

const GENERATE: usize = 64;
const REPEAT: usize = 3;

fn main() -> Result<(), Box<dyn Error>> {
    let mut paths: Vec<PathBuf> =
        std::env::args().skip(1).filter(|a| !a.starts_with("--")).map(PathBuf::from).collect();
    if paths.is_empty() {
        let demo = std::env::var_os("POCKETLM_DEMO_MODEL").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/SmolLM2-135M-Instruct.Q4_1.gguf")
        });
        paths.push(demo);
    }
    println!("threads: {}, kernels: {}", rayon::current_num_threads(), pocketlm::kernels::active().name());
    let kv_type = match std::env::var("POCKETLM_BENCH_KV").as_deref() {
        Ok("f16") => KvType::F16,
        Ok("f32") | Err(_) => KvType::F32,
        Ok(other) => return Err(format!("POCKETLM_BENCH_KV={other}: f32 or f16").into()),
    };
    let prompt_len: usize = match std::env::var("POCKETLM_BENCH_PROMPT") {
        Ok(v) => v.parse().map_err(|e| format!("POCKETLM_BENCH_PROMPT={v}: {e}"))?,
        Err(_) => 128,
    };
    println!("KV cache: {kv_type:?}");
    for path in paths {
        let model = Arc::new(Model::load(&path)?);
        let hp = model.hparams().clone();
        // Token ids spread over the vocabulary; the values do not change the work.
        let prompt: Vec<u32> = (0..prompt_len).map(|i| ((i * 7919 + 13) % hp.n_vocab) as u32).collect();
        let (mut best_pp, mut best_tg, mut rss) = (f64::INFINITY, f64::INFINITY, 0.0);
        for _ in 0..REPEAT {
            let mut ctx = Context::with_kv_type(model.clone(), prompt_len + GENERATE, kv_type)?;
            let t = Instant::now();
            let mut next = argmax(ctx.eval(&prompt, false)?);
            best_pp = best_pp.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            for _ in 0..GENERATE {
                next = argmax(ctx.eval(&[next], false)?);
            }
            best_tg = best_tg.min(t.elapsed().as_secs_f64());
            rss = rss_mib();
        }
        let size = std::fs::metadata(&path)?.len() as f64;
        let kv = Context::with_kv_type(model.clone(), prompt_len + GENERATE, kv_type)?.kv_bytes() as f64;
        println!(
            "{}: pp{prompt_len} {:.1} tok/s, tg{GENERATE} {:.1} tok/s ({:.1} GB/s of weights read while generating)",
            path.file_name().unwrap_or_default().to_string_lossy(),
            prompt_len as f64 / best_pp,
            GENERATE as f64 / best_tg,
            size * GENERATE as f64 / best_tg / 1e9,
        );
        // The weights are used in place: resident memory (measured while a context is live) is the mapped file plus
        // the KV cache and buffers.
        println!(
            "  resident {:.1} MiB = file {:.1} MiB + KV cache {:.1} MiB + {:.1} MiB (buffers, logits, runtime)",
            rss,
            size / 1048576.0,
            kv / 1048576.0,
            rss - size / 1048576.0 - kv / 1048576.0
        );
    }
    Ok(())
}

/// VmRSS of this process in MiB (Linux; 0 elsewhere).
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kb.unwrap_or(0.0) / 1024.0
}

fn argmax(v: &[f32]) -> u32 {
    v.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0 as u32
}
