//! Quantize throughput of every type that has a codec: MB/s of f32 input and millions of weights per second, on a
//! fixed pseudo-random matrix, once on a 1-thread rayon pool and once on all threads. When the llama.cpp oracle is
//! installed (PyPI llama-cpp-python, see `scripts/bench_quantize_llamacpp.py`), its single-thread figure on the same
//! values is printed beside ours.
//!
//! ```text
//! cargo bench -p pocketlm --bench quantize              # every type
//! cargo bench -p pocketlm --bench quantize -- q4_K q8_0 # only these
//! ```
//!
//! Environment: `POCKETLM_BENCH_ROWS` (default 1024) × `POCKETLM_BENCH_COLS` (default 4096) weights,
//! `POCKETLM_BENCH_REPEAT` (timed runs after one warm-up, best kept; default 3, more for fast types),
//! `POCKETLM_BENCH_PYTHON` (default `python3`), `POCKETLM_BENCH_LLAMACPP=0` to skip the llama.cpp column. The
//! default 4 Mi weights (16.8 MB of f32, rows as long as a Llama-3-8B projection's) keep the whole run, both sides,
//! near 30 s on two cores, well under two minutes; the slowest k-quants dominate it.

use std::collections::HashMap;
use std::error::Error;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use pocketlm::quant::{bytes_for, quantize, GgmlType};

fn env_usize(name: &str, default: usize) -> Result<usize, Box<dyn Error>> {
    match std::env::var(name) {
        Ok(v) => Ok(v.parse().map_err(|e| format!("{name}={v}: {e}"))?),
        Err(_) => Ok(default),
    }
}

/// `n` roughly N(0, 1) values from a fixed seed: xorshift64* uniforms through Box-Muller (both outputs used).
/// Values hardly matter for speed, but a fixed input keeps runs comparable and lets llama.cpp see the same data.
fn normal_input(n: usize) -> Vec<f32> {
    let mut s: u64 = 0x2545_F491_4F6C_DD1D;
    let mut uniform = move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        // 53 random bits in (0, 1]: never 0, so the logarithm stays finite.
        ((s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) + 1) as f64 / (1u64 << 53) as f64
    };
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let (r, t) = ((-2.0 * uniform().ln()).sqrt(), std::f64::consts::TAU * uniform());
        out.push((r * t.cos()) as f32);
        out.push((r * t.sin()) as f32);
    }
    out.truncate(n);
    out
}

/// Timed runs keep going past `repeat` until they add up to this, so that fast types, whose runs take a few
/// milliseconds, get enough chances to miss the noise of a shared machine. (The Python side does the same.)
const MIN_TIMED: Duration = Duration::from_millis(250);

/// Best wall time of at least `repeat` runs of `f` (more for fast ones, up to 100) after one warm-up run.
fn best_of(repeat: usize, mut f: impl FnMut()) -> Duration {
    f();
    let (mut best, mut total, mut runs) = (Duration::MAX, Duration::ZERO, 0);
    while runs < repeat.max(1) || (total < MIN_TIMED && runs < 100) {
        let t = Instant::now();
        f();
        let dt = t.elapsed();
        (best, total, runs) = (best.min(dt), total + dt, runs + 1);
    }
    best
}

