//! Matmul kernel throughput per weight type, on the kernel set this CPU gets (`avx2`, `neon+dotprod`, …) and, for
//! one token, on the scalar references:
//!
//! - matvec (one token, token generation): GB/s of weight bytes read — against the machine's memory bandwidth
//!   (~20 GB/s here) once the matrix no longer fits in cache;
//! - batch (a prompt of `POCKETLM_BENCH_TOKENS`, default 512): tokens/s and multiply-adds per second.
//!
//! ```text
//! cargo bench -p pocketlm --bench kernels              # every type
//! cargo bench -p pocketlm --bench kernels -- q4_K q6_K # only these
//! ```
//!
//! Environment: `POCKETLM_BENCH_ROWS` (default 4096) × `POCKETLM_BENCH_COLS` (default 1536: a multiple of 256, so the
//! k-quants run too; SmolLM2-135M's FFN is 1536 × 576), `POCKETLM_BENCH_TOKENS`, `POCKETLM_BENCH_SCALAR=0` to skip
//! the scalar column. Threads: the rayon pool (`RAYON_NUM_THREADS`).
//!
//! `POCKETLM_BENCH_STEP_ROWS=N` adds a line per type: one token against the matrix on a forward pass's [`Team`]
//! (as many threads as the pool), once as one product and once as products of N rows each, one after the other in
//! a scattered order, as a generated token's chain of small products reads its weights (SmolLM2-135M's attention
//! output is 576 rows of 576: `POCKETLM_BENCH_COLS=576 POCKETLM_BENCH_ROWS=262144 POCKETLM_BENCH_STEP_ROWS=576`).
//! The two alternate, 15 times each, and the medians are printed.

use std::error::Error;
use std::time::{Duration, Instant};

use pocketlm::kernels::{active, matmul_on, matmul_then, Isa, Next, Weight};
use pocketlm::team::{Pool, Team};
use pocketlm::quant::{bytes_for, quantize, GgmlType};

const TYPES: [GgmlType; 13] = [
    GgmlType::Q4_K,
    GgmlType::Q6_K,
    GgmlType::Q5_0,
    GgmlType::Q8_0,
    GgmlType::Q4_1,
    GgmlType::Q5_K,
    GgmlType::Q4_0,
    GgmlType::Q5_1,
    GgmlType::Q3_K,
    GgmlType::Q2_K,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::F32,
];

fn env_usize(name: &str, default: usize) -> Result<usize, Box<dyn Error>> {
    match std::env::var(name) {
        Ok(v) => Ok(v.parse().map_err(|e| format!("{name}={v}: {e}"))?),
        Err(_) => Ok(default),
    }
}

/// Deterministic values in about [−2, 2): speed does not depend on them, but fixed inputs keep runs comparable.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
        })
        .collect()
}

/// Best wall time of runs of `f` after a warm-up, running for at least `min` in all (and at least 3 runs).
fn best_of(min: Duration, mut f: impl FnMut()) -> Duration {
    f();
    let (mut best, mut total, mut runs) = (Duration::MAX, Duration::ZERO, 0);
    while runs < 3 || total < min {
        let t = Instant::now();
        f();
        let dt = t.elapsed();
        (best, total, runs) = (best.min(dt), total + dt, runs + 1);
    }
    best
}

