#!/usr/bin/env python3
"""Write small GGUF files with llama.cpp's Python writer, to hold ours to its layout and to seed the fuzzer.

Reference: PyPI gguf (gguf-py) 0.19.0, llama.cpp's own Python package — its GGUFWriter.

    pip install gguf==0.19.0 numpy
    python3 scripts/make_writer_golden.py            # engine/tests/golden/writer/gguf_py_small.gguf
    python3 scripts/make_writer_golden.py --seeds    # also fuzz/seeds/*.gguf

gguf_py_small.gguf holds a few keys of different types and three tensors (F32, Q8_0, Q4_K), default alignment.
engine/tests/gguf_writer.rs (`our_writer_reproduces_gguf_py_byte_for_byte`) writes the same content with our writer
and compares bytes; the two must be edited together. The quantized tensors hold filler bytes, byte i being
(7 i + seed) mod 256: a writer copies blocks, it does not look inside them.

The fuzz seeds (--seeds) are small valid files that reach every part of the reader: metadata only, every value
type with nested arrays (gguf-py refuses empty ones), tensors of each type with a codec, and a custom alignment.
`gguf_py_fuzz_seeds_read_back` in the same test file checks that they stay valid and read as gguf-py wrote them.
"""

import argparse
import importlib.metadata
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType, GGUFWriter
from gguf.constants import GGML_QUANT_SIZES

REFERENCE = "0.19.0"
ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "engine" / "tests" / "golden" / "writer" / "gguf_py_small.gguf"
SEEDS = ROOT / "fuzz" / "seeds"


def filler(n: int, seed: int) -> np.ndarray:
    return ((np.arange(n, dtype=np.uint64) * 7 + seed) % 256).astype(np.uint8)


def quantized(ty: Q, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Filler bytes for a tensor of `ty` with numpy shape `shape` (outermost first), as gguf-py's raw byte shape."""
    block, size = GGML_QUANT_SIZES[ty]
    *outer, row = shape
    assert row % block == 0
    n_bytes = int(np.prod(outer, dtype=np.int64)) * row // block * size
    return filler(n_bytes, seed).reshape(*outer, row // block * size)


def write(path: Path, w: GGUFWriter) -> None:
    w.write_header_to_file(path)
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"{path}: {path.stat().st_size} bytes")


def golden(path: Path) -> None:
    w = GGUFWriter(path, "llama")  # general.architecture first
    w.add_string("general.name", "writer golden ✓")
    w.add_uint32("llama.context_length", 2048)
    w.add_float32("llama.rope.freq_base", 10000.0)
    w.add_int8("test.i8", -7)
    w.add_uint16("test.u16", 65535)
    w.add_int64("test.i64", -(1 << 40))
    w.add_float64("test.f64", 0.1)
    w.add_bool("test.bool", True)
    w.add_array("tokenizer.ggml.tokens", ["<s>", "Ġthe", "ü"])
    w.add_array("tokenizer.ggml.scores", [0.0, -1.5, 2.25])
    w.add_array("tokenizer.ggml.token_type", [3, 1, 1])
    w.add_uint32("general.file_type", 7)
    # numpy shapes are outermost first: ggml dims [4, 3], [64, 2], [256].
    w.add_tensor("token_embd.weight", ((np.arange(12, dtype=np.float32) - 5) / 4).reshape(3, 4))
    w.add_tensor("blk.0.attn_q.weight", quantized(Q.Q8_0, (2, 64), 1), raw_dtype=Q.Q8_0)
    w.add_tensor("output_norm.weight", quantized(Q.Q4_K, (256,), 2), raw_dtype=Q.Q4_K)
    write(path, w)


def seeds(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)

    w = GGUFWriter(out / "metadata_only.gguf", "llama")
    w.add_uint32("llama.block_count", 1)
    write(out / "metadata_only.gguf", w)

    w = GGUFWriter(out / "every_value.gguf", "llama")
    for key, value, ty in [
        ("u8", 200, GGUFValueType.UINT8), ("i8", -100, GGUFValueType.INT8), ("u16", 60000, GGUFValueType.UINT16),
        ("i16", -30000, GGUFValueType.INT16), ("u32", 4_000_000_000, GGUFValueType.UINT32),
        ("i32", -2_000_000_000, GGUFValueType.INT32), ("f32", 0.5, GGUFValueType.FLOAT32),
        ("bool", True, GGUFValueType.BOOL), ("str", "ünï", GGUFValueType.STRING),
        ("u64", 2**64 - 1, GGUFValueType.UINT64), ("i64", -(2**63), GGUFValueType.INT64),
        ("f64", -1.5e300, GGUFValueType.FLOAT64),
    ]:
        w.add_key_value(key, value, ty)
    w.add_array("arr.str", ["a", "", "bc"])
    w.add_array("arr.nested", [[1, 2], ["x"], [[True]]])
    w.add_tensor("t", np.ones((1, 4), dtype=np.float32))
    write(out / "every_value.gguf", w)

    # One small tensor of each type with a codec, so the fuzz target's dequantizers see real shapes.
    w = GGUFWriter(out / "codecs.gguf", "llama")
    w.add_tensor("f32", np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4))
    w.add_tensor("f16", np.linspace(-1, 1, 8, dtype=np.float16))
    for seed, ty in enumerate([Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K,
                               Q.Q6_K, Q.Q8_K]):
        block = GGML_QUANT_SIZES[ty][0]
        w.add_tensor(ty.name.lower(), quantized(ty, (block,) if ty != Q.BF16 else (8,), seed), raw_dtype=ty)
    write(out / "codecs.gguf", w)

    w = GGUFWriter(out / "align64.gguf", "llama")
    w.add_custom_alignment(64)
    w.add_tensor("a", np.arange(3, dtype=np.float32))
    w.add_tensor("b", quantized(Q.Q8_0, (2, 32), 3), raw_dtype=Q.Q8_0)
    write(out / "align64.gguf", w)


def main() -> None:
    version = importlib.metadata.version("gguf")
    if version != REFERENCE:
        sys.exit(f"gguf {version} is installed, the golden is gguf {REFERENCE}'s: pip install gguf=={REFERENCE}")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=GOLDEN, help="where to write the golden file")
    parser.add_argument("--seeds", nargs="?", const=SEEDS, type=Path, help="also write fuzz seeds (to fuzz/seeds)")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    golden(args.out)
    if args.seeds:
        seeds(args.seeds)


if __name__ == "__main__":
    main()
