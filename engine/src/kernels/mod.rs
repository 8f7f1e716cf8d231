//! Inference kernels: weight matrix × activations, for every weight type the quantizer writes.
//!
//! A product runs in three steps, as in llama.cpp's CPU backend (`ggml_compute_forward_mul_mat`):
//! 1. the f32 activations are converted once to the type llama.cpp pairs with the weight ([`vec_dot_type`]: Q8_K
//!    for the k-quants, Q8_0 or Q8_1 for the legacy types, f32 for float weights) — [`act`], in AVX2 registers
//!    on x86-64 (`x86`, and `x86_q8k` for Q8_K);
//! 2. each weight row is dotted with each token's activation row by a kernel of the form `vec_dot_<w>_<a>`: integer
//!    products of the codes per block, scaled by the block scales. [`scalar`] holds the references; `x86` (AVX2+FMA,
//!    and AVX-VNNI where the CPU has it) and `arm` (NEON, and dotprod where the CPU has it) hold SIMD versions held
//!    equal to them by tests. The x86 kernels also add up in llama.cpp's x86 order, which for the k-quants depends
//!    on the product's shape (see `x86::VEC_DOT`): their results are llama.cpp's, bit for bit. Some products also
//!    have an 8-row kernel ([`Rows8Kernel`]) with the same sums: `x86_rows8` (Q4_K and Q6_K prompts, 8 rows
//!    interleaved into the lanes of a register), `x86_512` (the AVX-512 VNNI set), and the one-token kernels of
//!    `x86`, `x86_token` (Q4_K and Q6_K, with software prefetch) and `x86_token_legacy` (the legacy types, four
//!    rows at a time);
//! 3. rows are split across threads in contiguous ranges (the rayon pool, or a forward pass's [`Team`]), and inside
//!    a range the tokens are taken a few at a time per weight row, so that a batch (a prompt) reads each weight
//!    block once per tile rather than once per token. In a forward pass, a generated token's threads ask, once
//!    done, for the start of their share of the next product's weights ([`Next`], [`matmul_then`]).
//!
//! The instruction set is chosen at run time ([`detected`]), never by `target-cpu`; `POCKETLM_KERNELS` (read once)
//! names another available set, [`set_force_scalar`] makes [`matmul`] use the references, and [`matmul_on`] runs a
//! given set.

pub mod act;
#[cfg(target_arch = "aarch64")]
mod arm;
pub mod scalar;
mod shares;
#[cfg(target_arch = "x86_64")]
mod x86;
#[cfg(target_arch = "x86_64")]
mod x86_512;
#[cfg(target_arch = "x86_64")]
mod x86_legacy8;
#[cfg(target_arch = "x86_64")]
mod x86_token;
#[cfg(target_arch = "x86_64")]
mod x86_token_legacy;
#[cfg(target_arch = "x86_64")]
mod x86_rows8;
#[cfg(target_arch = "x86_64")]
mod x86_q8k;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_token::{prefetch_lines, prefetch_lines_l2, prefetch_weights, PREFETCH_AHEAD};
mod rows;
pub use rows::{matmul_quantized_then, matmul_rows_then, rows_fit, MAX_GROUP};
mod waiting;
pub(crate) use waiting::ask_some;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use crate::team::{range, Parallel, Pool};
#[cfg(doc)]
use crate::team::Team;

use crate::quant::GgmlType;

/// A weight matrix as it lies in a GGUF file: `rows` rows of `cols` weights, row-major, each row
/// `ty.row_size(cols)` bytes. In ggml terms `cols` is `ne[0]`, the row length, and `rows` is `ne[1]`.
#[derive(Clone, Copy, Debug)]
pub struct Weight<'a> {
    pub ty: GgmlType,
    pub data: &'a [u8],
    pub rows: usize,
    pub cols: usize,
}

/// Why a product was refused. The model loader checks [`supports`] once per tensor, so at inference these mean a
/// caller bug; they are errors rather than panics so that a bad file can never bring the app down.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KernelError {
    #[error("no matmul kernel for weight type {0}")]
    Unsupported(GgmlType),
    #[error("a row of {cols} weights is not a whole number of {ty} blocks")]
    PartialBlock { ty: GgmlType, cols: usize },
    #[error("{what}: expected {expected}, got {got}")]
    Length { what: &'static str, expected: usize, got: usize },
    #[error("{0} kernels cannot run on this CPU")]
    IsaUnavailable(&'static str),
}

/// The activation type llama.cpp pairs with weight type `w` (its `vec_dot_type`), or None when `w` has no kernel.
/// F32, F16 and BF16 weights take f32 activations: ggml rounds them to f16/bf16 first, which only loses accuracy.
pub fn vec_dot_type(w: GgmlType) -> Option<GgmlType> {
    use GgmlType as T;
    Some(match w {
        T::F32 | T::F16 | T::BF16 => T::F32,
        T::Q4_0 | T::Q5_0 | T::Q8_0 => T::Q8_0,
        T::Q4_1 | T::Q5_1 => T::Q8_1,
        T::Q2_K | T::Q3_K | T::Q4_K | T::Q5_K | T::Q6_K => T::Q8_K,
        _ => return None,
    })
}

/// Whether [`matmul`] and [`get_row`] accept weights of type `ty`: every type PocketLM's quantizer writes.
pub fn supports(ty: GgmlType) -> bool {
    vec_dot_type(ty).is_some()
}

/// A set of kernels. Every set covers every supported type: where a SIMD set has no kernel of its own for a type it
/// uses the scalar one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Scalar,
    /// x86-64 with AVX2, FMA and F16C (every x86 CPU since 2013 that has AVX2 also has the other two).
    Avx2,
    /// [`Isa::Avx2`] with AVX-VNNI (`vpdpbusd`, Intel since Alder Lake, AMD since Zen 5): the legacy types' byte
    /// products in one instruction instead of two, and a generated token's Q4_K ones in fewer, with the same
    /// integer results.
    Avx2Vnni,
    /// [`Isa::Avx2`] with AVX-512 (F, BW, DQ, VL) and its VNNI (Intel since Ice Lake, AMD since Zen 4): the legacy
    /// types' prompts two rows to a 512-bit register; the rest as [`Isa::Avx2Vnni`] (or [`Isa::Avx2`] on a CPU
    /// without AVX-VNNI).
    Avx512Vnni,
    /// aarch64 NEON (part of the baseline: every aarch64 CPU has it).
    Neon,
    /// aarch64 NEON with the dot-product extension (`sdot`, Armv8.2+; most phones since 2018).
    NeonDotprod,
}

