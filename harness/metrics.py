"""Every figure: Avg@k, unbiased pass@k, maj@k, bootstrap intervals, stderr, the paper's speedup, rates.

Pure Python and numpy (threadweaver.md section 6). The task metrics (harness.samplestats), result files
(harness.results), leaderboards and the regression gate compute their figures here and nowhere else. Per-
sample flags are defined once on the sample record (harness/records.py: `truncated`, `valid`); this
module aggregates them. maj@k groups answers by equivalence through `harness.grading`, whose worker
pool keeps a hostile answer from hanging the vote.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from harness import answer_norm as norm
from harness.errors import InputError
from harness.grading import equivalent_many


def avg_at_k(correct_flags: Sequence[bool | float]) -> float:
    """Avg@k: the mean correctness over the k samples of one problem (spec section 6)."""
    if len(correct_flags) == 0:
        raise ValueError("correct_flags must be non-empty, got 0 samples")
    return float(np.mean(np.asarray(correct_flags, dtype=float)))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021): 1 - C(n-c, k) / C(n, k)."""
    if n < 1 or not 0 <= c <= n:
        raise ValueError(f"need n >= 1 and 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, n={n}], got {k}")
    if n - c < k:
        return 1.0
    # product form of the binomial ratio: stable for large n
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=float)))


def majority_answer(
    answers: Sequence[str | None], rule: str, *, workers: int = 2, deadline_s: float = 5.0
) -> tuple[str | None, int]:
    """The most voted answer and its votes; answers are grouped by equivalence under the grading `rule`.

    Missing answers (None) do not vote; ties go to the group whose first member came first.
    """
    distinct: list[str] = []
    votes: dict[str, int] = {}
    for a in answers:
        if a is None or not a.strip():
            continue
        key = norm.normalize(a)
        if key not in votes:
            distinct.append(a)
            votes[key] = 0
        votes[key] += 1
    if not distinct:
        return None, 0
    pairs = [(distinct[j], distinct[i]) for j in range(len(distinct)) for i in range(j)]
    same = dict(zip(pairs, equivalent_many(pairs, rule, workers, deadline_s), strict=True))
    groups: list[list[str]] = []  # in order of first occurrence
    for a in distinct:
        home = next((g for g in groups if same[(a, g[0])]), None)
        if home is None:
            groups.append([a])
        else:
            home.append(a)
    counts = [sum(votes[norm.normalize(a)] for a in g) for g in groups]
    best = max(range(len(groups)), key=lambda i: (counts[i], -i))
    return groups[best][0], counts[best]


def maj_at_k(
    extracted_answers: Sequence[str | None],
    gold: str,
    rule: str,
    *,
    workers: int = 2,
    deadline_s: float = 5.0,
) -> float:
    """maj@k: 1.0 when the majority answer (equivalence groups) matches `gold`, else 0.0."""
    winner, _ = majority_answer(extracted_answers, rule, workers=workers, deadline_s=deadline_s)
    if winner is None:
        return 0.0
    return float(equivalent_many([(winner, gold)], rule, workers, deadline_s)[0])


def stderr(values: Sequence[float]) -> float:
    """Standard error of the mean (sample std, ddof=1, over sqrt(n)); nan for fewer than 2 values."""
    if len(values) < 2:
        return float("nan")
    x = np.asarray(values, dtype=float)
    return float(x.std(ddof=1) / math.sqrt(len(x)))


