"""Formats as plug-ins: Parallel-R1's runtime loop exactly (scripted engine), its counter and checker, and
nested blocks (depth 2 and 3) in the rollout and the counter, hand-counted (formats.md section 3).

Core only: the raw character tokenizer, no transformers."""

from __future__ import annotations

import pytest

from harness.counting import count_ids, fallback_encode, fallback_tag_ids, measure_text
from harness.engines.scripted import ScriptedEngine
from harness.formats import FORMATS, get_format
from harness.formats.threadweaver import ThreadWeaverFormat
from harness.rollout import RolloutConfig, rollout_sync
from harness.tokenizer import build_char_tokenizer

pytestmark = pytest.mark.core
TOK = build_char_tokenizer(formats=("threadweaver", "parallel-r1"), raw=True)
P = "Q\n"
TRUNK = "We need it. <Parallel>"
PATHS = ["\nway one\n</Path>", "\nway two long\n</Path>"]
JOINED = TRUNK + "<Path>" + PATHS[0] + "<Path>" + PATHS[1] + "</Parallel>\n<Summary>"
SUMMARY = "\nsame\n</Summary>"
TAIL = "\nFinal Answer: 7"
PR1_TEXT = JOINED + SUMMARY + TAIL


def pr1_model(paths=PATHS, summary=SUMMARY, tail=TAIL):
    """The "model" of the Parallel-R1 tests: a trunk that opens a block, paths, a summary, an answer."""
    seen = {"paths": 0}

    def model(prompt: str) -> str:
        if prompt == P:
            return TRUNK
        if prompt.endswith("<Path>"):
            seen["paths"] += 1
            return paths[(seen["paths"] - 1) % len(paths)]
        if prompt.endswith("<Summary>"):
            return summary
        return tail

    return model


def run(model, config: RolloutConfig, prompt: str = P):
    engine = ScriptedEngine(model, tokenizer=TOK)
    (rec,) = rollout_sync(engine, [TOK.encode(prompt)], config)
    return engine, rec


# ------------------------------------------------------------------------------------------ Parallel-R1
def test_parallel_r1_loop_exact_prompts_join_and_summary():
    engine, rec = run(pr1_model(), RolloutConfig(format="parallel-r1", temperature=0.0))
    assert engine.prompts == [P, P + TRUNK + "<Path>", P + TRUNK + "<Path>", P + JOINED, P + JOINED + SUMMARY]
    assert rec.response == PR1_TEXT and rec.end_reason == "eos" and rec.faults == []
    assert [u.kind for u in rec.units] == ["trunk", "branch", "branch", "summary", "trunk"]
    # paths run at temperature 1.0 whatever the run's sampling (the authors' loop); the rest greedy
    assert [r.temperature for r in engine.requests] == [0.0, 1.0, 1.0, 0.0, 0.0]
    # the trunk stops at <Parallel>, paths at </Path>, the summary at </Summary> (single ids here)
    ids = {t: TOK.convert_tokens_to_ids(t) for t in ("<Parallel>", "</Path>", "</Summary>")}
    assert [r.stop_token_ids for r in engine.requests][:4] == [[ids["<Parallel>"]], [ids["</Path>"]],
                                                              [ids["</Path>"]], [ids["</Summary>"]]]  # fmt: skip
    assert rec.valid is True and rec.metrics.threads_per_block == [2]
    # record-first counting equals counting the text with the same tokenizer (formats.md section 3)
    assert rec.metrics == measure_text(rec.response, TOK, "parallel-r1")
    assert rec.metrics.total_tokens == len(rec.response_ids)
    # units carry what the engine saw: shared context + inserted header
    u = rec.units[2]
    assert TOK.decode(rec.prompt_ids + rec.response_ids[: u.context_tokens - len(rec.prompt_ids)] + u.inserted_ids) \
        == P + TRUNK + "<Path>"  # fmt: skip


