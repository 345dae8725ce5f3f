"""P-GRPO's training side, shared by every trainer (rl.md sections 1.1 and 2.1): core, torch only inside.

    rows = units_to_rows(record, advantage, eos_id)     # one row per unit, the advantage on every token
    loss = pgrpo_loss(logp, old_logp, adv, mask, num_tokens)   # token-mean over the whole batch

The reward and the group advantage are in harness/reward.py. A trajectory's advantage is broadcast to
every completion token of every unit of it (log pi(tau) = sum over units of log pi(completion | context),
rl.md section 1.1): a row is one unit, (context, completion), with one weight per completion token.
Context tokens, including runtime-inserted text (branch headers, forced closes, the after-join text),
get no loss; each generated token is trained exactly once. RL has no whole-trajectory unit (that one is
SFT's). The loss is the token mean over ALL completion tokens of the batch (all units, rollouts, prompts):

    L = -(1 / T) * sum over tokens of min(ratio * A, clip(ratio, 1 - clip_low, 1 + clip_high) * A)

with ratio = pi / pi_old. On policy (one update per step) the ratio is 1, clipping never acts and the
gradient is -(1 / T) * sum A * grad log pi: REINFORCE with the group-mean baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.records import SampleRecord
from harness.reward import acceleration


@dataclass(frozen=True)
class RLRow:
    """One unit as a training row: the model sees `prompt_ids`, is trained on `completion_ids`, each token
    weighted by `advantages[j]`; `old_logprobs[j]` is the sampling policy's log probability of token j
    (None where the engine gave none: then the trainer's first pass stands in for it)."""

    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    advantages: tuple[float, ...]
    old_logprobs: tuple[float | None, ...]

    @property
    def ids(self) -> tuple[int, ...]:
        return self.prompt_ids + self.completion_ids


def trajectory_eta(record: SampleRecord) -> float:
    """eta = 1 - critical_path_tokens / total_tokens of a record (the format's counter); 0 without metrics."""
    m = record.metrics
    return 0.0 if m is None else acceleration(m.critical_path_tokens, m.total_tokens)


def units_to_rows(record: SampleRecord, advantage: float, eos_id: int | None = None) -> list[RLRow]:
    """The rollout's units of `record` as rows, `advantage` on every completion token (the broadcast).

    The engine drops the end-of-sequence token from what it returns; when the trajectory ended on it and
    `eos_id` is given, it is appended to the trunk unit that ended there (the model chose to stop: that
    choice is trained too), with no stored log probability."""
    if record.prompt_ids is None or record.response_ids is None:
        raise ValueError(f"record {record.problem_id}/{record.sample_index} has no prompt_ids/response_ids")
    full = tuple(record.prompt_ids) + tuple(record.response_ids)
    ended = eos_id is not None and record.end_reason == "eos"
    last = max((i for i, u in enumerate(record.units) if u.kind == "trunk" and u.stop_reason == "eos"), default=None)
    rows = []
    for i, u in enumerate(record.units):
        completion = list(u.completion_ids)
        stored = list(u.logprobs) if u.logprobs is not None else []
        old: list[float | None] = [*stored[: len(completion)], *[None] * (len(completion) - len(stored))]
        if ended and i == last:
            completion.append(eos_id)
            old.append(None)
        if completion:
            prompt = full[: u.context_tokens] + tuple(u.inserted_ids)
            rows.append(RLRow(prompt, tuple(completion), (float(advantage),) * len(completion), tuple(old)))
    return rows


def num_completion_tokens(rows_per_trajectory) -> int:
    """T of the token-mean: completion tokens over all rows of all trajectories of the batch."""
    return sum(len(r.completion_ids) for rows in rows_per_trajectory for r in rows)


def pgrpo_loss(logp, old_logp, advantages, mask, num_tokens: int, clip_low: float = 0.2, clip_high: float = 0.28):
    """This batch part's share of the P-GRPO loss: sum over masked tokens of the clipped surrogate / T.

    Tensors of one shape (any): `logp` the current policy's log probabilities (with grad), `old_logp` the
    sampling policy's (None: on policy, the ratio is exactly 1), `advantages` per token, `mask` 1 on
    trained tokens. `num_tokens` = T of the WHOLE batch (all parts, all ranks), so the parts' losses add up
    to the token mean. Returns (loss, number of tokens whose ratio was clipped)."""
    import torch

    if num_tokens < 1:
        raise ValueError(f"num_tokens must be >= 1, got {num_tokens}")
    trained = mask > 0
    # untrained positions may hold anything (NaN where nothing was stored): they never enter the sum
    old = logp.detach() if old_logp is None else torch.where(trained, old_logp.to(logp.dtype), logp.detach())
    ratio = torch.exp(logp - old)
    clipped = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    surrogate = torch.minimum(ratio * advantages, clipped * advantages)
    n_clipped = int((((ratio * advantages) > (clipped * advantages)) & trained).sum())
    return -torch.where(trained, surrogate, 0.0).sum() / num_tokens, n_clipped
