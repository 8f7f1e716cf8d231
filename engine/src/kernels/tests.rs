//! Kernel tests. They are lib unit tests so that `arm64-cross.sh -p pocketlm --lib kernels` runs them under qemu
//! too: every set the CPU offers (AVX2 here; NEON, with and without dotprod, on aarch64) against the scalar
//! references, and the references against a plain f64 dot product of the dequantized operands.

use super::*;
use crate::quant::block::testing::normal;
use crate::quant::{dequantize, quantize};

/// Every weight type with a kernel.
const TYPES: [GgmlType; 13] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

/// Row lengths that hit every length class of a type: one block, a few, and (for blocks of 32) lengths that are
/// not multiples of 256, as SmolLM2's 576 is; for the float types, lengths with tails after the 8- and 32-wide loops.
fn lengths(ty: GgmlType) -> Vec<usize> {
    match ty.block_size() {
        1 => vec![1, 7, 8, 31, 32, 33, 96, 200, 576],
        32 => vec![32, 64, 96, 160, 256, 576, 1024 + 32],
        _ => vec![256, 512, 768, 1536],
    }
}

/// A deterministic xorshift stream of bytes.
fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 32) as u8
        })
        .collect()
}

/// A matrix of `rows × cols` weights of `ty` from normal data with some large rows, and its dequantized values.
fn weights(ty: GgmlType, rows: usize, cols: usize, seed: u64) -> (Vec<u8>, Vec<f32>) {
    let mut src = normal(rows * cols, seed);
    for (r, row) in src.chunks_exact_mut(cols).enumerate() {
        let scale = [1.0, 0.01, 30.0][r % 3];
        row.iter_mut().for_each(|v| *v *= scale);
    }
    let mut bytes = vec![0u8; rows * crate::quant::bytes_for(ty, cols).unwrap()];
    quantize(ty, &src, cols, &mut bytes).unwrap();
    let mut deq = vec![0f32; rows * cols];
    dequantize(ty, &bytes, &mut deq).unwrap();
    (bytes, deq)
}

/// Activations with an outlier per token (what real hidden states look like), so the int8 codes span their range.
fn activations(n_tokens: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut x = normal(n_tokens * cols, seed);
    for (t, row) in x.chunks_exact_mut(cols).enumerate() {
        row[(t * 37) % cols] = 20.0;
    }
    x
}

fn assert_close(got: &[f32], want: &[f32], bound: &[f64], what: &str) {
    for (i, ((&g, &w), &b)) in got.iter().zip(want).zip(bound).enumerate() {
        // An infinite bound marks an element not compared (non-finite operands; NaN equals nothing).
        assert!(b.is_infinite() || ((g as f64) - (w as f64)).abs() <= b, "{what}: element {i}: got {g}, want {w} (±{b})");
    }
}

/// Scalar kernel vs Σ dequantized weight × dequantized activation in f64, for every type and length.
#[test]
fn scalar_references_equal_the_dequantized_dot_product() {
    for ty in TYPES {
        let act_ty = vec_dot_type(ty).unwrap();
        for cols in lengths(ty) {
            let rows = 3;
            let (wb, wd) = weights(ty, rows, cols, cols as u64);
            let x = activations(1, cols, 7 + cols as u64);
            let mut scratch = Vec::new();
            act::quantize_activations(&Pool, Isa::Scalar, act_ty, &x, cols, &mut scratch);
            let mut xd = vec![0f32; cols];
            dequantize(act_ty, &scratch[..act::row_layout(Isa::Scalar, act_ty, cols).blocks], &mut xd).unwrap();
            let mut y = vec![0f32; rows];
            let w = Weight { ty, data: &wb, rows, cols };
            matmul_on(&Pool, Isa::Scalar, &w, &x, 1, &mut y, &mut Vec::new()).unwrap();
            let mut want = vec![0f32; rows];
            let mut bound = vec![0f64; rows];
            for r in 0..rows {
                let w = &wd[r * cols..(r + 1) * cols];
                want[r] = w.iter().zip(&xd).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>() as f32;
                let mag: f64 = w.iter().zip(&xd).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
                let wmax = w.iter().fold(0f64, |m, &v| m.max(v.abs() as f64));
                let amag: f64 = xd.iter().map(|&v| v.abs() as f64).sum();
                // f32 rounding of the block sums; for Q8_1 also the f16 rounding of its block sum `s`, which meets
                // the weight minimum (at most |m|·|s|·2⁻¹¹ per block, and |m| ≤ max|w|, |s| ≤ Σ|a|).
                let s_round = if act_ty == GgmlType::Q8_1 { wmax * amag / 2048.0 } else { 0.0 };
                bound[r] = 1e-5 * (mag + wmax * amag) + s_round + 1e-30;
            }
            assert_close(&y, &want, &bound, &format!("{ty} × {act_ty}, {cols} cols"));
        }
    }
}

