"""The P-GRPO reward and advantage (threadweaver.md section 5; rl.md section 1): one place, core only.

    rewards = pgrpo_rewards(records, variant="paper")          # graded records -> one reward each
    advantages = group_advantages(rewards, groups)              # mean-centred per prompt, no std

The answer is graded with the task's rule on the shared deadline pool (harness.grading), the same rule
and pool as evaluation; eta = 1 - critical_path_tokens / total_tokens comes from the record's metrics
(the format's counter, in the engine's unit). Variants (rl.md section 1.2, a setting recorded in every log):

| variant | correct | wrong | bonus if correct |
|---|---|---|---|
| paper | 1 | 0 | min(rho * eta, rho_clip), rho 0.5, rho_clip 0.2 |
| reference | 1 | -1 | 0.5 * min(eta, 0.2) |

    >>> reward_of(True, 0.5)                       # paper: 1 + min(0.5 * 0.5, 0.2)
    1.2
    >>> reward_of(True, 0.1, variant="reference")  # 1 + 0.5 * min(0.1, 0.2)
    1.05
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.records import SampleRecord

VARIANTS = ("paper", "reference")


@dataclass(frozen=True)
class RewardConfig:
    """The reward's settings; defaults are the paper's (threadweaver.md section 5)."""

    variant: str = "paper"
    """"paper" (wrong 0, bonus min(rho * eta, rho_clip)) or "reference" (wrong -1, bonus 0.5 * min(eta, 0.2))."""
    rho: float = 0.5
    """Weight of the acceleration ratio (paper variant). Must be >= 0; 0 = correctness only."""
    rho_clip: float = 0.2
    """Cap of the acceleration bonus (paper variant). Must be >= 0."""

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        for name in ("rho", "rho_clip"):
            if not isinstance(getattr(self, name), int | float) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a number >= 0, got {getattr(self, name)!r}")


def acceleration(critical_path_tokens: int, total_tokens: int) -> float:
    """eta = 1 - longest / total (0 for a sequential or empty trajectory)."""
    return 0.0 if total_tokens <= 0 else 1.0 - critical_path_tokens / total_tokens


def reward_of(correct: bool, eta: float, variant: str = "paper", rho: float = 0.5, rho_clip: float = 0.2) -> float:
    """One trajectory's reward from its correctness and acceleration ratio."""
    config = RewardConfig(variant, rho, rho_clip)
    if config.variant == "reference":
        return 1.0 + 0.5 * min(eta, 0.2) if correct else -1.0
    return 1.0 + min(config.rho * eta, config.rho_clip) if correct else 0.0


def pgrpo_rewards(records: Sequence[SampleRecord], config: RewardConfig | None = None, *, workers: int = 2,
                  deadline_s: float = 5.0) -> list[float]:  # fmt: skip
    """Rewards of finished records: ungraded ones are graded first with their task's rule (records need
    `gold` and `grading`), then the variant's formula on eta from their metrics."""
    config = config or RewardConfig()
    todo = [r for r in records if r.grade is None]
    if todo:
        from harness.grading import grade_many

        missing = [r for r in todo if r.gold is None or r.grading is None]
        if missing:
            raise ValueError(f"record {missing[0].problem_id}/{missing[0].sample_index} has no gold or grading rule")
        grades = grade_many([(r.response, r.gold, r.grading, r.truncated) for r in todo], workers=workers,
                            deadline_s=deadline_s)  # fmt: skip
        for r, g in zip(todo, grades, strict=True):
            r.grade = g
    out = []
    for r in records:
        eta = 0.0 if r.metrics is None else acceleration(r.metrics.critical_path_tokens, r.metrics.total_tokens)
        out.append(reward_of(r.grade.correct, eta, config.variant, config.rho, config.rho_clip))
    return out


def group_advantages(rewards: Sequence[float], groups: Sequence[str], normalize_std: bool = False) -> list[float]:
    """A = r - mean of the rewards of the same group (prompt); divided by the group's std only when asked
    (off by default: rl.md section 1.1)."""
    if len(rewards) != len(groups):
        raise ValueError(f"rewards and groups differ in length ({len(rewards)} vs {len(groups)})")
    members: dict[str, list[float]] = {}
    for r, g in zip(rewards, groups, strict=True):
        members.setdefault(g, []).append(r)
    out = []
    for r, g in zip(rewards, groups, strict=True):
        vals = members[g]
        mean = sum(vals) / len(vals)
        a = r - mean
        if normalize_std:
            std = (sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5
            a = a / (std + 1e-6)
        out.append(a)
    return out
