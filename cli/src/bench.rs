//! `pocketlm bench MODEL [-p 512] [-n 128] [-t N] [-r 3] [--json]`: prompt processing and generation speed, as
//! llama-bench measures them, so the figures sit beside llama.cpp's.
//!
//! `pp`: a fresh context evaluates `p` prompt tokens in batches. `tg`: a fresh context generates `n` tokens one at
//! a time. Tokens are pseudo-random ids (speed does not depend on them). One warm-up run, then `r` timed runs;
//! the mean and standard deviation of tokens per second are reported. Generation is bound by memory bandwidth, so
//! the bench also measures this machine's read bandwidth, right before and right after each timed generation run
//! (on a shared machine it moves with whatever else runs, by half within seconds), and prints the bound: bytes
//! read per generated token ÷ the best bandwidth measured, and how close the mean generation speed comes to it.
//! Beside that strict figure it prints each run against the bandwidth measured around that run (the mean of the
//! two probes): the median of those is the fairer figure when the bandwidth moves between runs. Before each timed
//! generation run it also times a hand-off between two threads ([`handoff_ns`]), which each of a token's ~150
//! parallel steps pays at least once: on a virtual machine both figures move with where the host puts its vCPUs.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use pocketlm::kernels;
use pocketlm::model::{Context, Model};
use pocketlm::summary::human_bytes;
use serde_json::json;

use crate::model_args::{load, Cache, Threads};

#[derive(clap::Args)]
pub struct Args {
    /// A GGUF model file (llama or qwen2).
    model: PathBuf,
    /// Prompt tokens of the prompt-processing test (0: skip it).
    #[arg(short = 'p', long, default_value_t = 512)]
    n_prompt: usize,
    /// Tokens of the generation test (0: skip it).
    #[arg(short = 'n', long, default_value_t = 128)]
    n_gen: usize,
    /// Timed repetitions of each test (after one warm-up).
    #[arg(short = 'r', long, default_value_t = 3)]
    repetitions: usize,
    /// Prompt tokens per forward pass.
    #[arg(short = 'b', long, default_value_t = 512)]
    batch: usize,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    threads: Threads,
    #[command(flatten)]
    cache: Cache,
}

struct Test {
    name: String,
    n_tokens: usize,
    samples: Vec<f64>,
}

impl Test {
    fn mean(&self) -> f64 {
        self.samples.iter().sum::<f64>() / self.samples.len().max(1) as f64
    }
    fn stddev(&self) -> f64 {
        let n = self.samples.len();
        if n < 2 {
            return 0.0;
        }
        let m = self.mean();
        (self.samples.iter().map(|s| (s - m) * (s - m)).sum::<f64>() / (n - 1) as f64).sqrt()
    }
}

/// Deterministic pseudo-random token ids below `n_vocab`.
fn tokens(n: usize, n_vocab: usize) -> Vec<u32> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 33) % n_vocab as u64) as u32
        })
        .collect()
}