/// `bound[t·rows + r]` for comparing two kernel sets: f32 accumulation order only.
fn order_bound(wd: &[f32], x: &[f32], rows: usize, cols: usize, n_tokens: usize) -> Vec<f64> {
    let mut b = vec![0f64; rows * n_tokens];
    for t in 0..n_tokens {
        let amag: f64 = x[t * cols..(t + 1) * cols].iter().map(|&v| v.abs() as f64).sum();
        for r in 0..rows {
            let wmax = wd[r * cols..(r + 1) * cols].iter().fold(0f64, |m, &v| m.max(v.abs() as f64));
            b[t * rows + r] = 2e-5 * wmax * amag + 1e-30;
        }
    }
    b
}

/// How many copies of token `t` of an `n_tokens` batch make a batch whose arithmetic for it is the same. On x86-64
/// the k-quant kernels follow llama.cpp, whose sums depend on the batch's shape (`x86::VEC_DOT`): 8 tokens or more
/// take the tiled arithmetic; Q4_K with a multiple of 8 rows takes the interleaved one, whose groups of 4 tokens
/// sum differently from the tokens left over.
fn same_arithmetic_batch(isa: Isa, ty: GgmlType, rows: usize, n_tokens: usize, t: usize) -> usize {
    use GgmlType as T;
    if !isa.is_avx2() || !matches!(ty, T::Q2_K | T::Q3_K | T::Q4_K | T::Q5_K | T::Q6_K) {
        1
    } else if ty == T::Q4_K && rows.is_multiple_of(8) {
        if t < n_tokens - n_tokens % 4 { 4 } else { 1 }
    } else if n_tokens >= 8 {
        8
    } else {
        1
    }
}

/// Every available SIMD set equals the scalar reference, for every type, length and token count (1 to 13: full and
/// partial token tiles), and a batch gives what the tokens give one at a time.
#[test]
fn simd_kernels_equal_the_scalar_references() {
    let sets: Vec<Isa> = Isa::available().into_iter().filter(|&i| i != Isa::Scalar).collect();
    eprintln!("kernel sets under test: {:?} (detected {})", sets, detected().name());
    for ty in TYPES {
        // 40 rows: Q4_K takes ggml's interleaved-by-8 arithmetic (see `x86::REPACK`); 48, the 16-row kernels of
        // the AVX-512 set too, where Q4_K's tokens after the last group of 4 run the one-token kernel.
        for (cols, rows) in lengths(ty).into_iter().flat_map(|c| [(c, 37), (c, 40), (c, 48)]) {
            let (wb, wd) = weights(ty, rows, cols, 100 + cols as u64);
            let w = Weight { ty, data: &wb, rows, cols };
            for n_tokens in [1, 3, 4, 9, 13] {
                let x = activations(n_tokens, cols, cols as u64 * 31 + n_tokens as u64);
                let mut want = vec![0f32; rows * n_tokens];
                matmul_on(&Pool, Isa::Scalar, &w, &x, n_tokens, &mut want, &mut Vec::new()).unwrap();
                let bound = order_bound(&wd, &x, rows, cols, n_tokens);
                for &isa in &sets {
                    let what = format!("{} {ty}, {cols} cols, {n_tokens} tokens", isa.name());
                    let mut got = vec![0f32; rows * n_tokens];
                    matmul_on(&Pool, isa, &w, &x, n_tokens, &mut got, &mut Vec::new()).unwrap();
                    assert_close(&got, &want, &bound, &what);
                    // Token by token: the same numbers, bit for bit (a tile must not change a token's result),
                    // in a batch that takes the same arithmetic (see `same_arithmetic_batch`).
                    for t in 0..n_tokens {
                        let copies = same_arithmetic_batch(isa, ty, rows, n_tokens, t);
                        let xt = x[t * cols..(t + 1) * cols].repeat(copies);
                        let mut alone = vec![0f32; rows * copies];
                        matmul_on(&Pool, isa, &w, &xt, copies, &mut alone, &mut Vec::new()).unwrap();
                        assert_eq!(&alone[..rows], &got[t * rows..(t + 1) * rows], "{what}: token {t} alone");
                    }
                }
            }
        }
    }
}

