#!/usr/bin/env python3
"""End-to-end check of the converter: for each Hugging Face folder given, `pocketlm quantize FOLDER --preset P`
must write the same bytes as llama.cpp's two steps, `convert_hf_to_gguf.py FOLDER` (--outtype auto) then
`llama_model_quantize` with the same preset.

References: llama.cpp from llama-cpp-python 0.3.36 (its convert_hf_to_gguf.py and gguf-py, and the library's
llama_model_quantize), torch 2.15, transformers 4.57.6.

    python3 scripts/check_convert_vs_llamacpp.py LLAMA_CPP_DIR POCKETLM_BIN FOLDER... [--presets Q8_0,Q4_K_M]
"""
import argparse
import ctypes
import filecmp
import os
import subprocess
import sys
import tempfile
from pathlib import Path

FTYPES = {"Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10, "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13,
          "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18}

ap = argparse.ArgumentParser()
ap.add_argument("llama_cpp")
ap.add_argument("pocketlm")
ap.add_argument("folders", nargs="+")
ap.add_argument("--presets", default="Q8_0,Q4_K_M")
args = ap.parse_args()

import llama_cpp  # noqa: E402  (after argument errors, which need no library)

failed = 0
with tempfile.TemporaryDirectory() as tmp:
    for folder in args.folders:
        name = Path(folder).name
        auto = f"{tmp}/{name}-auto.gguf"
        env = dict(os.environ, PYTHONPATH=str(Path(args.llama_cpp) / "gguf-py"))
        subprocess.run([sys.executable, str(Path(args.llama_cpp) / "convert_hf_to_gguf.py"), folder, "--outfile", auto],
                       check=True, env=env, capture_output=True)
        for preset in args.presets.split(","):
            ref, ours = f"{tmp}/{name}-{preset}-ref.gguf", f"{tmp}/{name}-{preset}-ours.gguf"
            params = llama_cpp.llama_model_quantize_default_params()
            params.ftype = FTYPES[preset]
            if llama_cpp.llama_model_quantize(auto.encode(), ref.encode(), ctypes.byref(params)) != 0:
                raise SystemExit(f"llama_model_quantize failed on {auto}")
            r = subprocess.run([args.pocketlm, "quantize", folder, ours, "--preset", preset], capture_output=True, text=True)
            same = r.returncode == 0 and filecmp.cmp(ref, ours, shallow=False)
            failed += not same
            print(f"{name} {preset}: {'identical' if same else 'DIFFERENT'}{'' if r.returncode == 0 else ' ' + r.stderr}")
print(f"{len(args.folders) * len(args.presets.split(',')) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
