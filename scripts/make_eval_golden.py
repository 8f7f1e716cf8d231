#!/usr/bin/env python3
"""Golden for engine/tests/eval_perplexity.rs: llama.cpp's perplexity (the method of its `perplexity` tool) and
KL divergence from F32, on the text bundled with the engine (engine/src/eval/text.txt), for the demo model
requantized by llama.cpp to F32, Q8_0 and Q4_K_M.

Reference: llama.cpp as built by PyPI llama-cpp-python 0.3.36. The tool's method is reproduced on its logits:
tokenize with add_special (BOS only if the vocabulary adds it), non-overlapping chunks of n_ctx, first token of a
chunk replaced by BOS when the vocabulary adds BOS, a fresh KV cache (F32) per chunk, score the second half.

    python3 scripts/make_eval_golden.py models/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import ctypes
import json
import os
import sys
import tempfile

import numpy as np
import llama_cpp as L

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
N_CTX = 256
FTYPES = {"F32": 0, "Q8_0": 7, "Q4_K_M": 15}


def main():
    src = sys.argv[1]
    text = open(os.path.join(ROOT, "engine/src/eval/text.txt"), encoding="utf-8").read()
    out = {"reference": "llama.cpp (llama-cpp-python 0.3.36), perplexity tool's method, F32 KV cache",
           "n_ctx": N_CTX, "files": {}}
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        for name, ftype in FTYPES.items():
            path = os.path.join(tmp, f"{name}.gguf")
            p = L.llama_model_quantize_default_params()
            p.ftype, p.nthread, p.allow_requantize = ftype, 2, True
            assert L.llama_model_quantize(src.encode(), path.encode(), ctypes.byref(p)) == 0
            llm = L.Llama(path, n_ctx=N_CTX, n_batch=N_CTX, n_threads=2, logits_all=True, verbose=False,
                          type_k=0, type_v=0)
            ids = llm.tokenize(text.encode(), add_bos=True, special=False)
            add_bos = L.llama_vocab_get_add_bos(L.llama_model_get_vocab(llm.model))
            n_chunks = len(ids) // N_CTX
            nll, rows = [], []
            for c in range(n_chunks):
                chunk = ids[c * N_CTX:(c + 1) * N_CTX]
                if add_bos:
                    chunk[0] = llm.token_bos()
                llm.reset()
                llm.eval(chunk)
                lg = np.array(llm.scores[:N_CTX], dtype=np.float64)
                lp = lg - lg.max(axis=1, keepdims=True)
                lp -= np.log(np.exp(lp).sum(axis=1, keepdims=True))
                for i in range(N_CTX // 2, N_CTX - 1):
                    nll.append(-lp[i][chunk[i + 1]])
                    rows.append(lp[i])
            entry = {"n_tokens": len(ids), "n_chunks": n_chunks, "scored": len(nll),
                     "perplexity": float(np.exp(np.mean(nll)))}
            if base is None:
                base = rows
            else:
                kl = [float((np.exp(a) * (a - b)).sum()) for a, b in zip(base, rows)]
                entry["kl_mean_from_f32"] = float(np.mean(kl))
                entry["top1_agreement_with_f32"] = float(np.mean([a.argmax() == b.argmax() for a, b in zip(base, rows)]))
            out["files"][name] = entry
            print(name, entry)
            del llm
    with open(os.path.join(ROOT, "engine/tests/golden/eval_smollm2.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
