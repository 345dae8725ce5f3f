"""The project's own character-level tokenizer, for the toy models and the tests' tiny models.

One id per character of printable ASCII plus newline, the format tags of spec section 1 as single special
ids, and Qwen-style chat markers. It is a plain `tokenizer.json` (HF `tokenizers`), so transformers and vLLM
load it like any other tokenizer, with no remote code.
"""

from __future__ import annotations

import string
from pathlib import Path

from harness.trajectory import SPECIAL_TOKENS

PAD_TOKEN = "<|endoftext|>"
UNK_TOKEN = "<unk>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"  # end of a turn = end of sequence for generation
THINK_TAGS = ("<think>", "</think>")  # Qwen3 thinking mode: ordinary (non-special) single-id tokens
CONTROL_TOKENS = (PAD_TOKEN, UNK_TOKEN, IM_START, IM_END)
CHARACTERS = "\n" + "".join(c for c in string.printable if c.isprintable())  # 95 printable + newline

# Qwen3-style template. The generation prompt stops after "assistant\n": the model writes <think> itself.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def char_vocab() -> dict[str, int]:
    """Token -> id. Order: control tokens, think tags, the 12 format tags, then characters."""
    tokens = [*CONTROL_TOKENS, *THINK_TAGS, *SPECIAL_TOKENS, *CHARACTERS]
    return {tok: i for i, tok in enumerate(tokens)}


def build_char_tokenizer(out_dir: str | Path | None = None):
    """Build (and with `out_dir`, save) the character-level tokenizer as a `PreTrainedTokenizerFast`."""
    from tokenizers import AddedToken, Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = char_vocab()
    # BPE with no merges = one id per character; ~4x faster to encode than a per-character pre-tokenizer.
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK_TOKEN))
    core.decoder = decoders.Fuse()
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in CONTROL_TOKENS])
    core.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TAGS])
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        clean_up_tokenization_spaces=False,
        model_max_length=65536,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    if out_dir is not None:
        tokenizer.save_pretrained(str(out_dir))
    return tokenizer