fn main() -> Result<(), Box<dyn Error>> {
    let rows = env_usize("POCKETLM_BENCH_ROWS", 4096)?;
    let cols = env_usize("POCKETLM_BENCH_COLS", 1536)?;
    let n_tokens = env_usize("POCKETLM_BENCH_TOKENS", 512)?;
    let scalar = std::env::var("POCKETLM_BENCH_SCALAR").map_or(true, |v| v != "0");
    let step_rows = env_usize("POCKETLM_BENCH_STEP_ROWS", 0)?;
    let wanted: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let isa = active();
    println!(
        "matmul {rows} rows × {cols} cols; kernels {}; {} threads; batch {n_tokens} tokens",
        isa.name(),
        rayon::current_num_threads()
    );
    println!("{:<6} {:>10} {:>12} {:>12} {:>12} {:>10}", "type", "MB", "matvec GB/s", "scalar GB/s", "batch tok/s", "GMAC/s");
    let src = values(rows * cols, 1);
    let x = values(n_tokens * cols, 2);
    let mut scratch = Vec::new();
    for ty in TYPES {
        if !wanted.is_empty() && !wanted.iter().any(|w| w.eq_ignore_ascii_case(ty.name())) {
            continue;
        }
        let Some(row) = bytes_for(ty, cols) else {
            println!("{:<6} skipped: {cols} is not a whole number of blocks", ty.name());
            continue;
        };
        let mut data = vec![0u8; rows * row];
        quantize(ty, &src, cols, &mut data)?;
        let w = Weight { ty, data: &data, rows, cols };
        let mut y = vec![0f32; rows * n_tokens];
        let gbs = |isa: Isa, scratch: &mut Vec<u8>, y: &mut [f32]| -> Result<f64, Box<dyn Error>> {
            matmul_on(&Pool, isa, &w, &x[..cols], 1, &mut y[..rows], scratch)?;
            let dt = best_of(Duration::from_millis(300), || {
                matmul_on(&Pool, isa, &w, &x[..cols], 1, &mut y[..rows], scratch).unwrap();
            });
            Ok(data.len() as f64 / dt.as_secs_f64() / 1e9)
        };
        let fast = gbs(isa, &mut scratch, &mut y)?;
        let slow = if scalar { format!("{:.2}", gbs(Isa::Scalar, &mut scratch, &mut y)?) } else { "-".into() };
        let dt = best_of(Duration::from_millis(500), || {
            matmul_on(&Pool, isa, &w, &x, n_tokens, &mut y, &mut scratch).unwrap();
        });
        let tps = n_tokens as f64 / dt.as_secs_f64();
        let gmacs = (rows * cols * n_tokens) as f64 / dt.as_secs_f64() / 1e9;
        println!(
            "{:<6} {:>10.2} {:>12.2} {:>12} {:>12.1} {:>10.1}",
            ty.name(),
            data.len() as f64 / 1e6,
            fast,
            slow,
            tps,
            gmacs
        );
        if step_rows > 0 && step_rows < rows {
            let [whole, steps, asking] = in_steps(&w, step_rows, &x[..cols], &mut y[..rows], &mut scratch)?;
            let kb = (step_rows * row) as f64 / 1024.0;
            println!(
                "       one token on a team: {whole:.2} GB/s as one product; in steps of {step_rows} rows ({kb:.0} KB) \
                 {steps:.2}, {asking:.2} asking for the next"
            );
        }
    }
    Ok(())
}

/// One token against `w` on a [`Team`] of the pool's size: GB/s of weights as one product, and as products of
/// `step_rows` rows (the whole ones: the rest is left out), taken in a scattered order so that no step follows on
/// from the one before in memory, without and with each step's threads asking for their share of the next
/// ([`Next`]); the medians of 15 runs of each, in turn.
fn in_steps(
    w: &Weight<'_>,
    step_rows: usize,
    x: &[f32],
    y: &mut [f32],
    scratch: &mut Vec<u8>,
) -> Result<[f64; 3], Box<dyn Error>> {
    let team = Team::new(rayon::current_num_threads());
    let row = w.data.len() / w.rows;
    let n = w.rows / step_rows;
    // Step k·s mod n for k = 0..n visits each step once when s and n have no common factor.
    let stride = (n / 2 + 1..).find(|s| gcd(*s, n) == 1).unwrap_or(1);
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let first = |k: usize| k * stride % n * step_rows;
    let part = |s: usize| {
        let data = &w.data[s * row..(s + step_rows) * row];
        Weight { ty: w.ty, data, rows: step_rows, cols: w.cols }
    };
    let next: Vec<Next> =
        (0..n).map(|k| if k + 1 < n { Next::of(&team, &[part(first(k + 1))]) } else { Next::NONE }).collect();
    let gbs = |bytes: usize, t: Instant| bytes as f64 / t.elapsed().as_secs_f64() / 1e9;
    let mut runs = [(); 3].map(|_| Vec::new());
    for _ in 0..15 {
        let t = Instant::now();
        matmul_on(&team, active(), w, x, 1, y, scratch)?;
        runs[0].push(gbs(w.data.len(), t));
        for (asking, out) in [(false, 1), (true, 2)] {
            let t = Instant::now();
            for (k, then) in next.iter().enumerate() {
                let s = first(k);
                let ask = if asking { then } else { &Next::NONE };
                matmul_then(&team, active(), &part(s), x, 1, &mut y[s..s + step_rows], scratch, ask)?;
            }
            runs[out].push(gbs(n * step_rows * row, t));
        }
    }
    Ok(runs.map(median))
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}
