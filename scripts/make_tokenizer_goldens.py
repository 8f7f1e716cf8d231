#!/usr/bin/env python3
"""Golden token ids for the demo model (SmolLM2-135M-Instruct), made by Hugging Face transformers 4.57.6 and
tokenizers, for engine/tests/tokenizer_demo.rs.

The GGUF holds SmolLM2's vocabulary, merges and token types; its tokenizer.json (the StarCoder family's) is rebuilt
here as SmolLM2 publishes it: byte-level BPE, pre-tokenizer Digits(individual_digits) + ByteLevel (GPT-2 regex, no
prefix space), control tokens as special added tokens. transformers' PreTrainedTokenizerFast then encodes each text
with add_special_tokens=False, once with special tokens parsed (split_special_tokens=False, as llama.cpp's
parse_special = true) and once without (split_special_tokens=True, parse_special = false).

Usage: POCKETLM_DEMO_MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf \
       python3 scripts/make_tokenizer_goldens.py > engine/tests/golden/tokenizer_smollm2.json
"""
import hashlib
import json
import os
import sys

import gguf
import tokenizers
import transformers
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

assert transformers.__version__ == "4.57.6", transformers.__version__

TEXTS = [
    "Hello world",
    "  leading spaces and trailing   ",
    "The year 2024 had 366 days; pi is 3.14159, and 1,000,000 > 999_999!",
    "héllo wörld — naïve café, Ångström, ß, İstanbul",
    "中文字符 日本語のテキスト 한국어 텍스트 Ελληνικά русский",
    "emoji 🙂👍🏽 🇫🇷 family 👨‍👩‍👧 ❤️",
    "def f(x):\n\treturn x ** 2  # square\n\nprint(f(12))\n",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "text with <|endoftext|> inside, <file_sep> and <|im_end|>",
    "tabs\tand\r\nnewlines\n\n\n  end",
    "'s 't 're 've 'm 'll 'd I'M YOU'RE",
    "",
    " ",
    "\u00a0non-breaking\u200bzero-width",
]


def main():
    path = os.environ["POCKETLM_DEMO_MODEL"]
    r = gguf.GGUFReader(path)
    f = lambda k: r.fields[k].contents()
    assert f("tokenizer.ggml.model") == "gpt2" and f("tokenizer.ggml.pre") == "smollm"
    tokens, types, merges = f("tokenizer.ggml.tokens"), f("tokenizer.ggml.token_type"), f("tokenizer.ggml.merges")
    vocab = {t: i for i, t in enumerate(tokens)}
    bpe = models.BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in merges])
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    )
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3])
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok)

    cases = []
    for text in TEXTS:
        for parse_special in (True, False):
            ids = fast(text, add_special_tokens=False, split_special_tokens=not parse_special)["input_ids"]
            cases.append({"text": text, "parse_special": parse_special, "ids": ids})
    sha = hashlib.sha256(open(path, "rb").read()).hexdigest()
    json.dump(
        {"reference": f"transformers {transformers.__version__} PreTrainedTokenizerFast, tokenizers {tokenizers.__version__}",
         "model_sha256": sha, "cases": cases},
        sys.stdout, ensure_ascii=False, indent=1,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
