//! The `generate`, `chat` and `bench` commands as a user runs them: the real binary on the real demo model
//! (`POCKETLM_DEMO_MODEL`, fetched by `scripts/fetch-demo-model.sh`; skipped with a note when absent).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn demo() -> Option<PathBuf> {
    let p = std::env::var_os("POCKETLM_DEMO_MODEL").map(PathBuf::from).or_else(|| {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/SmolLM2-135M-Instruct.Q4_1.gguf");
        p.exists().then_some(p)
    });
    if p.is_none() {
        eprintln!("skipped: no demo model (run scripts/fetch-demo-model.sh, or set POCKETLM_DEMO_MODEL)");
    }
    p
}

fn pocketlm(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pocketlm"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn generate_greedy_is_repeatable_and_reports_its_figures() {
    let Some(m) = demo() else { return };
    let m = m.to_str().unwrap();
    let args = ["generate", m, "-p", "The capital of France is", "-n", "12", "--temp", "0", "-t", "2"];
    let a = pocketlm(&args, "");
    assert!(a.status.success(), "{}", text(&a.stderr));
    let out = text(&a.stdout);
    assert!(out.contains("Paris"), "{out:?}");
    let err = text(&a.stderr);
    assert!(err.contains("12 tokens at") && err.contains("token limit"), "{err}");
    let b = pocketlm(&args, "");
    assert_eq!(out, text(&b.stdout), "greedy generation is deterministic");

    let json = pocketlm(&["generate", m, "-p", "Hi", "-n", "3", "--temp", "0", "--json"], "");
    let stats: serde_json::Value = serde_json::from_slice(&json.stderr).unwrap();
    assert_eq!(stats["generated_tokens"], 3);
    assert_eq!(stats["stop_reason"], "max_tokens");
}

#[test]
fn chat_answers_each_line_and_resets() {
    let Some(m) = demo() else { return };
    let out = pocketlm(
        &["chat", m.to_str().unwrap(), "--temp", "0", "-n", "40"],
        "What is the capital of France? Answer in one word.\n/reset\nWhat is the capital of Italy? Answer in one word.\n\
         /quit\nnever read\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(stdout.contains("Paris") && stdout.contains("Rome"), "{stdout:?}");
    assert!(stderr.contains("(new conversation)"), "{stderr}");
    // Two replies, each with its figures; after /reset nothing is reused.
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[1].contains("(0 reused)") && lines[1].contains("end of reply"), "{}", lines[1]);
}

/// Ctrl-C while a reply streams stops that reply, not the program: the stopped reply gets its figures ("stopped"),
/// and the conversation goes on with the next line. The signal is sent once the reply's first bytes arrive, to a
/// request for a long story (2000 tokens at most), so the reply cannot have ended on its own before it.
#[cfg(unix)]
#[test]
fn ctrl_c_stops_the_reply_not_the_program() {
    use std::io::Read;
    let Some(m) = demo() else { return };
    let mut child = Command::new(env!("CARGO_BIN_EXE_pocketlm"))
        .args(["chat", m.to_str().unwrap(), "--temp", "0", "-n", "2000", "-t", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"Write a very long story about a dragon who learns to read, in ten chapters.\n").unwrap();
    stdin.flush().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    let got = stdout.read(&mut first).unwrap();
    assert!(got > 0, "the reply never started");
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    stdin.write_all(b"What is the capital of France? Answer in one word.\n/quit\n").unwrap();
    drop(stdin);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "the program ended with {:?}: {stderr}", out.status);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].contains("stopped"), "{}", lines[0]);
    assert!(lines[1].contains("end of reply"), "{}", lines[1]);
    assert!(rest.contains("Paris"), "{rest:?}");
}

