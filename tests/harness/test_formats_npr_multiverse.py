"""NPR and Multiverse as plug-ins (formats.md sections 2.1, 2.3, 3): their runtime loops exactly on the
scripted engine (request prompts, join text, stops, per-fork sampling, nesting, every no-fork case), their
checkers, and record-first counting equal to counting the text.

Core only: the raw character tokenizer, no transformers."""

from __future__ import annotations

import pytest

from harness.counting import measure_text
from harness.engines.scripted import ScriptedEngine
from harness.formats import FORMATS, get_format
from harness.formats.npr import PROMPT_FILE, npr_prompt, plan_ids
from harness.rollout import RolloutConfig, rollout_sync
from harness.tokenizer import build_char_tokenizer

pytestmark = pytest.mark.core
TOK = build_char_tokenizer(formats=tuple(FORMATS), raw=True)
P = "Q\n"


def run(model, config: RolloutConfig, prompt: str = P):
    engine = ScriptedEngine(model, tokenizer=TOK)
    (rec,) = rollout_sync(engine, [TOK.encode(prompt)], config)
    return engine, rec


def ids(*tags: str) -> list[int]:
    return [TOK.convert_tokens_to_ids(t) for t in tags]


# ---------------------------------------------------------------------------------------------------- NPR
G2 = "<guideline>\n<plan>1: a.</plan>\n<plan>2: b.</plan>\n</guideline>"
STEPS = {"\n<step>\n1:": " x is 1.\n</step>", "\n<step>\n2:": " y is 22.\n</step>"}
JOIN = "\n<step>\n1: x is 1.\n</step>\n<step>\n2: y is 22.\n</step>\n<takeaway>\n"
TAIL = "so 23.\n</takeaway>\nThe answer is \\boxed{23}."


def npr_model(trunk=G2, steps=STEPS, tail=TAIL):
    def model(prompt: str) -> str:
        if prompt == P:
            return trunk
        for header, text in steps.items():
            if prompt.endswith(header):
                return text
        if prompt.endswith("<takeaway>\n"):
            return tail
        raise KeyError(prompt)

    return model


def test_npr_loop_exact_prompts_join_stops_and_step_penalty():
    engine, rec = run(npr_model(), RolloutConfig(format="npr", temperature=0.0))
    assert engine.prompts == [P, P + G2 + "\n<step>\n1:", P + G2 + "\n<step>\n2:", P + G2 + JOIN]
    assert rec.response == G2 + JOIN + TAIL and rec.end_reason == "eos" and rec.faults == []
    # every request stops at </guideline>; steps at </step> as well (single ids here)
    assert [r.stop_token_ids for r in engine.requests] == [ids("</guideline>"), ids("</step>", "</guideline>"),
                                                          ids("</step>", "</guideline>"), ids("</guideline>")]  # fmt: skip
    # NPR's engine: steps at repetition penalty 1.02, every other request 1.0; the run's temperature everywhere
    assert [r.repetition_penalty for r in engine.requests] == [1.0, 1.02, 1.02, 1.0]
    assert {r.temperature for r in engine.requests} == {0.0}
    assert [u.kind for u in rec.units] == ["trunk", "branch", "branch", "trunk"]
    assert rec.valid is True and rec.metrics.threads_per_block == [2]
    assert rec.metrics == measure_text(rec.response, TOK, "npr")  # record first == counting the text
    assert rec.metrics.total_tokens == len(rec.response_ids)


