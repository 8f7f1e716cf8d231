#!/usr/bin/env python3
"""Golden renderings of chat templates by Hugging Face transformers 4.57.6 (the reference), for
engine/tests/chat_template.rs.

Templates come from where the tests find them:
  - gguf:     the demo model's tokenizer.chat_template (SmolLM2, ChatML), $POCKETLM_DEMO_MODEL;
  - hf:NAME:  tokenizer_config.json of $POCKETLM_TOKENIZERS/NAME (Llama 3, Llama 3.1, Qwen3; scripts/fetch-test-tokenizers.sh),
              rendered through AutoTokenizer.apply_chat_template itself;
  - llamacpp:FILE: $POCKETLM_LLAMACPP_VOCABS/templates/FILE (model authors' templates collected in llama.cpp's
              models/templates; scripts/fetch-llamacpp-vocabs.sh), rendered with render_jinja_template, which
              apply_chat_template calls, given the model's bos/eos texts;
  - inline:   a small template of ours exercising tojson, loop controls, Python string methods, strftime_now and
              raise_exception.
strftime_now is pinned to 2024-07-26 13:05:09 (the tests pass the same instant). Each case stores the sha256 of the
template source, so a changed asset fails with a hint instead of a confusing diff.

Usage: POCKETLM_DEMO_MODEL=... POCKETLM_TOKENIZERS=... POCKETLM_LLAMACPP_VOCABS=... \
       python3 scripts/make_chat_template_goldens.py > engine/tests/golden/chat_templates.json
"""
import datetime as _dt
import hashlib
import json
import os
import sys

import transformers
from transformers.utils import chat_template_utils

assert transformers.__version__ == "4.57.6", transformers.__version__

NOW = _dt.datetime(2024, 7, 26, 13, 5, 9)
NOW_UNIX = 1721999109  # the same instant, UTC


class _FixedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return NOW


chat_template_utils.datetime = _FixedDatetime

INLINE = (
    "{%- set ns = namespace(n=0) -%}"
    "{%- for m in messages -%}"
    "{%- if m.role == 'system' %}{% continue %}{% endif -%}"
    "{%- if m.content.strip() == 'STOP' %}{% break %}{% endif -%}"
    "{%- if m.role not in ['user', 'assistant'] %}{{ raise_exception('Unknown role: ' + m.role) }}{% endif -%}"
    "{%- set ns.n = ns.n + 1 -%}"
    "[{{ loop.index0 }}:{{ m.role.upper() }}] {{ m.content.strip().replace('a', 'A') }}"
    " {{ m.content.split(' ') | tojson }} {{ m.content.startswith('Hi') }} {{ m.content.endswith('!') }}"
    " {{ m | tojson }} {{ {'k': [1, 2.5, none, true], 'u': 'é\"\\n'} | tojson(indent=2) }}\n"
    "{%- endfor -%}"
    "count={{ ns.n }} date={{ strftime_now('%d %b %Y %H:%M') }} {{ messages | length }}"
    "{%- if add_generation_prompt %} GEN{% endif %}"
)

CONVERSATIONS = {
    "single": [{"role": "user", "content": "Hello!"}],
    "system": [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "What is 2+2?"},
    ],
    "multi": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another?"},
    ],
    "unicode": [
        {"role": "user", "content": "  padded text \n"},
        {"role": "assistant", "content": "Sure: `x = 1`\n\n- é ü 中文 🙂"},
        {"role": "user", "content": 'and <b>tags</b> & "quotes" {{ not jinja }}'},
    ],
    "think": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>\nThe user greets.\n</think>\n\nHello!"},
        {"role": "user", "content": "How are you?"},
    ],
    "stop": [
        {"role": "user", "content": "Hi there!"},
        {"role": "system", "content": "ignored"},
        {"role": "assistant", "content": "a banana"},
        {"role": "user", "content": " STOP "},
        {"role": "user", "content": "never shown"},
    ],
    "badrole": [{"role": "user", "content": "Hi"}, {"role": "tool", "content": "x"}],
}

