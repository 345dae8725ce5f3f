"""Sample metrics: Avg@k, unbiased pass@k, maj@k, bootstrap intervals, stderr, the paper's speedup.

Pure Python and numpy (spec section 6). maj@k groups answers by mathematical equivalence through
`harness.grading`, whose worker pool keeps a hostile answer from hanging the vote.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from harness import answer_norm as norm
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


def paper_speedup(
    baseline: Mapping[str, Sequence[float]],
    model: Mapping[str, Sequence[float]],
    baseline_correct: Mapping[str, Sequence[bool]] | None = None,
    model_correct: Mapping[str, Sequence[bool]] | None = None,
) -> dict[str, float]:
    """Speedup vs a sequential baseline (spec section 6): per problem, mean baseline latency over mean
    model latency, then the mean over problems; "correct only" keeps correct rollouts and skips problems
    where either side has none, and `max_speedup` is the largest per-problem correct-only ratio.

    Latencies are per-rollout values (e.g. critical_path_tokens) keyed by problem id.
    """
    common = [p for p in baseline if p in model and len(baseline[p]) and len(model[p])]
    if not common:
        raise ValueError("baseline and model share no problem with rollouts")
    ratios = [np.mean(baseline[p]) / np.mean(model[p]) for p in common]
    out = {"speedup": float(np.mean(ratios)), "problems": float(len(common))}
    if baseline_correct is not None and model_correct is not None:
        kept = []
        for p in common:
            b = [v for v, ok in zip(baseline[p], baseline_correct.get(p, ()), strict=False) if ok]
            m = [v for v, ok in zip(model[p], model_correct.get(p, ()), strict=False) if ok]
            if b and m:
                kept.append(np.mean(b) / np.mean(m))
        if kept:
            out["speedup_correct_only"] = float(np.mean(kept))
            out["max_speedup"] = float(np.max(kept))
    return out
