#!/usr/bin/env python3
"""Golden for engine/tests/agreement_llamacpp.rs: llama.cpp's next-token distributions on a text, for the demo
model requantized by llama.cpp's quantizer to Q8_0 and Q4_K_M.

Reference: llama.cpp as built by PyPI llama-cpp-python 0.3.36 (`llama_model_quantize` makes the files from the
demo GGUF, `Llama(logits_all=True).eval` gives the logits; 2 threads, n_ctx 512, n_batch 512, one batch of 330
tokens). `pip install llama-cpp-python==0.3.36` compiles it from the sdist with GCC and `-march=native`; the golden
in the repository comes from an x86-64 machine with AVX-512 (F, DQ, BW, VL, VNNI), whose code paths the engine
reproduces. A build for another CPU (AVX2 only, or Arm) rounds differently and would give a different golden.

For each scored position the golden keeps llama.cpp's 128 most likely tokens with their log-probabilities; the
test computes KL divergence over those plus one bucket for the rest (the coarse-grained KL), and top-1 agreement.
The file records the SHA-256 of each llama.cpp-made GGUF, so the test proves it runs on the same bytes. The first
file is F32, the unquantized reference; for each quantized file the golden also records llama.cpp's own mean
(coarse-grained) KL from its F32 distributions: the error quantization costs in llama.cpp, which ours is held to.
The KV cache is F32 on llama.cpp's side, as ours is.

    python3 scripts/make_agreement_golden.py models/SmolLM2-135M-Instruct.Q4_1.gguf

Format (little endian): magic b"PLMAGRE1", u32 n_files; per file: u32 name length, name, 32-byte SHA-256 of the
GGUF, u32 n_tokens, n_tokens × u32 token ids, u32 n_pos, u32 k; per position: u32 position, k × u32 ids,
k × f32 log-probs (descending); then f64 mean KL of llama.cpp's F32 → this file (NaN for F32 itself).
"""
import ctypes
import hashlib
import os
import struct
import sys
import tempfile

import numpy as np
import llama_cpp as L

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "engine", "tests", "golden", "agreement")
K = 128
FTYPES = {"F32": 0, "Q8_0": 7, "Q4_K_M": 15}  # F32 first: the reference


def quantize(src, dst, ftype):
    p = L.llama_model_quantize_default_params()
    p.ftype, p.nthread, p.allow_requantize = ftype, 2, True
    rc = L.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
    assert rc == 0, rc


def main():
    src = sys.argv[1]
    text = open(os.path.join(GOLDEN, "text.txt"), encoding="utf-8").read()
    out = bytearray(b"PLMAGRE1")
    out += struct.pack("<I", len(FTYPES))
    ref = None  # F32: (top ids, their log-probs) per position
    with tempfile.TemporaryDirectory() as tmp:
        for name, ftype in FTYPES.items():
            path = os.path.join(tmp, f"{name}.gguf")
            quantize(src, path, ftype)
            digest = hashlib.sha256(open(path, "rb").read()).digest()
            llm = L.Llama(path, n_ctx=512, n_batch=512, n_threads=2, logits_all=True, verbose=False, type_k=0, type_v=0)
            ids = llm.tokenize(text.encode(), add_bos=True, special=False)
            assert len(ids) <= 512, len(ids)
            llm.eval(ids)
            logits = np.array(llm.scores[: len(ids)], dtype=np.float64)
            logp = logits - logits.max(axis=1, keepdims=True)
            logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
            out += struct.pack("<I", len(name)) + name.encode() + digest
            out += struct.pack("<I", len(ids)) + struct.pack(f"<{len(ids)}I", *ids)
            positions = range(len(ids) - 1)  # the distribution after each token but the last
            out += struct.pack("<II", len(positions), K)
            cover = []
            for pos in positions:
                top = np.argsort(-logp[pos], kind="stable")[:K]
                cover.append(np.exp(logp[pos][top]).sum())
                out += struct.pack("<I", pos) + struct.pack(f"<{K}I", *top.tolist())
                out += struct.pack(f"<{K}f", *logp[pos][top].tolist())
            if ref is None:
                ref = [(np.argsort(-logp[pos], kind="stable")[:K], logp[pos]) for pos in positions]
                kl_from_f32 = float("nan")
            else:
                kls = []
                for (top, lp_ref), pos in zip(ref, positions):
                    p, q = np.exp(lp_ref[top]), np.exp(logp[pos][top])
                    po, qo = max(1 - p.sum(), 1e-12), max(1 - q.sum(), 1e-12)
                    kls.append((p * (lp_ref[top] - logp[pos][top])).sum() + po * np.log(po / qo))
                kl_from_f32 = float(np.mean(kls))
            out += struct.pack("<d", kl_from_f32)
            print(f"{name}: KL from F32 {kl_from_f32:.3e}; {len(ids)} tokens, top-{K} covers {np.mean(cover):.4f} of the mass on average "
                  f"(min {np.min(cover):.4f})")
            del llm
    with open(os.path.join(GOLDEN, "smollm2.bin"), "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
