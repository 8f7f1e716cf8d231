//! The paper's pipeline at Llama 3.2 1B's shape: a BF16 checkpoint (random weights, the real Llama 3 tokenizer,
//! `llama3` rope scaling, tied embeddings) → Q4_K_M in one streaming pass must write the same file as llama.cpp's
//! two steps (`convert_hf_to_gguf.py --outtype bf16`, then `llama-quantize`), with exactly 799,862,912 bytes of
//! tensor data. Golden: `golden/quantize/llama-3.2-1b-random.json` (`scripts/make_quantize_goldens.py`, named there).
//!
//! Needs the Llama 3 tokenizer (`scripts/fetch-test-tokenizers.sh`, found through `POCKETLM_TOKENIZERS`, which
//! `scripts/test.sh` sets) and ~3.5 GB of temporary disk; skipped without the tokenizer.

#[path = "support/random_checkpoint.rs"]
mod random_checkpoint;

use std::io::Read;
use std::path::{Path, PathBuf};

use pocketlm::gguf::GgufFile;
use pocketlm::quantize::{quantize_model, CancelToken, QuantizeOptions};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

fn sha256_file(path: &Path) -> String {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    format!("{:x}", h.finalize())
}

#[test]
fn llama_3_2_1b_shape_q4_k_m_equals_llama_cpp() {
    let Some(tokenizers) = std::env::var_os("POCKETLM_TOKENIZERS").map(PathBuf::from) else {
        eprintln!("skipped: POCKETLM_TOKENIZERS not set (scripts/fetch-test-tokenizers.sh)");
        return;
    };
    let golden_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/quantize/llama-3.2-1b-random.json");
    let golden: Json = serde_json::from_str(&std::fs::read_to_string(golden_path).unwrap()).unwrap();
    let g = &golden["presets"]["Q4_K_M"];

    let dir = std::env::temp_dir().join(format!("pocketlm-1b-{}", std::process::id()));
    let ckpt = dir.join("llama-3.2-1b");
    let shape = random_checkpoint::shape("llama-3.2-1b").unwrap();
    random_checkpoint::write_checkpoint(&shape, &tokenizers.join("llama3"), &ckpt).unwrap();
    let out = dir.join("llama-3.2-1b-Q4_K_M.gguf");
    let report = quantize_model(&ckpt, &out, &QuantizeOptions::default(), &mut |_| {}, &CancelToken::new()).unwrap();

    let data: u64 = GgufFile::open(&out).unwrap().tensors().iter().map(|t| t.n_bytes).sum();
    assert_eq!(data, 799_862_912, "Q4_K_M tensor data of the 1B shape");
    assert_eq!(report.output_bytes, g["size"].as_u64().unwrap());
    let same = sha256_file(&out) == g["sha256"].as_str().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(same, "the file differs from llama.cpp's (convert + quantize)");
    // Against the BF16 weights on disk, as the paper measures it (5.98 → 1.87 GiB for 3B; here 2.30 → 0.75 GiB).
    assert!((report.reduction_percent() - -67.3).abs() < 1.0, "reduction {:.2}%", report.reduction_percent());
}
