#!/usr/bin/env bash
# Fuzzes the GGUF reader (fuzz/fuzz_targets/gguf_reader.rs) with cargo-fuzz for SECONDS (default 30), starting from
# the valid files in fuzz/seeds (made by scripts/make_writer_golden.py --seeds) plus whatever fuzz/corpus holds from
# earlier runs. Exits non-zero on a crash; libFuzzer leaves the input that caused it in fuzz/artifacts/gguf_reader/,
# and `cargo fuzz run gguf_reader fuzz/artifacts/gguf_reader/crash-…` replays it.
#
# cargo-fuzz passes nightly -Z flags (sanitizer, coverage) to rustc; RUSTC_BOOTSTRAP=1 lets the stable toolchain
# accept them, so no nightly is needed. POCKETLM_FUZZ_SANITIZER=none builds without AddressSanitizer, for a
# toolchain without its runtime (Rust's own checks still turn bugs into crashes).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
sanitizer="${POCKETLM_FUZZ_SANITIZER:-address}"

if ! command -v cargo-fuzz >/dev/null; then
  cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
# A toolchain without the AddressSanitizer runtime (Debian's rustc, say) still fuzzes, with Rust's own checks.
if [ -z "${POCKETLM_FUZZ_SANITIZER:-}" ] && ! cargo fuzz build --sanitizer address gguf_reader >/dev/null 2>&1; then
  echo "fuzz: AddressSanitizer build failed with this toolchain; fuzzing without a sanitizer"
  sanitizer=none
fi
mkdir -p fuzz/corpus/gguf_reader
# New inputs go to the first directory (ignored by git); the seeds are only read.
cargo fuzz run --sanitizer "$sanitizer" gguf_reader fuzz/corpus/gguf_reader fuzz/seeds -- \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
