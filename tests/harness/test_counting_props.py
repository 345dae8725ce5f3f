"""Property tests for harness/counting.py and the ThreadWeaver parser over generated and mutated
trajectories (hypothesis)."""

from __future__ import annotations

import functools
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.counting import count_ids, fallback_encode, fallback_tag_ids, measure_text
from harness.formats.threadweaver import (
    FORMAT_TAGS,
    SPECIAL_TOKENS,
    parse_trajectory,
    serialize_trajectory,
    validate_trajectory,
)

FALLBACK_TAG_IDS = fallback_tag_ids()
pytestmark = pytest.mark.core

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TAG_SPLIT = re.compile("(" + "|".join(map(re.escape, SPECIAL_TOKENS)) + ")")

WS = st.sampled_from(["", "\n", " ", "\n\n"])
PLAIN = st.text(alphabet="ab 12.:\n<>/=", max_size=12)  # no capitals: never forms a tag
WORDS = st.text(alphabet="ab 12.=+", min_size=1, max_size=10).filter(str.strip)


@st.composite
def block(draw) -> tuple[str, int]:
    """A valid block in a random whitespace layout, and its number of threads."""
    n = draw(st.integers(1, 4))
    outlines = "".join(f"<Outline>{i}: {draw(WORDS)}</Outline>{draw(WS)}" for i in range(1, n + 1))
    threads = "".join(f"<Thread>{draw(WS)}{i}:{draw(PLAIN)}</Thread>{draw(WS)}" for i in range(1, n + 1))
    return f"<Parallel>{draw(WS)}<Outlines>{draw(WS)}{outlines}</Outlines>{draw(WS)}{threads}</Parallel>", n


@st.composite
def valid_trajectory(draw) -> tuple[str, list[int]]:
    parts, threads = [draw(PLAIN)], []
    for _ in range(draw(st.integers(0, 3))):
        text, n = draw(block())
        parts += [text, draw(PLAIN)]
        threads.append(n)
    return "".join(parts), threads


@st.composite
def mutated(draw) -> str:
    """A valid trajectory with tags deleted, duplicated, swapped or inserted at random."""
    text, _ = draw(valid_trajectory())
    pieces = [p for p in TAG_SPLIT.split(text) if p]
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert"]))
        tags = [k for k, p in enumerate(pieces) if p in SPECIAL_TOKENS]
        if op == "insert" or not tags:
            pieces.insert(draw(st.integers(0, len(pieces))), draw(st.sampled_from(SPECIAL_TOKENS)))
            continue
        k = draw(st.sampled_from(tags))
        if op == "delete":
            del pieces[k]
        elif op == "duplicate":
            pieces.insert(k, pieces[k])
        else:
            j = draw(st.integers(0, len(pieces) - 1))
            pieces[k], pieces[j] = pieces[j], pieces[k]
    return "".join(pieces)


def reference_count(tokens: list[str]) -> tuple[int, int, list[int]]:
    """A slow token-by-token reading of the issue-2 rules, written independently of the module."""
    crit, per_block = 0, []
    state = "seq"
    own = longest = cur = n = 0
    for tok in tokens:
        if state == "seq":
            crit += 1
            if tok == "<Parallel>":
                state, own, longest, n = "block", 0, 0, 0
        elif state == "block":
            own += 1
            if tok == "<Thread>":
                state, cur = "thread", 0
            elif tok == "</Parallel>":
                crit += own + longest
                per_block.append(n)
                state = "seq"
        elif tok in ("</Thread>", "</Parallel>"):
            own += 1
            n += 1
            longest = max(longest, cur)
            state = "block"
            if tok == "</Parallel>":
                crit += own + longest
                per_block.append(n)
                state = "seq"
        else:
            cur += 1
    if state != "seq":
        if state == "thread":
            n += 1
            longest = max(longest, cur)
        crit += own + longest
        per_block.append(n)
    return len(tokens), crit, per_block


def fallback_tokens(text: str) -> list[str]:
    return [SPECIAL_TOKENS[i] if i < len(SPECIAL_TOKENS) else "x" for i in fallback_encode(text)]


def check_invariants(text: str) -> None:
    m = measure_text(text)  # must not raise
    assert 0 <= m.critical_path_tokens <= m.total_tokens
    if m.num_blocks == 0:
        assert m.critical_path_tokens == m.total_tokens and not m.is_parallel
    assert (m.total_tokens, m.critical_path_tokens, m.threads_per_block) == reference_count(
        fallback_tokens(text)
    )
    assert count_ids(fallback_encode(text), FALLBACK_TAG_IDS, text=text, unit=m.count_unit) == m
    t = parse_trajectory(text)
    assert serialize_trajectory(t) == text  # exact even for malformed text
    assert [len(b.threads) for b in t.blocks] == m.threads_per_block  # parser and counter agree
    assert m.valid == (not validate_trajectory(t)) and m.valid == (not m.violations)


@SETTINGS
@given(valid_trajectory())
def test_valid_trajectories(case):
    text, threads = case
    check_invariants(text)
    m = measure_text(text)
    assert m.valid, m.violations
    assert m.threads_per_block == threads and m.num_blocks == len(threads)
    assert serialize_trajectory(parse_trajectory(text)) == text


@SETTINGS
@given(mutated())
def test_mutated_trajectories(text):
    check_invariants(text)


@settings(max_examples=20, deadline=None)
@given(valid_trajectory())
def test_truncation_at_every_position(case):
    text, _ = case
    for i in range(len(text) + 1):
        check_invariants(text[:i])


@SETTINGS
@given(st.lists(st.one_of(st.sampled_from(SPECIAL_TOKENS), PLAIN), max_size=30))
def test_tag_soup(pieces):
    check_invariants("".join(pieces))


@SETTINGS
@given(st.lists(st.sampled_from(FORMAT_TAGS + ("x",)), max_size=40))
def test_count_tokens_matches_reference_on_ids(tokens):
    ids = [FALLBACK_TAG_IDS.get(t, 99) for t in tokens]
    m = count_ids(ids, FALLBACK_TAG_IDS)
    assert (m.total_tokens, m.critical_path_tokens, m.threads_per_block) == reference_count(tokens)
    assert m.valid is None


@functools.cache
def char_tokenizer():
    from harness.tokenizer import build_char_tokenizer

    return build_char_tokenizer()


@settings(max_examples=60, deadline=None)
@given(mutated())
def test_char_tokenizer_matches_reference(text):
    pytest.importorskip("transformers")
    tok = char_tokenizer()
    ids = tok.encode(text, add_special_tokens=False)
    tokens = tok.convert_ids_to_tokens(ids)
    m = measure_text(text, tok)
    assert (m.total_tokens, m.critical_path_tokens, m.threads_per_block) == reference_count(tokens)
    assert m.valid == (not validate_trajectory(parse_trajectory(text)))
