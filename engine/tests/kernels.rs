//! Kernels on real weights: every 2-D tensor type of the demo model (SmolLM2-135M-Instruct Q4_1: Q4_1 layers and a
//! Q8_0 token embedding), through the public API the model uses. The active kernel set must equal the scalar one,
//! and both must equal an f64 dot product of the dequantized weights and activations; `get_row` must equal the
//! tensor's dequantization. (Random data for every type and length is covered by the lib tests in
//! `kernels/tests.rs`, which also run on aarch64 under qemu.)

#[path = "support/demo.rs"]
mod demo;

use pocketlm::gguf::GgufFile;
use pocketlm::kernels::{act, active, get_row, matmul, matmul_on, supports, vec_dot_type, Isa, Weight};
use pocketlm::team::Pool;
use pocketlm::quant::dequantize;

/// Hidden-state-like activations: mostly small, one outlier per token.
fn activations(n_tokens: usize, cols: usize) -> Vec<f32> {
    (0..n_tokens * cols)
        .map(|i| if i % cols == (i / cols * 97) % cols { 12.0 } else { ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.8 })
        .collect()
}

#[test]
fn real_tensors_match_the_dequantized_product() {
    let Some(path) = demo::demo_model() else { return };
    let file = GgufFile::open(&path).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for t in file.tensors().iter().filter(|t| t.dims.len() == 2) {
        // One tensor per type, at most 64 rows of it (the output check is O(rows × cols) in f64 per token).
        if !seen.insert(t.ty) {
            continue;
        }
        assert!(supports(t.ty), "{}: {} has no kernel", t.name, t.ty);
        let (cols, rows) = (t.dims[0] as usize, (t.n_rows() as usize).min(64));
        let row_bytes = t.n_bytes as usize / t.n_rows() as usize;
        let data = &file.tensor_data(t)[..rows * row_bytes];
        let w = Weight { ty: t.ty, data, rows, cols };
        let n_tokens = 5;
        let x = activations(n_tokens, cols);

        let mut y = vec![0f32; rows * n_tokens];
        let mut scratch = Vec::new();
        matmul(&w, &x, n_tokens, &mut y, &mut scratch).unwrap();
        let mut y_scalar = vec![0f32; rows * n_tokens];
        matmul_on(&Pool, Isa::Scalar, &w, &x, n_tokens, &mut y_scalar, &mut Vec::new()).unwrap();

        let mut wd = vec![0f32; rows * cols];
        dequantize(t.ty, data, &mut wd).unwrap();
        let act_ty = vec_dot_type(t.ty).unwrap();
        let layout = act::row_layout(active(), act_ty, cols);
        for tok in 0..n_tokens {
            let mut xd = vec![0f32; cols];
            let row = &scratch[tok * layout.total..][..layout.blocks];
            dequantize(act_ty, row, &mut xd).unwrap();
            let amag: f64 = xd.iter().map(|v| v.abs() as f64).sum();
            for r in 0..rows {
                let wr = &wd[r * cols..(r + 1) * cols];
                let want: f64 = wr.iter().zip(&xd).map(|(&a, &b)| a as f64 * b as f64).sum();
                let wmax = wr.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
                // f32 accumulation, plus for Q8_1 the f16 rounding of the block sums that meet the minimums.
                let bound = wmax * amag * if act_ty == pocketlm::quant::GgmlType::Q8_1 { 1e-3 } else { 2e-5 };
                let (got, got_s) = (y[tok * rows + r] as f64, y_scalar[tok * rows + r] as f64);
                assert!((got - want).abs() <= bound, "{} ({}) row {r} token {tok}: {got} vs {want}", t.name, t.ty);
                assert!((got_s - want).abs() <= bound, "{} scalar row {r} token {tok}: {got_s} vs {want}", t.name);
                assert!((got - got_s).abs() <= 2e-5 * wmax * amag, "{} {} vs scalar", t.name, active().name());
            }
        }

        let mut out = vec![0f32; cols];
        get_row(&w, rows - 1, &mut out).unwrap();
        assert_eq!(out, wd[(rows - 1) * cols..], "{}: get_row", t.name);
    }
    eprintln!("checked types {seen:?} with the {} kernels", active().name());
    assert!(seen.len() >= 2, "expected Q4_1 layers and a Q8_0 embedding, saw {seen:?}");
}
