//! The sampler chain on hand-made distributions: each filter keeps exactly the set its definition says, greedy is
//! argmax, the same seed gives the same draws.

use pocketlm::sample::{self, Candidate, Sampler, SamplerParams};

fn cands(logits: &[f32]) -> Vec<Candidate> {
    logits.iter().enumerate().map(|(i, &logit)| Candidate { id: i as u32, logit }).collect()
}

fn ids(c: &[Candidate]) -> Vec<u32> {
    c.iter().map(|c| c.id).collect()
}

/// Logits whose softmax is exactly `probs` (up to rounding).
fn logits_of(probs: &[f32]) -> Vec<f32> {
    probs.iter().map(|p| p.ln()).collect()
}

/// A pseudo-random logit vector of a realistic size.
fn noisy_logits(n: usize, seed: u64) -> Vec<f32> {
    let mut r = sample::Rng::new(seed);
    (0..n).map(|_| (r.next_f64() as f32 - 0.5) * 20.0).collect()
}

#[test]
fn greedy_is_argmax_and_ignores_seed() {
    let logits = noisy_logits(49152, 1);
    let want = logits.iter().enumerate().fold(0, |b, (i, &l)| if l > logits[b] { i } else { b }) as u32;
    for seed in [0, 1, 42] {
        let mut s = Sampler::new(SamplerParams { seed, ..SamplerParams::greedy() });
        assert_eq!(s.sample(&logits, &[]), want);
    }
    // Ties go to the lowest id; NaN never wins.
    assert_eq!(sample::argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
    let mut s = Sampler::new(SamplerParams::greedy());
    assert_eq!(s.sample(&[f32::NAN, 0.5, f32::NAN, 0.7], &[]), 3);
}

#[test]
fn top_k_one_is_argmax_at_any_temperature() {
    let logits = noisy_logits(1000, 7);
    let want = sample::argmax(&logits);
    let mut s = Sampler::new(SamplerParams { temperature: 5.0, top_k: 1, top_p: 1.0, min_p: 0.0, seed: 9, ..Default::default() });
    for _ in 0..50 {
        assert_eq!(s.sample(&logits, &[]), want);
    }
}

#[test]
fn same_seed_same_sequence_other_seed_other_sequence() {
    let logits = noisy_logits(5000, 3);
    // A flat-ish distribution, so draws actually vary.
    let params = |seed| SamplerParams { temperature: 3.0, top_k: 0, top_p: 1.0, min_p: 0.0, seed, ..Default::default() };
    let run = |seed| {
        let mut s = Sampler::new(params(seed));
        let mut hist = Vec::new();
        for _ in 0..64 {
            let t = s.sample(&logits, &hist);
            hist.push(t);
        }
        hist
    };
    let a = run(1234);
    assert_eq!(a, run(1234));
    assert_ne!(a, run(1235));
    assert!(a.iter().collect::<std::collections::HashSet<_>>().len() > 10, "draws should vary: {a:?}");
}

#[test]
fn top_k_keeps_the_k_highest_sorted() {
    let mut c = cands(&[0.1, 5.0, -2.0, 3.0, 4.0, 3.0]);
    sample::top_k(&mut c, 3);
    assert_eq!(ids(&c), [1, 4, 3]); // 3.0 twice: the lower id wins the tie
    let mut c = cands(&[0.1, 5.0, -2.0]);
    sample::top_k(&mut c, 0);
    assert_eq!(ids(&c), [1, 0, 2]);
}

#[test]
fn top_p_keeps_the_smallest_set_reaching_p() {
    let probs = [0.05, 0.4, 0.1, 0.3, 0.15];
    // Sorted: 0.4 (1), 0.3 (3), 0.15 (4), 0.1 (2), 0.05 (0); cumulative 0.4, 0.7, 0.85, 0.95, 1.0.
    for (p, want) in [(0.3, vec![1]), (0.4, vec![1]), (0.5, vec![1, 3]), (0.8, vec![1, 3, 4]), (0.9, vec![1, 3, 4, 2])] {
        let mut c = cands(&logits_of(&probs));
        sample::top_k(&mut c, 0);
        sample::top_p(&mut c, p);
        assert_eq!(ids(&c), want, "top_p {p}");
    }
    let mut c = cands(&logits_of(&probs));
    sample::top_p(&mut c, 1.0);
    assert_eq!(c.len(), 5);
}

#[test]
fn min_p_keeps_tokens_at_least_p_times_the_top() {
    let probs = [0.05, 0.4, 0.1, 0.3, 0.15];
    // Relative to the top 0.4: 0.125, 1, 0.25, 0.75, 0.375.
    for (p, want) in [(0.5, vec![1, 3]), (0.3, vec![1, 3, 4]), (0.2, vec![1, 2, 3, 4]), (0.1, vec![0, 1, 2, 3, 4]), (1.0, vec![1])] {
        let mut c = cands(&logits_of(&probs));
        sample::min_p(&mut c, p);
        assert_eq!(ids(&c), want, "min_p {p}");
    }
}

#[test]
fn repetition_penalty_divides_positive_multiplies_negative_once_per_token() {
    let mut l = vec![2.0, -1.0, 3.0, 0.5, -4.0];
    sample::apply_repeat_penalty(&mut l, &[0, 1, 0, 0, 4, 99], 2.0);
    assert_eq!(l, [1.0, -2.0, 3.0, 0.5, -8.0]);

    // Through the sampler: only the last repeat_last_n tokens count.
    let logits = [5.0, 4.0, 1.0];
    let params = SamplerParams { repeat_penalty: 2.0, repeat_last_n: 2, ..SamplerParams::greedy() };
    let mut s = Sampler::new(params.clone());
    assert_eq!(s.sample(&logits, &[2, 0]), 1, "5/2 < 4: token 0 penalised");
    assert_eq!(s.sample(&logits, &[0, 2, 2]), 0, "token 0 is outside the window of 2");
    let mut off = Sampler::new(SamplerParams { repeat_last_n: 0, ..params });
    assert_eq!(off.sample(&logits, &[0, 0]), 0);
}

#[test]
fn draws_follow_the_distribution() {
    // temperature 1, no filters: frequencies approach the softmax.
    let probs = [0.5, 0.3, 0.2];
    let mut s = Sampler::new(SamplerParams { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0, seed: 77, ..Default::default() });
    let mut counts = [0usize; 3];
    let n = 20000;
    for _ in 0..n {
        counts[s.sample(&logits_of(&probs), &[]) as usize] += 1;
    }
    for (c, p) in counts.iter().zip(probs) {
        let f = *c as f32 / n as f32;
        assert!((f - p).abs() < 0.02, "frequency {f} for probability {p}");
    }
    // Default min-p (0.05) removes a token with 1% of the top's probability (top-p off): it is never drawn.
    let mut s = Sampler::new(SamplerParams { top_p: 1.0, ..Default::default() });
    let l = logits_of(&[0.6, 0.39, 0.006]);
    assert!((0..2000).all(|_| s.sample(&l, &[]) != 2));
}
