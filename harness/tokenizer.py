"""The project's own character-level tokenizer, for the toy models and the tests' tiny models.

One id per character of printable ASCII plus newline, the format tags of spec section 1 as single special
ids, and Qwen-style chat markers. Optional `extra_tokens` keep longer strings whole ("+9", a fixed
phrase), the way a BPE vocabulary would. It is a plain `tokenizer.json` (HF `tokenizers`), so transformers
and vLLM load it like any other tokenizer, with no remote code.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from pathlib import Path

from harness.formats.threadweaver import SPECIAL_TOKENS

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


def format_tags(formats: Sequence[str]) -> list[str]:
    """The special tokens of the given formats (harness.formats), ThreadWeaver's 12 first, no repeats."""
    from harness.formats import get_format

    tags = list(SPECIAL_TOKENS)
    for name in formats:
        tags += [t for t in get_format(name).special_tokens if t not in tags]
    return tags


def char_vocab(formats: Sequence[str] = ("threadweaver",)) -> dict[str, int]:
    """Token -> id. Order: control tokens, think tags, ThreadWeaver's 12 tags, characters, then the tags of
    the other `formats` (so the ids of a ThreadWeaver-only vocabulary never move)."""
    tags = format_tags(formats)
    tokens = [*CONTROL_TOKENS, *THINK_TAGS, *SPECIAL_TOKENS, *CHARACTERS, *tags[len(SPECIAL_TOKENS) :]]
    return {tok: i for i, tok in enumerate(tokens)}


def check_extra_tokens(extra_tokens: Sequence[str]) -> list[str]:
    """`extra_tokens` as a list, or ValueError naming the first entry that cannot be one: each must be two
    or more printable characters, and all distinct."""
    out = list(extra_tokens)
    for t in out:
        if not isinstance(t, str) or len(t) < 2 or any(c not in CHARACTERS for c in t):
            raise ValueError(f"extra token must be a string of 2+ printable characters, got {t!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"extra tokens must be distinct, got {out!r}")
    return out


def build_char_tokenizer(out_dir: str | Path | None = None, extra_tokens: Sequence[str] = (),
                         formats: Sequence[str] = ("threadweaver",), raw: bool = False):  # fmt: skip
    """Build (and with `out_dir`, save) the character-level tokenizer as a `PreTrainedTokenizerFast`
    (`raw`: as a harness.tokens.RawTokenizer, without transformers: the core's tests).

    The special tokens of `formats` are single ids. Each of `extra_tokens` becomes one id wherever it
    occurs (longest match first), the way a BPE vocabulary keeps frequent strings whole
    (SFTConfig.extra_tokens sets them for from-scratch models)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models

    extra_tokens = check_extra_tokens(extra_tokens)
    vocab = char_vocab(formats)
    # BPE with no merges = one id per character; ~4x faster to encode than a per-character pre-tokenizer.
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK_TOKEN))
    core.decoder = decoders.Fuse()
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in CONTROL_TOKENS])
    core.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TAGS])
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in format_tags(formats)])
    core.add_tokens([AddedToken(t, special=False, normalized=False) for t in extra_tokens])
    if raw:
        from harness.tokens import RawTokenizer

        if out_dir is not None:
            core.save(str(Path(out_dir) / "tokenizer.json"))
        return RawTokenizer(core, eos_token=IM_END, pad_token=PAD_TOKEN)
    from transformers import PreTrainedTokenizerFast

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


def tag_word(tag: str) -> str:
    """The word inside a tag: "</Outlines>" -> "Outlines"."""
    return tag.strip("</>")


def add_format_tokens(tokenizer, model=None, tags: tuple[str, ...] = SPECIAL_TOKENS) -> dict[str, int]:
    """Add `tags` (default: ThreadWeaver's 12; any format's `special_tokens`) as special tokens, one id
    each, and return tag -> id (threadweaver.md section 1).

    With a `model`, the embeddings are resized and each NEW tag's input row (and output row, when the
    output embeddings are not tied) starts as the mean of the rows of its word's tokens ("Parallel").
    Tags already in the vocabulary keep their id and rows.
    """
    from tokenizers import AddedToken

    pieces = {t: tokenizer.encode(tag_word(t), add_special_tokens=False) for t in tags}
    before = {t: tokenizer.convert_tokens_to_ids(t) for t in tags}
    missing = [t for t in tags if before[t] is None or before[t] == tokenizer.unk_token_id]
    if missing:
        tokenizer.add_tokens(
            [AddedToken(t, special=True, normalized=False) for t in missing], special_tokens=True
        )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in tags}
    if model is not None and missing:
        import torch

        emb = model.get_input_embeddings()
        if len(tokenizer) > emb.weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
            emb = model.get_input_embeddings()
        rows = [emb.weight]
        out = model.get_output_embeddings()
        if out is not None and out.weight.data_ptr() != emb.weight.data_ptr():
            rows.append(out.weight)
        with torch.no_grad():
            for w in rows:
                for t in missing:
                    w[ids[t]] = w[pieces[t]].mean(dim=0)
    return ids