def bootstrap_ci(
    values: Sequence[float], n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile bootstrap interval (1 - alpha) of the mean of `values`."""
    if len(values) == 0:
        raise ValueError("values must be non-empty, got 0 values")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    x = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


@dataclass
class Speedup:
    """Speedup vs a sequential baseline (threadweaver.md section 6) with a bootstrap CI over problems."""

    speedup: float
    """Mean over problems of (baseline mean latency / model mean latency)."""
    ci_low: float
    ci_high: float
    problems: int
    speedup_correct_only: float | None = None
    """The same over correct rollouts only, skipping problems where either side has none."""
    max_speedup: float | None = None
    """The largest per-problem correct-only ratio."""


def paper_speedup(
    baseline: Mapping[str, Sequence[float]],
    model: Mapping[str, Sequence[float]],
    baseline_correct: Mapping[str, Sequence[bool]] | None = None,
    model_correct: Mapping[str, Sequence[bool]] | None = None,
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> Speedup | None:
    """The paper's speedup from per-rollout latencies (e.g. critical_path_tokens) keyed by problem id;
    None when the two share no problem with rollouts (problems where the model's mean latency is 0 are
    skipped: no ratio exists)."""
    common = sorted(p for p in baseline if p in model and len(baseline[p]) and len(model[p]) and np.mean(model[p]) > 0)
    if not common:
        return None
    ratios = [float(np.mean(baseline[p]) / np.mean(model[p])) for p in common]
    low, high = bootstrap_ci(ratios, n_boot=n_boot, seed=seed)
    out = Speedup(float(np.mean(ratios)), low, high, len(common))
    if baseline_correct is not None and model_correct is not None:
        kept = []
        for p in common:
            b = [v for v, ok in zip(baseline[p], baseline_correct.get(p, ()), strict=False) if ok]
            m = [v for v, ok in zip(model[p], model_correct.get(p, ()), strict=False) if ok]
            if b and m and np.mean(m) > 0:
                kept.append(np.mean(b) / np.mean(m))
        if kept:
            out.speedup_correct_only, out.max_speedup = float(np.mean(kept)), float(np.max(kept))
    return out


# ----------------------------------------------------------------------------- per-sample aggregates
def mean(values: Iterable[float | None]) -> float:
    """Mean of the values that are not None; nan when there are none."""
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else float("nan")


def rate(flags: Iterable[bool | None]) -> float:
    """Share of True among the flags that are not None (activation, truncation, format errors); nan if none."""
    return mean(None if f is None else float(bool(f)) for f in flags)


def by_problem(problem_ids: Sequence[str], values: Sequence[float]) -> dict[str, list[float]]:
    """problem id -> its samples' values, problems in sorted order."""
    out: dict[str, list[float]] = {}
    for pid, v in zip(problem_ids, values, strict=True):
        out.setdefault(pid, []).append(v)
    return dict(sorted(out.items()))


def accuracy(problem_ids: Sequence[str], correct: Sequence[bool]) -> float:
    """Avg@k over a benchmark: the mean over problems of each problem's mean correctness (section 6)."""
    groups = by_problem(problem_ids, [float(c) for c in correct])
    if not groups:
        raise ValueError("accuracy needs at least one sample, got 0")
    return float(np.mean([avg_at_k(v) for v in groups.values()]))


def check_same_unit(units: Mapping[str, str | None], what: str) -> str:
    """The one count unit of the named figures; InputError when they differ or one is unknown: figures
    counted in different units are never compared (harness/tokens.py)."""
    distinct = set(units.values())
    if None in distinct or "unknown" in distinct:
        unknown = [name for name, u in units.items() if u in (None, "unknown")]
        raise InputError(f"cannot compare {what}: the count unit of {', '.join(unknown)} is unknown "
                         "(rebuild it from sample records of this harness)")  # fmt: skip
    if len(distinct) > 1:
        listed = ", ".join(f"{name} in {u}" for name, u in units.items())
        raise InputError(f"cannot compare {what}: counted in different units ({listed})")
    return distinct.pop()


def pareto_flags(points: list[tuple[float, float | None]]) -> list[bool]:
    """(accuracy, cost) pairs: True where no other point is at least as accurate and cheaper (one strictly)."""
    flags = []
    for i, (acc, cost) in enumerate(points):
        if cost is None:
            flags.append(False)
            continue
        dominated = any(
            j != i and c is not None and a >= acc and c <= cost and (a > acc or c < cost)
            for j, (a, c) in enumerate(points)
        )
        flags.append(not dominated)
    return flags
