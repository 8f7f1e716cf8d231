#!/usr/bin/env python3
"""What llama.cpp itself (llama-cpp-python 0.3.36, the reference) makes of each byte-level BPE tokenizer test
vocabulary and of the demo model, for engine/tests/tokenizer_llamacpp.rs: the special-token roles (BOS, EOS, EOT,
the end-of-generation set, add_bos/add_eos), token kinds as llama.cpp fixes them, and the ids of texts that
contain special tokens, with add_special and parse_special on and off (llama_tokenize), and every token's piece
(llama_token_to_piece with special = true) summarised by a sha256.

Usage: POCKETLM_LLAMACPP_VOCABS=models/llamacpp-vocabs POCKETLM_DEMO_MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf \
       python3 scripts/make_llamacpp_tokenizer_goldens.py > engine/tests/golden/tokenizer_llamacpp.json
"""
import ctypes
import hashlib
import json
import os
import sys

import gguf
import llama_cpp

assert llama_cpp.__version__ == "0.3.36", llama_cpp.__version__

TEXTS = [
    "Hello world",
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "a<|endoftext|>b <s> </s> <|end_of_text|>",
    "<|fim_prefix|>def<|fim_suffix|>x<|fim_middle|>",
]


def silence():
    cb = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)(lambda *a: None)
    llama_cpp.llama_log_set(cb, None)
    return cb


def describe(path):
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(path.encode(), params)
    assert model, path
    v = llama_cpp.llama_model_get_vocab(model)
    n = llama_cpp.llama_vocab_n_tokens(v)
    tok = lambda t: None if t < 0 else t

    def tokenize(text, add_special, parse_special):
        b = text.encode()
        buf = (llama_cpp.llama_token * (len(b) + 8))()
        k = llama_cpp.llama_tokenize(v, b, len(b), buf, len(buf), add_special, parse_special)
        assert k >= 0
        return list(buf[:k])

    h = hashlib.sha256()
    buf = ctypes.create_string_buffer(4096)
    for i in range(n):
        k = llama_cpp.llama_token_to_piece(v, i, buf, len(buf), 0, True)
        assert k >= 0
        h.update(k.to_bytes(4, "little") + buf.raw[:k])
    out = {
        "n_vocab": n,
        "bos": tok(llama_cpp.llama_vocab_bos(v)),
        "eos": tok(llama_cpp.llama_vocab_eos(v)),
        "eot": tok(llama_cpp.llama_vocab_eot(v)),
        "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(v)),
        "add_eos": bool(llama_cpp.llama_vocab_get_add_eos(v)),
        "eog": [i for i in range(n) if llama_cpp.llama_vocab_is_eog(v, i)],
        # llama.cpp's control/unknown attribute (after its fixes): what is hidden unless special = true.
        "control": [i for i in range(n) if llama_cpp.llama_vocab_is_control(v, i)],
        "pieces_sha256": h.hexdigest(),
        "texts": [
            {"text": t, "add_special": a, "parse_special": p, "ids": tokenize(t, a, p)}
            for t in TEXTS for a in (False, True) for p in (False, True)
        ],
    }
    llama_cpp.llama_model_free(model)
    return out


def main():
    keep = silence()
    llama_cpp.llama_backend_init()
    vocab_dir = os.environ["POCKETLM_LLAMACPP_VOCABS"]
    files = {}
    for name in sorted(os.listdir(vocab_dir)):
        if not name.endswith(".gguf"):
            continue
        r = gguf.GGUFReader(os.path.join(vocab_dir, name))
        if r.fields["tokenizer.ggml.model"].contents() != "gpt2":
            continue
        files[name] = describe(os.path.join(vocab_dir, name))
    files["demo"] = describe(os.environ["POCKETLM_DEMO_MODEL"])
    json.dump({"reference": f"llama-cpp-python {llama_cpp.__version__}", "files": files}, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
    del keep


if __name__ == "__main__":
    main()
