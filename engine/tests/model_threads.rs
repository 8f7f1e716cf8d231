//! A context's results do not depend on how many threads it has: the work is split by weight rows and attention
//! heads, never by changing a sum's order. Generated token by token, the demo model's logits on 2 and 3 threads
//! are those on 1 thread, bit for bit, at every position: past the short contexts that attention keeps on one
//! thread, and across its blocks of 16 and 64 positions.

#[path = "support/demo.rs"]
mod demo;

use std::sync::Arc;

use pocketlm::model::{Context, Model};

#[test]
fn logits_are_the_same_on_any_number_of_threads() {
    let Some(path) = demo::demo_model() else { return };
    let model = Arc::new(Model::load(path).unwrap());
    let contexts: Vec<Context> = [1, 2, 3]
        .into_iter()
        .map(|threads| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| Context::new(model.clone(), 256).unwrap())
        })
        .collect();
    let [mut one, mut two, mut three] = <[Context; 3]>::try_from(contexts).ok().unwrap();
    // A prompt, then one token at a time (the next is the 1-thread context's best, so all follow one text).
    let prompt = [1u32, 504, 2365, 282, 260, 3299, 282, 7042];
    let mut next = prompt.to_vec();
    for step in 0..150 {
        let want = one.eval(&next, false).unwrap().to_vec();
        for (threads, ctx) in [(2, &mut two), (3, &mut three)] {
            let got = ctx.eval(&next, false).unwrap();
            let same = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{threads} threads, step {step} (position {}): the logits differ", one.n_past() - 1);
        }
        let best = want.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        next = vec![best as u32];
    }
}
