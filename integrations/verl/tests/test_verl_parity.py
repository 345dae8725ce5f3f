"""verl parity (rl.md section 3.5), run INSIDE verl's environment by tests/test_verl_env.py.

Scripted trajectories go through ThreadWeaverAgentLoop with a fake server manager (token ids in, the
scripted engine's tokens out, shaped like verl's vLLM server: EOS kept, stop_reason "completed") and,
unchanged, through our single-machine trainer's functions (run_rollouts, pgrpo_rewards,
group_advantages, units_to_rows). Rows, rewards, verl's broadcast advantages and verl's token-mean
normaliser must equal ours.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import threadweaver_verl  # noqa: F401  (registers the loop, as verl's external_lib import does)
import torch
from omegaconf import OmegaConf
from threadweaver_verl.agent_loop import ThreadWeaverAgentLoop
from threadweaver_verl.overrides import agent_loop_entries
from verl.experimental.agent_loop.agent_loop import DictConfigWrap, _agent_loop_registry
from verl.protocol import DataProto
from verl.trainer.ppo.core_algos import AdvantageEstimator, agg_loss
from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories
from verl.workers.rollout.replica import TokenOutput

from harness.engines.base import Request
from harness.engines.scripted import ScriptedEngine
from harness.pgrpo import num_completion_tokens, pgrpo_loss, units_to_rows
from harness.reward import RewardConfig, group_advantages, pgrpo_rewards
from harness.rollout import RolloutConfig, run_rollouts
from harness.tokenizer import build_char_tokenizer

TOK = build_char_tokenizer()
TOK.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
EOS = TOK.eos_token_id
P1, P2 = "Q: 1+1?\n", "Q: 2+3?\n"
HEAD = "<think>\n<Parallel>\n<Outlines>\n<Outline>1: add</Outline>\n<Outline>2: check</Outline>\n</Outlines>"
JOINED = "\n<Thread>\n1: one plus one</Thread><Thread>\n2: it is two</Thread>"


def parallel(p: str, answer: str) -> dict:
    return {p: HEAD, p + HEAD + "\n<Thread>\n1:": " one plus one</Thread>", p + HEAD + "\n<Thread>\n2:": " it is two</Thread>",
            p + HEAD + JOINED + "\n": f"</Parallel>\nSo \\boxed{{{answer}}}.</think>"}  # fmt: skip


OPEN = "<think>\n<Parallel>\n<Outlines>\n<Outline>1: x</Outline>\n</Outlines>"
# (prompt, gold, script) per rollout; rollouts of one prompt form a group (uid)
GROUPS = {
    "p1": (P1, "2", [parallel(P1, "2"), parallel(P1, "3"), {P1: "<think>\nSo \\boxed{2}.</think>"}]),
    "p2": (
        P2,
        "5",
        [
            {P2: "<think>\nSo \\boxed{6}.</think>"},
            {P2: "<think>\nfive \\boxed{5}.</think>"},
            {P2: OPEN, P2 + OPEN + "\n<Thread>\n1:": "z" * 400},
        ],
    ),
}
BUDGET = (
    300  # the third p2 rollout runs out of budget inside its block (a truncated, forced-closed trajectory)
)


def logprob(i: int) -> float:
    return -0.01 * (i + 1)


class FakeServerManager:
    """verl's LLMServerClient.generate, served by a scripted engine the way verl's vLLM server answers."""

    def __init__(self, script: dict):
        self.engine = ScriptedEngine(script, tokenizer=TOK)
        self.request_ids: list[str] = []

    async def generate(self, request_id, *, prompt_ids, sampling_params, **kwargs) -> TokenOutput:
        self.request_ids.append(request_id)
        sp = sampling_params
        req = Request(list(prompt_ids), sp["max_tokens"], stop=sp.get("stop", []), stop_token_ids=sp.get("stop_token_ids", []),
                      temperature=sp["temperature"], top_p=sp["top_p"], logprobs=bool(sp["logprobs"]))  # fmt: skip
        c = await self.engine.generate(req)
        ids = list(c.token_ids) + ([EOS] if c.stop_reason == "eos" else [])  # vLLM keeps the EOS token
        return TokenOutput(token_ids=ids, log_probs=[logprob(i) for i in range(len(ids))] if sp["logprobs"] else None,
                           stop_reason="completed", extra_fields={"global_steps": 7})  # fmt: skip


def rl_config(variant: str) -> object:
    from trainers.rl.config import RLConfig

    return RLConfig(model="m", output_dir="o", dataset_path=["d"], rollouts_per_prompt=3,
                    rollout=RolloutConfig(join="model", budget_tokens=BUDGET), reward=RewardConfig(variant=variant))  # fmt: skip


def verl_config():
    return OmegaConf.create({"actor_rollout_ref": {"rollout": {"prompt_length": 64, "max_model_len": 4096},
                                                   "model": {"path": "/nonexistent"}}, "data": {}})  # fmt: skip


async def run_verl(variant: str):
    """Every rollout through ThreadWeaverAgentLoop, built from the generated agent-loop YAML entry."""
    (entry,) = agent_loop_entries(rl_config(variant))
    settings = {k: v for k, v in entry.items() if k not in ("name", "_target_")}
    out, managers = {}, {}
    for uid, (prompt, gold, scripts) in GROUPS.items():
        for session, script in enumerate(scripts):
            fake = FakeServerManager(script)
            loop = ThreadWeaverAgentLoop(trainer_config=DictConfigWrap(verl_config()), server_manager=fake, tokenizer=TOK,
                                         processor=None, dataset_cls=None, data_config=DictConfigWrap(OmegaConf.create({})),
                                         **OmegaConf.create(settings))  # fmt: skip
            sampling = {
                "temperature": 1.0,
                "top_p": 1.0,
                "top_k": -1,
                "repetition_penalty": 1.0,
                "logprobs": True,
            }
            out[(uid, session)] = await loop.run(sampling, raw_prompt=[{"role": "user", "content": prompt}], uid=uid,
                                                 session_id=session, gold=np.array(gold, dtype=object), grading="math")  # fmt: skip
            managers[(uid, session)] = fake
    return out, managers


async def run_ours(variant: str):
    """The single-machine trainer's computation on the same scripted trajectories (trainers/rl/trainer.py)."""
    config = rl_config(variant)
    records = []
    for uid, (prompt, gold, scripts) in GROUPS.items():
        for session, script in enumerate(scripts):
            (rec,) = await run_rollouts(ScriptedEngine(script, tokenizer=TOK), [TOK.encode(prompt, add_special_tokens=False)],
                                        config.rollout, seeds=[None])  # fmt: skip
            rec.problem_id, rec.sample_index, rec.gold, rec.grading = uid, session, gold, "math"
            records.append(rec)
    rewards = pgrpo_rewards(records, config.reward, workers=1)
    advantages = group_advantages(rewards, [r.problem_id for r in records], config.normalize_std)
    rows = [units_to_rows(rec, a, EOS) for rec, a in zip(records, advantages, strict=True)]
    return records, rewards, advantages, rows


