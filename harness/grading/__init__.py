"""Grading: extract the answer a task's rule names, compare it with the gold, in worker processes with a
hard per-sample deadline.

Each task declares its rule (`dataset_kwargs.grading` in tasks/*.yaml; `harness.grading.rules`): the
grader knows no benchmark names. Spec section 1: by default the answer is the content of the LAST
`\\boxed{...}`; no box = not correct.

    from harness.grading import grade, grade_many
    grade("... so \\boxed{025}", "25", "math")  # Grade(status='correct', extracted='025', decided_by='integer')
    grade_many([(response, gold, "minerva", truncated)], workers=2, deadline_s=5.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.grading.compare import DECIDERS, compare, gold_parts, is_equivalent
from harness.grading.extract import extract_with
from harness.grading.pool import GraderPool, close_pool, get_pool
from harness.grading.rules import RULES, SPEC_NOTES, GradingRule, get_rule, with_extractors

STATUSES = ("correct", "wrong", "no_answer", "truncated", "timeout", "grader_error")
RuleSpec = str | dict | GradingRule


@dataclass(frozen=True)
class Grade:
    """One graded sample. `status` is one of STATUSES; `extracted` the answer text (None if none found);
    `decided_by` the comparison that decided (one of DECIDERS), None when nothing was compared."""

    status: str
    extracted: str | None
    decided_by: str | None = None

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def extract_answer(response: str, rule: RuleSpec = "math", gold: str | None = None) -> str | None:
    """The answer `rule`'s extractors find in `response` (first that finds one); None when none does.
    With a `gold` that lists several answers, several boxes in the answer part are the answer."""
    list_gold = gold is not None and len(gold_parts(str(gold))) > 1
    return extract_with(response, get_rule(rule).extract, list_gold=list_gold)[0]


def grade_many(items: Iterable[Sequence[Any]], workers: int = 2, deadline_s: float = 5.0) -> list[Grade]:
    """Grade (response, gold, rule[, truncated]) items; results in the order of `items`.

    Each comparison gets `deadline_s` seconds in a worker process; past it the worker is killed and the
    sample is `timeout`. A worker exception makes that one sample `grader_error`. A bad rule raises
    InputError before anything is graded.
    """
    if deadline_s <= 0:
        raise ValueError(f"deadline_s must be > 0, got {deadline_s}")
    items = [tuple(it) for it in items]
    rules = [get_rule(it[2]) for it in items]
    grades: list[Grade | None] = [None] * len(items)
    tasks, where = [], []
    list_golds: dict[str, bool] = {}
    for i, (item, rule) in enumerate(zip(items, rules, strict=True)):
        response, gold = item[0], str(item[1])
        truncated = bool(item[3]) if len(item) > 3 else False
        if gold not in list_golds:
            list_golds[gold] = len(gold_parts(gold)) > 1
        extracted, _ = extract_with(response or "", rule.extract, list_gold=list_golds[gold])
        if extracted is None:
            grades[i] = Grade("truncated" if truncated else "no_answer", None)
        else:
            tasks.append((extracted, gold, rule.name))
            where.append(i)
    if tasks:
        replies = get_pool(workers).run(tasks, deadline_s, keys=[t[1] for t in tasks])
        for i, task, (kind, value) in zip(where, tasks, replies, strict=True):
            if kind == "ok":
                grades[i] = Grade("correct" if value[0] else "wrong", task[0], value[1])
            else:
                grades[i] = Grade("timeout" if kind == "timeout" else "grader_error", task[0])
    return [g for g in grades if g is not None]


def grade(
    response: str, gold: str, rule: RuleSpec = "math", *, truncated: bool = False, deadline_s: float = 5.0
) -> Grade:
    """Grade one response (through the shared worker pool, so it cannot hang)."""
    return grade_many([(response, gold, rule, truncated)], workers=2, deadline_s=deadline_s)[0]


def equivalent_many(
    pairs: Sequence[tuple[str, str]], rule: RuleSpec = "math", workers: int = 2, deadline_s: float = 5.0
) -> list[bool]:
    """is_equivalent(a, b, rule) for each (a, b) pair, in worker processes; a timeout or error counts False."""
    name = get_rule(rule).name
    if not pairs:
        return []
    replies = get_pool(workers).run([(a, b, name) for a, b in pairs], deadline_s, keys=[b for _, b in pairs])
    return [kind == "ok" and bool(value[0]) for kind, value in replies]


__all__ = [
    "DECIDERS", "RULES", "SPEC_NOTES", "STATUSES", "Grade", "GraderPool", "GradingRule", "close_pool", "compare",
    "equivalent_many", "extract_answer", "get_pool", "get_rule", "grade", "grade_many", "is_equivalent",
    "with_extractors",
]  # fmt: skip
