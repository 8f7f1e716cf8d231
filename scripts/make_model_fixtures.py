#!/usr/bin/env python3
"""Regenerates engine/tests/model_fixtures/: tiny random checkpoints and the logits transformers computes for them.

Reference: transformers 4.57.6 with torch 2.x on the CPU, F32, eager attention.

Each fixture is a Hugging Face folder (config.json, model.safetensors in F32, tokenizer files) that
`engine/tests/model_logits.rs` converts with our pipeline to an F32 GGUF and runs through `pocketlm::model`; the
logits must match `logits.json`, which this script writes from `AutoModelForCausalLM` on the same folder:

    {"reference": "...", "tokens": [24 ids], "logits": [[n_vocab floats] per token]}

The tokenizer is the 416-token SentencePiece one of convert_fixtures/tinyllama-spm (copied), so each folder stays
well under 1 MB; the converter takes a tokenizer.model for llama and qwen2 alike. Weights are torch's default random
init with a larger range than usual (so logits spread out), and norm weights and biases are randomised too, so a
mix-up between them cannot hide behind 1.0s and 0.0s.

    python3 scripts/make_model_fixtures.py
"""
import json
import shutil
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "engine" / "tests" / "model_fixtures"
TOK = ROOT / "engine" / "tests" / "convert_fixtures" / "tinyllama-spm"
TOK_FILES = ["tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
             "added_tokens.json", "chat_template.jinja"]
N_TOKENS = 24

COMMON = dict(vocab_size=416, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=2048, initializer_range=0.1, bos_token_id=1,
              eos_token_id=2, torch_dtype="float32")

FIXTURES = {
    # GQA 4/2, Llama 3 rope scaling with a short original context so that rope_freqs changes angles within 24
    # positions (theta 10000, head_dim 16: wavelengths 6.3 … 63000; low/high-frequency bounds 64 and 16).
    "llama-tied": LlamaConfig(**COMMON, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
                              rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                            "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
    # Untied lm_head, plain RoPE, another epsilon.
    "llama-untied": LlamaConfig(**COMMON, rms_norm_eps=1e-6, rope_theta=500.0, tie_word_embeddings=False),
    # Qwen2: q/k/v biases, NEOX rope, tied output as Qwen2.5's small models have.
    "qwen2": Qwen2Config(**COMMON, rms_norm_eps=1e-6, rope_theta=1000.0, tie_word_embeddings=True,
                         use_sliding_window=False),
}


def randomise(model: torch.nn.Module, seed: int):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.3 * torch.randn(p.shape, generator=g))


def main():
    for i, (name, cfg) in enumerate(FIXTURES.items()):
        dest = OUT / name
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        torch.manual_seed(1000 + i)
        cfg._attn_implementation = "eager"
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
        randomise(model, 2000 + i)
        model.save_pretrained(dest, safe_serialization=True)
        for f in TOK_FILES:
            shutil.copy(TOK / f, dest / f)
        (dest / "generation_config.json").unlink(missing_ok=True)

        # Reload from disk, as a user would, and compute the reference.
        ref = AutoModelForCausalLM.from_pretrained(dest, dtype=torch.float32, attn_implementation="eager").eval()
        g = torch.Generator().manual_seed(3000 + i)
        tokens = [1] + torch.randint(5, 400, (N_TOKENS - 1,), generator=g).tolist()
        with torch.no_grad():
            logits = ref(torch.tensor([tokens])).logits[0]
        golden = {
            "reference": f"transformers {transformers.__version__}, torch {torch.__version__}, F32, eager attention",
            "tokens": tokens,
            "logits": [[float(v) for v in row] for row in logits.tolist()],
        }
        (dest / "logits.json").write_text(json.dumps(golden, separators=(",", ":")) + "\n")
        size = sum(f.stat().st_size for f in dest.iterdir())
        print(f"{name}: {size} bytes, max |logit| {logits.abs().max():.3f}")


if __name__ == "__main__":
    main()
