//! Where the parallel parts of a forward pass run: a [`Team`] of threads that wait for work by spinning, or the
//! current rayon pool ([`Pool`]), behind one trait, [`Parallel`].
//!
//! A generated token is a chain of small parallel steps — per layer Q/K/V, attention, the output projection, gate
//! and up, down — each of which must finish before the next starts: 151 of them per token for SmolLM2-135M, each
//! 5 to 50 µs of work. On the rayon pool every step hands its pieces to workers that went to sleep when the last
//! one ended (rayon parks idle workers on a futex after a few rounds of yielding), and waking them costs about as
//! much as a small step. A team's workers instead watch one shared word between steps, as llama.cpp's thread pool
//! does, so a step starts on every thread within about a microsecond: they spin, then yield their core between
//! looks (with more threads than cores, pure spinning starved the threads that had work: SmolLM2 with 4 threads on
//! 2 cores generated 150 tok/s, not 340). After half a millisecond (`SPIN`) without work they sleep on a condition
//! variable (between turns of a chat, say), and the next step wakes them. Against the rayon pool, in 10 alternating
//! runs of 128 generated tokens on 2 cores: SmolLM2-135M Q4_K_M median 345 → 373 tok/s; the 1B-shaped Q4_K_M
//! 51.4 → 53.4 (6 runs).
//!
//! One step ("job"): the caller publishes `n` pieces and a closure, and returns once all `n` have run. The pieces
//! are cut into one contiguous range per thread (the caller's first), and each thread claims the pieces of its
//! range in order, then those left in the others': a thread slowed by something else takes fewer pieces, as with
//! rayon's stealing, while each reads its weight rows as one stream. (With one shared counter the threads took
//! alternate pieces, and generation was slower than on the rayon pool: each piece's rows started a stream anew.)

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Condvar, Mutex, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rayon::prelude::*;

/// Runs pieces `0..n` of a job on some threads, each piece once, and returns when all have run.
pub trait Parallel: Sync {
    /// Threads that take part (at least 1).
    fn threads(&self) -> usize;
    /// Calls `f(i)` for every `i < n`, on any of the threads, and returns when every call has returned.
    fn for_each(&self, n: usize, f: &(dyn Fn(usize) + Sync));
}

/// The current rayon pool (the global one, or the one of an enclosing `install`).
pub struct Pool;

impl Parallel for Pool {
    fn threads(&self) -> usize {
        rayon::current_num_threads()
    }
    fn for_each(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        (0..n).into_par_iter().for_each(f);
    }
}

/// How long an idle worker spins before it sleeps: longer than the gaps inside a forward pass and between generated
/// tokens (sampling, detokenising), short enough that an idle session costs nothing noticeable.
const SPIN: Duration = Duration::from_micros(500);

/// Busy-wait rounds before a waiting thread starts yielding its core between checks, in a team with more threads
/// than the process has cores (a microsecond or so): the thread it waits for may be waiting for that core.
/// Yielding costs a system call, but the thread still sees the news within a microsecond or so.
const SPINS: u32 = 128;

/// The same in a team with no more threads than cores, where every thread has a core of its own: about 80 µs of
/// pause instructions on the Xeon below (10 ns each), longer than a step's waits. Each yield enters the kernel's
/// scheduler, and with 128 rounds a waiting thread yielded all through a step: in a profile of SmolLM2-135M
/// generating on 2 threads, 15% of the samples were in `sched_yield` and the scheduler. Intel Xeon (2 vCPUs, family
/// 6 model 167), SmolLM2-135M Q4_K_M, `bench -n 128`, runs in turn, tok/s against the bandwidth measured around
/// each run (medians): alone, 0–2 points more in five pairs; with the KV cache in huge pages as well (`model::kv`),
/// 62–71% with neither and 67–78% with both, higher in each of eight rounds.
const SPINS_OWN_CORES: u32 = 8192;