/// Random block bytes (any scale, any code, including the extremes the SIMD tricks must survive: Q8_0 code −128,
/// Q6_K scale −128, all-ones nibbles): SIMD equals scalar wherever the weights are finite.
#[test]
fn simd_kernels_survive_random_block_bytes() {
    let sets: Vec<Isa> = Isa::available().into_iter().filter(|&i| i != Isa::Scalar).collect();
    for ty in TYPES.into_iter().filter(|t| t.is_quantized()) {
        let cols = if ty.block_size() == 32 { 320 } else { 512 };
        let rows = 64;
        let row_bytes = crate::quant::bytes_for(ty, cols).unwrap();
        let wb = random_bytes(rows * row_bytes, ty.id() as u64);
        let mut wd = vec![0f32; rows * cols];
        dequantize(ty, &wb, &mut wd).unwrap();
        let w = Weight { ty, data: &wb, rows, cols };
        let x = activations(5, cols, 3);
        let mut want = vec![0f32; rows * 5];
        matmul_on(&Pool, Isa::Scalar, &w, &x, 5, &mut want, &mut Vec::new()).unwrap();
        let mut bound = order_bound(&wd, &x, rows, cols, 5);
        let mut checked = 0;
        for (r, row) in wd.chunks_exact(cols).enumerate() {
            let finite = row.iter().all(|v| v.is_finite()) && (0..5).all(|t| want[t * rows + r].is_finite());
            for t in 0..5 {
                if !finite {
                    bound[t * rows + r] = f64::INFINITY;
                }
            }
            checked += finite as usize;
        }
        assert!(checked > rows / 2, "{ty}: only {checked} rows with finite scales");
        for &isa in &sets {
            let mut got = vec![0f32; rows * 5];
            matmul_on(&Pool, isa, &w, &x, 5, &mut got, &mut Vec::new()).unwrap();
            assert_close(&got, &want, &bound, &format!("{} {ty} random bytes", isa.name()));
        }
    }
}

