//! A generated token's group of products (Q, K and V) cut so that the threads' shares hold as many bytes each.
//!
//! [`pieces`](super::pieces) cuts each product of a group on its own, and the team hands each thread an equal count
//! of pieces in order, so the threads' shares differ by whatever the products' pieces differ by. SmolLM2-135M's Q,
//! K and V (228, 76 and 117 KB) were cut 2 + 1 + 1: one thread read Q, 228 KB of Q5_0, the slower type to compute,
//! and the other K and V, 193 KB. On an Intel Xeon (2 vCPUs, family 6 model 167), timed per product (a throwaway),
//! that one then waited for the first 6.0–6.2 µs per layer on average, about a quarter of the product's time. Here
//! the group's bytes are cut into equal shares wherever they fall, at whole units of rows, and a share that reaches
//! into the next product takes a piece of each: the two threads' waits then came to about 2.2 µs a layer together.
//! Tokens were no faster beyond this machine's noise (three pairs of runs in turn, ±5% from run to run).

use super::Weight;

/// The pieces, `(product, first row, end row)`, of a group of products `ws` (at least one row each) read by
/// `threads` threads, `per_thread` equal shares of the bytes each: each thread's run of pieces holds its shares, to
/// within a unit of rows, and every thread has as many pieces (the team hands out equal counts in order), a
/// thread's largest pieces split where it has fewer. Units are `unit(j)` rows of product j (8 or 16 for an 8-row
/// kernel), and every piece starts at one. None if a thread's pieces cannot be split to the count (all of one
/// unit).
pub(super) fn even_shares(
    ws: &[Weight<'_>],
    unit: impl Fn(usize) -> usize,
    threads: usize,
    per_thread: usize,
) -> Option<Vec<(usize, usize, usize)>> {
    let shares = threads * per_thread;
    let total: usize = ws.iter().map(|w| w.data.len()).sum();
    if shares == 0 || total == 0 || ws.iter().any(|w| w.rows == 0) {
        return None;
    }
    // Where share s ends: the whole unit of rows nearest to byte s·total/shares, as (product, row).
    let cut = |s: usize| {
        let mut at = s * total / shares;
        for (j, w) in ws.iter().enumerate() {
            if at < w.data.len() || j + 1 == ws.len() {
                let (u, row) = (unit(j).max(1), w.data.len() / w.rows);
                let r = ((at + row * u / 2) / (row * u) * u).min(w.rows);
                return (j, r);
            }
            at -= w.data.len();
        }
        (ws.len() - 1, ws[ws.len() - 1].rows)
    };
    let mut runs: Vec<Vec<(usize, usize, usize)>> = vec![Vec::new(); threads];
    for s in 0..shares {
        let ((j0, r0), (j1, r1)) = (cut(s), cut(s + 1));
        let run = &mut runs[s / per_thread];
        for (j, w) in ws.iter().enumerate().take(j1 + 1).skip(j0) {
            let (a, b) = (if j == j0 { r0 } else { 0 }, if j == j1 { r1 } else { w.rows });
            if a < b {
                run.push((j, a, b));
            }
        }
    }
    let count = runs.iter().map(Vec::len).max()?;
    for run in &mut runs {
        while run.len() < count {
            // The piece with the most units, split in two at a unit.
            let units = |&(j, a, b): &(usize, usize, usize)| (b - a).div_ceil(unit(j).max(1));
            let (i, &(j, a, b)) = run.iter().enumerate().max_by_key(|(_, p)| units(p))?;
            if units(&(j, a, b)) < 2 {
                return None;
            }
            let mid = a + units(&(j, a, b)) / 2 * unit(j).max(1);
            run.splice(i..=i, [(j, a, mid), (j, mid, b)]);
        }
    }
    Some(runs.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Weights of `rows` rows of `row` bytes each (only their sizes count here).
    fn shapes(shapes: &[(usize, usize)]) -> Vec<Vec<u8>> {
        shapes.iter().map(|&(rows, row)| vec![0u8; rows * row]).collect()
    }

    fn weights<'a>(data: &'a [Vec<u8>], rows: &[usize]) -> Vec<Weight<'a>> {
        let ty = crate::quant::GgmlType::Q8_0;
        data.iter().zip(rows).map(|(d, &r)| Weight { ty, data: d, rows: r, cols: 32 }).collect()
    }

    /// Every row of every product in exactly one piece, in order, each piece starting at a whole unit; every thread
    /// with as many pieces; and the threads' bytes within a unit of rows (per share) of equal.
    fn check(ws: &[Weight<'_>], unit: &dyn Fn(usize) -> usize, threads: usize, per_thread: usize) -> Vec<usize> {
        let p = even_shares(ws, unit, threads, per_thread).expect("cut");
        assert_eq!(p.len() % threads, 0, "{p:?}");
        let mut next = (0, 0);
        for &(j, a, b) in &p {
            if next.0 != j {
                assert_eq!((next.1, j), (ws[next.0].rows, next.0 + 1), "{p:?}");
                next = (j, 0);
            }
            assert!(a == next.1 && a < b && a % unit(j) == 0, "{p:?}");
            next.1 = b;
        }
        assert_eq!(next, (ws.len() - 1, ws[ws.len() - 1].rows), "{p:?}");
        let bytes = |&(j, a, b): &(usize, usize, usize)| (b - a) * (ws[j].data.len() / ws[j].rows);
        let per = p.len() / threads;
        let shares: Vec<usize> = p.chunks(per).map(|c| c.iter().map(bytes).sum()).collect();
        let total: usize = ws.iter().map(|w| w.data.len()).sum();
        let slack = (0..ws.len()).map(|j| unit(j) * ws[j].data.len() / ws[j].rows).max().unwrap() * per_thread;
        for &s in &shares {
            assert!(s.abs_diff(total / threads) <= slack, "{shares:?} of {total}, slack {slack}: {p:?}");
        }
        shares
    }

    /// SmolLM2-135M's Q, K and V (Q5_0 rows of 396 bytes, Q8_0 of 612, 8-row kernels): 210 and 211 KB, not 228
    /// and 193; with 16-row units, and on three threads too.
    #[test]
    fn smollm2_qkv_is_shared_by_bytes() {
        let data = shapes(&[(576, 396), (192, 396), (192, 612)]);
        let ws = weights(&data, &[576, 192, 192]);
        let shares = check(&ws, &|_| 16, 2, 1);
        assert_eq!(shares, [528 * 396, 48 * 396 + 192 * 396 + 192 * 612]);
        let p = even_shares(&ws, |_| 16, 2, 1).unwrap();
        assert_eq!(p, [(0, 0, 256), (0, 256, 384), (0, 384, 528), (0, 528, 576), (1, 0, 192), (2, 0, 192)]);
        check(&ws, &|_| 8, 3, 1);
        check(&ws, &|_| 1, 2, 4);
    }

    /// The 1B-shaped file's Q, K and V (Q4_K rows of 1152 bytes; V in Q6_K, 1680), seven shares a thread.
    #[test]
    fn many_shares_a_thread() {
        let data = shapes(&[(2048, 1152), (512, 1152), (512, 1680)]);
        let ws = weights(&data, &[2048, 512, 512]);
        check(&ws, &|_| 16, 2, 7);
        check(&ws, &|j| [16, 8, 1][j], 3, 2);
    }

    /// Where a thread's pieces cannot be split to the others' count, no cut; nor for no rows or no shares.
    #[test]
    fn what_cannot_be_shared_gives_none() {
        let data = shapes(&[(16, 100), (16, 100), (16, 100), (16, 100)]);
        let ws = weights(&data, &[16, 16, 16, 16]);
        // Two threads, two products each: one piece of one unit per product.
        assert!(even_shares(&ws[..1], |_| 16, 2, 1).is_none());
        assert!(even_shares(&ws, |_| 16, 0, 1).is_none());
        let p = even_shares(&ws, |_| 16, 2, 1).unwrap();
        assert_eq!(p, [(0, 0, 16), (1, 0, 16), (2, 0, 16), (3, 0, 16)]);
    }
}