@pytest.fixture(scope="module", params=["paper", "reference"])
def both(request):
    return request.param, asyncio.run(run_verl(request.param)), asyncio.run(run_ours(request.param))


def test_the_loop_is_registered_for_verl():
    assert _agent_loop_registry["threadweaver"] == {
        "_target_": "threadweaver_verl.agent_loop.ThreadWeaverAgentLoop"
    }


def test_rows_rewards_and_request_ids_equal_the_single_machine_trainer(both):
    variant, (outs, managers), (records, rewards, _, rows) = both
    assert any(r.end_reason == "budget" for r in records) and any(r.metrics.is_parallel for r in records)
    for k, key in enumerate(outs):
        got, want = outs[key], rows[k]
        assert [(o.prompt_ids, o.response_ids) for o in got] == [
            (list(r.prompt_ids), list(r.completion_ids)) for r in want
        ]
        assert all(o.response_mask == [1] * len(o.response_ids) for o in got)
        # the reward sits on the final row only, with the figures verl logs; earlier rows get it from V1
        assert [o.reward_score for o in got] == [None] * (len(got) - 1) + [pytest.approx(rewards[k])]
        info = got[-1].extra_fields["reward_extra_info"]
        assert info["score"] == pytest.approx(rewards[k]) and info["acc"] == float(records[k].grade.correct)
        assert all(o.extra_fields["reward_variant"] == variant for o in got)
        # the sampler's log probabilities, the dropped EOS's included, on every trained token
        assert all(
            o.response_logprobs is not None and len(o.response_logprobs) == len(o.response_ids) for o in got
        )
        if records[k].end_reason == "eos":
            assert got[-1].response_ids[-1] == EOS and got[-1].response_logprobs[-1] != 0.0
        # one request id for all the units of a trajectory (one replica, one prefix cache)
        assert len(set(managers[key].request_ids)) == 1 and len(managers[key].request_ids) == len(
            records[k].units
        )
    assert len({m.request_ids[0] for m in managers.values()}) == len(managers)
    assert rewards[0] > 1.0 and rewards[1] == (
        0.0 if variant == "paper" else -1.0
    )  # the bonus; the variant's wrong