#[test]
fn bad_shapes_and_types_are_errors() {
    let data = vec![0u8; 2 * 18];
    let w = Weight { ty: GgmlType::Q4_0, data: &data, rows: 2, cols: 32 };
    let mut y = vec![0f32; 2];
    let mut s = Vec::new();
    assert_eq!(matmul(&w, &[0.0; 32], 1, &mut y, &mut s), Ok(()));
    assert!(matches!(matmul(&w, &[0.0; 31], 1, &mut y, &mut s), Err(KernelError::Length { .. })));
    assert!(matches!(matmul(&w, &[0.0; 32], 1, &mut y[..1], &mut s), Err(KernelError::Length { .. })));
    let short = Weight { data: &data[..30], ..w };
    assert!(matches!(matmul(&short, &[0.0; 32], 1, &mut y, &mut s), Err(KernelError::Length { .. })));
    let partial = Weight { cols: 48, ..w };
    assert!(matches!(matmul(&partial, &[0.0; 48], 1, &mut y, &mut s), Err(KernelError::PartialBlock { .. })));
    let iq = Weight { ty: GgmlType::IQ4_NL, ..w };
    assert_eq!(matmul(&iq, &[0.0; 32], 1, &mut y, &mut s), Err(KernelError::Unsupported(GgmlType::IQ4_NL)));
    assert!(!supports(GgmlType::Q8_K) && supports(GgmlType::Q6_K) && supports(GgmlType::BF16));
    let mut row = [0f32; 32];
    assert!(matches!(get_row(&w, 2, &mut row), Err(KernelError::Length { .. })));
    #[cfg(target_arch = "x86_64")]
    assert_eq!(matmul_on(&Pool, Isa::Neon, &w, &[0.0; 32], 1, &mut y, &mut s), Err(KernelError::IsaUnavailable("neon")));
}

#[test]
fn get_row_equals_dequantize() {
    for ty in TYPES {
        let cols = lengths(ty)[1];
        let (wb, wd) = weights(ty, 4, cols, 5);
        let mut out = vec![0f32; cols];
        get_row(&Weight { ty, data: &wb, rows: 4, cols }, 3, &mut out).unwrap();
        assert_eq!(out, wd[3 * cols..]);
    }
}

#[test]
fn force_scalar_switches_the_active_set() {
    set_force_scalar(true);
    assert_eq!(active(), Isa::Scalar);
    set_force_scalar(false);
    if std::env::var("POCKETLM_KERNELS").is_err() {
        assert_eq!(active(), detected());
    }
    assert!(detected().is_available());
    #[cfg(target_arch = "x86_64")]
    assert!(matches!(detected(), Isa::Avx2 | Isa::Avx2Vnni | Isa::Avx512Vnni | Isa::Scalar));
    #[cfg(target_arch = "aarch64")]
    assert!(matches!(detected(), Isa::Neon | Isa::NeonDotprod));
}

/// `POCKETLM_KERNELS` picks a set by its name among those the CPU has; any other name is refused with the names
/// it could have been.
#[test]
fn kernels_env_names_an_available_set() {
    let available = Isa::available();
    for &isa in &available {
        assert_eq!(super::named_set(isa.name(), &available), Ok(isa));
    }
    let e = super::named_set("avx9000", &[Isa::Scalar, Isa::Avx2]).unwrap_err();
    assert_eq!(e, "POCKETLM_KERNELS=avx9000 is not a kernel set this CPU has (scalar, avx2)");
    assert!(super::named_set("avx2", &[Isa::Scalar]).is_err());
}

