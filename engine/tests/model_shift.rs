//! Context shift: when the context is full, dropping a span of cached positions and moving the later ones down
//! (their keys turned back by RoPE) lets generation go on.
//!
//! What can be checked exactly: a first-layer key depends only on its own token and position, so after the shift
//! every first-layer key must equal the one a fresh context computes for the kept tokens at their new positions.
//! Deeper layers and the values keep what they saw of the dropped tokens (as in llama.cpp), so the next logits are
//! only close to a fresh evaluation's; the test prints how close and requires the same best token.

#[path = "model_fixtures/common.rs"]
mod common;

use common::{argmax, golden, load};
use pocketlm::model::{Context, KvType, ModelError};

#[test]
fn shifted_keys_equal_keys_computed_at_the_new_positions() {
    for (name, kv_type) in [("llama-tied", KvType::F32), ("qwen2", KvType::F32), ("llama-tied", KvType::F16)] {
        let g = golden(name);
        let (model, _dir) = load(name);
        // An f16 cache rounds the key when stored and again after turning it, the fresh key once: up to 1.5 f16
        // ulps (2^-10 of a value each) apart.
        let bound = if kv_type == KvType::F16 { 2e-3 } else { 1e-5 };
        let hp = model.hparams().clone();
        let n = g.tokens.len();
        let mut ctx = Context::with_kv_type(model.clone(), n, kv_type).unwrap();
        ctx.eval(&g.tokens, false).unwrap();
        assert!(matches!(ctx.eval(&[1], false), Err(ModelError::ContextFull { .. })));

        let (keep, discard) = (4, 8);
        ctx.shift(keep, discard).unwrap();
        assert_eq!(ctx.n_past(), n - discard);
        let kept: Vec<u32> = g.tokens[..keep].iter().chain(&g.tokens[keep + discard..]).copied().collect();
        let mut fresh = Context::with_kv_type(model.clone(), n, kv_type).unwrap();
        fresh.eval(&kept, false).unwrap();
        let mut worst = 0f32;
        for pos in 0..kept.len() {
            for h in 0..hp.n_head_kv {
                let (a, b) = (ctx.cached_key(0, h, pos), fresh.cached_key(0, h, pos));
                let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
                worst = worst.max(a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale);
            }
        }
        assert!(worst < bound, "{name} ({kv_type:?}): first-layer keys after the shift differ by {worst:e} (relative)");

        // Generation goes on: the next token's logits are close to a fresh evaluation of the kept tokens.
        let next = g.tokens[5];
        let shifted = ctx.eval(&[next], false).unwrap().to_vec();
        let reference = fresh.eval(&[next], false).unwrap().to_vec();
        let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = shifted.iter().zip(&reference).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale;
        eprintln!("{name} ({kv_type:?}): first-layer keys {worst:.1e}, next logits differ by {diff:.3} of their scale");
        assert!(shifted.iter().all(|v| v.is_finite()));
        assert_eq!(argmax(&shifted).0, argmax(&reference).0, "{name}: best next token after the shift");
        assert_eq!(ctx.n_past(), n - discard + 1);
    }
}

#[test]
fn shift_edge_cases() {
    let g = golden("llama-tied");
    let (model, _dir) = load("llama-tied");
    let mut ctx = Context::new(model.clone(), 32).unwrap();
    ctx.eval(&g.tokens[..10], false).unwrap();
    // Nothing to discard: nothing changes.
    ctx.shift(3, 0).unwrap();
    assert_eq!(ctx.n_past(), 10);
    // Discarding the tail is a truncation.
    ctx.shift(6, 4).unwrap();
    assert_eq!(ctx.n_past(), 6);
    let after = ctx.eval(&g.tokens[6..8], false).unwrap().to_vec();
    let mut fresh = Context::new(model, 32).unwrap();
    let expected = fresh.eval(&g.tokens[..8], false).unwrap();
    let diff = after.iter().zip(expected).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(diff < 1e-4, "after a tail shift the logits differ by {diff}");
}
