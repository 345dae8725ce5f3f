"""Every figure: Avg@k, unbiased pass@k, maj@k, bootstrap intervals, stderr, the paper's speedup, rates.

Pure Python and numpy (threadweaver.md section 6). The task metrics (harness.samplestats), result files
(harness.results), leaderboards and the regression gate compute their figures here and nowhere else. Per-
sample flags are defined once on the sample record (harness/records.py: `truncated`, `valid`); this
module aggregates them. maj@k groups answers by equivalence through `harness.grading`, whose worker
pool keeps a hostile answer from hanging the vote.
"""

from __future__ import annotations

import math
import re
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


# ------------------------------------------------------------- per-trajectory figures of formats.md section 4
TAG_BALANCES = ("balanced", "format_error", "no_tags")
"""Lenient format reading of one trajectory (formats.md section 4): its control tags balanced and properly
nested, unmatched or misnested, or none at all; the three shares of a run sum to 1."""


def tag_balance(text: str, special_tokens: Sequence[str]) -> str:
    """"balanced", "format_error" or "no_tags" for `text`: every `<X>` of the format's tags closed by its
    `</X>` in nesting order (a stack), nothing left open at the end."""
    closers = {t: "<" + t[2:] for t in special_tokens if t.startswith("</")}
    opens = {t for t in special_tokens if t not in closers}
    pattern = "|".join(sorted(map(re.escape, special_tokens), key=len, reverse=True))
    found = [m.group(0) for m in re.finditer(pattern, text)] if pattern else []
    if not found:
        return "no_tags"
    stack: list[str] = []
    for tag in found:
        if tag in opens:
            stack.append(tag)
        elif not stack or stack.pop() != closers[tag]:
            return "format_error"
    return "format_error" if stack else "balanced"


def triggered(units: Sequence) -> bool | None:
    """A fork group was executed: at least one branch request was issued (formats.md section 4, trigger
    rate; record first). None without units (a text-only record: use the counted blocks instead)."""
    if not units:
        return None
    return any(u.kind == "branch" for u in units)


def inserted_tokens(total_tokens: int, units: Sequence) -> int | None:
    """Runtime-inserted tokens of a trajectory (branch headers and wrappers, join text, forced closes):
    its total tokens less what the engine generated (the units' completions). None without units."""
    if not units:
        return None
    return total_tokens - sum(len(u.completion_ids) for u in units)


def _lcp(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if diff.size else n


def reprefill_tokens(prompt_ids: Sequence[int] | None, response_ids: Sequence[int] | None,
                     units: Sequence) -> int | None:  # fmt: skip
    """Prompt tokens the engine must prefill again within a trajectory (formats.md section 4,
    `reprefill_tokens`): over every request after the first, the prompt tokens that are not a prefix of an
    earlier finished request's prompt + completion (less its last sampled token). That is what an unlimited, token-granular prefix cache
    still computes (the joins' branches 2..n, inserted text, and the last sampled token of a continued
    request); an engine with block-granular or evicted cache blocks prefills at least this much.
    A unit's prompt is `(prompt_ids + response_ids)[:context_tokens] + inserted_ids` (harness/records.py).
    None without units or ids."""
    if not units or prompt_ids is None or response_ids is None:
        return None
    trajectory = np.asarray(list(prompt_ids) + list(response_ids), dtype=np.int64)
    reqs = sorted(units, key=lambda u: (u.start_s, u.end_s))
    tails = [np.asarray(list(u.inserted_ids), dtype=np.int64) for u in reqs]
    # what a finished request leaves in the cache: its prompt and completion but the last sampled token,
    # which the engine never ran the model on
    seqs = [np.concatenate([t, np.asarray(u.completion_ids[:-1], dtype=np.int64)]) for u, t in zip(reqs, tails, strict=True)]
    total = 0
    for i in range(1, len(reqs)):
        ci, own = reqs[i].context_tokens, tails[i]
        best = 0
        for j in range(i):
            if reqs[j].end_s > reqs[i].start_s:  # still running when request i started: nothing to reuse
                continue
            cj, other = reqs[j].context_tokens, seqs[j]
            m = min(ci, cj)  # both prompts share the trajectory's first m tokens
            a = np.concatenate([trajectory[m:ci][: (cj - m) + len(other)], own])
            b = np.concatenate([trajectory[m:cj][: (ci - m) + len(own)], other])
            best = max(best, m + _lcp(a, b))
        total += ci + len(own) - min(best, ci + len(own))
    return total


def tokens_per_s(tokens: Sequence[float], walls: Sequence[float | None]) -> float | None:
    """Generated tokens per wall-clock second of trajectory time (sum of tokens / sum of wall_s); None
    when a wall time is missing or they sum to 0. Ratios of it compare runs of the same engine, hardware
    and concurrency only (formats.md section 4, `tps_ratio`)."""
    if not walls or any(w is None for w in walls) or sum(walls) <= 0:
        return None
    return float(sum(tokens) / sum(walls))


def tps_ratio(model_tokens_per_s: float | None, baseline_tokens_per_s: float | None) -> float | None:
    """TPS-ratio speedup (NPR's speed figure): the model's tokens per second over the sequential baseline's;
    a throughput ratio, never a latency or critical-path speedup."""
    if model_tokens_per_s is None or not baseline_tokens_per_s:
        return None
    return model_tokens_per_s / baseline_tokens_per_s


def tokens_with_reprefill(total_tokens: float | None, reprefill_tokens: float | None) -> float | None:
    """Total tokens including the re-prefilled join tokens (formats.md section 4): what the engine
    computed beyond the first prompt; None when either is unknown."""
    return None if total_tokens is None or reprefill_tokens is None else total_tokens + reprefill_tokens
