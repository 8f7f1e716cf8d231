//! What a thread asks for while it waits for the others: the rest of the start of its share of the next product.
//!
//! A generated token is a chain of small products, and between two of them each thread waits: for the others to finish
//! theirs, for the caller's steps between products (norms, SwiGLU), for the next step to be handed out.
//! [`Next`](super::Next) asks for the first 8 KB of each thread's next share as the thread finishes (2 KB on AMD Zen 3,
//! as far ahead as the kernels ask there); here the thread goes on asking, 1 KB per turn of its waiting loop, for up to
//! [`WHILE_WAITING`] bytes of it, into L2. The next product then starts on rows that are already near. On AMD Zen 5, 2
//! threads, the two ways in turn in one process (ABBA, 8 tokens a turn): SmolLM2-135M Q4_K_M tokens took 0.96–1.02 of
//! the time with it, 0.978 in the middle (20 series of 512 tokens each way; 0.97–0.99 in the 8 when a hand-off between
//! the threads took 430 ns, see `bench`); two identical builds give 0.985–1.02. The 1B-shaped file's, whose products
//! are 8 times larger, 0.98–1.01. In a first version, 128 or 256 KB were no better than 64, and 16 KB no better than
//! nothing. A hint only: asking changes no result.
//!
//! On an Intel Xeon (2 vCPUs, family 6 model 167), 2 threads, 128 KB rather than 64: SmolLM2-135M Q4_K_M,
//! `bench -n 128` (3 repetitions a run), runs of the two builds in turn, 34 rounds in five series over twenty
//! minutes, faster in 24; 196.6 → 199.7 tok/s on average, 1.009 in the middle of the rounds' ratios (0.94–1.09).
//! Its threads' shares of a layer's products are 117–304 KB, so more of each is near when the step starts. The
//! 1B-shaped file ran as fast (8 rounds: 32.0 tok/s both ways); 256 KB was no faster than 128 for SmolLM2 (6 rounds).

use std::cell::Cell;

/// Most bytes of a share, counted from its start, that a waiting thread asks for.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) const WHILE_WAITING: usize = 128 << 10;

/// Bytes asked for per turn of a waiting loop: a few cache lines' requests, so that the thread still sees its news
/// within a fraction of a microsecond.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const PER_TURN: usize = 1024;

thread_local! {
    /// The addresses still to ask for, `from..to` (empty: nothing).
    static PENDING: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// From now on, while this thread waits, ask for `from..to` (addresses kept as numbers: a prefetch never faults and
/// they are never read through). An empty range asks for nothing.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn ask_later(from: usize, to: usize) {
    PENDING.with(|p| p.set((from, to.max(from))));
}

/// One turn of a waiting loop: asks for the next [`PER_TURN`] bytes of what [`ask_later`] left, if any (and on
/// CPUs whose kernels do not prefetch, nothing).
#[inline]
pub(crate) fn ask_some() {
    #[cfg(target_arch = "x86_64")]
    PENDING.with(|p| {
        let (from, to) = p.get();
        if from < to {
            let n = (to - from).min(PER_TURN);
            super::x86_token::prefetch_lines_l2(from as *const u8, n);
            p.set((from + n, to));
        }
    });
}

/// What is left to ask for (tests).
#[cfg(test)]
pub(super) fn pending() -> (usize, usize) {
    PENDING.with(|p| p.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pending range is used up a turn at a time, and a new one replaces it.
    #[test]
    fn turns_use_up_the_range() {
        let buf = vec![0u8; 3000];
        let at = buf.as_ptr() as usize;
        ask_later(at, at + 3000);
        let left = pending;
        if cfg!(target_arch = "x86_64") {
            ask_some();
            assert_eq!(left(), (at + PER_TURN, at + 3000));
            ask_some();
            ask_some();
            assert_eq!(left(), (at + 3000, at + 3000));
            ask_some();
            assert_eq!(left(), (at + 3000, at + 3000));
        }
        ask_later(at + 10, at);
        assert_eq!(left(), (at + 10, at + 10));
    }
}
