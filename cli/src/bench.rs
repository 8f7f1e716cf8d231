//! `pocketlm bench MODEL [-p 512] [-n 128] [-t N] [-r 3] [--json]`: prompt processing and generation speed, as
//! llama-bench measures them, so the figures sit beside llama.cpp's.
//!
//! `pp`: a fresh context evaluates `p` prompt tokens in batches. `tg`: a fresh context generates `n` tokens one at
//! a time. Tokens are pseudo-random ids (speed does not depend on them). One warm-up run, then `r` timed runs;
//! the mean and standard deviation of tokens per second are reported. Generation is bound by memory bandwidth, so
//! the bench also measures this machine's read bandwidth, right before and right after each timed generation run
//! (on a shared machine it moves with whatever else runs, by half within seconds), and prints the bound: bytes
//! read per generated token ÷ the best bandwidth measured, and how close the mean generation speed comes to it.
//! The probe reads memory asked for in huge pages, as the model file's mapping is ([`bandwidth_buffer`]).
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
    // it, the share of the file mapped in huge pages, which generation is faster on (a file the page cache holds in
    // small folios, say one copied in small writes, maps in 4 KiB pages until the model's first context reads it
    // again: the last line, `page_cache_at_load` in `--json`).
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
    let probe_huge;
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
        probe_huge = probe.as_deref().and_then(|b| huge_page_share(b));
    } else {
        rss = peak_rss_bytes();
        huge = model.gguf().huge_page_share();
        let buf = bandwidth_buffer();
        bandwidth = read_bandwidth(&buf);
        probe_huge = huge_page_share(&buf);
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
            "huge_page_share": huge, "kv_huge_page_share": ctx.kv_huge_page_share(),
            "page_cache_at_load": model.page_cache().map(|p| json!({
                "checked_bytes": p.checked, "huge_bytes_before": p.huge_before, "huge_bytes_after": p.huge_after,
                "reread_bytes": p.reread, "seconds": p.seconds,
            })),
            "probe_huge_page_share": probe_huge,
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
        "generation bound: {} read per token ÷ {:.1} GB/s measured read bandwidth{} = {bound:.1} tok/s",
        human_bytes(per_token as u64),
        bandwidth / 1e9,
        probe_huge.map_or(String::new(), |h| format!(" ({:.0}% in huge pages)", 100.0 * h)),
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
        "memory: file {}{}, KV cache {} ({:?}{}), peak resident {}",
        human_bytes(file_size),
        huge.map_or(String::new(), |h| format!(" ({:.0}% mapped in huge pages)", 100.0 * h)),
        human_bytes(ctx.kv_bytes() as u64),
        args.cache.kv_type(),
        ctx.kv_huge_page_share().map_or(String::new(), |h| format!(", {:.0}% in huge pages", 100.0 * h)),
        rss.map_or("unknown".into(), human_bytes)
    );
    if let Some(p) = model.page_cache().filter(|p| p.checked > 0) {
        let share = |b: u64| 100.0 * b as f64 / p.checked as f64;
        println!(
            "page cache at load: {:.0}% of the file in huge pages; {} read again into them, {:.0}% after ({:.2} s)",
            share(p.huge_before),
            human_bytes(p.reread),
            share(p.huge_after),
            p.seconds
        );
    }
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

/// The buffer [`read_bandwidth`] reads: 512 MiB, far more than any cache, in huge pages where the OS gives them, as
/// the model's weights are mapped (see `huge_page_share`). In 4 KiB pages the probe understated what the weights
/// can be read at: on an Intel Xeon (2 vCPUs, Linux's huge pages on request only), two threads summing read 21–25
/// GB/s from a plain heap buffer and 32–35 from one in huge pages, and generation then looked closer to its bound
/// than it was (94% rather than 66% for the 1B-shaped Q4_K_M file).
fn bandwidth_buffer() -> ProbeBuffer {
    probe_buffer(512 << 20)
}