/// A group of products equals the same products one by one, bit for bit: with a shared activation type (one
/// conversion, one parallel region), with mixed ones (the fallback), for one token and a batch, and on a pool of
/// two threads so that the rows really are split.
#[test]
fn group_equals_separate_products() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    for tys in [[GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q4_0], [GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::F16]] {
        // Q4_K needs whole 256-blocks: that group's rows are 512 long.
        let cols = if tys[0] == GgmlType::Q4_K { 512 } else { 576 };
        let mats: Vec<(GgmlType, Vec<u8>, usize)> = tys
            .iter()
            .zip([576, 192, 192])
            .enumerate()
            .map(|(i, (&ty, rows))| (ty, weights(ty, rows, cols, 40 + i as u64).0, rows))
            .collect();
        let ws: Vec<Weight<'_>> = mats.iter().map(|(ty, data, rows)| Weight { ty: *ty, data, rows: *rows, cols }).collect();
        for n_tokens in [1, 5] {
            let x = normal(n_tokens * cols, 99);
            let mut scratch = Vec::new();
            let separate: Vec<Vec<f32>> = pool.install(|| {
                ws.iter()
                    .map(|w| {
                        let mut y = vec![0f32; n_tokens * w.rows];
                        matmul(w, &x, n_tokens, &mut y, &mut scratch).unwrap();
                        y
                    })
                    .collect()
            });
            let mut outs: Vec<Vec<f32>> = ws.iter().map(|w| vec![f32::NAN; n_tokens * w.rows]).collect();
            let mut refs: Vec<&mut [f32]> = outs.iter_mut().map(|y| y.as_mut_slice()).collect();
            pool.install(|| matmul_group(&ws, &mut refs, &x, n_tokens, &mut scratch)).unwrap();
            for (i, (a, b)) in separate.iter().zip(&outs).enumerate() {
                assert!(a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits()), "{tys:?} product {i}, {n_tokens} tokens");
            }
        }
    }
    // Mismatched output count is an error, not a panic.
    let (data, _) = weights(GgmlType::Q8_0, 4, 64, 1);
    let w = Weight { ty: GgmlType::Q8_0, data: &data, rows: 4, cols: 64 };
    assert!(matmul_group(&[w], &mut [], &[0.0; 64], 1, &mut Vec::new()).is_err());
    // A product of no rows in a group is nothing to do (this small group runs on the calling thread).
    let empty = Weight { ty: GgmlType::Q8_0, data: &[], rows: 0, cols: 64 };
    let x = normal(64, 5);
    let mut alone = vec![0f32; 4];
    matmul(&w, &x, 1, &mut alone, &mut Vec::new()).unwrap();
    let mut y = vec![f32::NAN; 4];
    matmul_group(&[empty, w], &mut [&mut [], &mut y], &x, 1, &mut Vec::new()).unwrap();
    assert!(y.iter().zip(&alone).all(|(a, b)| a.to_bits() == b.to_bits()), "{y:?} against {alone:?}");
}

/// A batch's products are cut into four ranges per thread; a generated token's into ranges of 256 KB or more, one
/// to eight per thread; one range when serial. A group's products share them by bytes (SmolLM2-135M's Q, K and V:
/// 228, 76 and 117 KB).
#[test]
fn ranges_for_a_token_and_a_batch() {
    let team = crate::team::Team::new(2);
    let mb = 1 << 20;
    assert_eq!(ranges(&team, false, mb, mb, 512), 8);
    assert_eq!(ranges(&team, false, 100 << 10, 100 << 10, 1), 2);
    assert_eq!(ranges(&team, false, mb, mb, 1), 4);
    assert_eq!(ranges(&team, false, 1216 << 10, 1216 << 10, 1), 4);
    assert_eq!(ranges(&team, false, 2 * mb, 2 * mb, 1), 8);
    assert_eq!(ranges(&team, false, 4 * mb, 4 * mb, 1), 16);
    assert_eq!(ranges(&team, false, 30 * mb, 30 * mb, 1), 16);
    assert_eq!(ranges(&team, true, mb, mb, 1), 1);
    let qkv = [228_096, 76_032, 117_504];
    let total = qkv.iter().sum();
    let cut = |n_tokens| qkv.map(|bytes| ranges(&team, false, bytes, total, n_tokens));
    assert_eq!(cut(1), [2, 1, 1]);
    assert_eq!(cut(512), [5, 2, 3]);
}