def test_parallel_r1_counts_by_hand():
    # fallback tokens: "We need it. " 7 | <Parallel> <Path> ... </Path> <Path> ... </Path> </Parallel>: own 6,
    # paths 5 and 7 | "\n" <Summary> "\nsame\n" </Summary> "\nFinal Answer: 7": 1 + 1 + 3 + 1 + 7
    m = measure_text(PR1_TEXT, fmt="parallel-r1")
    assert (m.total_tokens, m.critical_path_tokens, m.num_blocks, m.threads_per_block) == (38, 33, 1, [2])
    assert m.valid and count_ids(fallback_encode(PR1_TEXT, "parallel-r1"), fallback_tag_ids("parallel-r1"),
                                 "parallel-r1", PR1_TEXT, m.count_unit) == m  # fmt: skip


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (TRUNK + "<Path>a</Path></Parallel>\n<Summary>s</Summary>", "too_few_paths"),
        (TRUNK + "<Path>a</Path><Path>b</Path></Parallel>\nno summary", "missing_summary"),
        (TRUNK + "<Path>a <Parallel></Path><Path>b</Path></Parallel><Summary>s</Summary>", "nested_block"),
        (TRUNK + "<Path>a</Path> text <Path>b</Path></Parallel><Summary>s</Summary>", "unexpected_text"),
        (TRUNK + "<Path>a</Path><Path>b", "unclosed_path"),
        ("".join(TRUNK + "<Path>a</Path><Path>b</Path></Parallel><Summary>s</Summary>" for _ in range(5)),
         "too_many_blocks"),
    ],
)  # fmt: skip
def test_parallel_r1_checker(text, code):
    assert code in [v.code for v in get_format("parallel-r1").validate(text)]


def test_parallel_r1_ends_right_after_the_fourth_block():
    def model(prompt: str) -> str:
        if prompt.endswith("<Path>"):
            return " p</Path>"
        if prompt.endswith("<Summary>"):
            return " s</Summary>"
        return " again <Parallel>"

    engine, rec = run(model, RolloutConfig(format="parallel-r1"))
    assert rec.end_reason == "max_blocks" and rec.metrics.num_blocks == 4 and rec.engine_calls == 16
    assert rec.response.endswith("<Summary> s</Summary>") and rec.truncated


def test_parallel_r1_closes_what_the_model_left_open(monkeypatch):
    class ShortPaths(type(get_format("parallel-r1"))):
        max_branch_tokens = 3

    monkeypatch.setitem(FORMATS, "parallel-r1", ShortPaths())
    _, rec = run(pr1_model(paths=["\nthis path is long\n</Path>"], summary="\nsame"),
                 RolloutConfig(format="parallel-r1"))  # fmt: skip
    assert rec.response.startswith(TRUNK + "<Path>\nth</Path><Path>\nth</Path></Parallel>\n<Summary>\nsame</Summary>")
    assert rec.end_reason == "eos" and rec.response.endswith(TAIL)  # the trunk went on after both
    assert any("reached 3 tokens" in f for f in rec.faults) and any("summary closed" in f for f in rec.faults)
    assert rec.valid is False and rec.metrics.total_tokens == len(rec.response_ids)


# ------------------------------------------------------------------------------------------ nesting
class NestedThreadWeaver(ThreadWeaverFormat):
    """ThreadWeaver's tags with blocks allowed inside threads (a test format for the nesting machinery;
    NPR and Multiverse nest this way)."""

    name = "tw-nested"
    max_depth = 3


DEPTH2 = ("go <Parallel><Outlines><Outline>1: a</Outline><Outline>2: b</Outline></Outlines><Thread>1: x "
          "<Parallel><Outlines><Outline>1: p</Outline><Outline>2: q</Outline></Outlines><Thread>1: pp qq</Thread>"
          "<Thread>2: r</Thread></Parallel> y</Thread><Thread>2: z</Thread></Parallel> end")  # fmt: skip
DEPTH3 = ("<Parallel><Outlines><Outline>1: a</Outline></Outlines><Thread>1: <Parallel><Outlines><Outline>1: b"
          "</Outline></Outlines><Thread>1: <Parallel><Outlines><Outline>1: c</Outline><Outline>2: d</Outline>"
          "</Outlines><Thread>1: cc</Thread><Thread>2: d</Thread></Parallel></Thread></Parallel></Thread>"
          "</Parallel>")  # fmt: skip


@pytest.fixture
def nested(monkeypatch):
    fmt = NestedThreadWeaver()
    monkeypatch.setitem(FORMATS, fmt.name, fmt)
    return fmt


@pytest.mark.parametrize(
    ("text", "max_depth", "want"),
    [
        # hand-counted with the fallback counter (tags 1; letter runs, digits, spaces, other characters 1):
        # outer own part 20, inner own part 20, inner threads 6 and 4, outer thread 1 = 5 + inner + 2
        (DEPTH2, 3, (65, 57, [2, 2])),
        # three levels of one thread each, the innermost with threads of 4 and 4 tokens: own parts 12+12+20
        (DEPTH3, 3, (58, 54, [1, 1, 2])),
        # the same text where the depth limit is 2: the innermost <Parallel> is text and its first </Thread>
        # closes the middle thread
        (DEPTH3, 2, (58, 54, [1, 2])),
        # ThreadWeaver (one level): the inner block is thread text
        (DEPTH2, 1, (65, 61, [2])),
    ],
)
def test_nested_blocks_counted_by_hand(monkeypatch, text, max_depth, want):
    class Limited(ThreadWeaverFormat):
        name = "tw-limited"

    Limited.max_depth = max_depth
    monkeypatch.setitem(FORMATS, "tw-limited", Limited())
    m = measure_text(text, fmt="tw-limited")
    assert (m.total_tokens, m.critical_path_tokens, m.threads_per_block) == want


