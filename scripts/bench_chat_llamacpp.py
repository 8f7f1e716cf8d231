#!/usr/bin/env python3
"""llama.cpp's side of `scripts/bench-chat.sh`: pp and tg tokens per second on a GGUF file, measured as llama-bench
does (a fresh context per run, one warm-up, then timed runs; pseudo-random prompt tokens; tg decodes one token at
a time from an empty context).

Reference: llama.cpp as built by PyPI llama-cpp-python 0.3.36 (its low-level API: llama_decode on
llama_batch_get_one), default KV cache type (f16), no flash attention override.

    python3 scripts/bench_chat_llamacpp.py MODEL.gguf -p 512 -n 128 -t 2 -r 3     # prints JSON
"""
import argparse
import ctypes
import json
import statistics
import sys
import time

import llama_cpp as L


def tokens(n, n_vocab):
    # The same pseudo-random ids as `pocketlm bench` (a 64-bit LCG).
    s, out, mask = 0x9E3779B97F4A7C15, [], (1 << 64) - 1
    for _ in range(n):
        s = (s * 6364136223846793005 + 1442695040888963407) & mask
        out.append((s >> 33) % n_vocab)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("-r", type=int, default=3)
    a = ap.parse_args()

    L.llama_backend_init()
    mp = L.llama_model_default_params()
    model = L.llama_model_load_from_file(a.model.encode(), mp)
    if not model:
        sys.exit(f"llama.cpp could not load {a.model}")
    vocab = L.llama_model_get_vocab(model)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    cp = L.llama_context_default_params()
    cp.n_ctx = max(a.p, a.n, 1)
    cp.n_batch = cp.n_ubatch = max(a.p, 1)
    cp.n_threads = cp.n_threads_batch = a.t
    ctx = L.llama_init_from_model(model, cp)
    mem = L.llama_get_memory(ctx)

    def decode(ids):
        arr = (L.llama_token * len(ids))(*ids)
        rc = L.llama_decode(ctx, L.llama_batch_get_one(arr, len(ids)))
        if rc != 0:
            sys.exit(f"llama_decode failed: {rc}")

    results = []
    if a.p > 0:
        ids, samples = tokens(a.p, n_vocab), []
        for rep in range(a.r + 1):
            L.llama_memory_clear(mem, True)
            t0 = time.perf_counter()
            decode(ids)
            L.llama_synchronize(ctx)
            if rep:
                samples.append(a.p / (time.perf_counter() - t0))
        results.append({"test": f"pp{a.p}", "avg_ts": statistics.mean(samples), "samples_ts": samples})
    if a.n > 0:
        ids, samples = tokens(a.n, n_vocab), []
        for rep in range(a.r + 1):
            L.llama_memory_clear(mem, True)
            t0 = time.perf_counter()
            for t in ids:
                decode([t])
            L.llama_synchronize(ctx)
            if rep:
                samples.append(a.n / (time.perf_counter() - t0))
        results.append({"test": f"tg{a.n}", "avg_ts": statistics.mean(samples), "samples_ts": samples})
    print(json.dumps({"reference": "llama.cpp (llama-cpp-python 0.3.36)", "threads": a.t, "results": results}))


if __name__ == "__main__":
    main()