impl Isa {
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx2Vnni => "avx2+vnni",
            Isa::Avx512Vnni => "avx512+vnni",
            Isa::Neon => "neon",
            Isa::NeonDotprod => "neon+dotprod",
        }
    }

    /// Whether this CPU can run the set.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::available(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Vnni => x86::available() && x86::vnni_available(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => x86_512::available(),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => true,
            #[cfg(target_arch = "aarch64")]
            Isa::NeonDotprod => arm::dotprod_available(),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Every set this CPU can run, best last.
    pub fn available() -> Vec<Isa> {
        let all = [Isa::Scalar, Isa::Neon, Isa::Avx2, Isa::Avx2Vnni, Isa::Avx512Vnni, Isa::NeonDotprod];
        all.into_iter().filter(|i| i.is_available()).collect()
    }

    /// Whether the set is one of the x86-64 AVX2 ones (which also have FMA): all of them.
    pub fn is_avx2(self) -> bool {
        matches!(self, Isa::Avx2 | Isa::Avx2Vnni | Isa::Avx512Vnni)
    }
}

/// The best kernel set this CPU supports, detected once.
pub fn detected() -> Isa {
    static DETECTED: OnceLock<Isa> = OnceLock::new();
    *DETECTED.get_or_init(|| *Isa::available().last().expect("scalar is always available"))
}

static FORCE_SCALAR: AtomicBool = AtomicBool::new(false);

/// Makes [`matmul`] use the scalar references (for tests and comparisons), or the detected set again.
pub fn set_force_scalar(on: bool) {
    FORCE_SCALAR.store(on, Ordering::Relaxed);
}

/// The set [`matmul`] uses: [`detected`], unless `POCKETLM_KERNELS` named another set this CPU has (`scalar`,
/// `avx2`, `avx2+vnni`, `avx512+vnni`, `neon`, `neon+dotprod`; read when first asked) or [`set_force_scalar`] is
/// on. A name this CPU has no set for is said once on stderr, with the set used instead. On x86-64 the first call
/// also chooses where the kernels ask for weights ahead of them (`POCKETLM_PREFETCH`, see
/// `x86_token::choose_weights_hint`).
pub fn active() -> Isa {
    static ENV: OnceLock<Option<Isa>> = OnceLock::new();
    let env = *ENV.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        x86_token::choose_weights_hint();
        let name = std::env::var("POCKETLM_KERNELS").ok()?;
        named_set(&name, &Isa::available()).map_err(|e| eprintln!("pocketlm: {e}; using {}", detected().name())).ok()
    });
    if FORCE_SCALAR.load(Ordering::Relaxed) {
        Isa::Scalar
    } else {
        env.unwrap_or_else(detected)
    }
}

/// The set of `available` that `POCKETLM_KERNELS=name` asks for, or why there is none.
fn named_set(name: &str, available: &[Isa]) -> Result<Isa, String> {
    available.iter().copied().find(|i| i.name() == name).ok_or_else(|| {
        let names: Vec<&str> = available.iter().map(|i| i.name()).collect();
        format!("POCKETLM_KERNELS={name} is not a kernel set this CPU has ({})", names.join(", "))
    })
}

/// One weight row against `out.len()` activation rows that lie `act_row` bytes apart in `a`:
/// `out[t] = Σ_c w[c] · a_t[c]`. Activation rows are laid out as [`act::row_layout`] says (blocks, then f32
/// scales).
///
/// # Safety
/// The kernel's instruction set must be available (only [`kernel`] hands them out, after checking), `w` must be one
/// whole row and `a` must hold `out.len()` rows of `act_row` bytes of the paired activation type (checked by
/// [`matmul_on`]). SIMD kernels may assume `out.len() <= TOKEN_TILE`.
pub(crate) type RowKernel = unsafe fn(w: &[u8], a: &[u8], act_row: usize, out: &mut [f32]);