/// A probe buffer of `bytes` (see [`bandwidth_buffer`]), its words numbered 0, 1, 2, … in native byte order.
fn probe_buffer(bytes: usize) -> ProbeBuffer {
    let mut buf: ProbeBuffer = match pocketlm::pages::anonymous_huge(bytes) {
        Ok(map) => Box::new(map),
        Err(_) => Box::new(vec![0u8; bytes]),
    };
    // Written, so that every page is backed by memory of its own (unwritten ones all map the one zero page).
    for (i, word) in buf.chunks_exact_mut(8).enumerate() {
        word.copy_from_slice(&(i as u64).to_ne_bytes());
    }
    buf
}

/// The bandwidth probe's memory: anonymous pages asked for in huge pages, or (should mapping fail) a heap buffer.
type ProbeBuffer = Box<dyn std::ops::DerefMut<Target = [u8]>>;

/// The share of `buf` mapped in huge pages, where the OS says (Linux, Android).
fn huge_page_share(buf: &[u8]) -> Option<f64> {
    pocketlm::pages::huge_share(buf.as_ptr())
}

/// Read bandwidth of main memory: every pool thread sums its share of `buf`, as plain loads and, on x86-64, with
/// software prefetch ahead of them, which reaches more of the bandwidth on some CPUs (the one-token kernels
/// prefetch too, so a bound from plain loads alone could be beaten). The best of 5 runs of each.
fn read_bandwidth(bytes: &[u8]) -> f64 {
    use rayon::prelude::*;
    let mut best = 0f64;
    for prefetch in [false, true] {
        for _ in 0..5 {
            let start = Instant::now();
            let sum: u64 = bytes.par_chunks(1 << 19).map(|c| sum_words(c, prefetch)).sum();
            black_box(sum);
            best = best.max(bytes.len() as f64 / start.elapsed().as_secs_f64());
        }
    }
    best
}

/// The wrapping sum of the 8-byte words of `bytes` (native order; a last partial word is left out), a cache line
/// (8 words) at a time; with `prefetch`, asking for the line 4 KiB ahead of each.
fn sum_words(bytes: &[u8], prefetch: bool) -> u64 {
    let word = |w: &[u8]| u64::from_ne_bytes(w.try_into().expect("8 bytes"));
    let mut acc = [0u64; 8];
    let lines = bytes.chunks_exact(64);
    let rest = lines.remainder();
    for (i, line) in lines.enumerate() {
        if prefetch {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: SSE is part of x86-64; a prefetch is a hint that never faults, whatever the address.
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>(bytes.as_ptr().wrapping_add(64 * i + 4096).cast());
            }
        }
        for (a, w) in acc.iter_mut().zip(line.chunks_exact(8)) {
            *a = a.wrapping_add(word(w));
        }
    }
    acc.iter().copied().chain(rest.chunks_exact(8).map(word)).fold(0u64, u64::wrapping_add)
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
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let sum = |w: &[u64]| w.iter().fold(0u64, |a, &b| a.wrapping_add(b));
        for prefetch in [false, true] {
            assert_eq!(super::sum_words(&bytes, prefetch), sum(&words));
            assert_eq!(super::sum_words(&bytes[..40], prefetch), sum(&words[..5]));
            // A last partial word is left out.
            assert_eq!(super::sum_words(&bytes[..45], prefetch), sum(&words[..5]));
        }
    }

    /// The probe's buffer holds every word it was filled with, and (on Linux) says how much of it is in huge
    /// pages.
    #[test]
    fn the_probe_buffer_is_filled_and_reports_its_pages() {
        let buf = super::probe_buffer(8 << 20);
        let bytes: &[u8] = &buf;
        assert_eq!(bytes.len(), 8 << 20);
        let n = (bytes.len() / 8) as u64;
        assert_eq!(super::sum_words(bytes, false), n.wrapping_mul(n - 1) / 2);
        #[cfg(target_os = "linux")]
        assert!(super::huge_page_share(bytes).is_some_and(|h| (0.0..=1.0).contains(&h)));
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(super::median(&[]), None);
        assert_eq!(super::median(&[0.7]), Some(0.7));
        assert_eq!(super::median(&[0.9, 0.5, 0.7]), Some(0.7));
        assert_eq!(super::median(&[0.9, 0.5, 0.75, 0.5]), Some(0.625));
    }
}