pub fn run(args: Args) -> Result<()> {
    anyhow::ensure!(args.repetitions >= 1, "--repetitions must be at least 1");
    let threads = args.threads.apply()?;
    let model = load(&args.model)?;
    let hp = model.hparams().clone();
    let n_ctx = (args.n_prompt.max(args.n_gen)).max(1);
    let mut ctx = Context::with_kv_type(model.clone(), n_ctx, args.cache.kv_type())?;
    ctx.set_batch(args.batch.min(n_ctx));

    let mut tests = Vec::new();
    if args.n_prompt > 0 {
        let toks = tokens(args.n_prompt, hp.n_vocab);
        let mut t = Test { name: format!("pp{}", args.n_prompt), n_tokens: args.n_prompt, samples: Vec::new() };
        for rep in 0..=args.repetitions {
            ctx.truncate(0);
            let start = Instant::now();
            black_box(ctx.eval(&toks, false)?);
            if rep > 0 {
                t.samples.push(args.n_prompt as f64 / start.elapsed().as_secs_f64());
            }
        }
        tests.push(t);
    }
    // Peak RSS before the bandwidth probe's buffer counts: after the warm-up run, which touched every weight. With
    // it, the share of the file mapped in huge pages, which generation is a few percent faster on (a file the page
    // cache holds in small folios, say one copied in small writes, maps in 4 KiB pages until it leaves the cache).
    let mut rss = None;
    let mut huge = None;
    // The generation bound: every weight but the embedding table is read once per token (the table too when it
    // doubles as the output), plus on average half the KV cache of the test, in the cache's type.
    let weights = weight_bytes_per_token(&model);
    let kv_per_pos = 2 * hp.n_layer * hp.n_kv() * args.cache.kv_type().bytes();
    let per_token = weights + kv_per_pos * args.n_gen / 2;

    // This machine's bandwidth moves with what else runs on it: the probe runs right before and right after each
    // timed generation run. The bound takes the best it saw; each run is also set against the mean of its own two.
    let mut probe = None;
    let mut bandwidth = 0f64;
    let mut paired = Vec::new();
    let mut handoffs = Vec::new();
    if args.n_gen > 0 {
        let toks = tokens(args.n_gen, hp.n_vocab);
        let mut t = Test { name: format!("tg{}", args.n_gen), n_tokens: args.n_gen, samples: Vec::new() };
        for rep in 0..=args.repetitions {
            ctx.truncate(0);
            let before = (rep > 0).then(|| read_bandwidth(probe.get_or_insert_with(bandwidth_buffer)));
            if rep > 0 {
                handoffs.push(handoff_ns());
            }
            let start = Instant::now();
            for &tok in &toks {
                black_box(ctx.eval(&[tok], false)?);
            }
            let speed = args.n_gen as f64 / start.elapsed().as_secs_f64();
            if let Some(before) = before {
                let after = read_bandwidth(probe.get_or_insert_with(bandwidth_buffer));
                t.samples.push(speed);
                bandwidth = bandwidth.max(before).max(after);
                paired.push(speed * per_token as f64 / ((before + after) / 2.0));
            } else {
                rss = peak_rss_bytes();
                huge = model.gguf().huge_page_share();
            }
        }
        tests.push(t);
    } else {
        rss = peak_rss_bytes();
        huge = model.gguf().huge_page_share();
        bandwidth = read_bandwidth(&bandwidth_buffer());
        handoffs.push(handoff_ns());
    }
    let bound = bandwidth / per_token as f64;
    let paired_median = median(&paired);

    let file_size = model.gguf().file_size();
    let params: u64 = model.gguf().tensors().iter().map(|t| t.n_elements()).sum();
    let name = model.gguf().get_str("general.name").map(str::to_string).unwrap_or_else(|| {
        args.model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
    });
    let isa = kernels::active().name();
    if args.json {
        let results: Vec<_> = tests
            .iter()
            .map(|t| {
                json!({
                    "test": t.name, "n_tokens": t.n_tokens, "avg_ts": t.mean(), "stddev_ts": t.stddev(), "samples_ts": t.samples,
                })
            })
            .collect();
        let tg = tests.iter().find(|t| t.name.starts_with("tg")).map(Test::mean);
        let out = json!({
            "model": args.model, "name": name, "arch": hp.arch.name(), "file_size": file_size, "params": params,
            "kernels": isa, "threads": threads, "results": results,
            "bytes_per_token": per_token, "read_bandwidth_bytes_per_s": bandwidth, "tg_bound_ts": bound,
            "tg_fraction_of_bound": tg.map(|t| t / bound), "tg_fraction_of_bound_per_run": paired,
            "tg_fraction_of_bound_per_run_median": paired_median, "kv_cache_bytes": ctx.kv_bytes(), "peak_rss_bytes": rss,
            "huge_page_share": huge,
            "cache_type": format!("{:?}", args.cache.kv_type()).to_lowercase(),
            "handoff_round_trip_ns": handoffs,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("| model | size | params | kernels | threads | test | t/s |");
    println!("| --- | ---: | ---: | --- | ---: | ---: | ---: |");
    for t in &tests {
        println!(
            "| {name} ({}) | {} | {:.1} M | {isa} | {threads} | {} | {:.2} ± {:.2} |",
            hp.arch.name(),
            human_bytes(file_size),
            params as f64 / 1e6,
            t.name,
            t.mean(),
            t.stddev()
        );
    }
    println!();
    println!(
        "generation bound: {} read per token ÷ {:.1} GB/s measured read bandwidth = {bound:.1} tok/s",
        human_bytes(per_token as u64),
        bandwidth / 1e9
    );
    if let Some(tg) = tests.iter().find(|t| t.name.starts_with("tg")) {
        println!("generation reached {:.0}% of that bound", 100.0 * tg.mean() / bound);
    }
    if let Some(m) = paired_median {
        let lo = paired.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = paired.iter().copied().fold(0f64, f64::max);
        println!(
            "each run against the bandwidth measured around it: median {:.0}% ({:.0}–{:.0}%)",
            100.0 * m,
            100.0 * lo,
            100.0 * hi
        );
    }
    if let Some(m) = median(&handoffs) {
        let lo = handoffs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = handoffs.iter().copied().fold(0f64, f64::max);
        println!("hand-off between two threads: median {m:.0} ns round trip ({lo:.0}–{hi:.0} ns)");
    }
    println!(
        "memory: file {}{}, KV cache {} ({:?}), peak resident {}",
        human_bytes(file_size),
        huge.map_or(String::new(), |h| format!(" ({:.0}% mapped in huge pages)", 100.0 * h)),
        human_bytes(ctx.kv_bytes() as u64),
        args.cache.kv_type(),
        rss.map_or("unknown".into(), human_bytes)
    );
    Ok(())
}

/// The median of `v` (the mean of the middle two for an even count), if it has any values.
fn median(v: &[f64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    (n > 0).then(|| if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Bytes of weights one generated token reads.
fn weight_bytes_per_token(model: &Model) -> usize {
    let g = model.gguf();
    let tied = g.tensor("output.weight").is_none();
    g.tensors()
        .iter()
        .filter(|t| tied || t.name != "token_embd.weight")
        .map(|t| g.tensor_data(t).len())
        .sum()
}

/// Nanoseconds for a cache line to go from one thread to another and back: one thread writes a word that the other
/// waits for, which answers the same way, 10,000 times (the best of 3 batches). A forward pass's team meets like
/// this between its steps, so each step costs at least that much. On the 2-vCPU virtual machines we develop on it
/// was about 100 ns at times and about 400 ns at others, as the host placed the two vCPUs nearer or further apart
/// (the read bandwidth moved too). A waiting thread yields its core after a while, so this ends on one core too.
fn handoff_ns() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering::*};
    const ROUNDS: u64 = 10_000;
    let word = AtomicU64::new(0);
    let wait = |want: u64| {
        let mut spins = 0u32;
        while word.load(Acquire) != want {
            if spins < 1000 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    };
    let mut best = f64::INFINITY;
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..3 * ROUNDS {
                wait(2 * i + 1);
                word.store(2 * i + 2, Release);
            }
        });
        for b in 0..3 {
            let start = Instant::now();
            for i in b * ROUNDS..(b + 1) * ROUNDS {
                word.store(2 * i + 1, Release);
                wait(2 * i + 2);
            }
            best = best.min(start.elapsed().as_nanos() as f64 / ROUNDS as f64);
        }
    });
    best
}

/// The buffer [`read_bandwidth`] reads: 512 MiB, far more than any cache.
fn bandwidth_buffer() -> Vec<u64> {
    (0..(512u64 << 20) / 8).collect()
}

/// Read bandwidth of main memory: every pool thread sums its share of `buf`, as plain loads and, on x86-64, with
/// software prefetch ahead of them, which reaches more of the bandwidth on some CPUs (the one-token kernels
/// prefetch too, so a bound from plain loads alone could be beaten). The best of 5 runs of each.
fn read_bandwidth(buf: &[u64]) -> f64 {
    use rayon::prelude::*;
    let mut best = 0f64;
    for prefetch in [false, true] {
        for _ in 0..5 {
            let start = Instant::now();
            let sum: u64 = buf.par_chunks(1 << 16).map(|c| sum_words(c, prefetch)).sum();
            black_box(sum);
            best = best.max(std::mem::size_of_val(buf) as f64 / start.elapsed().as_secs_f64());
        }
    }
    best
}

/// The wrapping sum of `words`, a cache line (8 words) at a time; with `prefetch`, asking for the line 4 KiB ahead
/// of each.
fn sum_words(words: &[u64], prefetch: bool) -> u64 {
    let mut acc = [0u64; 8];
    for (i, line) in words.chunks_exact(8).enumerate() {
        if prefetch {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: SSE is part of x86-64; a prefetch is a hint that never faults, whatever the address.
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>(words.as_ptr().wrapping_add(8 * i + 512).cast());
            }
        }
        for (a, &w) in acc.iter_mut().zip(line) {
            *a = a.wrapping_add(w);
        }
    }
    acc.iter().chain(words.chunks_exact(8).remainder()).fold(0u64, |a, &b| a.wrapping_add(b))
}

/// Peak resident set size of this process (Linux and Android: VmHWM), before the bandwidth buffer is counted.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    /// The bandwidth loop adds every word, with and without prefetch, whole lines and a remainder alike.
    #[test]
    fn sum_words_adds_every_word() {
        let words: Vec<u64> = (0..1003u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
        let sum = |w: &[u64]| w.iter().fold(0u64, |a, &b| a.wrapping_add(b));
        for prefetch in [false, true] {
            assert_eq!(super::sum_words(&words, prefetch), sum(&words));
            assert_eq!(super::sum_words(&words[..5], prefetch), sum(&words[..5]));
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(super::median(&[]), None);
        assert_eq!(super::median(&[0.7]), Some(0.7));
        assert_eq!(super::median(&[0.9, 0.5, 0.7]), Some(0.7));
        assert_eq!(super::median(&[0.9, 0.5, 0.75, 0.5]), Some(0.625));
    }
}
