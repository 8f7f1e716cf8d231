#!/usr/bin/env python3
"""Builds the folder set for engine/tests/convert_hf.rs's oracle test (POCKETLM_CONVERT_ORACLE): tiny random
checkpoints made with transformers, each converted by llama.cpp's convert_hf_to_gguf.py --outtype f32 and dumped
(scripts/convert_dump_gguf.py) to NAME.expected.txt beside NAME/. They cover BF16/F16/F32 sources, GQA, tied and
untied embeddings, head_dim != hidden/heads, llama3 rope scaling (with the smoothing zone), yarn, sharded weights
with an index, generation_config sampling, `_name_or_path`, a model card, Mistral (head_dim null), Qwen2 biases,
SmolLM2's vocabulary (49152: no BOS), SentencePiece, and the real Llama 3, Llama 3.1 and Qwen3 tokenizers.

References: llama.cpp from llama-cpp-python 0.3.36, gguf-py 0.19.0, torch 2.15, transformers 4.57.6, sentencepiece
0.2.3; tokenizers from scripts/fetch-test-tokenizers.sh; SmolLM2's tokenizer rebuilt from the demo GGUF
(scripts/fetch-demo-model.sh) with SmolLM's pre-tokenizer, which llama.cpp recognises as `smollm`.

    python3 scripts/make_convert_oracle.py LLAMA_CPP_DIR TOKENIZERS_DIR DEMO_GGUF OUT_DIR
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM)

LLAMA_CPP, TOKS, DEMO, OUT = (Path(p) for p in sys.argv[1:5])
FIXTURES = Path(__file__).resolve().parent.parent / "engine" / "tests" / "convert_fixtures"
OUT.mkdir(parents=True, exist_ok=True)


def smollm_tokenizer(d: Path):
    sys.path.insert(0, str(LLAMA_CPP / "gguf-py"))
    from gguf import GGUFReader
    f = {k: v.contents() for k, v in GGUFReader(str(DEMO)).fields.items() if k.startswith("tokenizer")}
    toks, types, merges = f["tokenizer.ggml.tokens"], f["tokenizer.ggml.token_type"], f["tokenizer.ggml.merges"]
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for i, (t, ty) in enumerate(zip(toks, types)) if ty == 3]
    tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
          "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True},
              {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
          "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
          "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
          "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                    "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                    "vocab": {t: i for i, t in enumerate(toks)}, "merges": merges}}
    (d / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False))
    tc = {"add_prefix_space": False,
          "added_tokens_decoder": {str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added},
          "additional_special_tokens": ["<|im_start|>", "<|im_end|>"], "bos_token": "<|im_start|>",
          "chat_template": f["tokenizer.chat_template"], "clean_up_tokenization_spaces": False,
          "eos_token": "<|im_end|>", "model_max_length": 8192, "pad_token": "<|im_end|>",
          "tokenizer_class": "GPT2Tokenizer", "unk_token": "<|endoftext|>", "vocab_size": 49152}
    (d / "tokenizer_config.json").write_text(json.dumps(tc, ensure_ascii=False, indent=2))


def tokenizer(kind: str, d: Path):
    if kind == "smollm":
        smollm_tokenizer(d)
    elif kind == "spm":
        for f in os.listdir(FIXTURES / "tinyllama-spm"):
            if f != "config.json":
                shutil.copy(FIXTURES / "tinyllama-spm" / f, d / f)
    else:
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(TOKS / kind / f, d / f)


llama3_scaling = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 8192}
CARD = "---\nlicense: apache-2.0\nlanguage:\n- en\n- no\npipeline_tag: text-generation\ntags:\n- onnx\nbase_model:\n" \
       "- HuggingFaceTB/SmolLM2-135M\n- https://huggingface.co/meta-llama/Llama-3.2-1B\n" \
       "datasets: [HuggingFaceTB/smollm-corpus, \"https://example.com/data\"]\nmodel_creator: Hugging Face TB  # c\n" \
       "model-index:\n- name: SmolLM2\n  results:\n  - task: {type: text-generation}\n---\n\n# SmolLM2\n"
MODELS = [  # name, model class, config, dtype, tokenizer, save kwargs, config additions, generation additions, card
    ("tiny-llama3", LlamaForCausalLM, LlamaConfig(vocab_size=128256, hidden_size=64, intermediate_size=96,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=True, bos_token_id=128000, eos_token_id=128001,
        rope_scaling=llama3_scaling), torch.bfloat16, "llama3", {}, {}, {}, None),
    ("tiny-llama-untied", LlamaForCausalLM, LlamaConfig(vocab_size=128256, hidden_size=48, intermediate_size=80,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, head_dim=16, max_position_embeddings=256,
        tie_word_embeddings=False, bos_token_id=128000, eos_token_id=128001), torch.float16, "llama3", {}, {}, {}, None),
    ("tiny-qwen2", Qwen2ForCausalLM, Qwen2Config(vocab_size=128256, hidden_size=64, intermediate_size=96,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        rope_theta=1e6, tie_word_embeddings=True, bos_token_id=128000, eos_token_id=128001, rms_norm_eps=1e-6),
        torch.float32, "llama3", {}, {}, {}, None),
    ("SmolLM2-tiny-Instruct", LlamaForCausalLM, LlamaConfig(vocab_size=49152, hidden_size=96, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=8192,
        rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
        pad_token_id=2), torch.bfloat16, "smollm", {}, {}, {}, None),
    ("SmolLM2-card-Instruct", LlamaForCausalLM, LlamaConfig(vocab_size=49152, hidden_size=96, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=8192,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2), torch.bfloat16, "smollm", {}, {}, {}, CARD),
    ("llama32-sharded", LlamaForCausalLM, LlamaConfig(vocab_size=128256, hidden_size=128, intermediate_size=192,
        num_hidden_layers=3, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=131072,
        rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=True, bos_token_id=128000,
        eos_token_id=[128001, 128008, 128009], rope_scaling=llama3_scaling), torch.bfloat16, "llama3_1",
        {"max_shard_size": "10MB"}, {"_name_or_path": "meta-llama/Llama-3.2-1B-Instruct"},
        {"temperature": 0.6, "top_p": 0.9, "do_sample": True}, None),
    ("qwen25-yarn", Qwen2ForCausalLM, Qwen2Config(vocab_size=151936, hidden_size=64, intermediate_size=96,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32768,
        rope_theta=1e6, tie_word_embeddings=False, bos_token_id=151643, eos_token_id=151645, rms_norm_eps=1e-6,
        rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}), torch.bfloat16,
        "qwen3", {}, {}, {}, None),
    ("Mistral-tiny-v0.3", MistralForCausalLM, MistralConfig(vocab_size=416, hidden_size=64, intermediate_size=96,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=None, sliding_window=4096,
        rope_theta=1e6, tie_word_embeddings=False), torch.bfloat16, "spm", {}, {}, {}, None),
]

torch.manual_seed(0)
for name, cls, cfg, dtype, tok, save, cfg_add, gen_add, card in MODELS:
    d = OUT / name
    shutil.rmtree(d, ignore_errors=True)
    cls(cfg).to(dtype).save_pretrained(d, **save)
    tokenizer(tok, d)
    for fname, add in (("config.json", cfg_add), ("generation_config.json", gen_add)):
        if add:
            c = json.loads((d / fname).read_text())
            c.update(add)
            (d / fname).write_text(json.dumps(c, indent=2))
    if card:
        (d / "README.md").write_text(card)
    gguf_path = OUT / f"{name}.gguf"
    env = dict(os.environ, PYTHONPATH=str(LLAMA_CPP / "gguf-py"))
    subprocess.run([sys.executable, str(LLAMA_CPP / "convert_hf_to_gguf.py"), str(d), "--outtype", "f32", "--outfile",
                    str(gguf_path)], check=True, env=env, capture_output=True)
    dump = subprocess.run([sys.executable, str(Path(__file__).parent / "convert_dump_gguf.py"), str(gguf_path)],
                          check=True, env=env, capture_output=True, text=True).stdout
    (OUT / f"{name}.expected.txt").write_text(dump)
    gguf_path.unlink()
    print(name, "ok")