def _verl_batch(outs):
    """The rows as V1 stores them: as_dict() per row, the final row's reward copied to earlier rows
    (verl/trainer/ppo/v1/agent_loop_tq.py), keys {uid}_{session}_{index}."""
    dicts, keys, uids = [], [], []
    for (uid, session), got in outs.items():
        for i, o in enumerate(got):
            o = o.model_copy(deep=True)
            o.reward_score = got[-1].reward_score
            dicts.append(o.as_dict())
            keys.append(f"{uid}_{session}_{i}")
            uids.append(uid)
    width = max(len(d["responses"]) for d in dicts)

    def pad(name):
        return torch.stack([torch.nn.functional.pad(d[name], (0, width - len(d[name]))) for d in dicts])

    data = DataProto.from_dict(tensors={"responses": pad("responses"), "response_mask": pad("response_mask"),
                                        "token_level_rewards": pad("rm_scores")},
                               non_tensors={"uid": np.array(uids, dtype=object)})  # fmt: skip
    return data, keys


def test_verl_broadcast_advantages_equal_ours(both):
    _, (outs, _), (_, _, advantages, rows) = both
    data, keys = _verl_batch(outs)
    data = compute_advantage_for_multi_trajectories(
        data, keys, AdvantageEstimator.GRPO, norm_adv_by_std_in_grpo=False
    )
    ours = [a for traj in rows for r in traj for a in [r.advantages]]
    got = data.batch["advantages"]
    assert len(ours) == got.shape[0]
    for i, adv in enumerate(ours):
        assert got[i, : len(adv)].tolist() == pytest.approx(list(adv), abs=1e-6)
        assert got[i, len(adv) :].abs().sum() == 0  # padding untouched
    assert len({round(a, 6) for a in advantages}) > 2  # the check is not vacuous: distinct advantages


def test_verl_token_mean_equals_our_normaliser_on_one_and_two_ranks(both):
    _, (outs, _), (_, _, _, rows) = both
    data, _ = _verl_batch(outs)
    flat = [r for traj in rows for r in traj]
    mask = data.batch["response_mask"].float()
    adv = torch.zeros_like(mask)
    for i, r in enumerate(flat):
        adv[i, : len(r.advantages)] = torch.tensor(r.advantages)
    logp = torch.randn(mask.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    total = num_completion_tokens(rows)
    assert total == int(mask.sum())
    ours_lp = logp.clone().requires_grad_(True)
    ours, _ = pgrpo_loss(ours_lp, None, adv, mask, total)
    ours.backward()
    # verl's vanilla loss at ratio 1 is -A per token; two data-parallel ranks each normalise by the global
    # token count times dp_size, and DDP averages the ranks' gradients
    halves = [slice(0, len(flat) // 2), slice(len(flat) // 2, len(flat))]
    verl_lp = logp.clone().requires_grad_(True)
    ratio = torch.exp(verl_lp - verl_lp.detach())
    one = agg_loss(-adv * ratio, mask, "token-mean")
    two = (
        sum(
            agg_loss((-adv * ratio)[h], mask[h], "token-mean", dp_size=2, batch_num_tokens=total)
            for h in halves
        )
        / 2
    )
    assert float(one) == pytest.approx(float(ours), abs=1e-9) and float(two) == pytest.approx(
        float(ours), abs=1e-9
    )
    two.backward()
    assert torch.allclose(verl_lp.grad, ours_lp.grad, atol=1e-12) and ours_lp.grad.abs().sum() > 0


def test_as_dict_puts_the_reward_on_the_last_response_token(both):
    _, (outs, _), _ = both
    final = next(iter(outs.values()))[-1].as_dict()
    assert final["rm_scores"][-1] == pytest.approx(next(iter(outs.values()))[-1].reward_score)
    assert (
        final["rm_scores"][:-1].abs().sum() == 0
        and final["rollout_log_probs"].shape == final["responses"].shape
    )