def test_npr_nested_step_forks_and_its_continuation_is_back_at_penalty_one():
    inner = "<guideline>\n<plan>1.1: c.</plan>\n<plan>1.2: d.</plan>\n</guideline>"
    inner_join = "\n<step>\n1.1: c.\n</step>\n<step>\n1.2: dd.\n</step>\n<takeaway>\n"
    steps = {"\n<step>\n1:": " split. " + inner, "\n<step>\n2:": " y is 22.\n</step>",
             "\n<step>\n1.1:": " c.\n</step>", "\n<step>\n1.2:": " dd.\n</step>",
             inner_join: "both.\n</takeaway>\n</step>"}  # fmt: skip
    engine, rec = run(npr_model(steps=steps), RolloutConfig(format="npr"))
    step1 = "\n<step>\n1: split. " + inner + inner_join + "both.\n</takeaway>\n</step>"
    outer_join = step1 + "\n<step>\n2: y is 22.\n</step>\n<takeaway>\n"
    assert rec.response == G2 + outer_join + TAIL and rec.end_reason == "eos" and rec.faults == []
    ctx1 = P + G2 + "\n<step>\n1: split. " + inner
    assert sorted(engine.prompts) == sorted([P, P + G2 + "\n<step>\n1:", P + G2 + "\n<step>\n2:",
                                             ctx1 + "\n<step>\n1.1:", ctx1 + "\n<step>\n1.2:", ctx1 + inner_join,
                                             P + G2 + outer_join])  # fmt: skip
    penalty = {p: r.repetition_penalty for p, r in zip(engine.prompts, engine.requests, strict=True)}
    assert penalty[ctx1 + "\n<step>\n1.1:"] == penalty[P + G2 + "\n<step>\n1:"] == 1.02  # forked steps
    assert penalty[ctx1 + inner_join] == penalty[P + G2 + outer_join] == 1.0  # merged continuations
    m = rec.metrics
    assert (m.num_blocks, m.threads_per_block, m.valid) == (2, [2, 2], True)
    assert m == measure_text(rec.response, TOK, "npr")


@pytest.mark.parametrize("n", [0, 6])
def test_npr_width_out_of_range_ends_the_request(n):
    plans = "".join(f"<plan>{i}: p.</plan>" for i in range(1, n + 1))
    trunk = f"<guideline>{plans}</guideline>"
    engine, rec = run(npr_model(trunk=trunk), RolloutConfig(format="npr"))
    assert engine.prompts == [P] and rec.response == trunk
    assert rec.end_reason == "refused_fork" and rec.truncated and not rec.metrics.is_parallel
    assert f"{n} plan ids (NPR forks 1-5): no fork; the request ends here" in rec.faults[0]


def test_npr_width_out_of_range_inside_a_step_ends_that_step_only():
    bad = "<guideline><plan>1.1: c.</plan><plan>1.2: c.</plan><plan>1.3: c.</plan><plan>1.4: c.</plan>" \
          "<plan>1.5: c.</plan><plan>1.6: c.</plan></guideline>"  # fmt: skip
    steps = {**STEPS, "\n<step>\n1:": " " + bad}
    engine, rec = run(npr_model(steps=steps), RolloutConfig(format="npr"))
    assert rec.response == G2 + "\n<step>\n1: " + bad + "</step>" + JOIN[JOIN.index("\n<step>\n2:"):] + TAIL
    assert rec.end_reason == "eos" and len(engine.prompts) == 4
    assert any("6 plan ids" in f for f in rec.faults) and any("branch 1 ended at a refused fork" in f for f in rec.faults)


def test_npr_a_guideline_close_without_guideline_ends_the_request():
    engine, rec = run(npr_model(trunk="thinking </guideline> more"), RolloutConfig(format="npr"))
    assert rec.response == "thinking </guideline>" and rec.end_reason == "refused_fork"


def test_npr_no_fork_under_1024_budget_tokens_then_the_trunk_ends_at_its_next_step_close():
    # 100 characters + the 19-token guideline: 119 tokens; a budget of 1142 leaves 1023 at the trigger
    pad = "x" * 100
    trunk = pad + G2
    after = "\n<step>\n1: done sequentially.\n</step>\n<step>\n2: never run"

    def model(prompt: str) -> str:
        return trunk if prompt == P else after

    engine, rec = run(model, RolloutConfig(format="npr", budget_tokens=1142))
    assert len(engine.prompts) == 2 and engine.prompts[1] == P + trunk
    # the refused fork keeps decoding without the fork trigger, stopping at the next </step>
    assert engine.requests[1].stop_token_ids == ids("</step>") and engine.requests[1].repetition_penalty == 1.0
    assert rec.response == trunk + "\n<step>\n1: done sequentially.\n</step>"
    assert rec.end_reason == "budget" and rec.truncated and rec.metrics.num_blocks == 0
    assert "fork refused, 1023 budget tokens left (< 1024)" in rec.faults[0]
    # one token more of budget (1024 left at the trigger) forks
    engine, rec = run(npr_model(trunk=trunk), RolloutConfig(format="npr", budget_tokens=1143))
    assert rec.metrics.threads_per_block == [2] and rec.faults == []


