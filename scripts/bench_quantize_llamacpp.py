#!/usr/bin/env python3
"""llama.cpp's quantize throughput, for comparison with `cargo bench -p pocketlm --bench quantize`.

Times llama.cpp's reference quantizers as bundled by PyPI llama-cpp-python (its libggml-base, through ctypes):
`ggml_quantize_chunk` without an importance matrix — what `llama-quantize` runs per tensor — on one thread. Q8_1 and
Q8_K, which that function does not take, are timed through their reference row functions (`from_float_ref`, or the
exported `quantize_row_q8_K_ref`). A dev-time tool: the engine's tests never need it.

    pip install numpy llama-cpp-python==0.3.36        # builds llama.cpp from source, ~10 min on 2 cores
    python3 scripts/bench_quantize_llamacpp.py --types 2,8,12 [--rows 1024 --cols 4096] [--input x.f32]

The Rust bench calls it with `--input` (its own f32 input, little-endian, rows × cols) so that both sides quantize
the same values. Output, one line each: `# llama-cpp-python <version> …`, then `<ggml type id> <MB/s of f32 input>`.
Exit status 2 when llama-cpp-python or numpy is not installed.
"""

import argparse
import ctypes
import importlib.metadata
import sys
import time
from pathlib import Path

try:
    import numpy as np
    import llama_cpp
except ImportError as e:
    print(f"# llama.cpp oracle not available: {e}", file=sys.stderr)
    sys.exit(2)

# ggml types that ggml_quantize_chunk does not handle: timed through a reference row function instead.
ROW_FN_TYPES = {9, 15}  # Q8_1, Q8_K


def load_ggml():
    lib = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    lib.ggml_row_size.restype = ctypes.c_size_t
    lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]

    class TypeTraits(ctypes.Structure):  # the leading fields of ggml.h's struct ggml_type_traits
        _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64),
                    ("blck_size_interleave", ctypes.c_int64), ("type_size", ctypes.c_size_t),
                    ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p),
                    ("from_float_ref", ctypes.c_void_p)]

    lib.ggml_get_type_traits.restype = ctypes.POINTER(TypeTraits)
    lib.ggml_get_type_traits.argtypes = [ctypes.c_int]
    lib.quantize_row_q8_K_ref.restype = None
    lib.quantize_row_q8_K_ref.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    return lib


def quantizer(lib, type_id, x):
    """A no-argument function that quantizes all of `x` (rows × cols) once into a preallocated buffer."""
    rows, cols = x.shape
    out = np.empty(rows * lib.ggml_row_size(type_id, cols), dtype=np.uint8)
    if type_id not in ROW_FN_TYPES:
        def run():
            lib.ggml_quantize_chunk(type_id, x.ctypes.data, out.ctypes.data, 0, rows, cols, None)
        return run
    ref = lib.ggml_get_type_traits(type_id).contents.from_float_ref
    row_fn = (ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(ref) if ref
              else lib.quantize_row_q8_K_ref)

    def run_rows():
        # These row functions go block by block, so one call covers every row.
        row_fn(x.ctypes.data, out.ctypes.data, rows * cols)
    return run_rows


def best_seconds(run, repeat):
    """Best of at least `repeat` timed runs after a warm-up; fast types keep going until the runs add up to 0.25 s
    (at most 100), as the Rust bench does."""
    run()  # warm-up: page in the output buffer and the code
    best, total, runs = float("inf"), 0.0, 0
    while runs < max(repeat, 1) or (total < 0.25 and runs < 100):
        t = time.perf_counter()
        run()
        dt = time.perf_counter() - t
        best, total, runs = min(best, dt), total + dt, runs + 1
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--types", required=True, help="comma-separated ggml type ids")
    ap.add_argument("--rows", type=int, default=1024)
    ap.add_argument("--cols", type=int, default=4096)
    ap.add_argument("--input", help="raw little-endian f32, rows × cols (default: N(0,1) from a fixed seed)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per type after one warm-up (more for fast types); best is kept")
    a = ap.parse_args()

    if a.input:
        x = np.fromfile(a.input, dtype="<f4").reshape(a.rows, a.cols)
    else:
        x = np.random.default_rng(0).standard_normal((a.rows, a.cols), dtype=np.float32)
    lib = load_ggml()
    version = importlib.metadata.version("llama_cpp_python")
    print(f"# llama-cpp-python {version} (libggml-base ggml_quantize_chunk, 1 thread, no imatrix; q8_1, q8_K: "
          f"their _ref row functions; {a.rows}x{a.cols} f32)", flush=True)
    for tid in (int(t) for t in a.types.split(",")):
        secs = best_seconds(quantizer(lib, tid, x), a.repeat)
        print(f"{tid} {x.nbytes / secs / 1e6:.1f}", flush=True)


if __name__ == "__main__":
    main()
