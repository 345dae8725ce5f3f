"""Trie packing without a model: units match the rollout's requests, the tree, labels and Euler times."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.formats import get_format
from harness.tokenizer import build_char_tokenizer
from trainers.sft.packing import IGNORE_INDEX, pack, pack_units, supervised_pairs
from trainers.sft.units import Unit, cut_units

TOK = build_char_tokenizer()
TW = get_format("threadweaver")
PROMPT = "<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n"


def thread_request_suffix(n: str) -> str:
    return "".join(TW.branch_header(n, 1, joined=False))


def cut(text: str, join: str = "model", fmt=TW) -> list[Unit]:
    return cut_units(encode(PROMPT), text, fmt, join, TOK)[1]


def encode(text: str) -> list[int]:
    return TOK.encode(text, add_special_tokens=False)


def decode(ids) -> str:
    return TOK.decode(list(ids), skip_special_tokens=False)


def render(blocks: list[list[str]], seq: str = "s") -> str:
    """A trajectory with one block per entry (its thread texts), sequential text around each block."""
    text = f"<think>{seq}0"
    for b, threads in enumerate(blocks):
        outlines = "".join(f"<Outline>{i}: plan {i}</Outline>\n" for i in range(1, len(threads) + 1))
        text += f" <Parallel>\n<Outlines>\n{outlines}</Outlines>"
        text += "".join(
            ("\n" if i == 1 else "") + f"<Thread>\n{i}:{body}</Thread>" for i, body in enumerate(threads, 1)
        )
        text += "\n</Parallel>" + f" {seq}{b + 1}"
    return text + " \\boxed{7}<|im_end|>"


def example(blocks) -> list[Unit]:
    """Units of the trajectory (the text is the same in both join modes; only the cut differs)."""
    return cut(render(blocks))


@pytest.mark.parametrize("join", ["model", "orchestrator"])
def test_units_are_the_rollout_requests(join):
    units = cut(render([[" aa", " b"]]), join)
    texts = [(decode(u.prompt_ids)[len(PROMPT) :], decode(u.completion_ids)) for u in units]
    context = "<think>s0 <Parallel>\n<Outlines>\n<Outline>1: plan 1</Outline>\n<Outline>2: plan 2</Outline>\n</Outlines>"
    joined = context + "\n<Thread>\n1: aa</Thread><Thread>\n2: b</Thread>" + TW.after_join(join)
    tail = " s1 \\boxed{7}<|im_end|>"
    assert texts[0] == ("", context)
    assert texts[1] == (context + thread_request_suffix("1"), " aa</Thread>")
    assert texts[2] == (context + thread_request_suffix("2"), " b</Thread>")
    assert texts[3] == (joined, ("</Parallel>" if join == "model" else "") + tail)
    assert texts[4] == ("", render([[" aa", " b"]]))  # whole trajectory
    assert len(units) == 5


def test_sequential_trajectory_is_one_unit():
    units = cut(render([]))
    assert len(units) == 1 and decode(units[0].completion_ids).endswith("<|im_end|>")


def test_decode_reads_dotted_numbers():
    text = ("<Parallel>\n<Outlines>\n<Outline>1.1: p</Outline>\n</Outlines>\n<Thread>\n1.1: w</Thread>"
            "\n</Parallel>end")  # fmt: skip
    units = cut(text)
    assert [decode(u.completion_ids) for u in units] == [
        "<Parallel>\n<Outlines>\n<Outline>1.1: p</Outline>\n</Outlines>", " w</Thread>", "</Parallel>end", text,
    ]  # fmt: skip


def test_malformed_stops_cutting_at_the_first_irregularity():
    good = render([[" a", " b"], [" c", " d"]])
    bad = good.replace("</Thread>\n</Parallel> s1", "</Thread></Parallel> s1")  # block 1 close differs
    units = cut(bad)
    # first sequential, two threads of block 1, then nothing until the whole trajectory
    assert [decode(u.completion_ids) for u in units[1:3]] == [" a</Thread>", " b</Thread>"]
    assert len(units) == 4 and units[-1].completion_ids == tuple(encode(bad))
    unclosed = good[: good.index(" d</Thread>")] + " d"  # truncated inside the last thread
    units = cut(unclosed)
    assert [decode(u.completion_ids) for u in units][-2] == " c</Thread>"


def _ancestors(row, i):
    return [k for k in range(i + 1) if row.tin[k] <= row.tin[i] and row.tout[i] <= row.tout[k]]


def check_row(units: list[Unit]) -> None:
    """Every unit is a root path; labels = the supervised edges exactly; positions = depth."""
    row = pack_units(units)
    paths = {}
    for i in range(len(row)):
        anc = _ancestors(row, i)
        assert row.position_ids[i] == len(anc) - 1
        assert row.tin[i] == i and row.tout[i] >= i
        paths.setdefault(tuple(row.input_ids[k] for k in anc), []).append(i)
    edges = set()
    for i, label in enumerate(row.labels):
        if label != IGNORE_INDEX:
            prefix = tuple(row.input_ids[k] for k in _ancestors(row, i))
            edges.add((prefix, label))
            # the label is the token of a child in the tree, never merely the next flat token
            assert any(
                row.input_ids[c] == label and _ancestors(row, c)[-2] == i for c in range(i + 1, len(row))
            )
    expected = supervised_pairs(units)
    assert edges == expected and row.num_supervised_tokens == len(expected)
    for unit in units:
        assert all(unit.ids[: j + 1] in paths for j in range(len(unit.ids)))


@pytest.mark.parametrize("join", ["model", "orchestrator"])
@pytest.mark.parametrize("blocks", [[], [[" a", " bb"]], [[" one", " 2", " three"], [" x", " yy"]]])
def test_tree_labels_and_euler_times(blocks, join):
    check_row(cut(render(blocks), join))


def test_conflicting_next_tokens_get_a_copy():
    p = tuple(encode("ab"))
    units = [Unit(p, tuple(encode("xy"))), Unit(p, tuple(encode("xz"))), Unit(p + tuple(encode("x")), ())]
    check_row(units)


def test_pack_keeps_trajectories_apart_and_fits_rows():
    exs = [example([[" a", " b"]]), example([]), example([[" c", " dd", " e"]]), example([])]
    rows = pack(exs, max_tokens=400)
    assert all(len(r) <= 400 for r in rows) and sum(r.num_trajectories for r in rows) == 4
    for row in rows:
        roots = [i for i in range(len(row)) if row.position_ids[i] == 0]
        assert len(roots) == row.num_trajectories  # one tree per trajectory, each rooted at its prompt
        for i in range(len(row)):
            owner = max(r for r in roots if r <= i)
            assert all(k >= owner for k in _ancestors(row, i))
    with pytest.raises(Exception, match="max_tokens"):
        pack(exs, max_tokens=50)


@settings(max_examples=40, deadline=None)
@given(
    blocks=st.lists(st.lists(st.text("abc ", min_size=0, max_size=6), min_size=1, max_size=4), max_size=3),
    join=st.sampled_from(["model", "orchestrator"]),
)
def test_random_tree_shapes(blocks, join):
    check_row(cut(render(blocks), join))