def test_npr_depth_limit_keeps_a_deeper_guideline_as_step_text(monkeypatch):
    class Shallow(type(get_format("npr"))):
        max_depth = 1

    monkeypatch.setitem(FORMATS, "npr", Shallow())
    inner = "<guideline><plan>1.1: c.</plan></guideline> c.</step>"
    steps = {**STEPS, "\n<step>\n1:": " " + inner}
    engine, rec = run(npr_model(steps=steps), RolloutConfig(format="npr"))
    assert engine.requests[1].stop_token_ids == ids("</step>")  # no fork trigger at the depth limit
    assert rec.response.startswith(G2 + "\n<step>\n1: " + inner + "\n<step>\n2:") and len(engine.prompts) == 4
    assert any("a block inside a branch (nesting depth 1" in f for f in rec.faults)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (G2 + "\n<step>\n1: x</step>\n<takeaway>t</takeaway>", "step_count"),
        ("<guideline><plan>1: a</plan></guideline><takeaway>t</takeaway>", "no_steps"),
        ("<guideline><plan>1: a</plan></guideline><step>1: x</step> text <takeaway>t</takeaway>", "unexpected_text"),
        ("<guideline><plan>1: a</plan></guideline><step>1: x</step>", "unclosed_block"),
        ("<guideline><plan>1: a</plan></guideline><step>1: x", "unclosed_step"),
        ("a </step> b", "unexpected_tag"),
        (G2 + JOIN + "so \\boxed{}</takeaway>", "empty_boxed"),
    ],
)  # fmt: skip
def test_npr_checker(text, code):
    assert code in [v.code for v in get_format("npr").validate(text)]


def test_npr_plan_ids_and_prompt():
    text = "<guideline>old<plan>9: z</plan></guideline> <guideline><plan>1: a</plan><plan> 2.1 : b</plan><plan>1: c</plan>"
    assert plan_ids(text) == ["1", "2.1", "1"]  # after the last guideline, in order, duplicates kept
    assert plan_ids("<plan>1: a</plan>") == []
    body = PROMPT_FILE.read_text(encoding="utf-8")
    assert npr_prompt("What is 1+1?") == "What is 1+1?\n\n" + body.strip() and "<guideline>" in body
    assert get_format("npr").instruction("Q") == [{"role": "user", "content": npr_prompt("Q")}]


# ---------------------------------------------------------------------------------------------- Multiverse
MV_TRUNK = "<Think>\nsplit it.\n<Parallel>\n<Goal>\n<Outline>\n1: a\n</Outline>\n<Outline>\n2: b\n</Outline>\n</Goal>"
MV_PATHS = {"\n<Path>\n1:": " one.\n</Path>", "\n<Path>\n2:": " two two.\n</Path>"}
MV_JOIN = "\n<Path>\n1: one.\n</Path>\n<Path>\n2: two two.\n</Path>\n"
MV_TAIL = "<Conclusion>\nboth.\n</Conclusion>\n</Parallel>\nsum.\n</Think>\n\nAnswer: \\boxed{3}"


def mv_model(paths=MV_PATHS, trunk=MV_TRUNK):
    def model(prompt: str) -> str:
        if prompt == P:
            return trunk
        for header, text in sorted(paths.items(), key=lambda kv: -len(kv[0])):
            if prompt.endswith(header):
                return text
        if prompt.endswith("2: two two.\n</Path>\n"):  # the outer block's join
            return MV_TAIL
        return "\n<Conclusion>\nin.\n</Conclusion>\n</Parallel>\n</Path>"  # a nested block's join

    return model


