//! A generated token's products that go on where they end: gate and up cut by the same row ranges, each piece
//! followed on its own thread by what uses those rows (SwiGLU, and quantizing the result for down, an [`ActRow`]),
//! and down then run on activations already quantized ([`matmul_quantized_then`]).
//!
//! Cut the usual way (by bytes, in one parallel region) SmolLM2-135M's gate went to one thread and up to the other.
//! The calling thread then read the other's half, applied SwiGLU to all 1536 values and quantized them while the
//! other thread waited, then handed the row back: two crossings of a cache line each way between the threads, and
//! a serial step, per layer.
//!
//! [`ActRow`]: super::act::ActRow

use std::ops::Range;

use super::{act, check, kernel, range, ranges, run_one, runs_serially, Job, KernelError, Next};
use super::{active, vec_dot_type, Weight};
use crate::team::Parallel;

/// What runs after each range of a [`matmul_rows_then`] group, on the thread that computed it: the rows, and
/// those rows of each product's output.
pub type Then<'a> = dyn Fn(Range<usize>, &mut [&mut [f32]]) + Sync + 'a;

/// At most this many products in a [`matmul_rows_then`] group.
pub const MAX_GROUP: usize = 4;

/// Whether `ws` can run as one [`matmul_rows_then`] group for the kernel set in use: two to [`MAX_GROUP`] products
/// of the same shape that pair with the same activation type, each with a kernel.
pub fn rows_fit(ws: &[Weight<'_>]) -> bool {
    let isa = active();
    let first = ws.first().map(|w| (w.rows, w.cols, vec_dot_type(w.ty)));
    (2..=MAX_GROUP).contains(&ws.len())
        && ws.iter().all(|w| {
            Some((w.rows, w.cols, vec_dot_type(w.ty))) == first && kernel(isa, w.ty, w.rows, 1).is_some()
        })
}

/// One token's products `ys[i] = ws[i] · x` (as [`matmul`](super::matmul) computes them, bit for bit; `ws` as
/// [`rows_fit`] requires), cut into row ranges that start at multiples of `align` (a power of two), each range of
/// every product on one thread; there, once a range's rows of every product are done, `then(rows, outs)` gets
/// them (`outs[i]`: rows `rows` of `ys[i]`). After that each thread asks for the first bytes of its share of
/// `next` ([`Next::of_rows`] with the same `align`).
#[allow(clippy::too_many_arguments)]
pub fn matmul_rows_then(
    par: &dyn Parallel,
    ws: &[Weight<'_>],
    ys: &mut [&mut [f32]],
    x: &[f32],
    scratch: &mut Vec<u8>,
    next: &Next,
    align: usize,
    then: &Then<'_>,
) -> Result<(), KernelError> {
    let isa = active();
    if !rows_fit(ws) || !isa.is_available() || !align.is_power_of_two() {
        return Err(KernelError::Length { what: "products of one shape cut by rows", expected: 2, got: ws.len() });
    }
    if ys.len() != ws.len() {
        return Err(KernelError::Length { what: "outputs (one per weight)", expected: ws.len(), got: ys.len() });
    }
    let mut act_ty = None;
    for (w, y) in ws.iter().zip(ys.iter()) {
        act_ty = Some(check(w, x.len(), 1, y.len())?);
    }
    let (act_ty, rows) = (act_ty.expect("two products or more"), ws[0].rows);
    act::quantize_activations(par, isa, act_ty, x, ws[0].cols, scratch);
    let act_row = act::row_layout(isa, act_ty, ws[0].cols).total;
    let jobs = Job::all(isa, ws, ys, scratch, act_row, 1)?;
    let piece = |r: Range<usize>| {
        jobs.iter().for_each(|j| j.run(r.start, r.end));
        let mut parts: [&mut [f32]; MAX_GROUP] = Default::default();
        for (part, job) in parts.iter_mut().zip(&jobs) {
            // SAFETY: rows `r` of each output are this piece's alone (the pieces' ranges do not overlap), lie
            // inside it (r.end ≤ rows, its length, checked), and the jobs that wrote them have returned.
            *part = unsafe { std::slice::from_raw_parts_mut(job.y.0.add(r.start), r.len()) };
        }
        then(r, &mut parts[..jobs.len()]);
    };
    match row_pieces(par, ws, align) {
        None => {
            piece(0..rows);
            next.ask(0);
        }
        Some(cuts) => {
            let t = par.threads();
            par.for_each(cuts.len(), &|p| {
                piece(cuts[p].clone());
                if let Some(r) = (0..t).find(|&r| range(r, t, cuts.len()).1 == p + 1) {
                    next.ask(r);
                }
            });
        }
    }
    Ok(())
}

/// One token's product `y = w · x` of activations already quantized (`acts`: one row as [`act::row_layout`] lays
/// out `vec_dot_type(w.ty)` for the kernel set in use, an [`act::ActRow`]), as [`matmul_then`](super::matmul_then)
/// computes it after quantizing `x`, bit for bit, and cut the same way.
pub fn matmul_quantized_then(
    par: &dyn Parallel,
    w: &Weight<'_>,
    acts: &[u8],
    y: &mut [f32],
    next: &Next,
) -> Result<(), KernelError> {
    let isa = active();
    let act_ty = check(w, w.cols, 1, y.len())?;
    let act_row = act::row_layout(isa, act_ty, w.cols).total;
    if acts.len() != act_row {
        return Err(KernelError::Length { what: "quantized activations (bytes)", expected: act_row, got: acts.len() });
    }
    run_one(par, Job::new(isa, w, acts, act_row, 1, y)?, next);
    Ok(())
}

/// The row ranges of a [`matmul_rows_then`] group, or `None` for all on the calling thread: as many as the group's
/// bytes give ranges ([`ranges`]), but whole runs of `align` rows (and of 16, for the 8-row kernels), which the
/// threads' contiguous shares then split as evenly as whole runs allow.
fn row_pieces(par: &dyn Parallel, ws: &[Weight<'_>], align: usize) -> Option<Vec<Range<usize>>> {
    let rows = ws.first()?.rows;
    let work = ws.iter().map(|w| w.rows.saturating_mul(w.cols)).sum();
    if runs_serially(par, work) {
        return None;
    }
    let bytes = ws.iter().map(|w| w.data.len()).sum();
    let unit = align.max(16);
    let units = rows.div_ceil(unit);
    let k = ranges(par, false, bytes, bytes, 1).clamp(1, units);
    let cuts: Vec<Range<usize>> =
        (0..k).map(|i| (i * units / k * unit).min(rows)..((i + 1) * units / k * unit).min(rows)).collect();
    (cuts.len() > 1).then_some(cuts)
}

impl Next {
    /// [`Next::of`] for a [`matmul_rows_then`] group of `ws` cut at multiples of `align`: where each thread's first
    /// range starts in the first product (the others' rows, behind it in the file, start their own streams).
    pub fn of_rows(par: &dyn Parallel, ws: &[Weight<'_>], align: usize) -> Next {
        let Some(w) = ws.first() else { return Next::NONE };
        let at = |r: usize| w.data.as_ptr() as usize + r * (w.data.len() / w.rows.max(1));
        let starts = match row_pieces(par, ws, align) {
            Some(cuts) => {
                let t = par.threads();
                let first = |r| &cuts[range(r, t, cuts.len()).0.min(cuts.len() - 1)];
                (0..t).map(first).map(|c: &Range<usize>| (at(c.start), at(c.end))).collect()
            }
            None => vec![(at(0), at(w.rows))],
        };
        Next { starts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{matmul_group, matmul_on, Pool};
    use crate::quant::block::testing::normal;
    use crate::quant::{bytes_for, quantize, GgmlType};
    use crate::team::Team;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    /// A `rows × cols` matrix of `ty` from normal data.
    fn matrix(ty: GgmlType, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; rows * bytes_for(ty, cols).unwrap()];
        quantize(ty, &normal(rows * cols, seed), cols, &mut bytes).unwrap();
        bytes
    }

    fn same(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits())
    }

    /// Gate and up cut by rows, each piece's SwiGLU quantized for down by its own thread, make what the whole-row
    /// way makes, bit for bit: the group's products, SwiGLU of the whole row, its activations, and down on them.
    /// Every row goes to `then` once. Shapes: SmolLM2-135M's (Q8_K activations for down), blocks of 32 (Q8_0,
    /// with the AVX-VNNI extras on such CPUs, and Q8_1), f32 activations with a short last piece, and a product
    /// small enough to run on the calling thread.
    #[test]
    fn pieces_and_their_quantized_rows_equal_the_whole_row() {
        use GgmlType as T;
        let isa = active();
        for (ty, down_ty, ff, cols) in [
            (T::Q5_0, T::Q4_K, 1536, 576),
            (T::Q4_K, T::Q6_K, 768, 256),
            (T::Q8_0, T::Q4_0, 320, 512),
            (T::Q4_1, T::Q5_1, 320, 256),
            (T::F16, T::F32, 200, 512),
            (T::Q8_0, T::Q8_0, 64, 64),
        ] {
            let (gate, up, down) = (matrix(ty, ff, cols, 1), matrix(ty, ff, cols, 2), matrix(down_ty, 96, ff, 3));
            let ws = [Weight { ty, data: &gate, rows: ff, cols }, Weight { ty, data: &up, rows: ff, cols }];
            let down = Weight { ty: down_ty, data: &down, rows: 96, cols: ff };
            assert!(rows_fit(&ws));
            let x = normal(cols, 4);
            let act_ty = vec_dot_type(down_ty).unwrap();
            // The whole-row way.
            let (mut g, mut u, mut scratch) = (vec![0f32; ff], vec![0f32; ff], Vec::new());
            matmul_group(&ws, &mut [&mut g, &mut u], &x, 1, &mut scratch).unwrap();
            let (want_g, want_u) = (g.clone(), u.clone());
            crate::model::swiglu(&mut g, &u, ff);
            let mut want_acts = Vec::new();
            act::quantize_activations(&Pool, isa, act_ty, &g, ff, &mut want_acts);
            let mut want_y = vec![0f32; 96];
            matmul_on(&Pool, isa, &down, &g, 1, &mut want_y, &mut scratch).unwrap();
            for threads in [1, 2, 3] {
                let what = format!("{ty} then {down_ty}, {ff} × {cols}, {threads} threads");
                let team = Team::new(threads);
                let (mut g2, mut u2, mut acts_buf) = (vec![f32::NAN; ff], vec![f32::NAN; ff], vec![0xAA; 3]);
                let acts = act::ActRow::new(isa, act_ty, ff, &mut acts_buf);
                let (rows_seen, pieces) = (AtomicUsize::new(0), AtomicUsize::new(0));
                let then = |rows: Range<usize>, outs: &mut [&mut [f32]]| {
                    let [g, u] = outs else { panic!("{} outputs", outs.len()) };
                    assert_eq!((g.len(), u.len()), (rows.len(), rows.len()));
                    assert!(g.iter().chain(u.iter()).all(|v| !v.is_nan()), "{what}: rows {rows:?} not done");
                    rows_seen.fetch_add(rows.len(), Relaxed);
                    pieces.fetch_add(1, Relaxed);
                    crate::model::swiglu(g, u, rows.len());
                    // SAFETY: the pieces' rows do not overlap.
                    unsafe { acts.write(rows.start, g) };
                };
                let outs: &mut [&mut [f32]] = &mut [&mut g2, &mut u2];
                matmul_rows_then(&team, &ws, outs, &x, &mut scratch, &Next::NONE, acts.block(), &then).unwrap();
                let acts = acts.bytes();
                assert_eq!(rows_seen.load(Relaxed), ff, "{what}");
                assert!(threads == 1 || ff * cols < 64 * 1024 || pieces.load(Relaxed) >= threads, "{what}");
                assert!(same(&u2, &want_u) && !same(&want_g, &g), "{what}: up, or SwiGLU not applied");
                assert!(same(&g2, &g), "{what}: SwiGLU of gate and up");
                assert!(acts == want_acts.as_slice(), "{what}: quantized activations");
                let mut y = vec![f32::NAN; 96];
                matmul_quantized_then(&team, &down, acts, &mut y, &Next::NONE).unwrap();
                assert!(same(&y, &want_y), "{what}: down");
            }
        }
    }

    /// Groups that cannot run cut by rows are refused (and `rows_fit` says so), as are quantized activations of
    /// the wrong length.
    #[test]
    fn groups_of_other_shapes_are_refused() {
        use GgmlType as T;
        let (a, b, c) = (matrix(T::Q8_0, 64, 64, 1), matrix(T::Q8_0, 32, 64, 2), matrix(T::Q4_1, 64, 64, 3));
        let w64 = Weight { ty: T::Q8_0, data: &a, rows: 64, cols: 64 };
        let w32 = Weight { ty: T::Q8_0, data: &b, rows: 32, cols: 64 };
        let w41 = Weight { ty: T::Q4_1, data: &c, rows: 64, cols: 64 };
        let wa = w64;
        assert!(rows_fit(&[w64, wa]));
        let team = Team::new(2);
        for ws in [vec![w64], vec![w64, w32], vec![w64, w41], vec![w64; MAX_GROUP + 1]] {
            assert!(!rows_fit(&ws));
            let mut outs: Vec<Vec<f32>> = ws.iter().map(|w| vec![0.0; w.rows]).collect();
            let mut refs: Vec<&mut [f32]> = outs.iter_mut().map(|y| y.as_mut_slice()).collect();
            let r = matmul_rows_then(&team, &ws, &mut refs, &[0.0; 64], &mut Vec::new(), &Next::NONE, 32, &|_, _| {});
            assert!(r.is_err(), "{} products", ws.len());
        }
        let mut y = vec![0.0; 64];
        assert!(matmul_quantized_then(&team, &w64, &[0; 7], &mut y, &Next::NONE).is_err());
    }

    /// The row ranges start at multiples of the alignment (and of 16), cover the rows once in order, and give the
    /// threads shares that differ by one aligned run at most: SmolLM2-135M's gate and up (Q5_0, 1536 rows) in four
    /// ranges of 256-row blocks, 768 rows to each of two threads. A thread asks for the start of its first range.
    #[test]
    fn row_ranges_are_aligned_and_shared_evenly() {
        let gate = matrix(GgmlType::Q5_0, 1536, 576, 1);
        let ws = [Weight { ty: GgmlType::Q5_0, data: &gate, rows: 1536, cols: 576 }; 2];
        for (threads, align) in [(2, 256), (3, 256), (2, 32), (3, 1), (4, 256)] {
            let team = Team::new(threads);
            let cuts = row_pieces(&team, &ws, align).unwrap();
            assert_eq!(cuts.first().unwrap().start, 0);
            assert_eq!(cuts.last().unwrap().end, 1536);
            assert!(cuts.windows(2).all(|p| p[0].end == p[1].start && p[0].start < p[0].end));
            assert!(cuts.iter().all(|c| c.start % align.max(16) == 0), "{cuts:?}");
            let share = |r| {
                let (a, b) = range(r, threads, cuts.len());
                cuts[a..b].iter().map(|c| c.len()).sum::<usize>()
            };
            let shares: Vec<usize> = (0..threads).map(share).collect();
            let (lo, hi) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
            assert!(hi - lo <= align.max(16), "{threads} threads, align {align}: {shares:?}");
            let row = gate.len() / 1536;
            let want: Vec<(usize, usize)> = (0..threads)
                .map(|r| &cuts[range(r, threads, cuts.len()).0])
                .map(|c| (gate.as_ptr() as usize + c.start * row, gate.as_ptr() as usize + c.end * row))
                .collect();
            assert_eq!(Next::of_rows(&team, &ws, align).starts, want);
        }
        let cuts = row_pieces(&Team::new(2), &ws, 256).unwrap();
        assert_eq!(cuts, [0..256, 256..768, 768..1024, 1024..1536]);
        assert!(row_pieces(&Team::new(1), &ws, 256).is_none());
    }
}