/// `rows` weight rows, a multiple of 8, and of 16 if the product's rows are (`w` holds them, `row_bytes` apart),
/// against `n` activation rows (`act_row` bytes apart in `a`, `n` a multiple of the kernel's [`Rows8::group`]):
/// `out[t·rows + r] = Σ_c w_r[c] · a_t[c]`. Such kernels take 8 rows at a time (side by side in the lanes of a
/// register, or two to a 512-bit one); a set uses one where it has one for the product ([`rows8_kernel`]), and the
/// tokens left over after the last whole group go to the [`RowKernel`]. The x86 one-token kernels, which loop over
/// the rows one by one, take any number of rows.
///
/// # Safety
/// As for [`RowKernel`]: the set must be available, and the slices as described (the kernel checks their lengths).
pub(crate) type Rows8Kernel =
    unsafe fn(w: &[u8], rows: usize, row_bytes: usize, a: &[u8], act_row: usize, n: usize, out: &mut [f32]);

/// An 8-row kernel and the group of tokens it takes (1: any number), and what takes the tokens after the last whole
/// group.
#[derive(Clone, Copy)]
pub(crate) struct Rows8 {
    pub run: Rows8Kernel,
    pub group: usize,
    /// A one-token kernel (`n == 1`) in the arithmetic that the row kernel gives those tokens, run once per token
    /// on the same rows; without one, the row kernel takes them.
    pub tail: Option<Rows8Kernel>,
}

/// The group of the k-quant 8-row kernels: 4 tokens, as llama.cpp's Q4_K gemm takes them (see `x86::REPACK`).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) const ROWS8_GROUP: usize = 4;

/// Tokens taken together against one weight row: the weight row is decoded once per tile.
pub(crate) const TOKEN_TILE: usize = 8;

/// A scalar reference as a [`RowKernel`]: one dot product per token.
macro_rules! scalar_kernel {
    ($f:path) => {{
        fn k(w: &[u8], a: &[u8], act_row: usize, out: &mut [f32]) {
            for (o, at) in out.iter_mut().zip(a.chunks_exact(act_row)) {
                *o = $f(w, at);
            }
        }
        k as RowKernel
    }};
}

fn scalar_kernel(ty: GgmlType) -> Option<RowKernel> {
    use GgmlType as T;
    Some(match ty {
        T::F32 => scalar_kernel!(scalar::vec_dot_f32),
        T::F16 => scalar_kernel!(scalar::vec_dot_f16_f32),
        T::BF16 => scalar_kernel!(scalar::vec_dot_bf16_f32),
        T::Q4_0 => scalar_kernel!(scalar::vec_dot_q4_0_q8_0),
        T::Q4_1 => scalar_kernel!(scalar::vec_dot_q4_1_q8_1),
        T::Q5_0 => scalar_kernel!(scalar::vec_dot_q5_0_q8_0),
        T::Q5_1 => scalar_kernel!(scalar::vec_dot_q5_1_q8_1),
        T::Q8_0 => scalar_kernel!(scalar::vec_dot_q8_0_q8_0),
        T::Q2_K => scalar_kernel!(scalar::vec_dot_q2_k_q8_k),
        T::Q3_K => scalar_kernel!(scalar::vec_dot_q3_k_q8_k),
        T::Q4_K => scalar_kernel!(scalar::vec_dot_q4_k_q8_k),
        T::Q5_K => scalar_kernel!(scalar::vec_dot_q5_k_q8_k),
        T::Q6_K => scalar_kernel!(scalar::vec_dot_q6_k_q8_k),
        _ => return None,
    })
}

/// The kernel of set `isa` for weights of type `ty` in a product of `rows` rows with `n_tokens` tokens, its SIMD one
/// where it has one. `isa` must be available.
fn kernel(isa: Isa, ty: GgmlType, rows: usize, n_tokens: usize) -> Option<RowKernel> {
    let _ = (rows, n_tokens);
    let simd = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => x86::kernel(ty, rows, n_tokens, false),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Vnni => x86::kernel(ty, rows, n_tokens, true),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => x86::kernel(ty, rows, n_tokens, x86::vnni_available()),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => arm::kernel(ty, false),
        #[cfg(target_arch = "aarch64")]
        Isa::NeonDotprod => arm::kernel(ty, true),
        _ => None,
    };
    simd.or_else(|| scalar_kernel(ty))
}

/// The 8-row kernel of set `isa` for the product, if it has one.
fn rows8_kernel(isa: Isa, ty: GgmlType, rows: usize, n_tokens: usize) -> Option<Rows8> {
    let _ = (ty, rows, n_tokens);
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => x86::rows8_kernel(ty, rows, n_tokens, false),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Vnni => x86::rows8_kernel(ty, rows, n_tokens, true),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => x86_512::rows8_kernel(ty, rows, n_tokens)
            .or_else(|| x86::rows8_kernel(ty, rows, n_tokens, x86::vnni_available())),
        _ => None,
    }
}

