#!/usr/bin/env python3
"""llama.cpp's figures for `cargo bench -p pocketlm --bench model`: the same work on the same file — a 128-token
prompt in one decode, then 64 single-token decodes (greedy) — through llama-cpp-python 0.3.36, best of 3.

    python3 scripts/bench_model_llamacpp.py [MODEL.gguf] [THREADS]   # default: the demo model, 2 threads

Run it beside our bench on a quiet machine; both print tokens per second.
"""
import os
import sys
import time
from pathlib import Path

import llama_cpp
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODEL = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
    "POCKETLM_DEMO_MODEL", str(ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 2
PROMPT, GENERATE, REPEAT = 128, 64, 3

llm = llama_cpp.Llama(MODEL, n_ctx=PROMPT + GENERATE, n_batch=PROMPT + GENERATE, n_threads=THREADS, n_threads_batch=THREADS,
                      logits_all=False, verbose=False)
n_vocab = llm.n_vocab()
prompt = [(i * 7919 + 13) % n_vocab for i in range(PROMPT)]
best_pp = best_tg = float("inf")
for _ in range(REPEAT):
    llm.reset()
    llm._ctx.kv_cache_clear()
    t = time.perf_counter()
    llm.eval(prompt)
    best_pp = min(best_pp, time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(GENERATE):
        nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        llm.eval([nxt])
    best_tg = min(best_tg, time.perf_counter() - t)
print(f"llama.cpp {llama_cpp.__version__}, {THREADS} threads, {Path(MODEL).name}: "
      f"pp{PROMPT} {PROMPT / best_pp:.1f} tok/s, tg{GENERATE} {GENERATE / best_tg:.1f} tok/s")
