//! Choosing the next token from the model's logits.
//!
//! The chain follows llama.cpp's default order (`common/sampling.cpp`, `src/llama-sampler.cpp`):
//!
//! 1. **repetition penalty** over the last `repeat_last_n` tokens of the history: each distinct token seen there
//!    has its logit divided by `repeat_penalty` if positive, multiplied if negative (so it always becomes less
//!    likely; llama.cpp's rule, not the paper's plain division);
//! 2. **top-k**: keep the `top_k` highest logits (0 = off);
//! 3. **top-p** (nucleus): keep the smallest set of most likely tokens whose probabilities sum to at least
//!    `top_p` (1.0 = off);
//! 4. **min-p**: keep tokens whose probability is at least `min_p` times the most likely one's (0 = off);
//! 5. **temperature**: divide the logits by `temperature`;
//! 6. **dist**: draw from the softmax with our own seeded generator.
//!
//! A temperature ≤ 0 means greedy: the highest logit after the penalty, ties to the lowest id. Every filter keeps
//! at least one token. The generator is SplitMix64, so a seed gives the same draws on every platform: same seed,
//! same model, same prompt ⇒ same text. (llama.cpp draws with mt19937, so its sequences differ from ours.)

/// Sampling settings. [`Default`] is llama.cpp's: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05,
/// no repetition penalty (1.0) over a window of 64.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerParams {
    /// ≤ 0: greedy.
    pub temperature: f32,
    /// 0: off.
    pub top_k: usize,
    /// ≥ 1: off.
    pub top_p: f32,
    /// ≤ 0: off.
    pub min_p: f32,
    /// 1.0: off.
    pub repeat_penalty: f32,
    /// How many of the latest history tokens the penalty looks at; 0: off.
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplerParams {
    fn default() -> Self {
        SamplerParams {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0x5eed,
        }
    }
}

impl SamplerParams {
    /// Greedy decoding (temperature 0), everything else default.
    pub fn greedy() -> Self {
        SamplerParams { temperature: 0.0, ..Default::default() }
    }
}

/// A token still in the running, with its (possibly adjusted) logit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub id: u32,
    pub logit: f32,
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, passes BigCrush, and the same on every platform.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1), 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// The sampler: parameters and the generator's state.
pub struct Sampler {
    params: SamplerParams,
    rng: Rng,
    /// Reused between calls: the logits after the penalty, and the candidates.
    scratch: Vec<f32>,
    cands: Vec<Candidate>,
}

impl Sampler {
    pub fn new(params: SamplerParams) -> Sampler {
        let rng = Rng::new(params.seed);
        Sampler { params, rng, scratch: Vec::new(), cands: Vec::new() }
    }

    pub fn params(&self) -> &SamplerParams {
        &self.params
    }

    /// The next token. `history` is every token so far (prompt and reply); only the last `repeat_last_n` count.
    /// Non-finite logits (NaN, ±inf from a broken model) never win over finite ones; an empty `logits` gives 0.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let p = &self.params;
        self.scratch.clear();
        self.scratch.extend(logits.iter().map(|&l| if l.is_nan() { f32::NEG_INFINITY } else { l }));
        let window = &history[history.len().saturating_sub(p.repeat_last_n)..];
        apply_repeat_penalty(&mut self.scratch, window, p.repeat_penalty);

        if p.temperature <= 0.0 {
            return argmax(&self.scratch);
        }
        self.cands.clear();
        self.cands.extend(self.scratch.iter().enumerate().map(|(i, &logit)| Candidate { id: i as u32, logit }));
        if self.cands.is_empty() {
            return 0;
        }
        top_k(&mut self.cands, p.top_k);
        top_p(&mut self.cands, p.top_p);
        min_p(&mut self.cands, p.min_p);
        for c in &mut self.cands {
            c.logit /= p.temperature;
        }
        let probs = softmax(&self.cands);
        let r = self.rng.next_f64();
        let mut acc = 0.0f64;
        for (c, &pr) in self.cands.iter().zip(&probs) {
            acc += f64::from(pr);
            if r < acc {
                return c.id;
            }
        }
        // Rounding left the sum a hair below 1: the last candidate.
        self.cands.last().map_or(0, |c| c.id)
    }
}

/// Index of the largest value, ties to the lowest index; 0 if empty.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// llama.cpp's repetition penalty: every distinct token in `window` has its logit divided by `penalty` if it is
/// positive, multiplied by it if not. Ids outside `logits` are ignored.
pub fn apply_repeat_penalty(logits: &mut [f32], window: &[u32], penalty: f32) {
    if penalty == 1.0 || window.is_empty() {
        return;
    }
    let mut seen = std::collections::HashSet::with_capacity(window.len());
    for &id in window {
        if !seen.insert(id) {
            continue;
        }
        if let Some(l) = logits.get_mut(id as usize) {
            *l = if *l <= 0.0 { *l * penalty } else { *l / penalty };
        }
    }
}

/// Sorts by logit, highest first, ties by id (so every step is deterministic).
fn sort_desc(c: &mut [Candidate]) {
    c.sort_unstable_by(|a, b| b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id)));
}

/// Keeps the `k` highest logits, sorted highest first. `k = 0` keeps all (sorted).
pub fn top_k(c: &mut Vec<Candidate>, k: usize) {
    if k > 0 && k < c.len() {
        c.select_nth_unstable_by(k - 1, |a, b| b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id)));
        c.truncate(k);
    }
    sort_desc(c);
}

/// Probabilities of the candidates (softmax of their logits, computed from the largest for stability).
pub fn softmax(c: &[Candidate]) -> Vec<f32> {
    let max = c.iter().map(|x| x.logit).fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        // All -inf (or +inf present): uniform over the maxima.
        let n = c.iter().filter(|x| x.logit == max).count().max(1) as f32;
        return c.iter().map(|x| if x.logit == max { 1.0 / n } else { 0.0 }).collect();
    }
    let e: Vec<f32> = c.iter().map(|x| (x.logit - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

/// Keeps the most likely tokens until their probabilities sum to at least `p` (the token that crosses `p` is
/// kept). Expects `c` sorted highest first (as [`top_k`] leaves it); sorts it if not. `p ≥ 1`: off.
pub fn top_p(c: &mut Vec<Candidate>, p: f32) {
    if p >= 1.0 || c.len() <= 1 {
        return;
    }
    if !c.windows(2).all(|w| w[0].logit >= w[1].logit) {
        sort_desc(c);
    }
    let probs = softmax(c);
    let mut cum = 0.0f32;
    let mut keep = c.len();
    for (i, &pr) in probs.iter().enumerate() {
        cum += pr;
        if cum >= p {
            keep = i + 1;
            break;
        }
    }
    c.truncate(keep.max(1));
}

/// Keeps tokens whose probability is at least `p` times the top one's: logit ≥ max + ln p. `p ≤ 0`: off.
pub fn min_p(c: &mut Vec<Candidate>, p: f32) {
    if p <= 0.0 || c.is_empty() {
        return;
    }
    let max = c.iter().map(|x| x.logit).fold(f32::NEG_INFINITY, f32::max);
    let min_logit = max + p.min(1.0).ln();
    c.retain(|x| x.logit >= min_logit);
}
