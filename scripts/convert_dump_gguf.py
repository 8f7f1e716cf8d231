#!/usr/bin/env python3
"""Dumps a GGUF's metadata and tensors in the canonical text form engine/tests/convert_hf.rs prints for a plan,
so PocketLM's converter can be compared with llama.cpp's convert_hf_to_gguf.py line by line.

Reference: gguf-py 0.19.0 (PyPI `gguf`). Usage: python3 scripts/convert_dump_gguf.py model.gguf > expected.txt
Only F32 tensors are supported (convert with --outtype f32).
"""
import json
import struct
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType


def fnv(data: bytes) -> str:
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def scalar(t, v):
    if t == GGUFValueType.FLOAT32:
        return f"f32:{struct.unpack('<I', struct.pack('<f', v))[0]:08x}"
    if t == GGUFValueType.STRING:
        return "str:" + json.dumps(v, ensure_ascii=False)
    if t == GGUFValueType.BOOL:
        return f"bool:{str(bool(v)).lower()}"
    return f"{t.name.lower()}:{int(v)}"


r = GGUFReader(sys.argv[1])
for k, f in r.fields.items():
    if k.startswith("GGUF."):
        continue
    t = f.types[0]
    v = f.contents()
    if t == GGUFValueType.ARRAY:
        sub = f.types[1]
        if sub == GGUFValueType.STRING:
            data = b"".join(s.encode("utf-8") + b"\0" for s in v)
        elif sub == GGUFValueType.INT32:
            data = struct.pack(f"<{len(v)}i", *v)
        elif sub == GGUFValueType.FLOAT32:
            data = struct.pack(f"<{len(v)}f", *v)
        else:
            raise SystemExit(f"unsupported array type {sub} in {k}")
        print(f"kv {k} array<{sub.name.lower()}>[{len(v)}] fnv={fnv(data)}")
    else:
        print(f"kv {k} {scalar(t, v)}")
for t in r.tensors:
    assert t.tensor_type.name == "F32", t.name
    dims = ",".join(str(int(d)) for d in t.shape)
    print(f"tensor {t.name} [{dims}] fnv={fnv(np.asarray(t.data, dtype='<f4').tobytes())}")