#[test]
fn bench_reports_prompt_and_generation_speed() {
    let Some(m) = demo() else { return };
    let out = pocketlm(&["bench", m.to_str().unwrap(), "-p", "32", "-n", "8", "-r", "1", "-t", "2", "--json"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tests: Vec<&str> = v["results"].as_array().unwrap().iter().map(|r| r["test"].as_str().unwrap()).collect();
    assert_eq!(tests, ["pp32", "tg8"]);
    assert!(v["results"].as_array().unwrap().iter().all(|r| r["avg_ts"].as_f64().unwrap() > 0.0));
    assert!(v["tg_bound_ts"].as_f64().unwrap() > 0.0);
    // One figure per timed run against the bandwidth around it, and their median.
    let per_run = v["tg_fraction_of_bound_per_run"].as_array().unwrap();
    assert_eq!(per_run.len(), 1);
    let median = v["tg_fraction_of_bound_per_run_median"].as_f64().unwrap();
    assert!(median > 0.0 && median == per_run[0].as_f64().unwrap(), "{median} vs {per_run:?}");
    // One hand-off time per timed run: a cache line's round trip between two threads, nanoseconds to microseconds.
    let handoffs = v["handoff_round_trip_ns"].as_array().unwrap();
    assert_eq!(handoffs.len(), 1);
    assert!(handoffs.iter().all(|h| (1.0..1e6).contains(&h.as_f64().unwrap())), "{handoffs:?}");
    // The share of the file mapped in huge pages: a fraction on Linux, where smaps tells.
    let huge = &v["huge_page_share"];
    assert!(cfg!(not(target_os = "linux")) || huge.as_f64().is_some_and(|h| (0.0..=1.0).contains(&h)), "{huge}");
    // Resident memory: the mapped file, the KV cache and a little, not a copy of the weights.
    let (rss, file) = (v["peak_rss_bytes"].as_f64().unwrap(), v["file_size"].as_f64().unwrap());
    assert!(rss < file + v["kv_cache_bytes"].as_f64().unwrap() + 96.0 * 1048576.0, "peak RSS {rss} for a {file}-byte file");
}

/// `--cache-type f16` halves the KV cache (and the cache bytes the generation bound counts) and still answers; an
/// unknown type is refused by name.
#[test]
fn an_f16_cache_takes_half_the_memory() {
    let Some(m) = demo() else { return };
    let m = m.to_str().unwrap();
    // (KV cache bytes, bytes read per generated token) of a bench with a 16-position context and 4 tokens.
    let kv = |ty: &str| {
        let out = pocketlm(&["bench", m, "-p", "16", "-n", "4", "-r", "1", "--json", "--cache-type", ty], "");
        assert!(out.status.success(), "{}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["cache_type"], ty);
        (v["kv_cache_bytes"].as_u64().unwrap(), v["bytes_per_token"].as_u64().unwrap())
    };
    let ((kv32, read32), (kv16, read16)) = (kv("f32"), kv("f16"));
    assert_eq!(2 * kv16, kv32);
    // The weights, plus on average 2 of the 16 positions' keys and values.
    assert_eq!(read32 - read16, (kv32 - kv16) / 16 * 2, "bytes per token: {read32} (f32), {read16} (f16)");
    let out = pocketlm(&["generate", m, "-p", "The capital of France is", "-n", "6", "--temp", "0", "--cache-type", "f16"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Paris"), "{}", text(&out.stdout));
    let out = pocketlm(&["generate", m, "-p", "x", "--cache-type", "q8_0"], "");
    assert!(!out.status.success() && text(&out.stderr).contains("possible values: f32, f16"), "{}", text(&out.stderr));
}

#[test]
fn a_file_that_is_not_a_model_gets_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("pocketlm-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("broken.gguf");
    std::fs::write(&bad, b"GGUF\x03\x00\x00\x00 not really").unwrap();
    for cmd in ["generate", "chat", "bench"] {
        let mut args = vec![cmd, bad.to_str().unwrap()];
        if cmd == "generate" {
            args.extend(["-p", "hi"]);
        }
        let out = pocketlm(&args, "");
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let err = text(&out.stderr);
        assert!(err.starts_with("error: ") && err.contains("broken.gguf"), "{cmd}: {err}");
        assert!(!err.contains("panicked"), "{cmd}: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn perplexity_on_the_bundled_text_alone_and_against_a_base() {
    let Some(m) = demo() else { return };
    let m = m.to_str().unwrap();
    let out = pocketlm(&["perplexity", m, "-c", "128", "--chunks", "2", "--json"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["n_chunks"].as_u64(), v["scored_tokens"].as_u64()), (Some(2), Some(126)));
    let ppl = v["perplexity"].as_f64().unwrap();
    assert!(ppl > 1.0 && ppl < 1000.0, "{ppl}");
    // A model against itself: no divergence, full agreement.
    let out = pocketlm(&["perplexity", m, "--base", m, "-c", "128", "--chunks", "1", "--json"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["kl_mean"].as_f64().unwrap() < 1e-9 && v["top1_agreement"].as_f64().unwrap() == 1.0, "{v}");
}