/// llama.cpp's single-thread MB/s per type id, from `scripts/bench_quantize_llamacpp.py` run on the same input.
/// Returns the script's header line (which names the llama-cpp-python version) and the figures, or why there are
/// none.
fn llamacpp_figures(
    x: &[f32],
    rows: usize,
    cols: usize,
    types: &[GgmlType],
    repeat: usize,
) -> Result<(String, HashMap<u32, f64>), String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench_quantize_llamacpp.py");
    let input = std::env::temp_dir().join(format!("pocketlm-bench-quantize-{}.f32", std::process::id()));
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&input, bytes).map_err(|e| format!("cannot write {}: {e}", input.display()))?;
    let python = std::env::var("POCKETLM_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let ids: Vec<String> = types.iter().map(|t| t.id().to_string()).collect();
    let out = Command::new(&python)
        .arg(&script)
        .arg("--input")
        .arg(&input)
        .args(["--rows", &rows.to_string(), "--cols", &cols.to_string()])
        .args(["--repeat", &repeat.to_string(), "--types", &ids.join(",")])
        .output();
    let _ = std::fs::remove_file(&input);
    let out = out.map_err(|e| format!("cannot run {python}: {e}"))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(why.lines().last().unwrap_or("no output").trim_start_matches("# ").to_string());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    let header = lines.next().unwrap_or_default().trim_start_matches("# ").to_string();
    let figures = lines
        .filter_map(|l| {
            let (id, mbs) = l.split_once(' ')?;
            Some((id.parse().ok()?, mbs.parse().ok()?))
        })
        .collect();
    Ok((header, figures))
}

fn main() -> Result<(), Box<dyn Error>> {
    let rows = env_usize("POCKETLM_BENCH_ROWS", 1024)?;
    let cols = env_usize("POCKETLM_BENCH_COLS", 4096)?;
    let repeat = env_usize("POCKETLM_BENCH_REPEAT", 3)?;
    // cargo passes `--bench`; other arguments are type names to keep.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let types: Vec<GgmlType> = GgmlType::ALL
        .iter()
        .copied()
        .filter(|t| t.codec().is_some() && cols % t.block_size() == 0)
        .filter(|t| filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(t.name())))
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let all = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;

    let x = normal_input(rows * cols);
    let mb = (x.len() * 4) as f64 / 1e6;
    let mw = x.len() as f64 / 1e6;
    println!("quantize {rows}x{cols} f32 ({mb:.1} MB), best of ≥{repeat} after a warm-up; MB/s of f32 input, Mw/s");
    println!(
        "{:<6} {:>12} {:>8} {:>12} {:>8}   ({} threads)",
        "type", "ours 1t MB/s", "Mw/s", "ours Nt MB/s", "Mw/s", threads
    );
    let mut ours = Vec::new();
    for &ty in &types {
        let size = bytes_for(ty, x.len()).ok_or("input is not a whole number of blocks")?;
        let (mut q1, mut qn) = (vec![0u8; size], vec![0u8; size]);
        let t1 = one.install(|| best_of(repeat, || quantize(ty, &x, cols, &mut q1).expect("quantize")));
        let tn = all.install(|| best_of(repeat, || quantize(ty, &x, cols, &mut qn).expect("quantize")));
        // Rows are independent: any thread count must give the same bytes.
        assert!(q1 == qn, "{ty}: 1-thread and {threads}-thread outputs differ");
        let (s1, sn) = (t1.as_secs_f64(), tn.as_secs_f64());
        println!("{:<6} {:>12.1} {:>8.1} {:>12.1} {:>8.1}", ty.name(), mb / s1, mw / s1, mb / sn, mw / sn);
        ours.push((ty, mb / s1, mb / sn));
    }

    if std::env::var("POCKETLM_BENCH_LLAMACPP").is_ok_and(|v| v == "0") {
        return Ok(());
    }
    println!();
    match llamacpp_figures(&x, rows, cols, &types, repeat) {
        Err(why) => println!("llama.cpp column skipped: {why}"),
        Ok((header, theirs)) => {
            println!("side by side, MB/s of f32 input; llama.cpp = {header}");
            println!(
                "{:<6} {:>10} {:>10} {:>14} {:>16}",
                "type", "ours 1t", format!("ours {threads}t"), "llama.cpp 1t", "ours/llama 1t"
            );
            for (ty, s1, sn) in ours {
                match theirs.get(&ty.id()) {
                    Some(&l) => println!("{:<6} {s1:>10.1} {sn:>10.1} {l:>14.1} {:>15.2}x", ty.name(), s1 / l),
                    None => println!("{:<6} {s1:>10.1} {sn:>10.1} {:>14} {:>16}", ty.name(), "-", "-"),
                }
            }
        }
    }
    Ok(())
}