/// What a product's threads ask for next is where each thread's range of a generated token's pieces starts, and
/// where its first piece ends: the group's first piece for the caller, then the first piece of each later range
/// (one share of the bytes per thread of SmolLM2-135M-shaped Q, K and V, `shares::even_shares`: thread 1's starts
/// at Q's row 528, and its first piece ends with Q), and the whole product only when it runs on the calling thread.
/// Asking changes no result.
#[test]
fn next_asks_for_the_start_of_each_threads_share() {
    let cols = 576;
    let mats: Vec<(GgmlType, Vec<u8>, usize)> = [(GgmlType::Q5_0, 576), (GgmlType::Q5_0, 192), (GgmlType::Q8_0, 192)]
        .iter()
        .enumerate()
        .map(|(i, &(ty, rows))| (ty, weights(ty, rows, cols, 60 + i as u64).0, rows))
        .collect();
    let ws: Vec<Weight<'_>> = mats.iter().map(|(ty, data, rows)| Weight { ty: *ty, data, rows: *rows, cols }).collect();
    let row = |j: usize| ws[j].data.len() / ws[j].rows;
    let at = |j: usize, r: usize| ws[j].data.as_ptr() as usize + r * row(j);
    let team = crate::team::Team::new(2);
    let next = Next::of(&team, &ws);
    let by_8 = rows8_kernel(active(), ws[0].ty, ws[0].rows, 1).is_some();
    // Half the bytes, 210 816, is Q's row 532.4: 528 in whole units of 16 rows; Q's share then split in three.
    let (q0, split) = if by_8 { (256, 528) } else { (266, 532) };
    assert_eq!(next.starts, [(at(0, 0), at(0, q0)), (at(0, split), at(0, 576))]);
    // The thread that asked leaves the rest of its share's first piece, up to 128 KB from its start, to ask for while
    // it waits (x86-64, whose kernels prefetch): here Q's bytes from 8 KB after its row 528 (2 KB on AMD Zen 3, as
    // far as the kernels ask ahead there) to its end.
    #[cfg(target_arch = "x86_64")]
    {
        next.ask(1);
        let ahead = x86_token::ahead();
        assert!(ahead == 8192 || ahead == 2048, "{ahead}");
        assert_eq!(waiting::pending(), (at(0, split) + ahead, at(0, 576)));
        Next::NONE.ask(0);
        assert_eq!(waiting::pending().0, waiting::pending().1);
    }
    // Three threads: pieces are cut afresh, and range r of the n starts at piece r·n/3.
    let three = crate::team::Team::new(3);
    let starts = Next::of(&three, &ws).starts;
    let isa = active();
    let pieces = pieces(&three, &ws, 1, |j| rows8_kernel(isa, ws[j].ty, ws[j].rows, 1).is_some()).unwrap();
    let n = pieces.len();
    let want: Vec<(usize, usize)> =
        (0..3).map(|r| pieces[r * n / 3]).map(|(j, r0, r1)| (at(j, r0), at(j, r1))).collect();
    assert_eq!(starts, want);
    assert_eq!(want.iter().collect::<std::collections::HashSet<_>>().len(), 3, "three distinct starts: {pieces:?}");
    // A product too small to share out runs on the calling thread, which asks for its start.
    let (small, _) = weights(GgmlType::Q8_0, 8, 64, 3);
    let w = Weight { ty: GgmlType::Q8_0, data: &small, rows: 8, cols: 64 };
    assert_eq!(Next::of(&team, &[w]).starts, [(small.as_ptr() as usize, small.as_ptr() as usize + small.len())]);
    assert_eq!(Next::of(&team, &[]), Next::NONE);

    let x = normal(cols, 7);
    let next = Next::of(&team, &ws[..1]);
    let mut scratch = Vec::new();
    let run = |next: &Next, scratch: &mut Vec<u8>| {
        let mut outs: Vec<Vec<f32>> = ws.iter().map(|w| vec![f32::NAN; w.rows]).collect();
        let mut refs: Vec<&mut [f32]> = outs.iter_mut().map(|y| y.as_mut_slice()).collect();
        matmul_group_then(&team, &ws, &mut refs, &x, 1, scratch, next).unwrap();
        let mut y = vec![f32::NAN; ws[1].rows];
        matmul_then(&team, active(), &ws[1], &x, 1, &mut y, scratch, next).unwrap();
        outs.push(y);
        outs
    };
    let (asked, plain) = (run(&next, &mut scratch), run(&Next::NONE, &mut scratch));
    assert!(asked.iter().flatten().zip(plain.iter().flatten()).all(|(a, b)| a.to_bits() == b.to_bits()));
    assert!(asked.iter().flatten().all(|v| v.is_finite()));
}