/// Checks a product's shapes; returns the activation type.
fn check(w: &Weight<'_>, x_len: usize, n_tokens: usize, y_len: usize) -> Result<GgmlType, KernelError> {
    let act_ty = vec_dot_type(w.ty).ok_or(KernelError::Unsupported(w.ty))?;
    let row = crate::quant::bytes_for(w.ty, w.cols).filter(|_| w.cols > 0);
    let row = row.ok_or(KernelError::PartialBlock { ty: w.ty, cols: w.cols })?;
    let len = |what, expected: Option<usize>, got| match expected {
        Some(e) if e == got => Ok(()),
        _ => Err(KernelError::Length { what, expected: expected.unwrap_or(usize::MAX), got }),
    };
    len("weight bytes (rows × row size)", w.rows.checked_mul(row), w.data.len())?;
    len("activations (tokens × cols)", n_tokens.checked_mul(w.cols), x_len)?;
    len("output (tokens × rows)", n_tokens.checked_mul(w.rows), y_len)?;
    Ok(act_ty)
}

/// `y[t·rows + r] = Σ_c W[r][c] · x[t·cols + c]` for `t < n_tokens`: `x` is `n_tokens × cols` f32 and `y`
/// `n_tokens × rows`. `x` is converted to [`vec_dot_type`] into `scratch` (kept by the caller and reused), then rows
/// are split across the current rayon pool. Uses the [`active`] kernel set.
pub fn matmul(w: &Weight<'_>, x: &[f32], n_tokens: usize, y: &mut [f32], scratch: &mut Vec<u8>) -> Result<(), KernelError> {
    matmul_on(&Pool, active(), w, x, n_tokens, y, scratch)
}

/// [`matmul`] with the rows split across the threads of `par` (a forward pass's [`Team`], or [`Pool`]) and the
/// kernel set `isa` (tests compare the sets; benchmarks time them).
pub fn matmul_on(
    par: &dyn Parallel,
    isa: Isa,
    w: &Weight<'_>,
    x: &[f32],
    n_tokens: usize,
    y: &mut [f32],
    scratch: &mut Vec<u8>,
) -> Result<(), KernelError> {
    matmul_then(par, isa, w, x, n_tokens, y, scratch, &Next::NONE)
}

/// [`matmul_on`], after which each thread asks for the first bytes of its share of `next`'s weights (see [`Next`]).
#[allow(clippy::too_many_arguments)]
pub fn matmul_then(
    par: &dyn Parallel,
    isa: Isa,
    w: &Weight<'_>,
    x: &[f32],
    n_tokens: usize,
    y: &mut [f32],
    scratch: &mut Vec<u8>,
    next: &Next,
) -> Result<(), KernelError> {
    if !isa.is_available() {
        return Err(KernelError::IsaUnavailable(isa.name()));
    }
    let act_ty = check(w, x.len(), n_tokens, y.len())?;
    if n_tokens == 0 || w.rows == 0 {
        return Ok(());
    }
    act::quantize_activations(par, isa, act_ty, x, w.cols, scratch);
    let act_row = act::row_layout(isa, act_ty, w.cols).total;
    run_one(par, Job::new(isa, w, scratch, act_row, n_tokens, y)?, next);
    Ok(())
}

