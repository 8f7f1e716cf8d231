//! Perplexity and KL divergence on the bundled text, against llama.cpp's `perplexity` method on the same files:
//! the demo model requantized to F32, Q8_0 and Q4_K_M (our quantizer writes llama.cpp's bytes; see
//! quantize_presets.rs). Golden: `scripts/make_eval_golden.py` (llama-cpp-python 0.3.36, n_ctx 256, F32 KV cache).
//!
//! F32 must agree to 1e-4 (the model math is llama.cpp's). The quantized files round activations to 8 bits, where
//! this small model magnifies last-bit differences (see agreement_llamacpp.rs), so there perplexity is held within
//! 1% and the KL from F32 within 15% of llama.cpp's.

#[path = "support/demo.rs"]
mod demo;

use std::sync::Arc;

use pocketlm::eval::{divergence, perplexity, EvalError, EvalParams, TEXT};
use pocketlm::model::Model;
use pocketlm::quantize::{quantize_model, CancelToken, Preset, QuantizeOptions};

fn golden() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/eval_smollm2.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn perplexity_and_kl_match_llama_cpp() {
    let Some(demo) = demo::demo_model() else { return };
    let g = golden();
    let params = EvalParams { n_ctx: g["n_ctx"].as_u64().unwrap() as usize, max_chunks: None };
    let dir = std::env::temp_dir().join(format!("pocketlm-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let load = |name: &str| {
        let path = dir.join(format!("{name}.gguf"));
        let preset: Preset = name.parse().unwrap();
        quantize_model(&demo, &path, &QuantizeOptions { preset, ..Default::default() }, &mut |_| {}, &CancelToken::new())
            .unwrap();
        Arc::new(Model::load(&path).unwrap())
    };
    let f32_model = load("F32");
    let mut seen = Vec::new();
    let ppl = perplexity(&f32_model, TEXT, &params, &mut |p| seen.push(p.chunk), &CancelToken::new()).unwrap();
    let r = &g["files"]["F32"];
    eprintln!("F32: perplexity {:.4} ± {:.4} (llama.cpp {:.4})", ppl.perplexity, ppl.stderr, r["perplexity"]);
    assert_eq!(ppl.scored_tokens as u64, r["scored"].as_u64().unwrap());
    assert_eq!(seen, (1..=ppl.n_chunks).collect::<Vec<_>>(), "progress after every chunk");
    let want = r["perplexity"].as_f64().unwrap();
    assert!((ppl.perplexity / want - 1.0).abs() < 1e-4, "F32 perplexity {} vs llama.cpp {want}", ppl.perplexity);

    for name in ["Q8_0", "Q4_K_M"] {
        let q = load(name);
        let d = divergence(&f32_model, &q, TEXT, &params, &mut |_| {}, &CancelToken::new()).unwrap();
        let r = &g["files"][name];
        let (want_ppl, want_kl) = (r["perplexity"].as_f64().unwrap(), r["kl_mean_from_f32"].as_f64().unwrap());
        eprintln!(
            "{name}: perplexity {:.4} (llama.cpp {want_ppl:.4}), KL from F32 {:.3e} (llama.cpp {want_kl:.3e}), \
             median {:.3e}, p99 {:.3e}, top-1 agreement with F32 {:.1}% (llama.cpp {:.1}%)",
            d.model.perplexity,
            d.kl_mean,
            d.kl_median,
            d.kl_p99,
            100.0 * d.top1_agreement,
            100.0 * r["top1_agreement_with_f32"].as_f64().unwrap()
        );
        assert!((d.base.perplexity / ppl.perplexity - 1.0).abs() < 1e-9, "the base is the F32 run");
        assert!((d.model.perplexity / want_ppl - 1.0).abs() < 0.01, "{name}: perplexity {} vs {want_ppl}", d.model.perplexity);
        assert!((d.kl_mean / want_kl - 1.0).abs() < 0.15, "{name}: KL {} vs {want_kl}", d.kl_mean);
        assert!(d.kl_median <= d.kl_p99 && d.kl_p99 <= d.kl_max);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn too_short_a_text_and_cancel_are_errors() {
    let Some(demo) = demo::demo_model() else { return };
    let m = Arc::new(Model::load(demo).unwrap());
    let err = perplexity(&m, "Too short.", &EvalParams::default(), &mut |_| {}, &CancelToken::new()).unwrap_err();
    assert!(matches!(err, EvalError::TextTooShort { n_ctx: 512, .. }), "{err}");
    let cancel = CancelToken::new();
    cancel.cancel();
    let err = perplexity(&m, TEXT, &EvalParams::default(), &mut |_| {}, &cancel).unwrap_err();
    assert!(matches!(err, EvalError::Cancelled), "{err}");
}