LLAMA = ("<|begin_of_text|>", "<|eot_id|>")
QWEN = ("", "<|im_end|>")
# (name, source, bos, eos, conversations, extra kwargs variants)
TEMPLATES = [
    ("smollm2", "gguf", None, None, ["single", "system", "multi", "unicode"], [{}]),
    ("llama3", "hf:llama3", None, None, ["single", "system", "multi", "unicode"], [{}]),
    ("llama3_1", "hf:llama3_1", None, None, ["single", "system", "multi", "unicode"], [{}]),
    ("qwen3", "hf:qwen3", None, None, ["single", "system", "multi", "unicode", "think"], [{}, {"enable_thinking": False}]),
    ("llama-3.1-official", "llamacpp:meta-llama-Llama-3.1-8B-Instruct.jinja", *LLAMA, ["single", "system", "multi", "unicode"], [{}]),
    ("llama-3.2-official", "llamacpp:meta-llama-Llama-3.2-3B-Instruct.jinja", *LLAMA, ["single", "system", "multi", "unicode"], [{}, {"date_string": "01 Jan 2025"}]),
    ("llama-3.3-official", "llamacpp:meta-llama-Llama-3.3-70B-Instruct.jinja", *LLAMA, ["single", "system", "multi"], [{}]),
    ("qwen2.5", "llamacpp:Qwen-Qwen2.5-7B-Instruct.jinja", *QWEN, ["single", "system", "multi", "unicode"], [{}]),
    ("qwen3-0.6b", "llamacpp:Qwen-Qwen3-0.6B.jinja", *QWEN, ["single", "system", "multi", "think"], [{}, {"enable_thinking": False}]),
    ("smollm3", "llamacpp:HuggingFaceTB-SmolLM3-3B.jinja", "", "<|im_end|>", ["single", "system", "multi"], [{}, {"enable_thinking": False}]),
    ("inline", "inline", "<s>", "</s>", ["single", "multi", "unicode", "stop", "badrole"], [{}]),
]


def read_source(source):
    if source == "gguf":
        import gguf

        r = gguf.GGUFReader(os.environ["POCKETLM_DEMO_MODEL"])
        tokens = r.fields["tokenizer.ggml.tokens"].contents()
        bos = tokens[r.fields["tokenizer.ggml.bos_token_id"].contents()]
        eos = tokens[r.fields["tokenizer.ggml.eos_token_id"].contents()]
        return r.fields["tokenizer.chat_template"].contents(), bos, eos, None
    if source.startswith("hf:"):
        d = os.path.join(os.environ["POCKETLM_TOKENIZERS"], source[3:])
        cfg = json.load(open(os.path.join(d, "tokenizer_config.json"), encoding="utf-8"))
        tok = transformers.AutoTokenizer.from_pretrained(d)
        return cfg["chat_template"], cfg.get("bos_token") or "", cfg.get("eos_token") or "", tok
    if source.startswith("llamacpp:"):
        path = os.path.join(os.environ["POCKETLM_LLAMACPP_VOCABS"], "templates", source[len("llamacpp:"):])
        return open(path, encoding="utf-8").read(), None, None, None
    if source == "inline":
        return INLINE, None, None, None
    raise ValueError(source)


def main():
    cases = []
    for name, source, bos, eos, convs, extras in TEMPLATES:
        src, src_bos, src_eos, tok = read_source(source)
        bos = src_bos if bos is None else bos
        eos = src_eos if eos is None else eos
        for conv in convs:
            for extra in extras:
                for agp in (False, True):
                    msgs = CONVERSATIONS[conv]
                    case = {
                        "template": name,
                        "source": source,
                        "sha256": hashlib.sha256(src.encode("utf-8")).hexdigest(),
                        "bos_token": bos,
                        "eos_token": eos,
                        "conversation": conv,
                        "messages": msgs,
                        "add_generation_prompt": agp,
                        "extra": extra,
                    }
                    if source == "inline":
                        case["template_source"] = src
                    try:
                        if tok is not None:
                            out = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=agp, **extra)
                        else:
                            out = chat_template_utils.render_jinja_template(
                                conversations=[msgs], chat_template=src, add_generation_prompt=agp,
                                bos_token=bos, eos_token=eos, **extra,
                            )[0][0]
                        case["expected"] = out
                    except Exception as e:  # the template refused the conversation
                        case["error"] = f"{type(e).__name__}: {e}"
                    cases.append(case)
    json.dump(
        {"reference": f"transformers {transformers.__version__} apply_chat_template / render_jinja_template",
         "now_unix": NOW_UNIX, "cases": cases},
        sys.stdout, ensure_ascii=False, indent=1,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
