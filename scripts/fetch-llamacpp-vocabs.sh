#!/usr/bin/env bash
# Fetch llama.cpp's tokenizer test vocabularies (models/ggml-vocab-*.gguf with their .inp/.out test vectors) and
# its collection of model chat templates (models/templates/*.jinja, as the model authors publish them) from the
# llama-cpp-python 0.3.36 sdist on PyPI (MIT; llama.cpp is vendored inside it), into
# ${POCKETLM_LLAMACPP_VOCABS:-models/llamacpp-vocabs}/ (templates in its templates/). Only those files are
# extracted; the sdist is cached in ${POCKETLM_CACHE:-models/.cache}. Idempotent. engine/tests/tokenizer_llamacpp.rs
# and chat_template.rs read POCKETLM_LLAMACPP_VOCABS.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${POCKETLM_LLAMACPP_VOCABS:-models/llamacpp-vocabs}
cache=${POCKETLM_CACHE:-models/.cache}
sdist=llama_cpp_python-0.3.36.tar.gz
sha=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
if [ -f "$dest/.complete" ]; then
  echo "llama.cpp vocabularies present: $dest"; exit 0
fi
mkdir -p "$cache" "$dest"
if ! { [ -f "$cache/$sdist" ] && echo "$sha  $cache/$sdist" | sha256sum -c --status; }; then
  python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python llama-cpp-python==0.3.36 -d "$cache"
fi
echo "$sha  $cache/$sdist" | sha256sum -c --status || { echo "checksum mismatch for $cache/$sdist" >&2; exit 1; }
tar -xzf "$cache/$sdist" -C "$dest" --strip-components=4 --wildcards 'llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-*'
mkdir -p "$dest/templates"
tar -xzf "$cache/$sdist" -C "$dest/templates" --strip-components=5 --wildcards 'llama_cpp_python-0.3.36/vendor/llama.cpp/models/templates/*.jinja'
touch "$dest/.complete"
echo "fetched $(ls "$dest"/ggml-vocab-*.gguf | wc -l) vocabularies into $dest"
