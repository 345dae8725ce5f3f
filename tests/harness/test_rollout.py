"""Trie rollout on the scripted engine: exact prompts, exact join text, budgets, steps and every fault."""

from __future__ import annotations

import asyncio

import pytest

from harness.engines.scripted import ScriptedEngine
from harness.rollout import RolloutConfig, rollout_sync, run_rollouts
from harness.tokenizer import build_char_tokenizer

TOK = build_char_tokenizer()
P = "Q: 1+1?\n"
HEAD = "<think>\n<Parallel>\n<Outlines>\n<Outline>1: add</Outline>\n<Outline>2: check</Outline>\n</Outlines>"
T1, T2 = " one plus one</Thread>", " it is two</Thread>"
JOINED = "\n<Thread>\n1:" + T1 + "<Thread>\n2:" + T2


def run(responses, config=None, prompts=(P,), **kw):
    engine = ScriptedEngine(responses, tokenizer=TOK, **kw)
    ids = [TOK.encode(p, add_special_tokens=False) for p in prompts]
    return engine, rollout_sync(engine, ids, config or RolloutConfig())


def test_model_join_exact_prompts_and_text():
    after = P + HEAD + JOINED + "\n"
    engine, (rec,) = run({
        P: HEAD + " ignored after the stop",
        P + HEAD + "\n<Thread>\n1:": T1 + "<Thread> never reached",
        P + HEAD + "\n<Thread>\n2:": T2,
        after: "</Parallel>\nSo \\boxed{2}.</think>",
    })  # fmt: skip
    assert engine.prompts == [P, P + HEAD + "\n<Thread>\n1:", P + HEAD + "\n<Thread>\n2:", after]
    assert rec.response == HEAD + JOINED + "\n</Parallel>\nSo \\boxed{2}.</think>"
    assert rec.response_ids == TOK.encode(rec.response, add_special_tokens=False)
    assert (rec.end_reason, rec.faults, rec.valid, rec.metrics.num_blocks, rec.metrics.threads_per_block) == ("eos", [], True, 1, [2])
    assert [r.kind for r in rec.units] == ["trunk", "branch", "branch", "trunk"]
    assert rec.engine_calls == 4 and rec.metrics.total_tokens == len(rec.response_ids)
    assert rec.units[1].context_tokens + len(rec.units[1].inserted_ids) == len(TOK.encode(engine.prompts[1]))
    # thread-local critical path: the longer thread counts, the shorter does not
    assert rec.metrics.critical_path_tokens == rec.metrics.total_tokens - len(TOK.encode(" one plus one", add_special_tokens=False))


def test_orchestrator_join_appends_close():
    after = P + HEAD + JOINED + "\n</Parallel>"
    engine, (rec,) = run({
        P: HEAD,
        P + HEAD + "\n<Thread>\n1:": T1,
        P + HEAD + "\n<Thread>\n2:": T2,
        after: " done",
    }, RolloutConfig(join="orchestrator"))  # fmt: skip
    assert engine.prompts[-1] == after
    assert rec.response == HEAD + JOINED + "\n</Parallel> done"
    assert rec.valid and rec.end_reason == "eos"


def test_threads_of_a_block_are_in_flight_together():
    live, peak = 0, 0

    class Tracking(ScriptedEngine):
        async def generate(self, request):
            nonlocal live, peak
            live += 1
            peak = max(peak, live)
            await asyncio.sleep(0.01)
            try:
                return await super().generate(request)
            finally:
                live -= 1

    engine = Tracking({P: HEAD, "*": " x</Thread>"}, tokenizer=TOK)
    ids = TOK.encode(P, add_special_tokens=False)
    recs = rollout_sync(engine, [ids, ids, ids], RolloutConfig(join="orchestrator", max_steps=1))
    assert peak == 6  # 3 trajectories x 2 threads at once
    assert [r.end_reason for r in recs] == ["max_steps"] * 3


def test_autoregressive_mode_is_one_plain_request():
    text = HEAD + "\n<Thread>\n1: a</Thread>\n</Parallel> end"
    engine, (rec,) = run({P: text}, RolloutConfig(parallel=False))
    assert engine.prompts == [P] and engine.requests[0].stop == [] and engine.requests[0].stop_token_ids == []
    assert rec.response == text and rec.engine_calls == 1 and rec.end_reason == "eos"


def test_budget_counts_all_branches_and_closes_block():
    head_tokens = len(TOK.encode(HEAD))
    budget = head_tokens + 5 + 4  # header "\n<Thread>\n1:" is 5 tokens; 4 tokens left for each thread
    engine, (rec,) = run({P: HEAD, "*": " long thread text</Thread>"},
                         RolloutConfig(join="model", budget_tokens=budget))  # fmt: skip
    assert [r.max_tokens for r in engine.requests] == [budget, 4, 4]
    assert rec.end_reason == "budget"
    assert rec.response == HEAD + "\n<Thread>\n1: lon</Thread><Thread>\n2: lon</Thread>\n</Parallel>"
    assert rec.valid is False and any("ran out of budget" in f for f in rec.faults)
    assert len(rec.units) == 3  # no further step


def test_budget_in_sequential_step():
    _, (rec,) = run({P: "abcdefghij"}, RolloutConfig(budget_tokens=4))
    assert (rec.response, rec.end_reason) == ("abcd", "budget")