/// One round of waiting: a pause instruction for the first `budget` rounds, then a yield.
fn pause(spins: &mut u32, budget: u32) {
    if *spins < budget {
        *spins += 1;
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// Most pieces of one job ([`Shared::job`] packs the count in 32 bits); larger jobs go in rounds (in tests, already
/// past a thousand, to test them).
const MAX_PIECES: usize = if cfg!(test) { 1000 } else { u32::MAX as usize };

/// A fixed set of threads, the caller of [`Team::for_each`] and `threads - 1` workers, for the steps of forward
/// passes. One job runs at a time: a call made while another runs (from another thread, or from inside a piece)
/// runs its pieces on its own thread.
pub struct Team {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Held by the caller of a job from publishing it until every piece has run.
    busy: Mutex<()>,
}

/// What the threads of a team share.
struct Shared {
    /// The current job: its number (bits 32..64, one more each job) and how many pieces it has (bits 0..32).
    job: AtomicU64,
    /// Per thread (the caller's first), the job number (bits 32..64) and how many pieces of its range have been
    /// claimed (bits 0..32). A piece is claimed by raising the count while the number is the job's, or by moving a
    /// cursor still at an earlier job on to this one with one piece claimed ([`Shared::claimed`]).
    cursors: Box<[Cursor]>,
    /// The job's closure: a pointer to a `&(dyn Fn(usize) + Sync)` on the caller's stack, valid while the job runs.
    f: AtomicPtr<()>,
    /// Pieces of the current job that have finished, added by each thread once it has run all it claimed.
    done: AtomicUsize,
    /// The first panic of a piece, passed on to the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// Whether `panic` holds one: the caller looks at this after every job and takes the lock only then.
    panicked: AtomicBool,
    /// Rounds of waiting spent spinning before yielding: [`SPINS_OWN_CORES`] or [`SPINS`].
    spins: u32,
    /// Workers asleep (or about to be) on `wake`.
    sleepers: AtomicUsize,
    sleep: Mutex<()>,
    wake: Condvar,
    stop: AtomicBool,
}

/// A cursor on a cache line of its own, so that claims in one range do not slow the others' down.
#[repr(align(128))]
struct Cursor(AtomicU64);

/// The two halves of a [`Shared::job`] or a [`Cursor`]: a job number and a count.
fn unpack(v: u64) -> (u32, usize) {
    ((v >> 32) as u32, (v & 0xFFFF_FFFF) as usize)
}

/// A job number and a count (at most [`MAX_PIECES`]) as one word.
fn pack(job: u32, count: usize) -> u64 {
    (job as u64) << 32 | count as u64
}

/// Every this many jobs the caller resets the cursors, so that none lags 2^31 jobs behind (see [`Shared::claimed`]).
/// (In tests every 64, so that they cross resets.)
const CURSOR_RESET: u32 = if cfg!(test) { 64 } else { 1 << 24 };

/// Range `r` of the `t` ranges of `n` pieces: the pieces thread `r` of a team of `t` claims first.
pub(crate) fn range(r: usize, t: usize, n: usize) -> (usize, usize) {
    (r * n / t, (r + 1) * n / t)
}

impl Team {
    /// A team of `threads` threads (the caller and `threads - 1` workers; at least the caller). Should the system
    /// refuse to start a worker, the team runs without it (the others take its range of every job).
    pub fn new(threads: usize) -> Team {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            job: AtomicU64::new(0),
            cursors: (0..threads).map(|_| Cursor(AtomicU64::new(0))).collect(),
            f: AtomicPtr::new(std::ptr::null_mut()),
            done: AtomicUsize::new(0),
            panic: Mutex::new(None),
            panicked: AtomicBool::new(false),
            spins: match std::thread::available_parallelism() {
                Ok(cores) if threads <= cores.get() => SPINS_OWN_CORES,
                _ => SPINS,
            },
            sleepers: AtomicUsize::new(0),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let workers = (1..threads)
            .filter_map(|me| {
                let s = Arc::clone(&shared);
                std::thread::Builder::new().name(format!("pocketlm-team-{me}")).spawn(move || s.work_loop(me)).ok()
            })
            .collect();
        Team { shared, workers, busy: Mutex::new(()) }
    }

    /// Runs one job of `n` (2..=MAX_PIECES) pieces.
    fn job(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        let s = &*self.shared;
        // (A panic passed on below poisons the lock; it guards nothing but the turn, so that is no matter.)
        let _busy = match self.busy.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return (0..n).for_each(f),
        };
        // The last job has finished (its caller waited for every piece), so no worker reads these until `job`
        // announces the new one below.
        s.f.store(&f as *const &(dyn Fn(usize) + Sync) as *mut (), Relaxed);
        s.done.store(0, Relaxed);
        let job = unpack(s.job.load(Relaxed)).0.wrapping_add(1);
        // The cursors count from an earlier job as from none claimed, so they need no reset for this one (which
        // would take each worker's cursor line from its cache); but a cursor must not fall 2^31 jobs behind,
        // when it would look ahead instead.
        if job.is_multiple_of(CURSOR_RESET) {
            for c in s.cursors.iter() {
                c.0.store(pack(job, 0), Relaxed);
            }
        }
        // Published with a plain store: this thread goes on to its pieces without waiting for the store to reach
        // the workers (a SeqCst store waits, about 0.4 µs where they sit on another die). With the cursors left
        // as they were, SmolLM2-135M tokens took 0.937–1.046 of the time, 0.989 in the middle of 24 series of 512
        // each way in one process (hand-off 48 ns), and 0.951–1.019, 0.986 in the middle of 12 (390 ns).
        s.job.store(pack(job, n), Release);
        if s.sleepers.load(Relaxed) > 0 {
            s.wake_all();
        }
        s.run_pieces(0, job, n);
        // A worker about to sleep either sees the new job, or counted itself in `sleepers` (SeqCst, under `sleep`)
        // before this fence, and this load sees it: `wake` is then notified under the lock it checks `job` under.
        std::sync::atomic::fence(SeqCst);
        if s.sleepers.load(Relaxed) > 0 {
            s.wake_all();
        }
        let mut spins = 0u32;
        while s.done.load(Acquire) < n {
            // Meanwhile, ask for more of this thread's share of the next product (a generated token's).
            crate::kernels::ask_some();
            pause(&mut spins, s.spins);
        }
        // (The panicking thread set the flag before it counted its pieces done, which this thread has seen.)
        if s.panicked.load(Relaxed) {
            s.panicked.store(false, Relaxed);
            if let Some(p) = s.panic.lock().unwrap_or_else(|e| e.into_inner()).take() {
                resume_unwind(p);
            }
        }
    }
}

impl Parallel for Team {
    fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    fn for_each(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        if self.workers.is_empty() || n <= 1 {
            return (0..n).for_each(f);
        }
        for start in (0..n).step_by(MAX_PIECES) {
            let count = MAX_PIECES.min(n - start);
            let round = move |i: usize| f(start + i);
            self.job(count, &round);
        }
    }
}

impl Shared {
    /// Thread `me` claims and runs pieces of job `job` (of `n` pieces): its own range's, then the others'. It
    /// counts them in `done` once, at the end: one write to the line the caller watches instead of one per piece
    /// (on 2 threads, an empty job of 16 pieces took 810 ns with a write per piece, 480 with one per thread; of 8,
    /// 540 and 440). Until then the pieces it holds keep the job from ending, so the count cannot land in a later
    /// job's.
    fn run_pieces(&self, me: usize, job: u32, n: usize) {
        let t = self.cursors.len();
        let mut ran = 0;
        for r in (me..t).chain(0..me) {
            let (lo, hi) = range(r, t, n);
            let cursor = &self.cursors[r].0;
            loop {
                let v = cursor.load(Acquire);
                let Some(claimed) = Self::claimed(v, job).filter(|&c| lo + c < hi) else { break };
                let f = self.f.load(Acquire);
                if cursor.compare_exchange_weak(v, pack(job, claimed + 1), AcqRel, Relaxed).is_err() {
                    continue;
                }
                // SAFETY: the claim succeeded, so a piece of job `job` was still unclaimed and the job's caller is
                // waiting for it: the closure was stored before `job` announced the job (this thread read that
                // with Acquire before), is not replaced before the job has finished, and lives on the caller's
                // stack until then.
                let f = unsafe { *(f as *const &(dyn Fn(usize) + Sync)) };
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(lo + claimed))) {
                    self.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(p);
                    self.panicked.store(true, Release);
                }
                ran += 1;
            }
        }
        if ran > 0 {
            self.done.fetch_add(ran, Release);
        }
    }

    /// How many pieces of job `job` a cursor holding `v` says are claimed: its count if it is this job's, none if
    /// it is still an earlier job's (nobody has claimed one of this job's yet; the first claim moves it on), and
    /// `None` if it is a later job's, when job `job` is over (a thread may look after its last piece has run).
    /// Earlier and later are reckoned in wrapping 32-bit numbers, which [`CURSOR_RESET`] keeps near enough.
    fn claimed(v: u64, job: u32) -> Option<usize> {
        let (j, claimed) = unpack(v);
        match job.wrapping_sub(j) as i32 {
            0 => Some(claimed),
            1.. => Some(0),
            _ => None,
        }
    }

    /// Wakes the workers asleep on `wake`.
    fn wake_all(&self) {
        let _g = self.sleep.lock().unwrap_or_else(|e| e.into_inner());
        self.wake.notify_all();
    }

    /// Worker `me` (1..): waits for each job, spinning for [`SPIN`], then asleep, and takes part in it.
    fn work_loop(&self, me: usize) {
        // Jobs are numbered from 1: a job announced before this thread got here is joined too.
        let mut seen = 0;
        loop {
            let start = Instant::now();
            let mut spins = 0u32;
            let (job, n) = loop {
                let (job, n) = unpack(self.job.load(Acquire));
                if job != seen {
                    break (job, n);
                }
                if self.stop.load(Relaxed) {
                    return;
                }
                if spins < self.spins || start.elapsed() < SPIN {
                    // As the caller does while it waits for the last job's pieces.
                    crate::kernels::ask_some();
                    pause(&mut spins, self.spins);
                    continue;
                }
                let mut g = self.sleep.lock().unwrap_or_else(|e| e.into_inner());
                self.sleepers.fetch_add(1, SeqCst);
                while unpack(self.job.load(SeqCst)).0 == seen && !self.stop.load(SeqCst) {
                    g = self.wake.wait(g).unwrap_or_else(|e| e.into_inner());
                }
                self.sleepers.fetch_sub(1, SeqCst);
            };
            seen = job;
            self.run_pieces(me, job, n);
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.stop.store(true, SeqCst);
        {
            let _g = self.shared.sleep.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A slice cut into chunks of `size` that the pieces of one job take for themselves, piece `i` chunk `i`.
pub struct Chunks<'a, T> {
    ptr: *mut T,
    len: usize,
    size: usize,
    _slice: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: a `Chunks` only hands out disjoint chunks of a slice it borrows mutably (see `get`), as
// `par_chunks_mut` does; `T: Send` lets them go to other threads.
unsafe impl<T: Send> Sync for Chunks<'_, T> {}

impl<'a, T> Chunks<'a, T> {
    pub fn new(slice: &'a mut [T], size: usize) -> Chunks<'a, T> {
        assert!(size > 0, "chunks of at least one element");
        Chunks { ptr: slice.as_mut_ptr(), len: slice.len(), size, _slice: std::marker::PhantomData }
    }

    /// Chunk `i` (the last may be short; past the end, empty).
    ///
    /// # Safety
    /// No two calls with the same `i` may have their chunks alive at once.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get(&self, i: usize) -> &'a mut [T] {
        // SAFETY: the caller's promise, for the one chunk.
        unsafe { self.span(i..i.saturating_add(1)) }
    }

    /// Chunks `chunks` together, as one slice (the last may be short; past the end, empty).
    ///
    /// # Safety
    /// No two calls whose chunks overlap (here or in [`Chunks::get`]) may have their chunks alive at once.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn span(&self, chunks: std::ops::Range<usize>) -> &'a mut [T] {
        let start = chunks.start.saturating_mul(self.size).min(self.len);
        let end = chunks.end.saturating_mul(self.size).clamp(start, self.len);
        // SAFETY: `start..end` lies in the borrowed slice, and the caller takes each chunk at most once at a time.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), end - start) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// A cursor at this job gives its count; at an earlier one (by up to 2^31 jobs, across the wrap of the 32-bit
    /// numbers), none claimed; at a later one, that this job is over.
    #[test]
    fn cursors_of_earlier_and_later_jobs() {
        for job in [5u32, 0, 1, u32::MAX, 1 << 31] {
            assert_eq!(Shared::claimed(pack(job, 7), job), Some(7));
            for back in [1u32, 2, 64, CURSOR_RESET, 1 << 30, (1 << 31) - 1] {
                assert_eq!(Shared::claimed(pack(job.wrapping_sub(back), 9), job), Some(0), "{job} − {back}");
            }
            for ahead in [1u32, 2, 1 << 30] {
                assert_eq!(Shared::claimed(pack(job.wrapping_add(ahead), 0), job), None, "{job} + {ahead}");
            }
        }
    }

    /// Every piece runs exactly once, jobs after jobs, with and without sleeping workers in between.
    #[test]
    fn every_piece_runs_once() {
        let team = Team::new(3);
        assert_eq!(team.threads(), 3);
        for (round, n) in [0usize, 1, 2, 7, 64, 1000].into_iter().cycle().take(60).enumerate() {
            let hits: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
            team.for_each(n, &|i| {
                hits[i].fetch_add(1, Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Relaxed) == 1), "round {round}, {n} pieces");
            if round % 20 == 19 {
                std::thread::sleep(SPIN * 4);
            }
        }
    }

    /// A team with a core for each of its threads spins longer before it yields than one with more threads than
    /// the process has cores (where the thread waited for may need the waiting one's core).
    #[test]
    fn spinning_is_longer_with_a_core_per_thread() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(Team::new(cores).shared.spins, SPINS_OWN_CORES);
        assert_eq!(Team::new(cores + 1).shared.spins, SPINS);
    }

    /// More pieces than one job holds go in rounds.
    #[test]
    fn a_job_larger_than_the_counter() {
        let team = Team::new(2);
        let n = MAX_PIECES * 2 + 5;
        let sum = AtomicU64::new(0);
        team.for_each(n, &|i| {
            sum.fetch_add(i as u64, Relaxed);
        });
        assert_eq!(sum.load(Relaxed), (n as u64) * (n as u64 - 1) / 2);
    }

    /// The workers do take part (each thread of a 2-thread team runs pieces of a job that waits for both).
    #[test]
    fn workers_take_part() {
        let team = Team::new(2);
        let ids = Mutex::new(std::collections::HashSet::new());
        let arrived = AtomicUsize::new(0);
        team.for_each(2, &|_| {
            ids.lock().unwrap().insert(std::thread::current().id());
            arrived.fetch_add(1, SeqCst);
            // Neither piece finishes before the other has started: they run on two threads.
            let t = Instant::now();
            while arrived.load(SeqCst) < 2 && t.elapsed() < Duration::from_secs(10) {
                std::hint::spin_loop();
            }
        });
        assert_eq!(ids.lock().unwrap().len(), 2);
    }

    /// A panicking piece reaches the caller, after the other pieces ran, and the team goes on working.
    #[test]
    fn a_panic_reaches_the_caller() {
        let team = Team::new(2);
        let ran = AtomicUsize::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            team.for_each(8, &|i| {
                ran.fetch_add(1, SeqCst);
                assert!(i != 5, "piece five");
            })
        }));
        assert!(r.is_err());
        assert_eq!(ran.load(SeqCst), 8);
        let sum = AtomicUsize::new(0);
        team.for_each(10, &|i| {
            sum.fetch_add(i, SeqCst);
        });
        assert_eq!(sum.load(SeqCst), 45);
    }

    /// A job started from inside a piece, or from another thread while one runs, runs on its caller's thread.
    #[test]
    fn jobs_inside_jobs() {
        let team = Team::new(2);
        let sum = AtomicUsize::new(0);
        team.for_each(4, &|_| {
            team.for_each(5, &|j| {
                sum.fetch_add(j, SeqCst);
            })
        });
        assert_eq!(sum.load(SeqCst), 40);
        let team = Arc::new(team);
        let others: Vec<_> = (0..3)
            .map(|_| {
                let team = Arc::clone(&team);
                std::thread::spawn(move || {
                    let sum = AtomicUsize::new(0);
                    for _ in 0..200 {
                        team.for_each(16, &|j| {
                            sum.fetch_add(j, SeqCst);
                        });
                    }
                    sum.load(SeqCst)
                })
            })
            .collect();
        for t in others {
            assert_eq!(t.join().unwrap(), 200 * 120);
        }
    }

    #[test]
    fn chunks_cover_the_slice() {
        let mut v = vec![0u32; 10];
        let team = Team::new(2);
        let chunks = Chunks::new(&mut v, 4);
        // SAFETY: each piece takes its own chunk.
        team.for_each(3, &|i| unsafe { chunks.get(i) }.iter_mut().for_each(|x| *x = i as u32 + 1));
        assert_eq!(v, [1, 1, 1, 1, 2, 2, 2, 2, 3, 3]);
    }
}
