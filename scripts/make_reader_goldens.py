#!/usr/bin/env python3
"""Record what an independent GGUF reader sees in a file, so our reader can be held to it.

Reference: PyPI gguf (gguf-py) 0.19.0, llama.cpp's own Python reader — its GGUFReader and its dequantizers.

    pip install gguf==0.19.0 numpy
    python3 scripts/make_reader_goldens.py models/SmolLM2-135M-Instruct.Q4_1.gguf \
        $(ls engine/tests/golden/quant/*.gguf | grep -v q8_1)

(gguf-py 0.19 sizes Q8_1 blocks as 40 bytes where ggml's are 36, so it cannot read q8_1.gguf.)

For each FILE writes engine/tests/golden/reader/<FILE name>.json: header, every key with its type and value (arrays
longer than 16 by count and SHA-256 of a canonical encoding), and every tensor's info, the SHA-256 of its bytes,
and gguf-py's dequantized values at fixed sample positions with their float64 sum. The test
(engine/tests/gguf_conformance.rs) compares our reader and dequantizers against these files; it needs no Python.

Canonical encoding of a value (for the digests): scalars as their little-endian bytes (bool one byte), strings as
u64 length + UTF-8, arrays as u32 element type + u64 count + the elements.
"""

import hashlib
import importlib.metadata
import json
import struct
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFReader, GGUFValueType
from gguf.quants import dequantize

REFERENCE = "gguf==0.19.0"
OUT = Path(__file__).resolve().parent.parent / "engine" / "tests" / "golden" / "reader"
SCALAR = {
    GGUFValueType.UINT8: ("u8", "<B"), GGUFValueType.INT8: ("i8", "<b"), GGUFValueType.UINT16: ("u16", "<H"),
    GGUFValueType.INT16: ("i16", "<h"), GGUFValueType.UINT32: ("u32", "<I"), GGUFValueType.INT32: ("i32", "<i"),
    GGUFValueType.FLOAT32: ("f32", "<f"), GGUFValueType.BOOL: ("bool", "<?"), GGUFValueType.UINT64: ("u64", "<Q"),
    GGUFValueType.INT64: ("i64", "<q"), GGUFValueType.FLOAT64: ("f64", "<d"),
}
N_SAMPLES = 32


def encode(vtype, value):
    if vtype == GGUFValueType.STRING:
        b = value.encode("utf-8")
        return struct.pack("<Q", len(b)) + b
    return struct.pack(SCALAR[vtype][1], value)


def field_record(field):
    types = field.types
    if types[0] != GGUFValueType.ARRAY:
        value = field.contents()
        name = "str" if types[0] == GGUFValueType.STRING else SCALAR[types[0]][0]
        return {"type": name, "value": value}
    if len(types) > 2:
        raise SystemExit(f"{field.name}: nested arrays are not recorded by this script")
    elem = types[1]
    values = field.contents()
    h = hashlib.sha256()
    h.update(struct.pack("<IQ", int(elem), len(values)))
    for v in values:
        h.update(encode(elem, v))
    rec = {"type": "array", "elem": "str" if elem == GGUFValueType.STRING else SCALAR[elem][0], "len": len(values),
           "sha256": h.hexdigest()}
    if len(values) <= 16:
        rec["value"] = values
    return rec


def number(x):
    """A float for JSON; NaN and infinities (huge inputs overflow f16 scales) as the strings "nan", "inf", "-inf"."""
    x = float(x)
    return x if np.isfinite(x) else str(x)


def tensor_record(reader, t):
    raw = np.asarray(t.data).view(np.uint8).reshape(-1)
    rec = {"name": t.name, "type": int(t.tensor_type), "dims": [int(d) for d in t.shape],
           "offset": int(t.data_offset) - int(reader.data_offset), "n_bytes": int(t.n_bytes),
           "sha256": hashlib.sha256(raw.tobytes()).hexdigest()}
    try:
        values = dequantize(raw, t.tensor_type).astype(np.float32).reshape(-1)
    except NotImplementedError:  # gguf-py 0.19 has no Q8_K dequantizer: record the bytes only
        return rec
    n = values.size
    idx = sorted({min(n - 1, (i * n) // N_SAMPLES + i) for i in range(N_SAMPLES)})
    rec["samples"] = [[i, number(values[i])] for i in idx]
    rec["sum"] = number(values.astype(np.float64).sum())
    return rec


def main(paths):
    version = importlib.metadata.version("gguf")
    if f"gguf=={version}" != REFERENCE:
        sys.exit(f"need {REFERENCE} as the reference, found gguf {version}")
    OUT.mkdir(parents=True, exist_ok=True)
    for path in map(Path, paths):
        r = GGUFReader(str(path))
        kv = [{"key": f.name, **field_record(f)} for f in r.fields.values() if not f.name.startswith("GGUF.")]
        doc = {
            "reference": REFERENCE, "file": path.name, "size": path.stat().st_size,
            "version": int(r.fields["GGUF.version"].contents()), "alignment": int(r.alignment),
            "data_offset": int(r.data_offset), "kv": kv, "tensors": [tensor_record(r, t) for t in r.tensors],
        }
        out = OUT / f"{path.name}.json"
        out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        print(f"{out}: {len(kv)} keys, {len(doc['tensors'])} tensors")


if __name__ == "__main__":
    main(sys.argv[1:])
