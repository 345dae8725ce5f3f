"""P-GRPO's training side in the core (harness/pgrpo.py): units -> rows, the advantage broadcast, T."""

from __future__ import annotations

import pytest

from harness.engines.scripted import ScriptedEngine
from harness.pgrpo import num_completion_tokens, trajectory_eta, units_to_rows
from harness.reward import group_advantages, pgrpo_rewards
from harness.rollout import RolloutConfig, rollout_sync
from harness.tokenizer import build_char_tokenizer

pytestmark = pytest.mark.core

TOK = build_char_tokenizer(raw=True)  # no transformers: a core test
P = "Q: 1+1?\n"
HEAD = "<think>\n<Parallel>\n<Outlines>\n<Outline>1: add</Outline>\n<Outline>2: check</Outline>\n</Outlines>"
T1, T2 = " one plus one</Thread>", " it is two</Thread>"
JOINED = "\n<Thread>\n1:" + T1 + "<Thread>\n2:" + T2
FINAL = "</Parallel>\nSo \\boxed{2}.</think>"
SCRIPT = {P: HEAD, P + HEAD + "\n<Thread>\n1:": T1, P + HEAD + "\n<Thread>\n2:": T2, P + HEAD + JOINED + "\n": FINAL}


def enc(text: str) -> list[int]:
    return TOK.encode(text, add_special_tokens=False)


def parallel_record(script=SCRIPT):
    engine = ScriptedEngine(script, tokenizer=TOK)
    (rec,) = rollout_sync(engine, [enc(P)], RolloutConfig(join="model", logprobs=True))
    return rec


def test_rows_are_the_units_with_the_advantage_on_every_generated_token():
    rec = parallel_record()
    rows = units_to_rows(rec, 0.7, eos_id=TOK.eos_token_id)
    assert [r.prompt_ids for r in rows] == [tuple(enc(p)) for p in SCRIPT]  # exactly what the engine saw
    assert [r.completion_ids for r in rows] == [tuple(enc(HEAD)), tuple(enc(T1)), tuple(enc(T2)),
                                                (*enc(FINAL), TOK.eos_token_id)]  # fmt: skip
    assert all(a == 0.7 for r in rows for a in r.advantages)
    # runtime-inserted text (thread headers, the "\n" after the join) is context only: trained tokens =
    # the response's tokens minus the inserted ones, plus the end-of-sequence the model chose
    inserted = len(enc("\n<Thread>\n1:")) + len(enc("<Thread>\n2:")) + len(enc("\n"))  # as in the joined text
    assert num_completion_tokens([rows]) == len(rec.response_ids) - inserted + 1
    # stored log probabilities (the scripted engine's 0.0) on generated tokens; none for the appended EOS
    assert rows[0].old_logprobs == (0.0,) * len(enc(HEAD)) and rows[-1].old_logprobs[-1] is None


def test_sequential_trajectory_is_one_row_and_eos_only_when_it_ended_there():
    engine = ScriptedEngine({P: "<think>\nSo \\boxed{2}.</think>"}, tokenizer=TOK)
    (rec,) = rollout_sync(engine, [enc(P)], RolloutConfig(parallel=False))
    (row,) = units_to_rows(rec, -0.25, eos_id=TOK.eos_token_id)
    assert row.completion_ids[-1] == TOK.eos_token_id and set(row.advantages) == {-0.25}
    rec.end_reason = "budget"
    (row,) = units_to_rows(rec, -0.25, eos_id=TOK.eos_token_id)
    assert row.completion_ids == tuple(rec.response_ids)


def test_rewards_advantages_and_eta_from_rollout_records():
    wrong = dict(SCRIPT) | {P + HEAD + JOINED + "\n": "</Parallel>\nSo \\boxed{3}.</think>"}
    recs = [parallel_record(), parallel_record(wrong)]
    for r in recs:
        r.problem_id, r.gold, r.grading = "p", "2", "math"
    eta = trajectory_eta(recs[0])
    m = recs[0].metrics
    assert eta == pytest.approx(1 - m.critical_path_tokens / m.total_tokens) and 0 < eta < 0.4
    rewards = pgrpo_rewards(recs)
    assert rewards == pytest.approx([1 + 0.5 * eta, 0.0])
    adv = group_advantages(rewards, ["p", "p"])
    assert adv == pytest.approx([(1 + 0.5 * eta) / 2, -(1 + 0.5 * eta) / 2])
    rows = [units_to_rows(r, a) for r, a in zip(recs, adv, strict=True)]
    assert {a for r in rows[1] for a in r.advantages} == {adv[1]}