def nested_model(prompt: str) -> str:
    """Trunk: one block of two threads; thread 1 opens its own block of two threads."""
    if prompt == P:
        return "go <Parallel><Outlines><Outline>1: a</Outline><Outline>2: b</Outline></Outlines>"
    if prompt.endswith("<Thread>\n1:") and prompt.count("<Parallel>") == 1:
        return " x <Parallel><Outlines><Outline>1: p</Outline><Outline>2: q</Outline></Outlines>"
    if prompt.endswith("<Thread>\n2:") and prompt.count("<Parallel>") == 1:
        return " z</Thread>"
    if prompt.endswith("<Thread>\n1:"):
        return " pp qq</Thread>"
    if prompt.endswith("<Thread>\n2:"):
        return " r</Thread>"
    if prompt.endswith("<Thread>\n2: r</Thread>\n"):  # thread 1 continues after its inner join
        return "</Parallel> y</Thread>"
    return "</Parallel> end"


def test_nested_rollout_prompts_counts_and_units(nested):
    engine, rec = run(nested_model, RolloutConfig(format="tw-nested", join="model"))
    outer = P + "go <Parallel><Outlines><Outline>1: a</Outline><Outline>2: b</Outline></Outlines>"
    inner = outer + "\n<Thread>\n1: x <Parallel><Outlines><Outline>1: p</Outline><Outline>2: q</Outline></Outlines>"
    assert engine.prompts[:4] == [P, outer + "\n<Thread>\n1:", outer + "\n<Thread>\n2:", inner + "\n<Thread>\n1:"]
    assert engine.prompts[4] == inner + "\n<Thread>\n2:"
    # thread 1 continues on its own context: outer context + its header + its text + the inner join
    assert engine.prompts[5] == inner + "\n<Thread>\n1: pp qq</Thread><Thread>\n2: r</Thread>\n"
    assert rec.response == (
        "go <Parallel><Outlines><Outline>1: a</Outline><Outline>2: b</Outline></Outlines>\n<Thread>\n1: x "
        "<Parallel><Outlines><Outline>1: p</Outline><Outline>2: q</Outline></Outlines>\n<Thread>\n1: pp qq"
        "</Thread><Thread>\n2: r</Thread>\n</Parallel> y</Thread><Thread>\n2: z</Thread>\n</Parallel> end"
    )
    assert rec.end_reason == "eos" and rec.faults == []
    assert [(u.kind, u.depth) for u in rec.units] == [("trunk", 0), ("branch", 1), ("branch", 1), ("branch", 2),
                                                      ("branch", 2), ("branch", 1), ("trunk", 0)]  # fmt: skip
    # record first == the recursive text counter on the same ids
    text_m = measure_text(rec.response, TOK, "tw-nested")
    got = rec.metrics
    assert (got.total_tokens, got.critical_path_tokens, got.threads_per_block) == (
        text_m.total_tokens, text_m.critical_path_tokens, text_m.threads_per_block) == (len(rec.response_ids),
        got.critical_path_tokens, [2, 2])  # fmt: skip
    # a nested unit's prompt is shared context + what the branch saw beyond it
    u = rec.units[5]
    full = rec.prompt_ids + rec.response_ids
    assert TOK.decode(full[: u.context_tokens] + u.inserted_ids) == engine.prompts[5]


def test_a_refused_fork_counts_as_sequential():
    # ThreadWeaver allows one level: a block inside a thread is not forked, it is thread text
    def model(prompt: str) -> str:
        if prompt == P:
            return "<Parallel><Outlines><Outline>1: a</Outline><Outline>2: b</Outline></Outlines>"
        if prompt.endswith("<Thread>\n1:"):
            return " <Parallel><Outlines><Outline>1: p</Outline></Outlines> text</Thread>"
        if prompt.endswith("<Thread>\n2:"):
            return " z</Thread>"
        return "</Parallel> end"

    engine, rec = run(model, RolloutConfig(format="threadweaver"))
    assert len(engine.prompts) == 4 and rec.metrics.threads_per_block == [2]
    assert any("a block inside a branch" in f for f in rec.faults)
    assert rec.metrics.total_tokens == len(rec.response_ids)
