#!/usr/bin/env python3
"""Record what llama.cpp's quantizer writes for every preset, so `pocketlm quantize` can be held to it byte for byte.

Reference: llama.cpp as bundled by PyPI llama-cpp-python 0.3.36 (`llama_model_quantize`, no importance matrix,
allow_requantize for GGUF sources below 8 bits, 2 threads). Hashes are read back with PyPI gguf 0.19.0.

    pip install gguf==0.19.0 llama-cpp-python==0.3.36
    python3 scripts/make_quantize_goldens.py NAME SOURCE.gguf

    python3 scripts/make_quantize_goldens.py NAME SOURCE.gguf PRESET...   # only these presets

writes engine/tests/golden/quantize/NAME.json: for each preset, the output file's size and SHA-256 and every
tensor's name, type and data SHA-256, in file order. engine/tests/quantize_presets.rs runs our pipeline on the same
source and compares. The demo model (scripts/fetch-demo-model.sh) is the source CI has:

    python3 scripts/make_quantize_goldens.py smollm2-q4_1 models/SmolLM2-135M-Instruct.Q4_1.gguf

For a Hugging Face source, SOURCE is llama.cpp's own conversion of it (`convert_hf_to_gguf.py --outtype bf16`), so
the golden is llama.cpp's two steps; e.g. the Llama-3.2-1B-shaped random checkpoint of
`cargo run --release -p pocketlm --example random_checkpoint -- llama-3.2-1b models/tokenizers/llama3 DIR`:

    python3 scripts/make_quantize_goldens.py llama-3.2-1b-random DIR-bf16.gguf Q4_K_M
"""

import ctypes
import hashlib
import importlib.metadata
import json
import os
import sys
import tempfile
from pathlib import Path

import llama_cpp
from gguf import GGUFReader

REFERENCE = "llama-cpp-python==0.3.36"
OUT = Path(__file__).resolve().parent.parent / "engine" / "tests" / "golden" / "quantize"
# Preset names and llama_ftype numbers (llama.h).
PRESETS = {
    "F32": 0, "F16": 1, "BF16": 32, "Q8_0": 7, "Q4_0": 2, "Q4_1": 3, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10,
    "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18,
}


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def quantize(src, dst, ftype):
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ftype
    p.allow_requantize = True
    p.nthread = 2
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(p))
    if rc != 0:
        raise SystemExit(f"llama_model_quantize({src}, ftype {ftype}) failed: {rc}")


def main(name, source, *only):
    version = importlib.metadata.version("llama_cpp_python")
    if f"llama-cpp-python=={version}" != REFERENCE:
        sys.exit(f"need {REFERENCE} as the reference, found llama-cpp-python {version}")
    presets = {}
    with tempfile.TemporaryDirectory() as tmp:
        for preset, ftype in PRESETS.items():
            if only and preset not in only:
                continue
            out = Path(tmp) / f"{preset}.gguf"
            quantize(source, out, ftype)
            r = GGUFReader(str(out))
            presets[preset] = {
                "size": out.stat().st_size,
                "sha256": sha256_file(out),
                "tensors": [[t.name, int(t.tensor_type), hashlib.sha256(t.data.tobytes()).hexdigest()] for t in r.tensors],
            }
            print(f"{preset:7} {presets[preset]['size']:>12} bytes")
            del r
            os.remove(out)
    OUT.mkdir(parents=True, exist_ok=True)
    doc = {"reference": REFERENCE, "source": Path(source).name, "source_sha256": sha256_file(source), "presets": presets}
    (OUT / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT / (name + '.json')}")


if __name__ == "__main__":
    main(*sys.argv[1:])