/// Anonymous memory of `len` bytes (at least the size asked for, in whole pages) with an inaccessible page on each
/// side, so that a read before or after those bytes faults.
#[cfg(unix)]
struct Fenced {
    map: *mut u8,
    map_len: usize,
    page: usize,
    len: usize,
}

#[cfg(unix)]
impl Fenced {
    fn new(len: usize) -> Fenced {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let len = len.next_multiple_of(page).max(page);
        let map_len = len + 2 * page;
        // SAFETY: a fresh private anonymous mapping; both fences are pages of it.
        unsafe {
            let prot = libc::PROT_READ | libc::PROT_WRITE;
            let map = libc::mmap(std::ptr::null_mut(), map_len, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
            assert_ne!(map, libc::MAP_FAILED, "mmap");
            let map = map.cast::<u8>();
            assert_eq!(libc::mprotect(map.cast(), page, libc::PROT_NONE), 0, "mprotect");
            assert_eq!(libc::mprotect(map.add(page + len).cast(), page, libc::PROT_NONE), 0, "mprotect");
            Fenced { map, map_len, page, len }
        }
    }

    /// `bytes` copied right after the front fence (`at_end` false) or right before the back one.
    fn place(&mut self, bytes: &[u8], at_end: bool) -> &[u8] {
        assert!(bytes.len() <= self.len);
        let offset = if at_end { self.page + self.len - bytes.len() } else { self.page };
        // SAFETY: `offset..offset + bytes.len()` lies between the fences, in memory this struct owns.
        unsafe {
            let dst = std::slice::from_raw_parts_mut(self.map.add(offset), bytes.len());
            dst.copy_from_slice(bytes);
            dst
        }
    }
}

#[cfg(unix)]
impl Drop for Fenced {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer borrowed.
        unsafe { libc::munmap(self.map.cast(), self.map_len) };
    }
}

/// No kernel reads a byte outside the weights: with them placed right after an inaccessible page and right before
/// one, every set's products of every type (one token, a few tokens and a batch, rows with and without a whole
/// number of groups, and a range of 400 KB whose prefetches run past its end) run without a fault and give
/// what they give on the weights in an ordinary buffer. A weight matrix may end where a GGUF file's mapping does.
#[test]
#[cfg(unix)]
fn kernels_read_no_byte_outside_the_weights() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    for ty in TYPES {
        let mut shapes: Vec<(usize, usize)> = lengths(ty).into_iter().flat_map(|c| [(c, 8), (c, 13)]).collect();
        if ty.block_size() == 32 {
            // A range the one-token kernels read as one stream, asking for bytes far past its end.
            shapes.push((576, 1001));
        }
        for (cols, rows) in shapes {
            let (wb, _) = weights(ty, rows, cols, 3 + cols as u64);
            let mut fenced = Fenced::new(wb.len());
            for n_tokens in [1, 3, 16] {
                let x = activations(n_tokens, cols, 5 + n_tokens as u64);
                for isa in Isa::available() {
                    let what = format!("{} {ty}, {rows} × {cols}, {n_tokens} tokens", isa.name());
                    let w = Weight { ty, data: &wb, rows, cols };
                    let mut want = vec![0f32; rows * n_tokens];
                    pool.install(|| matmul_on(&Pool, isa, &w, &x, n_tokens, &mut want, &mut Vec::new())).unwrap();
                    for at_end in [false, true] {
                        let w = Weight { data: fenced.place(&wb, at_end), ..w };
                        let mut got = vec![f32::NAN; rows * n_tokens];
                        pool.install(|| matmul_on(&Pool, isa, &w, &x, n_tokens, &mut got, &mut Vec::new())).unwrap();
                        let same = got.iter().zip(&want).all(|(g, e)| g.to_bits() == e.to_bits());
                        assert!(same, "{what}, weights at the {} fence", if at_end { "back" } else { "front" });
                    }
                }
            }
        }
    }
}