/// Several products of the same input `x` at once — Q, K and V; gate and up: `ys[i] = ws[i] · x` as [`matmul`]
/// computes it, bit for bit. When the weights pair with the same activation type, `x` is converted once, and the
/// rows of every product go to the threads in one parallel region: a generated token then pays one hand-off between
/// threads per group instead of one per matrix, which for a small model is a good part of a token's time.
/// Otherwise the products run one by one.
pub fn matmul_group(
    ws: &[Weight<'_>],
    ys: &mut [&mut [f32]],
    x: &[f32],
    n_tokens: usize,
    scratch: &mut Vec<u8>,
) -> Result<(), KernelError> {
    matmul_group_then(&Pool, ws, ys, x, n_tokens, scratch, &Next::NONE)
}

/// [`matmul_group`] with the rows split across the threads of `par` (a forward pass's [`Team`]), after which each
/// thread asks for the first bytes of its share of `next`'s weights (see [`Next`]; [`Next::NONE`] asks nothing).
pub fn matmul_group_then(
    par: &dyn Parallel,
    ws: &[Weight<'_>],
    ys: &mut [&mut [f32]],
    x: &[f32],
    n_tokens: usize,
    scratch: &mut Vec<u8>,
    next: &Next,
) -> Result<(), KernelError> {
    let isa = active();
    if ws.len() != ys.len() {
        return Err(KernelError::Length { what: "outputs (one per weight)", expected: ws.len(), got: ys.len() });
    }
    let mut act_ty = None;
    let mut shared = true;
    for (w, y) in ws.iter().zip(ys.iter()) {
        let t = check(w, x.len(), n_tokens, y.len())?;
        shared &= act_ty.is_none_or(|a| a == t) && w.cols == ws[0].cols;
        act_ty = Some(t);
    }
    let Some(act_ty) = act_ty.filter(|_| shared && isa.is_available()) else {
        let none = Next::NONE;
        for (i, (w, y)) in ws.iter().zip(ys.iter_mut()).enumerate() {
            let last = i + 1 == ws.len();
            matmul_then(par, isa, w, x, n_tokens, y, scratch, if last { next } else { &none })?;
        }
        return Ok(());
    };
    if n_tokens == 0 {
        return Ok(());
    }
    act::quantize_activations(par, isa, act_ty, x, ws[0].cols, scratch);
    let act_row = act::row_layout(isa, act_ty, ws[0].cols).total;
    let jobs = Job::all(isa, ws, ys, scratch, act_row, n_tokens)?;
    run_pieces(par, &jobs, &pieces(par, ws, n_tokens, |j| jobs[j].k8.is_some()), next);
    Ok(())
}

/// Pieces of products, `(product, first row, end row)`, or `None` for all on the calling thread ([`pieces`]).
type Pieces = Option<Vec<(usize, usize, usize)>>;

/// The pieces that the products `ws` (of the same input) are cut into, in order: `(product, first row, end row)`,
/// each product cut into row ranges ([`ranges`]), all in one parallel region; `by_8(j)`: whether product j has an
/// 8-row kernel ([`rows_per_piece`]). A generated token's group is cut into the threads' shares of equal bytes
/// instead ([`shares::even_shares`]). `None` when they run on the calling thread, all in one piece each.
fn pieces(par: &dyn Parallel, ws: &[Weight<'_>], n_tokens: usize, by_8: impl Fn(usize) -> bool) -> Pieces {
    let serial = runs_serially(par, ws.iter().map(|w| w.rows.saturating_mul(w.cols).saturating_mul(n_tokens)).sum());
    let bytes: usize = ws.iter().map(|w| w.data.len()).sum();
    if n_tokens == 1 && !serial && ws.len() > 1 {
        // A generated token's group: shares of equal bytes across the products (see `shares`).
        let unit = |j: usize| row_unit(ws[j].rows, by_8(j));
        let per_thread = ranges_per_thread(1, bytes, par.threads());
        if let Some(p) = shares::even_shares(ws, unit, par.threads(), per_thread).filter(|p| p.len() > 1) {
            return Some(p);
        }
    }
    let mut pieces = Vec::new();
    for (j, w) in ws.iter().enumerate().filter(|(_, w)| w.rows > 0) {
        let per = rows_per_piece(ranges(par, serial, w.data.len(), bytes, n_tokens), w.rows, by_8(j));
        pieces.extend((0..w.rows.div_ceil(per)).map(|i| (j, i * per, ((i + 1) * per).min(w.rows))));
    }
    (!serial && pieces.len() > 1).then_some(pieces)
}

/// Runs one product's job, cut as [`pieces`] cuts it, then asks for `next` (see [`run_pieces`]).
fn run_one(par: &dyn Parallel, job: Job<'_>, next: &Next) {
    let by_8 = job.k8.is_some();
    let cut = pieces(par, std::slice::from_ref(job.w), job.n_tokens, |_| by_8);
    run_pieces(par, &[job], &cut, next);
}

/// Runs `jobs` cut into `pieces` on the threads of `par` (or all on this one); the thread that runs the last piece
/// of each thread's range then asks for the start of that thread's share of `next`.
fn run_pieces(par: &dyn Parallel, jobs: &[Job<'_>], pieces: &Pieces, next: &Next) {
    let Some(pieces) = pieces else {
        jobs.iter().filter(|j| j.w.rows > 0).for_each(|j| j.run(0, j.w.rows));
        next.ask(0);
        return;
    };
    let (n, t) = (pieces.len(), par.threads());
    par.for_each(n, &|p| {
        let (j, r0, r1) = pieces[p];
        jobs[j].run(r0, r1);
        // Piece p is the last of range r when range r ends right after it (the team's ranges).
        if let Some(r) = (0..t).find(|&r| range(r, t, n).1 == p + 1) {
            next.ask(r);
        }
    });
}

/// Where each thread's share of the weights of a forward pass's next product starts, so that a thread that has run
/// its share of one product asks for the first bytes of its share of the next: a generated token is a chain of
/// small products (SmolLM2-135M: 120 of 0.2–1.2 MB, and its 30 MB output), and at the end of each the threads
/// used to wait for one another with nothing in flight, then each for the first bytes of its next range. On AMD
/// Zen 5, 2 threads, with and without in turn every 8 tokens in one process: SmolLM2-135M Q4_K_M tokens took
/// 0.94–1.01 as long with it, 0.985 in the middle (9 series of 512 tokens each way); the 1B-shaped file's, whose
/// products are larger, as long (0.997–1.000, 3 series). Asking before the last piece of a range rather than
/// after it, or for 16 or 32 KB rather than 8, was no faster; a thread that then waits asks for more of its share a
/// little at a time ([`waiting`]). A hint only: asking changes no result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Next {
    /// Per range of the team (the caller's first), the addresses of its first weight byte and of the end of its
    /// first piece. A prefetch never faults, so they are kept as plain numbers and are never read through.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    starts: Vec<(usize, usize)>,
}

impl Next {
    /// Nothing to ask for.
    pub const NONE: Next = Next { starts: Vec::new() };

    /// For a generated token's product of `ws` (one weight, or a group of the same input) on `par`: where each of
    /// the team's ranges of its pieces starts, cut as [`matmul_then`] and [`matmul_group_then`] cut them for one
    /// token (a group whose products pair with different activation types runs them one by one, cut otherwise; and
    /// the rayon pool hands out pieces its own way: there the hint misses, at no other cost).
    pub fn of(par: &dyn Parallel, ws: &[Weight<'_>]) -> Next {
        let at = |w: &Weight<'_>, r: usize| w.data.as_ptr() as usize + r * (w.data.len() / w.rows.max(1));
        let isa = active();
        let starts = match pieces(par, ws, 1, |j| rows8_kernel(isa, ws[j].ty, ws[j].rows, 1).is_some()) {
            Some(p) => {
                let (n, t) = (p.len(), par.threads());
                let first = |r| p[range(r, t, n).0.min(n - 1)];
                (0..t).map(first).map(|(j, r0, r1)| (at(&ws[j], r0), at(&ws[j], r1))).collect()
            }
            None => ws.iter().find(|w| w.rows > 0).map(|w| (at(w, 0), at(w, w.rows))).into_iter().collect(),
        };
        Next { starts }
    }

    /// Asks for the first `x86_token::ahead()` bytes of range `r`'s share, as much as a kernel asks for ahead of
    /// the block in hand (none on other CPUs, whose kernels do not prefetch either), and leaves more of it to ask
    /// for while this thread waits ([`waiting`]). Nothing to ask for leaves nothing. (On AMD Zen 3, where the
    /// kernels ask 2 KB ahead, asking 8 KB here was a little slower: two threads, the 1B-shaped Q4_K_M file 41.0–41.2
    /// against 41.6–41.8 tok/s, SmolLM2-135M on one thread 127.7–128.5 against 129.5–129.7, runs in turn.)
    fn ask(&self, r: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            let (from, end) = self.starts.get(r).copied().unwrap_or((0, 0));
            let first = x86_token::ahead().min(end.saturating_sub(from));
            prefetch_weights(from as *const u8, first);
            waiting::ask_later(from + first, end.min(from.saturating_add(waiting::WHILE_WAITING)));
        }
        let _ = r;
    }
}

/// Whether `work` multiply-adds stay on the calling thread: too few to pay for a hand-off, or no other thread.
fn runs_serially(par: &dyn Parallel, work: usize) -> bool {
    work < SERIAL_MAX_MACS || par.threads() == 1
}

/// How many contiguous ranges a product of `bytes` gets in a parallel region of `total` bytes: 1 when serial; else
/// [`ranges_per_thread`] per thread in all, so that a thread slowed by something else does not hold the rest up
/// (the others take its ranges). A group's products share them out by bytes: the threads take the pieces in
/// contiguous runs, so equal pieces make equal runs (SmolLM2-135M's Q, K and V, 228, 76 and 117 KB, cut 8 + 8 + 8,
/// gave one thread Q and half of K and the other the rest; by bytes they are cut 5 + 2 + 3).
fn ranges(par: &dyn Parallel, serial: bool, bytes: usize, total: usize, n_tokens: usize) -> usize {
    if serial {
        1
    } else {
        (ranges_per_thread(n_tokens, total, par.threads()) * par.threads() * bytes).div_ceil(total.max(1))
    }
}

/// Ranges per thread in a parallel region of `total` bytes: four for a batch of tokens; for one token (a generated
/// one, whose rows stream from memory) as many as make ranges of [`TOKEN_RANGE_MIN_BYTES`] or more, from one to
/// eight.
fn ranges_per_thread(n_tokens: usize, total: usize, threads: usize) -> usize {
    if n_tokens == 1 {
        (total / (TOKEN_RANGE_MIN_BYTES * threads.max(1))).clamp(1, 8)
    } else {
        4
    }
}

/// The least bytes a generated token's range of rows is cut to (but one range per thread): each range is a stream
/// that the prefetchers must find anew, and more ranges than threads are there to even the threads out.
/// SmolLM2-135M Q4_K_M then takes one range per thread for Q, K and V, the attention output and down, two for gate
/// and up (304 KB) and eight for the output; the 1B-shaped file four for the attention output, seven for Q, K and
/// V, eight for the rest. Measured on AMD Zen 4, 2 threads, the ways in alternation token by token in one process
/// (series of 256 or 64 tokens, with each way in the first turn in half of them):
/// - SmolLM2 against four ranges per thread throughout (with four streams from 1 MB only): 1–5% less time, about
///   4% in the middle (1.01–1.05, and 0.95–0.99 the other way round). Of that, two ranges per thread everywhere
///   gave 3.5% (1.03–1.04 and 0.96–0.97), one for the small products 0.3–2.6% more (0.97–1.00 and 1.01–1.02).
///   One range per thread everywhere was faster by 2–3% still, but leaves nothing to even out a thread slowed
///   down (by another program, or a slower core of a phone or a hybrid laptop).
/// - The 1B-shaped file, whose threads' speeds differed by up to a fifth in some runs here (the two cores of a
///   virtual machine), needs the ranges to even them out: two per thread instead of four took 1–8% more time, and
///   eight instead of four about 1.3% less (12 series: 0.96–1.00, and 0.99–1.04 the other way round; 9 of the 12
///   in favour of eight). SmolLM2 ran as fast with its output in eight ranges per thread as in four (0.99–1.02).
const TOKEN_RANGE_MIN_BYTES: usize = 256 << 10;

/// Rows per contiguous range when a product of `rows` (> 0) rows is cut into `ranges` (at least one row each), a
/// whole number of [`row_unit`]s.
fn rows_per_piece(ranges: usize, rows: usize, by_8: bool) -> usize {
    rows.div_ceil(ranges.clamp(1, rows)).next_multiple_of(row_unit(rows, by_8))
}

/// The rows a piece of a product with `rows` rows is a whole number of: 1, or with `by_8` (an 8-row kernel runs)
/// 16 when `rows` is a multiple of 16 and 8 otherwise (see [`Rows8Kernel`]).
fn row_unit(rows: usize, by_8: bool) -> usize {
    match by_8 {
        true if rows.is_multiple_of(16) => 16,
        true => 8,
        false => 1,
    }
}

/// Products with fewer multiply-adds than this run on the calling thread (≈ 20 µs of work).
const SERIAL_MAX_MACS: usize = 64 * 1024;

/// Rows of weights visited per pass over a token tile: their bytes stay in L1 while every tile of tokens passes.
const ROW_BLOCK: usize = 16;

/// Bytes of activations (a chunk of tokens) that one pass over a row range reads: small enough to stay in L2 while
/// the range's rows go by, so that a long prompt's activations are not fetched from L3 or memory once per row block.
/// The weights are then read once per chunk instead of once in all, which costs far less (they stream in order).
const ACT_CHUNK_BYTES: usize = 128 * 1024;

/// Rows per call of an 8-row kernel (a multiple of 16, see [`Rows8Kernel`]): the legacy types' kernels reuse each
/// tile of tokens for all of them while it is in L1.
const ROWS8_BLOCK: usize = 32;

/// The same for the 8-row kernels, which interleave 8 rows once per chunk: the activations then stream from L3 as
/// each 8 rows go by, which the prefetchers keep up with, and the interleaving is shared by hundreds of tokens.
const ROWS8_ACT_CHUNK_BYTES: usize = 4 << 20;

/// The output pointer, shared by the threads of one product. Each writes only its own rows' elements.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: the pointer is only written through `Job::run`, at indices `t·rows + r` for the rows `r` of the caller's
// own range; ranges are disjoint, so no two threads touch the same element, and `matmul_on` holds the `&mut`
// borrow of `y` until every thread has finished.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

struct Job<'a> {
    k: RowKernel,
    /// The 8-row kernel, if the product has one: then `w.rows` is a multiple of 8 and so is every range's start.
    k8: Option<Rows8>,
    w: &'a Weight<'a>,
    acts: &'a [u8],
    act_row: usize,
    n_tokens: usize,
    y: OutPtr,
}

impl<'a> Job<'a> {
    /// The product of `w` with `n_tokens` rows of activations `acts` (`act_row` bytes each), into `y`, on the
    /// kernels of `isa`.
    fn new(
        isa: Isa,
        w: &'a Weight<'a>,
        acts: &'a [u8],
        act_row: usize,
        n_tokens: usize,
        y: &mut [f32],
    ) -> Result<Self, KernelError> {
        let k = kernel(isa, w.ty, w.rows, n_tokens).ok_or(KernelError::Unsupported(w.ty))?;
        let k8 = rows8_kernel(isa, w.ty, w.rows, n_tokens);
        Ok(Job { k, k8, w, acts, act_row, n_tokens, y: OutPtr(y.as_mut_ptr()) })
    }

    /// [`Job::new`] for each product of a group of the same activations, `ws[i]` into `ys[i]`.
    fn all(
        isa: Isa,
        ws: &'a [Weight<'a>],
        ys: &mut [&mut [f32]],
        acts: &'a [u8],
        act_row: usize,
        n_tokens: usize,
    ) -> Result<Vec<Self>, KernelError> {
        ws.iter().zip(ys.iter_mut()).map(|(w, y)| Job::new(isa, w, acts, act_row, n_tokens, y)).collect()
    }

    /// Rows `r0..r1` for every token.
    fn run(&self, r0: usize, r1: usize) {
        let row_bytes = self.w.data.len() / self.w.rows;
        // One token's rows stream from memory.
        #[cfg(target_arch = "x86_64")]
        if self.n_tokens == 1 {
            x86_token::prefetch_start(self.w.data[r0 * row_bytes..].as_ptr(), (r1 - r0) * row_bytes);
        }
        let mut out = [0.0f32; TOKEN_TILE];
        // A whole number of tiles per chunk, so that tiles start at the same tokens however the chunks fall.
        // With the 8-row kernel, much larger: each chunk interleaves the rows anew.
        let chunk_bytes = if self.k8.is_some() { ROWS8_ACT_CHUNK_BYTES } else { ACT_CHUNK_BYTES };
        let chunk = (chunk_bytes / self.act_row).max(TOKEN_TILE) / TOKEN_TILE * TOKEN_TILE;
        let mut out8 = Vec::new();
        for c0 in (0..self.n_tokens).step_by(chunk) {
            let c1 = (c0 + chunk).min(self.n_tokens);
            if let Some(k8) = self.k8 {
                self.run_rows8(k8, r0, r1, c0, c1, row_bytes, &mut out8, &mut out);
                continue;
            }
            for b0 in (r0..r1).step_by(ROW_BLOCK) {
                self.run_block(b0, (b0 + ROW_BLOCK).min(r1), c0, c1, row_bytes, &mut out);
            }
        }
    }

    /// Rows `r0..r1` (a multiple of 8 of them) for tokens `c0..c1` with the 8-row kernel, [`ROWS8_BLOCK`] rows per
    /// call; the tokens after the last whole group (only in the last chunk, as chunks hold whole tiles) with its
    /// one-token kernel, one by one, or else the row kernel.
    #[allow(clippy::too_many_arguments)]
    fn run_rows8(
        &self,
        k8: Rows8,
        r0: usize,
        r1: usize,
        c0: usize,
        c1: usize,
        row_bytes: usize,
        out8: &mut Vec<f32>,
        out: &mut [f32; TOKEN_TILE],
    ) {
        let grouped = (c1 - c0) / k8.group * k8.group;
        let a = &self.acts[c0 * self.act_row..(c0 + grouped) * self.act_row];
        // One token: the whole range in one call (there is no tile of tokens to keep in L1 for a block of rows).
        let block = if self.n_tokens == 1 { (r1 - r0).max(1) } else { ROWS8_BLOCK };
        for g in (r0..r1).step_by(block) {
            let nr = block.min(r1 - g);
            let w = &self.w.data[g * row_bytes..(g + nr) * row_bytes];
            if grouped > 0 {
                out8.resize(nr * grouped, 0.0);
                // SAFETY: `rows8_kernel` handed out `k8` for an available set; `w` is `nr` (a multiple of 8, and of
                // 16 if `rows` is) whole rows, `a` holds `grouped` (a multiple of the group) activation rows of the
                // paired type.
                unsafe { (k8.run)(w, nr, row_bytes, a, self.act_row, grouped, out8) };
                // Each token's `nr` outputs are contiguous in `y` too: one copy each (element by element, this
                // took 4–6% of a SmolLM2 prompt).
                for (t, o) in out8.chunks_exact(nr).enumerate() {
                    // SAFETY: as in `run_block`: rows g..g + nr of token c0 + t are inside `y` and in this range
                    // only; `out8` is this thread's own buffer, so the two do not overlap.
                    unsafe { std::ptr::copy_nonoverlapping(o.as_ptr(), self.y.0.add((c0 + t) * self.w.rows + g), nr) };
                }
            }
            if c0 + grouped == c1 {
                continue;
            }
            let Some(tail) = k8.tail else {
                self.run_block(g, g + nr, c0 + grouped, c1, row_bytes, out);
                continue;
            };
            out8.resize(out8.len().max(nr), 0.0);
            for t in c0 + grouped..c1 {
                let a = &self.acts[t * self.act_row..][..self.act_row];
                // SAFETY: `rows8_kernel` handed out `tail` for an available set, for rows like these (`nr` whole
                // rows, a multiple of 8); `a` is one activation row of the paired type.
                unsafe { tail(w, nr, row_bytes, a, self.act_row, 1, out8) };
                // SAFETY: as above: rows g..g + nr of token t are inside `y` and in this range only.
                unsafe { std::ptr::copy_nonoverlapping(out8.as_ptr(), self.y.0.add(t * self.w.rows + g), nr) };
            }
        }
    }

    /// Rows `b0..b1` for tokens `c0..c1`, a tile of tokens at a time.
    fn run_block(&self, b0: usize, b1: usize, c0: usize, c1: usize, row_bytes: usize, out: &mut [f32; TOKEN_TILE]) {
        for t0 in (c0..c1).step_by(TOKEN_TILE) {
            let nt = TOKEN_TILE.min(c1 - t0);
            let a = &self.acts[t0 * self.act_row..(t0 + nt) * self.act_row];
            for r in b0..b1 {
                let wr = &self.w.data[r * row_bytes..(r + 1) * row_bytes];
                // SAFETY: `kernel` handed out `k` for an available set; `wr` is one whole row and `a` holds `nt`
                // activation rows of the paired type (both sized by `check`); nt ≤ TOKEN_TILE.
                unsafe { (self.k)(wr, a, self.act_row, &mut out[..nt]) };
                for (i, &v) in out[..nt].iter().enumerate() {
                    // SAFETY: r < rows and t0 + i < n_tokens, so the index is inside `y` (checked to be
                    // n_tokens × rows long); row r belongs to this range only (see `OutPtr`).
                    unsafe { *self.y.0.add((t0 + i) * self.w.rows + r) = v };
                }
            }
        }
    }
}

/// Dequantizes row `r` of `w` into `out` (`w.cols` values): the embedding lookup.
pub fn get_row(w: &Weight<'_>, r: usize, out: &mut [f32]) -> Result<(), KernelError> {
    check(w, 0, 0, 0)?;
    if r >= w.rows {
        return Err(KernelError::Length { what: "row index (rows)", expected: w.rows, got: r });
    }
    if out.len() != w.cols {
        return Err(KernelError::Length { what: "row output (cols)", expected: w.cols, got: out.len() });
    }
    let row = w.data.len() / w.rows;
    let codec = w.ty.codec().ok_or(KernelError::Unsupported(w.ty))?;
    (codec.dequantize)(&w.data[r * row..(r + 1) * row], out);
    Ok(())
}

#[cfg(test)]
mod tests;
