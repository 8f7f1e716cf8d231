#!/usr/bin/env bash
# Benchmark (not a test): prompt processing (pp512) and generation (tg128) on the same GGUF files, 2 threads,
# PocketLM's engine and llama.cpp side by side in one run, with the generation bound from measured bandwidth.
#
#   scripts/bench-chat.sh [MODEL.gguf ...]
#
# Default models: SmolLM2-135M-Instruct Q4_K_M (the demo model quantized by `pocketlm quantize`, which is
# byte-identical to llama-quantize) and a Llama-3.2-1B-shaped Q4_K_M (random weights, made as in
# scripts/bench-quantize-model.sh). Reference: llama.cpp from PyPI llama-cpp-python 0.3.36, driven by
# scripts/bench_chat_llamacpp.py; without it only our figures are printed.
# Environment: PP (512), TG (128), THREADS (2), REPS (3: repetitions, ours and llama.cpp's in turn; the means).
set -euo pipefail
cd "$(dirname "$0")/.."
pp=${PP:-512} tg=${TG:-128} threads=${THREADS:-2} reps=${REPS:-3}
cargo build -q --release -p pocketlm-cli
work=${POCKETLM_BENCH_DIR:-models/bench}
mkdir -p "$work"

models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  scripts/fetch-demo-model.sh >/dev/null
  smol="$work/SmolLM2-135M-Instruct-Q4_K_M.gguf"
  [ -f "$smol" ] || target/release/pocketlm quantize models/SmolLM2-135M-Instruct.Q4_1.gguf "$smol" --preset Q4_K_M >/dev/null
  models+=("$smol")
  one_b="$work/llama-3.2-1b-pocketlm-Q4_K_M.gguf"
  if [ ! -f "$one_b" ]; then
    scripts/fetch-test-tokenizers.sh >/dev/null
    cargo build -q --release -p pocketlm --example random_checkpoint
    [ -f "$work/llama-3.2-1b/model.safetensors" ] ||
      target/release/examples/random_checkpoint llama-3.2-1b models/tokenizers/llama3 "$work/llama-3.2-1b"
    target/release/pocketlm quantize "$work/llama-3.2-1b" "$one_b" >/dev/null
  fi
  models+=("$one_b")
fi

have_ref=0
python3 -c "import llama_cpp" 2>/dev/null && have_ref=1
printf '%-44s %-6s %12s %12s %8s\n' model test pocketlm llama.cpp ratio
for m in "${models[@]}"; do
  # One repetition of each side in turn, so that a slow spell of this shared machine falls on both.
  ours=() refs=()
  for _ in $(seq "$reps"); do
    ours+=("$(target/release/pocketlm bench "$m" -p "$pp" -n "$tg" -t "$threads" -r 1 --json)")
    [ $have_ref = 1 ] && refs+=("$(python3 scripts/bench_chat_llamacpp.py "$m" -p "$pp" -n "$tg" -t "$threads" -r 1 2>/dev/null)")
  done
  ours_json="[$(IFS=,; echo "${ours[*]}")]" refs_json="[$(IFS=,; echo "${refs[*]-}")]"
  python3 - "$m" "$ours_json" "$refs_json" <<'PY'
import json, os, statistics, sys
name = os.path.basename(sys.argv[1])
runs, refs = json.loads(sys.argv[2]), json.loads(sys.argv[3])
def means(runs):
    by_test = {}
    for run in runs:
        for r in run["results"]:
            by_test.setdefault(r["test"], []).append(r["avg_ts"])
    return {t: statistics.mean(v) for t, v in by_test.items()}
mine, theirs = means(runs), means(refs)
ours = runs[-1]
for test, v in mine.items():
    t = theirs.get(test)
    ref_s = "-" if t is None else f"{t:.1f} t/s"
    ratio = "" if t is None else f"{v / t:.2f}x"
    print(f"{name:44} {test:6} {v:8.1f} t/s {ref_s:>12} {ratio:>8}")
tg_test = next((t for t in mine if t.startswith("tg")), None)
# The bound from the best bandwidth any of our runs measured (each measures right before and after its
# generation run); and each run against the bandwidth measured around it, whose median is fairer on a machine
# whose bandwidth moves between runs.
bw = max(r["read_bandwidth_bytes_per_s"] for r in runs)
bound = bw / ours["bytes_per_token"]
tg = mine[tg_test] / bound if tg_test else None
per_run = [f for r in runs for f in r.get("tg_fraction_of_bound_per_run", [])]
print(f'{"":44} bound  {bound:8.1f} t/s  ({ours["bytes_per_token"] / 2**20:.1f} MiB per token at '
      f'{bw / 1e9:.1f} GB/s, the best of {len(runs)} runs); tg at {100 * tg:.0f}% of it' if tg else "")
if per_run:
    print(f'{"":44} each run against the bandwidth around it: median {100 * statistics.median(per_run):.0f}% '
          f'({100 * min(per_run):.0f}-{100 * max(per_run):.0f}%)')
handoffs = [h for r in runs for h in r.get("handoff_round_trip_ns", [])]
if handoffs:
    print(f'{"":44} hand-off between two threads: median {statistics.median(handoffs):.0f} ns round trip '
          f'({min(handoffs):.0f}-{max(handoffs):.0f} ns)')
huge = '' if ours.get("huge_page_share") is None else f' ({100 * ours["huge_page_share"]:.0f}% in huge pages)'
print(f'{"":44} memory: file {ours["file_size"] / 2**20:.1f} MiB{huge}, KV {ours["kv_cache_bytes"] / 2**20:.1f} MiB, '
      f'peak RSS {ours["peak_rss_bytes"] / 2**20:.1f} MiB')
PY
done
