//! The forward pass against transformers: tiny random `LlamaForCausalLM` (GQA, Llama 3 rope scaling, tied and
//! untied output) and `Qwen2ForCausalLM` (biases, NEOX rope) checkpoints in F32, converted by our own pipeline to
//! an F32 GGUF, must give transformers' logits for the same 24 tokens.
//!
//! Tolerance, per token position: |ours − transformers| ≤ 1e-4 · max|transformers| over that position's logits
//! (relative to the row's scale, so that logits near zero are not held to an impossible relative bound).
//!
//! Fixtures and goldens: `tests/model_fixtures/NAME/` (config, F32 safetensors, tokenizer, `logits.json`), made by
//! `scripts/make_model_fixtures.py` (transformers 4.57.6, torch, eager attention).

#[path = "model_fixtures/common.rs"]
mod common;
use common::{golden, load, FIXTURES};

use pocketlm::model::{Context, KvType, ModelError};

const TOLERANCE: f32 = 1e-4;

/// Largest |a − b| / max|b| over the rows, and where.
fn max_rel_err(ours: &[f32], reference: &[Vec<f32>]) -> (f32, usize) {
    let n_vocab = reference[0].len();
    assert_eq!(ours.len(), reference.len() * n_vocab);
    let mut worst = (0f32, 0);
    for (t, (a, b)) in ours.chunks_exact(n_vocab).zip(reference).enumerate() {
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale;
        if err > worst.0 || err.is_nan() {
            worst = (err, t);
        }
    }
    worst
}

#[test]
fn logits_match_transformers() {
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for name in FIXTURES {
        let g = golden(name);
        let (model, _dir) = load(name);
        assert_eq!(model.hparams().n_vocab, g.logits[0].len(), "{name}: vocabulary");
        // A batch smaller than the prompt, so that the test also crosses batch boundaries.
        for batch in [64, 5] {
            let mut ctx = Context::new(model.clone(), 64).unwrap();
            ctx.set_batch(batch);
            let logits = ctx.eval(&g.tokens, true).unwrap().to_vec();
            let (err, at) = max_rel_err(&logits, &g.logits);
            report.push(format!("{name} (batch {batch}): max relative error {err:.2e} at position {at}"));
            if err.is_nan() || err > TOLERANCE {
                failures.push(report.last().unwrap().clone());
            }
            assert_eq!(ctx.n_past(), g.tokens.len());
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(failures.is_empty(), "over {TOLERANCE:e}:\n{}", failures.join("\n"));
}

/// An f16 KV cache (llama.cpp's default) rounds keys and values to 11 significant bits: the logits move by about
/// that much, no more.
#[test]
fn f16_kv_cache_stays_close_to_transformers() {
    for name in FIXTURES {
        let g = golden(name);
        let (model, _dir) = load(name);
        let mut ctx = Context::with_kv_type(model, 64, KvType::F16).unwrap();
        assert_eq!(ctx.kv_type(), KvType::F16);
        let logits = ctx.eval(&g.tokens, true).unwrap().to_vec();
        let (err, at) = max_rel_err(&logits, &g.logits);
        eprintln!("{name} (f16 KV cache): max relative error {err:.2e} at position {at}");
        assert!(err < 2e-3, "{name}: f16 KV cache: relative error {err:e} at position {at}");
    }
}

#[test]
fn split_evaluation_and_truncation_give_the_same_logits() {
    for name in FIXTURES {
        let g = golden(name);
        let (model, _dir) = load(name);
        let mut whole = Context::new(model.clone(), 32).unwrap();
        let all = whole.eval(&g.tokens, true).unwrap().to_vec();
        let n_vocab = model.hparams().n_vocab;
        let last = |k: usize| &all[(k - 1) * n_vocab..k * n_vocab];

        // Prefix, then the rest one token at a time (the generation path).
        let mut ctx = Context::new(model.clone(), 32).unwrap();
        let split = 10;
        let first = ctx.eval(&g.tokens[..split], false).unwrap().to_vec();
        assert_close(name, "prefix", &first, last(split));
        for k in split + 1..=g.tokens.len() {
            let step = ctx.eval(&g.tokens[k - 1..k], false).unwrap().to_vec();
            assert_close(name, &format!("token {k}"), &step, last(k));
        }

        // Truncate back to the prefix and continue with the rest in one call.
        ctx.truncate(split);
        assert_eq!(ctx.n_past(), split);
        let rest = ctx.eval(&g.tokens[split..], true).unwrap().to_vec();
        assert_close(name, "after truncate", &rest, &all[split * n_vocab..]);

        // Truncate into the middle and diverge: the new token sees only the kept prefix.
        ctx.truncate(4);
        let other = ctx.eval(&[g.tokens[10]], false).unwrap().to_vec();
        let mut fresh = Context::new(model.clone(), 32).unwrap();
        let mut prompt = g.tokens[..4].to_vec();
        prompt.push(g.tokens[10]);
        let expected = fresh.eval(&prompt, false).unwrap().to_vec();
        assert_close(name, "diverging after truncate", &other, &expected);
    }
}

/// Batching changes only the order of nothing: every per-token computation is the same, so results agree to
/// rounding of the kernels' tiling, far below the transformers tolerance.
fn assert_close(name: &str, what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{name}: {what}: lengths");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale;
    assert!(err <= 1e-5, "{name}: {what}: relative difference {err:e}");
}

#[test]
fn context_limits_and_bad_tokens_are_errors() {
    let (model, _dir) = load("llama-tied");
    let n_vocab = model.hparams().n_vocab;
    let mut ctx = Context::new(model.clone(), 8).unwrap();
    let e = ctx.eval(&[1; 9], false).unwrap_err();
    assert!(matches!(e, ModelError::ContextFull { n_past: 0, n_tokens: 9, n_ctx: 8 }), "{e}");
    assert!(e.to_string().contains("context full"), "{e}");
    ctx.eval(&[1; 6], false).unwrap();
    let e = ctx.eval(&[1; 3], false).unwrap_err();
    assert!(matches!(e, ModelError::ContextFull { n_past: 6, n_tokens: 3, n_ctx: 8 }), "{e}");
    assert_eq!(ctx.n_past(), 6, "a refused eval leaves the cache as it was");
    ctx.eval(&[1; 2], false).unwrap();

    let mut ctx = Context::new(model.clone(), 8).unwrap();
    let e = ctx.eval(&[1, n_vocab as u32], false).unwrap_err();
    assert!(matches!(e, ModelError::TokenOutOfRange { token, .. } if token as usize == n_vocab), "{e}");
    assert!(e.to_string().contains("out of range"), "{e}");
    assert_eq!(ctx.n_past(), 0);
    assert!(matches!(ctx.eval(&[], false), Err(ModelError::NoTokens)));

    let too_big = model.hparams().n_ctx_train + 1;
    let e = Context::new(model.clone(), too_big).err().unwrap();
    assert!(matches!(e, ModelError::BadContextSize { .. }) && e.to_string().contains("trained for"), "{e}");
    assert!(Context::new(model.clone(), 0).is_err());

    let mut ctx = Context::new(model, 8).unwrap();
    ctx.eval(&[1; 4], false).unwrap();
    assert!(matches!(ctx.shift(2, 3), Err(ModelError::BadShift { .. })));
    assert!(matches!(ctx.shift(usize::MAX, 1), Err(ModelError::BadShift { .. })));
}