def test_multiverse_loop_exact_prompts_and_join():
    engine, rec = run(mv_model(), RolloutConfig(format="multiverse", temperature=0.0))
    assert engine.prompts == [P, P + MV_TRUNK + "\n<Path>\n1:", P + MV_TRUNK + "\n<Path>\n2:", P + MV_TRUNK + MV_JOIN]
    assert rec.response == MV_TRUNK + MV_JOIN + MV_TAIL and rec.end_reason == "eos" and rec.faults == []
    assert [r.stop_token_ids for r in engine.requests] == [ids("</Goal>"), ids("</Path>", "</Goal>"),
                                                          ids("</Path>", "</Goal>"), ids("</Goal>")]  # fmt: skip
    assert {r.repetition_penalty for r in engine.requests} == {1.0}  # no per-fork sampling known
    assert rec.valid is True and rec.metrics == measure_text(rec.response, TOK, "multiverse")


def test_multiverse_nested_block_inside_a_path():
    nested = "\n<Parallel>\n<Goal>\n<Outline>\n1.1: c\n</Outline>\n<Outline>\n1.2: d\n</Outline>\n</Goal>"
    paths = {"\n<Path>\n1:": " inner." + nested, "\n<Path>\n2:": " two two.\n</Path>",
             "\n<Path>\n1.1:": " c.\n</Path>", "\n<Path>\n1.2:": " dd.\n</Path>"}  # fmt: skip
    engine, rec = run(mv_model(paths=paths), RolloutConfig(format="multiverse"))
    inner_join = "\n<Path>\n1.1: c.\n</Path>\n<Path>\n1.2: dd.\n</Path>\n"
    path1 = "\n<Path>\n1: inner." + nested + inner_join + "\n<Conclusion>\nin.\n</Conclusion>\n</Parallel>\n</Path>"
    assert P + MV_TRUNK + "\n<Path>\n1: inner." + nested + inner_join in engine.prompts
    assert rec.response == MV_TRUNK + path1 + "\n<Path>\n2: two two.\n</Path>\n" + MV_TAIL
    m = rec.metrics
    assert (m.num_blocks, m.threads_per_block, m.valid, rec.faults) == (2, [2, 2], True, [])
    assert m == measure_text(rec.response, TOK, "multiverse")


def test_multiverse_goal_without_outlines_runs_no_paths():
    trunk = "<Think>\n<Parallel>\n<Goal>\nnothing numbered\n</Goal>"
    engine, rec = run(mv_model(trunk=trunk), RolloutConfig(format="multiverse"))
    assert len(engine.prompts) == 2 and engine.prompts[1] == P + trunk  # decoding went on, no paths
    assert "a goal with no numbered outlines; no paths run" in rec.faults[0] and not rec.metrics.is_parallel


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (MV_TRUNK + "\n<Path>\n1: x\n</Path>\n<Conclusion>c</Conclusion></Parallel></Think>", "path_count"),
        ("<Think><Parallel><Goal></Goal><Conclusion>c</Conclusion></Parallel></Think>", "no_outlines"),
        ("<Parallel><Goal><Outline>1: a</Outline></Goal><Path>1: x</Path><Conclusion>c</Conclusion></Parallel>",
         "misplaced_block"),
        (MV_TRUNK + MV_JOIN + "oops" + MV_TAIL, "unexpected_text"),
        (MV_TRUNK + MV_JOIN, "unclosed_paths"),
        ("<Think>a</Path></Think>", "unexpected_tag"),
    ],
)  # fmt: skip
def test_multiverse_checker(text, code):
    assert code in [v.code for v in get_format("multiverse").validate(text)]


def test_fidelity_and_prompts_of_the_formats():
    assert {n: f.fidelity for n, f in FORMATS.items()} == {"threadweaver": "exact", "parallel-r1": "exact",
                                                           "npr": "approximate", "multiverse": "approximate"}  # fmt: skip
    assert get_format("multiverse").instruction("Q?") == [
        {"role": "user", "content": "Q? Think step by step and in parallel before answering."}]
    assert get_format("threadweaver").instruction("Q?") is None
