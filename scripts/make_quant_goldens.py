#!/usr/bin/env python3
"""Make the quantizer golden files in engine/tests/golden/quant/ with llama.cpp's own quantizer.

Reference: llama.cpp as bundled by PyPI llama-cpp-python 0.3.36 (its libggml-base: `ggml_quantize_chunk` without
an importance matrix, which is what `llama-quantize` writes; for Q8_1 and Q8_K, which that function does not take,
the type's `from_float_ref` from `ggml_get_type_traits`, or the exported `quantize_row_q8_K_ref`). Inputs and outputs are written with PyPI gguf (gguf-py).

    pip install gguf==0.19.0 numpy llama-cpp-python==0.3.36   # builds llama.cpp from source, ~10 min on 2 cores
    python3 scripts/make_quant_goldens.py

Writes input.gguf (one F32 tensor per stress case, rows of 512 weights) and one <type>.gguf per type holding the
same tensors quantized by llama.cpp. The test suite (engine/tests/quant_golden.rs) needs none of these packages.
"""

import ctypes
import importlib.metadata
import os
import sys
from pathlib import Path

import numpy as np
import gguf

REFERENCE = "llama-cpp-python==0.3.36"
OUT = Path(__file__).resolve().parent.parent / "engine" / "tests" / "golden" / "quant"
N_PER_ROW = 512  # a multiple of every block size (32 and 256), two k-quant super-blocks per row

# ggml type ids (ggml.h) and whether ggml_quantize_chunk handles the type.
TYPES = {
    "f16": (1, True), "bf16": (30, True),
    "q4_0": (2, True), "q4_1": (3, True), "q5_0": (6, True), "q5_1": (7, True), "q8_0": (8, True), "q8_1": (9, False),
    "q2_K": (10, True), "q3_K": (11, True), "q4_K": (12, True), "q5_K": (13, True), "q6_K": (14, True),
    "q8_K": (15, False),
}


def cases():
    """Inputs that stress every branch of the quantizers. Deterministic: a fixed seed and closed-form shapes."""
    rng = np.random.default_rng(20261123)
    n = N_PER_ROW
    i = np.arange(n, dtype=np.float64)
    normal = lambda rows: rng.standard_normal((rows, n))
    c = {}
    c["smooth"] = np.stack([np.sin(0.01 * (r + 1) * i) * (r + 1) + 0.1 * r for r in range(4)])
    c["normal"] = normal(8)
    out = normal(8)
    mask = rng.random(out.shape) < 0.01
    out[mask] *= 50.0
    c["outliers"] = out
    c["zeros"] = np.zeros((2, n))
    const = np.zeros((6, n))
    const[0] = 1.5
    const[1] = -3.25
    const[2] = np.where((i // 32) % 2 == 0, 0.0, 0.75)           # zero and constant 32-blocks
    const[3] = np.where((i // 16) % 2 == 0, 0.0, rng.standard_normal(n))  # zero 16-sub-blocks among random ones
    const[4] = np.where(i < 256, 0.0, 2.0)                         # one all-zero super-block, one constant
    const[5] = 7.0 + 1e-3 * rng.standard_normal(n)                 # nearly constant: max - min tiny against max
    c["constant"] = const
    sparse = np.zeros((4, n))
    for r in range(4):
        idx = rng.choice(n, size=3 + r, replace=False)
        sparse[r, idx] = rng.standard_normal(idx.size) * 10 ** r
    c["sparse"] = sparse
    c["positive"] = np.stack([rng.random(n), rng.random(n) + 5.0])   # asymmetric: min matters
    c["negative"] = np.stack([-rng.random(n) - 1.0, -rng.random(n) * 1e-3])
    c["ties"] = np.stack([np.round(rng.uniform(-8, 8, n) * 2) / 2, np.round(rng.uniform(-32, 32, n)) / 4])
    c["tiny"] = np.stack([normal(1)[0] * 1e-30, normal(1)[0] * 1e-8, normal(1)[0] * 1e-20,
                          normal(1)[0] * 1e-40])                     # the last is f32-subnormal
    c["huge"] = np.stack([normal(1)[0] * 1e4, normal(1)[0] * 6e4, normal(1)[0] * 1e8, normal(1)[0] * 1e20])
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in c.items()}


def load_ggml():
    import llama_cpp  # noqa: F401  (only to find the bundled library)
    libdir = Path(llama_cpp.__file__).parent / "lib"
    lib = ctypes.CDLL(str(libdir / "libggml-base.so"))
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    lib.ggml_row_size.restype = ctypes.c_size_t
    lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]

    class TypeTraits(ctypes.Structure):
        _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64),
                    ("blck_size_interleave", ctypes.c_int64), ("type_size", ctypes.c_size_t),
                    ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p),
                    ("from_float_ref", ctypes.c_void_p)]

    lib.quantize_row_q8_K_ref.restype = None
    lib.quantize_row_q8_K_ref.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    lib.ggml_get_type_traits.restype = ctypes.POINTER(TypeTraits)
    lib.ggml_get_type_traits.argtypes = [ctypes.c_int]
    return lib


def quantize(lib, type_id, chunk_ok, x):
    rows, n = x.shape
    row_size = lib.ggml_row_size(type_id, n)
    out = np.zeros((rows, row_size), dtype=np.uint8)
    if chunk_ok:
        written = lib.ggml_quantize_chunk(type_id, x.ctypes.data, out.ctypes.data, 0, rows, n, None)
        assert written == rows * row_size, (type_id, written)
    else:
        # Q8_K's traits carry no from_float_ref; libggml-base exports quantize_row_q8_K_ref itself.
        ref = lib.ggml_get_type_traits(type_id).contents.from_float_ref
        from_float = (ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(ref) if ref
                      else lib.quantize_row_q8_K_ref)
        for r in range(rows):
            from_float(x[r].ctypes.data, out[r].ctypes.data, n)
    return out


def main():
    version = importlib.metadata.version("llama_cpp_python")
    if f"llama-cpp-python=={version}" != REFERENCE:
        sys.exit(f"need {REFERENCE} as the reference, found llama-cpp-python {version}")
    lib = load_ggml()
    OUT.mkdir(parents=True, exist_ok=True)
    inputs = cases()

    def writer(path):
        w = gguf.GGUFWriter(str(path), "pocketlm-golden")
        w.add_string("pocketlm.golden.reference", f"{REFERENCE} ggml_quantize_chunk, no imatrix")
        w.add_string("pocketlm.golden.script", "scripts/make_quant_goldens.py")
        return w

    def finish(w):
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()

    w = writer(OUT / "input.gguf")
    for name, x in inputs.items():
        w.add_tensor(name, x)
    finish(w)
    for tname, (tid, chunk_ok) in TYPES.items():
        w = writer(OUT / f"{tname}.gguf")
        for name, x in inputs.items():
            q = quantize(lib, tid, chunk_ok, x)
            # gguf-py 0.19 still sizes Q8_1 blocks as 40 bytes (f32 d and s); ggml's are 36 (f16). Passing the
            # bytes as int8 with the weight shape skips its byte-shape conversion; the type id is still Q8_1.
            w.add_tensor(name, q.view(np.int8), raw_shape=x.shape, raw_dtype=gguf.GGMLQuantizationType(tid))
        finish(w)
        print(f"{tname:5} {sum(quantize(lib, tid, chunk_ok, x).nbytes for x in inputs.values()):8} bytes")
    print(f"wrote {OUT} from {REFERENCE}")


if __name__ == "__main__":
    main()