def test_step_limit_closes_model_join_block():
    _, (rec,) = run({P: HEAD, "*": " t</Thread>"}, RolloutConfig(join="model", max_steps=1))
    assert rec.end_reason == "max_steps"
    assert rec.response.endswith("<Thread>\n2: t</Thread>\n</Parallel>")
    assert rec.engine_calls == 3


def test_step_limit_counts_sequential_steps():
    def model(prompt):  # every sequential step opens a new one-thread block
        return " x</Thread>" if prompt.endswith(":") else "<Parallel><Outlines><Outline>1: o</Outline></Outlines>"

    _, (rec,) = run(model, RolloutConfig(join="orchestrator", max_steps=3))
    assert rec.end_reason == "max_steps" and rec.metrics.num_blocks == 3 and rec.engine_calls == 6


@pytest.mark.parametrize(
    ("script", "fault", "num_threads"),
    [
        ({P: "no block at all, </Outlines> stray", "*": "after"}, "without <Outlines>", 0),
        ({P: "<Parallel><Outlines><Outline>first</Outline></Outlines>", "*": "</Parallel> end"}, "no numbers", 0),
        ({P: HEAD, P + HEAD + "\n<Thread>\n1:": " a", "*": " b</Thread>"}, "branch 1 hit end of sequence", 2),
        ({P: HEAD, "*": " <Parallel><Outlines>x</Outlines> y</Thread>"}, "a block inside a branch", 2),
    ],
)
def test_faults_are_closed_and_recorded(script, fault, num_threads):
    engine, (rec,) = run(script, RolloutConfig(join="orchestrator", max_steps=2))
    assert rec.end_reason in ("eos", "max_steps") and rec.error is None
    assert any(fault in f for f in rec.faults), rec.faults
    assert sum(r.kind == "branch" for r in rec.units[:3]) == num_threads
    assert rec.valid is False


def test_eos_inside_thread_is_closed_exactly():
    _, (rec,) = run({P: HEAD, P + HEAD + "\n<Thread>\n1:": " a", "*": " b</Thread>"}, RolloutConfig(join="orchestrator"))
    assert rec.response.startswith(HEAD + "\n<Thread>\n1: a</Thread><Thread>\n2: b</Thread>\n</Parallel>")


def test_more_outlines_than_thread_limit():
    head = "<Parallel><Outlines>" + "".join(f"<Outline>{i}: o</Outline>" for i in range(1, 5)) + "</Outlines>"
    engine, (rec,) = run({P: head, "*": " t</Thread>"}, RolloutConfig(join="orchestrator", max_branches=2))
    assert [p[-2:] for p in engine.prompts[1:3]] == ["1:", "2:"] and engine.prompts[3].endswith("</Parallel>")
    assert any("4 branches, ran the first 2" in f for f in rec.faults)


def test_dotted_and_duplicate_outline_numbers():
    head = "<Parallel><Outlines><Outline>1.1: a</Outline><Outline>1.2: b</Outline><Outline>1.1: c</Outline></Outlines>"
    engine, _ = run({P: head, "*": " t</Thread>"}, RolloutConfig(join="orchestrator", max_steps=1))
    assert [p[len(P + head):] for p in engine.prompts[1:]] == ["\n<Thread>\n1.1:", "\n<Thread>\n1.2:"]


def test_engine_error_is_retried_then_recorded_on_that_trajectory_only():
    calls = {"bad": 0, "flaky": 0}

    def model(prompt):
        if prompt.startswith("bad"):
            calls["bad"] += 1
            raise RuntimeError("boom")
        if prompt.startswith("flaky"):
            calls["flaky"] += 1
            if calls["flaky"] == 1:
                raise ConnectionError("reset")
        return "fine"

    _, recs = run(model, RolloutConfig(retries=2, retry_backoff_s=0.0), prompts=("bad", "flaky", "good"))
    assert [r.end_reason for r in recs] == ["error", "eos", "eos"]
    assert calls["bad"] == 3 and "RuntimeError: boom" in recs[0].error
    assert recs[1].response == recs[2].response == "fine"


def test_seeds_per_sample_and_record_callback():
    seen = []
    engine = ScriptedEngine({"*": "ok"}, tokenizer=TOK)
    ids = TOK.encode(P, add_special_tokens=False)
    recs = asyncio.run(run_rollouts(engine, [ids, ids], RolloutConfig(seed=7), on_record=lambda i, r: seen.append(i)))
    assert sorted(seen) == [0, 1] and [r.seed for r in recs] == [7, 8]
    assert len({r.seed for r in engine.requests}) == 2
    d = recs[0].to_dict()
    assert d["units"][0]["kind"] == "trunk" and d["end_reason"] == "eos"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("join", "x", "join must be one of"), ("top_p", 1.5, "top_p must be in (0, 1], got 1.5"),
     ("budget_tokens", 0, "budget_tokens must be"), ("max_branches", 0, "max_branches must be")],
)  # fmt: skip
def test_config_refuses_bad_values(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        RolloutConfig(**{field: value})


def test_units_carry_the_engines_logprobs_when_asked():
    _, (rec,) = run({P: HEAD, "*": " t</Thread>"}, RolloutConfig(join="orchestrator", max_steps=1, logprobs=True))
    assert all(u.logprobs is not None and len(u.logprobs) == len(u.completion_ids) for u in rec.units)
    _, (rec,) = run({P: HEAD, "*": " t</Thread>"}, RolloutConfig(join="orchestrator", max_steps=1))
    assert all(u.logprobs is None for u in rec.units)
