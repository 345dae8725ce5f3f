"""Which rollouts become training data (stage 0: correct sequential traces; stage 2, self-training:
correct, well-formed parallel trajectories; threadweaver.md section 4).

    kept, dropped = select_records(records, SelectConfig(max_total_tokens=40960, max_per_problem=4))

A record is dropped, first reason wins: `engine_error` (the rollout ended with an engine error: nothing
the model wrote is there to judge), `not_graded` (no grade: the problem had no answer), `wrong` (any
grade but correct: wrong, no_answer, truncated, timeout, grader_error), `invalid` (the format's checker
failed or the rollout recorded a fault), `too_long` (total tokens over the limit), `low_acceleration`
(self-parallelism under the minimum), `over_per_problem` (the problem already has `max_per_problem` kept
samples, taken in sample_index order).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from harness.records import SampleRecord

DROP_REASONS = (
    "engine_error",
    "not_graded",
    "wrong",
    "invalid",
    "too_long",
    "low_acceleration",
    "over_per_problem",
)


@dataclass
class SelectConfig:
    max_total_tokens: int | None = None
    """Drop trajectories longer than this (all branches, the record's count unit); None: no limit."""
    min_self_parallelism: float = 1.0
    """Minimum acceleration: total / critical-path tokens at least this (1.0 keeps sequential ones)."""
    max_per_problem: int | None = None
    """Keep at most this many samples per problem (lowest sample_index first); None: all."""

    def __post_init__(self) -> None:
        if self.max_total_tokens is not None and self.max_total_tokens < 1:
            raise ValueError(f"max_total_tokens must be >= 1, got {self.max_total_tokens}")
        if self.max_per_problem is not None and self.max_per_problem < 1:
            raise ValueError(f"max_per_problem must be >= 1, got {self.max_per_problem}")
        if self.min_self_parallelism < 1.0:
            raise ValueError(f"min_self_parallelism must be >= 1.0, got {self.min_self_parallelism}")


def drop_reason(rec: SampleRecord, config: SelectConfig) -> str | None:
    if rec.end_reason == "error":
        return "engine_error"
    if rec.grade is None:
        return "not_graded"
    if not rec.grade.correct:
        return "wrong"
    if rec.valid is False or rec.faults or rec.metrics is None:
        return "invalid"
    if config.max_total_tokens is not None and rec.metrics.total_tokens > config.max_total_tokens:
        return "too_long"
    if rec.metrics.self_parallelism < config.min_self_parallelism:
        return "low_acceleration"
    return None


def select_records(records: list[SampleRecord], config: SelectConfig) -> tuple[list[SampleRecord], Counter]:
    """(kept records in (problem_id, sample_index) order, drop reason -> count)."""
    kept, dropped, per_problem = [], Counter(), Counter()
    for rec in sorted(records, key=lambda r: (r.problem_id, r.sample_index)):
        reason = drop_reason(rec, config)
        if (
            reason is None
            and config.max_per_problem is not None
            and per_problem[rec.problem_id] >= config.max_per_problem
        ):
            reason = "over_per_problem"
        if reason:
            dropped[reason] += 1
        else:
            per_problem[rec.problem_id] += 1
            kept.append(rec)
    return kept, dropped
