"""ThreadWeaverAgentLoop: our trie rollout as a verl 0.9.1 agent loop (rl.md section 3.1).

verl calls `run(sampling_params, **row)` once per rollout (rollout.n per prompt, each with its `uid` and
`session_id`). The loop renders the prompt with verl's chat-template builder, runs OUR state machine
(harness.rollout.run_rollouts) through verl's server manager (threadweaver_verl.engine), grades the
answer with the task's rule in the worker pool (never SIGALRM on Ray's event loop: gotcha 10), and
returns one AgentLoopOutput per unit (harness.pgrpo.units_to_rows: context = prompt, completion =
response, every completion token trained, inserted text context only), the final unit LAST, carrying
`reward_score` and `extra_fields["reward_extra_info"]` (V1 copies both to the earlier rows: gotcha 2).
verl's GRPO with `norm_adv_by_std_in_grpo=false` then gives every row of the trajectory the final row's
advantage (compute_advantage_for_multi_trajectories): P-GRPO's broadcast.

Settings (rollout format, budget, reward variant, grading) come from the agent-loop YAML written by
threadweaver_verl.overrides.write_agent_loop_config; sampling (temperature, top_p, top_k, log
probabilities) from verl's per-run `sampling_params`, so validation's greedy settings apply too.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import replace
from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopMetrics, AgentLoopOutput, register

from harness.config import build_dataclass
from harness.pgrpo import trajectory_eta, units_to_rows
from harness.records import SampleRecord
from harness.reward import RewardConfig, pgrpo_rewards
from harness.rollout import RolloutConfig, run_rollouts
from threadweaver_verl.engine import ServerManagerEngine
from threadweaver_verl.overrides import AGENT_NAME


def _plain(value):
    """An OmegaConf container (hydra passes the YAML entry's mappings as DictConfig) as plain Python."""
    if hasattr(value, "_content") or type(value).__name__ in ("DictConfig", "ListConfig"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(value, resolve=True)
    return value


def _item(value):
    """A dataset cell as plain Python (verl hands numpy scalars and 0-d arrays to the loop)."""
    return value.item() if hasattr(value, "item") and getattr(value, "shape", None) == () else value


def row_gold_and_rule(row: dict) -> tuple[str, str]:
    """The gold answer and the task's grading rule of a dataset row: columns `gold` and `grading`
    (threadweaver_verl.data writes them); `reward_model.ground_truth` is accepted for the gold."""
    gold = _item(row.get("gold"))
    if gold is None and isinstance(_plain(row.get("reward_model")), dict):
        gold = _plain(row["reward_model"]).get("ground_truth")
    rule = _item(row.get("grading"))
    if gold is None or rule is None:
        missing = "gold" if gold is None else "grading"
        raise ValueError(f"threadweaver agent loop: the dataset row has no '{missing}' column (write the parquet "
                         "with `python -m threadweaver_verl.data`)")  # fmt: skip
    return str(gold), str(rule)


def run_rollout_config(
    base: RolloutConfig, sampling_params: dict, max_model_len: int | None
) -> RolloutConfig:
    """The rollout settings of one run: verl's sampling (training or validation) over our format and
    budget; requests never exceed the model's context (verl would clamp them silently: gotcha 8)."""
    top_k = int(sampling_params.get("top_k", base.top_k))
    ctx = base.max_context_tokens
    if max_model_len:
        ctx = int(max_model_len) if ctx is None else min(ctx, int(max_model_len))
    return replace(base, temperature=float(sampling_params.get("temperature", base.temperature)),
                   top_p=float(sampling_params.get("top_p", base.top_p)), top_k=top_k if top_k > 0 else -1,
                   logprobs=bool(sampling_params.get("logprobs", False)), max_context_tokens=ctx, seed=None)  # fmt: skip


def reward_extra_info(record: SampleRecord, reward: float) -> dict[str, float]:
    """Per-trajectory figures verl logs next to the reward (numbers only: verl averages them)."""
    m = record.metrics
    return {
        "score": float(reward),
        "acc": float(record.grade is not None and record.grade.correct),
        "eta": trajectory_eta(record),
        "critical_path_tokens": float(m.critical_path_tokens if m else 0),
        "total_tokens": float(m.total_tokens if m else 0),
        "is_parallel": float(bool(m and m.is_parallel)),
        "truncated": float(record.truncated),
        "format_faults": float(len(record.faults)),
        "grading_timeout": float(record.grade is not None and record.grade.status == "timeout"),
    }


def trajectory_outputs(record: SampleRecord, reward: float, variant: str, eos_id: int | None,
                       eos_logprob: dict | None = None, metrics: dict | None = None,
                       extra: dict | None = None) -> list[AgentLoopOutput]:  # fmt: skip
    """One AgentLoopOutput per unit (the rows of harness.pgrpo.units_to_rows, advantage left to verl),
    the final one carrying the reward. A trajectory with no generated token still needs a row for its
    reward to count in its group's mean: one masked row (response = EOS, mask 0) then."""
    rows = units_to_rows(record, 0.0, eos_id)
    with_logprobs = bool(record.units) and all(u.logprobs is not None for u in record.units)
    fields = {"reward_variant": variant, **(extra or {})}
    outs = []
    for row in rows:
        logprobs = None
        if with_logprobs:
            logprobs = list(row.old_logprobs)
            if logprobs and logprobs[-1] is None and eos_logprob:  # the EOS the rollout dropped
                logprobs[-1] = eos_logprob.get(row.prompt_ids + row.completion_ids[:-1])
            logprobs = [0.0 if x is None else x for x in logprobs]  # unknown: verl's padding value
        outs.append(AgentLoopOutput(prompt_ids=list(row.prompt_ids), response_ids=list(row.completion_ids),
                                    response_mask=[1] * len(row.completion_ids), response_logprobs=logprobs,
                                    num_turns=2, metrics=AgentLoopMetrics(**(metrics or {})),
                                    extra_fields=dict(fields)))  # fmt: skip
    if not outs:
        pad = 0 if eos_id is None else eos_id
        outs.append(AgentLoopOutput(prompt_ids=list(record.prompt_ids or []), response_ids=[pad], response_mask=[0],
                                    response_logprobs=[0.0] if with_logprobs else None, num_turns=2,
                                    metrics=AgentLoopMetrics(**(metrics or {})), extra_fields=dict(fields)))  # fmt: skip
    outs[-1].reward_score = float(reward)
    outs[-1].extra_fields["reward_extra_info"] = reward_extra_info(record, reward)
    return outs


@functools.lru_cache(maxsize=8)
def _generation_eos(path: str) -> tuple[int, ...]:
    """End-of-sequence ids of the model's generation config (vLLM stops on them too)."""
    try:
        from transformers import GenerationConfig

        eos = GenerationConfig.from_pretrained(path).eos_token_id
    except Exception:  # no generation config: the tokenizer's EOS alone
        return ()
    return tuple([eos] if isinstance(eos, int) else eos or ())


@register(AGENT_NAME)
class ThreadWeaverAgentLoop(AgentLoopBase):
    """The trie rollout under verl. Keyword settings come from the agent-loop YAML entry."""

    def __init__(self, *args, rollout: dict | None = None, reward: dict | None = None, grading_workers: int = 1,
                 grading_deadline_s: float = 5.0, name: str | None = None, **kwargs) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        self.tw_rollout = build_dataclass(RolloutConfig, dict(_plain(rollout) or {}), "agent loop: rollout")
        self.tw_reward = build_dataclass(RewardConfig, dict(_plain(reward) or {}), "agent loop: reward")
        self.grading_workers = int(grading_workers)
        self.grading_deadline_s = float(grading_deadline_s)

    def _eos_ids(self) -> set[int]:
        from harness.engines.base import eos_ids_of

        path = self.config.actor_rollout_ref.model.get("path")
        return eos_ids_of(self.tokenizer, list(_generation_eos(str(path))) if path else None)

    async def run(self, sampling_params: dict[str, Any], **kwargs) -> list[AgentLoopOutput]:
        gold, rule = row_gold_and_rule(kwargs)
        uid = str(kwargs.get("uid", ""))
        if "_" in uid:  # rows are stored as {uid}_{session}_{index} and split on "_" (gotcha 3)
            raise ValueError(f"threadweaver agent loop: uid {uid!r} contains '_'; verl splits row keys on it")
        prompt_ids = await self.ct_build_initial_tokens(list(kwargs["raw_prompt"]))
        config = run_rollout_config(
            self.tw_rollout, sampling_params, self.rollout_config.get("max_model_len")
        )
        engine = ServerManagerEngine(self.server_manager, self.tokenizer, request_id=uuid4().hex,
                                     sampling_params=sampling_params, eos_ids=self._eos_ids())  # fmt: skip
        t0 = time.perf_counter()
        (record,) = await run_rollouts(engine, [prompt_ids], config, seeds=[None])
        t1 = time.perf_counter()
        record.problem_id, record.sample_index = uid, int(_item(kwargs.get("session_id", 0)))
        record.gold, record.grading = gold, rule
        grade = functools.partial(pgrpo_rewards, [record], self.tw_reward, workers=self.grading_workers,
                                  deadline_s=self.grading_deadline_s)  # fmt: skip
        (reward,) = await asyncio.get_running_loop().run_in_executor(None, grade)
        metrics = {"generate_sequences": t1 - t0, "compute_score": time.perf_counter() - t1}
        steps = [v for v in engine.global_steps if v is not None]
        extra = {"min_global_steps": min(steps), "max_global_steps": max(steps)} if steps else {}
        eos_id = getattr(self.tokenizer, "eos_token_id", None)
        return trajectory_outputs(
            record, reward, self.tw_reward.variant, eos_id, engine.eos_logprob, metrics, extra
        )
