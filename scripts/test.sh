#!/usr/bin/env bash
# The whole test suite: lint, every Rust test (unit, golden, conformance on the real demo model), the UI's component
# tests and its tests in a real Chromium, the real app end to end under Xvfb, a short fuzz run of the GGUF reader,
# and the engine's tests on aarch64 under qemu when the shared cross script is present.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/fetch-demo-model.sh
scripts/fetch-test-tokenizers.sh
scripts/fetch-llamacpp-vocabs.sh
export POCKETLM_DEMO_MODEL="$PWD/models/SmolLM2-135M-Instruct.Q4_1.gguf"
export POCKETLM_TOKENIZERS="$PWD/models/tokenizers"
export POCKETLM_LLAMACPP_VOCABS="$PWD/models/llamacpp-vocabs"
echo "== npm packages and the UI build (the app embeds ui/dist)"
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
echo "== clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== tests"
cargo test --workspace
echo "== UI: component tests and Chromium with mocked IPC"
scripts/test-ui.sh
echo "== the real app end to end (tauri-driver, WebKitWebDriver, Xvfb)"
scripts/test-app.sh
echo "== fuzz (GGUF reader)"
scripts/fuzz.sh "${POCKETLM_FUZZ_SECONDS:-30}"
cross=../shared/scripts/arm64-cross.sh
if [ -f "$cross" ] && [ "${POCKETLM_SKIP_ARM64:-0}" != 1 ]; then
  echo "== aarch64 (qemu, Debian rustc-web)"
  # The engine's unit tests, the bit-exactness goldens, and the tiny models through the ARM kernels (logits vs
  # transformers, every weight type); the heavy whole-model tests run natively above.
  bash "$cross" -p pocketlm --lib --test quant_golden --test gguf_conformance --test model_logits --test model_types
  # The same kernel tests on a core without dotprod (the plain NEON path phones without it take).
  QEMU_CPU=cortex-a53 bash "$cross" -p pocketlm --lib kernels
fi
