#!/usr/bin/env bash
# Benchmark (not a test): a BF16 Llama-3.2-1B-shaped checkpoint → Q4_K_M on 2 threads, PocketLM's one streaming pass
# against llama.cpp's two steps (convert_hf_to_gguf.py --outtype bf16, then llama-quantize) and against its quantize
# step alone, with wall time and peak RSS of each, in one run.
#
#   scripts/bench-quantize-model.sh [SHAPE]        # SHAPE: llama-3.2-1b (default), llama-3.2-3b, smollm2-135m
#
# Reference: llama.cpp from PyPI llama-cpp-python 0.3.36 (its sdist carries convert_hf_to_gguf.py; the installed
# package gives llama_model_quantize). Needs ~8 GB free disk for the 1B shape. Random weights: speed and size do not
# depend on the values.
set -euo pipefail
cd "$(dirname "$0")/.."
shape=${1:-llama-3.2-1b}
work=${POCKETLM_BENCH_DIR:-models/bench}
mkdir -p "$work"
scripts/fetch-test-tokenizers.sh >/dev/null
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
cargo build -q --release -p pocketlm-cli
cargo build -q --release -p pocketlm --example random_checkpoint
ckpt="$work/$shape"
[ -f "$ckpt/model.safetensors" ] || target/release/examples/random_checkpoint "$shape" models/tokenizers/llama3 "$ckpt"

measure() { # label, command...: prints "label  seconds  peak-RSS"
  local label=$1; shift
  local log; log=$(mktemp)
  /usr/bin/time -f "%e %M" -o "$log" "$@" >/dev/null 2>&1 || { echo "$label failed" >&2; cat "$log" >&2; return 1; }
  read -r secs kb < "$log"; rm -f "$log"
  printf '%-40s %8.1f s %9.0f MiB\n' "$label" "$secs" "$((kb / 1024))"
}

echo "$shape BF16 → Q4_K_M, 2 threads"
RAYON_NUM_THREADS=2 measure "pocketlm quantize (one pass)" target/release/pocketlm quantize "$ckpt" "$work/$shape-pocketlm-Q4_K_M.gguf"

if python3 -c "import llama_cpp, gguf, torch, transformers" 2>/dev/null; then
  sdist=${LLAMA_CPP_SDIST:-$work/llama_cpp_python-0.3.36}
  if [ ! -f "$sdist/vendor/llama.cpp/convert_hf_to_gguf.py" ]; then
    python3 -m pip download -q --no-deps --no-binary llama-cpp-python llama-cpp-python==0.3.36 -d "$work"
    tar xzf "$work/llama_cpp_python-0.3.36.tar.gz" -C "$work"
  fi
  cat > "$work/llama_quantize.py" <<'PY'
import ctypes, sys, llama_cpp
p = llama_cpp.llama_model_quantize_default_params()
p.ftype, p.nthread = 15, 2
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(p)))
PY
  measure "llama.cpp convert (bf16)" python3 "$sdist/vendor/llama.cpp/convert_hf_to_gguf.py" "$ckpt" --outtype bf16 --outfile "$work/$shape-bf16.gguf"
  measure "llama.cpp quantize (Q4_K_M)" python3 "$work/llama_quantize.py" "$work/$shape-bf16.gguf" "$work/$shape-llama-Q4_K_M.gguf"
  if cmp -s "$work/$shape-pocketlm-Q4_K_M.gguf" "$work/$shape-llama-Q4_K_M.gguf"; then
    echo "outputs: byte-identical"
  else
    echo "outputs: DIFFER"
  fi
else
  echo "(llama.cpp columns need PyPI llama-cpp-python==0.3.36, gguf, torch, transformers)"
fi
