"""Is checkpoint B worse than checkpoint A? A paired per-problem bootstrap for a model repo's CI.

    threadweaver regress --baseline results/a.json --candidate results/b.json --report regress.md

Problems are resampled with replacement; within a problem its samples are averaged (fixed, not resampled).
A regression needs evidence: accuracy fails when even the optimistic end of the one-sided CI of
(candidate - baseline) is below -max_accuracy_drop_points; latency fails when even the optimistic end of the
one-sided CI of the relative change in critical-path tokens is above +max_latency_increase_pct. So a rerun
of the same model passes, and a real drop several times the bootstrap standard error is flagged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import metrics
from harness.config import build_dataclass, load_yaml_mapping
from harness.errors import InputError
from harness.results import Result

SETTINGS = ("num_samples_per_problem", "budget_tokens", "parallel", "format", "join")
SAMPLING = ("temperature", "top_p", "top_k")


@dataclass
class RegressPolicy:
    """Allowed changes of a candidate vs its baseline (YAML keys = these field names)."""

    max_accuracy_drop_points: float = 1.0
    """Accuracy (Avg@k, percent) may not fall by more than this many points. Must be >= 0."""
    max_latency_increase_pct: float = 5.0
    """Mean critical-path tokens may not rise by more than this percent. Must be >= 0."""
    confidence: float = 0.95
    """Confidence of the one-sided bounds. Must be in (0.5, 1)."""
    check_latency: bool = True
    """Also gate on critical-path tokens."""

    def __post_init__(self):
        for name in ("max_accuracy_drop_points", "max_latency_increase_pct"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if isinstance(self.confidence, bool) or not isinstance(self.confidence, int | float) \
                or not 0.5 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0.5, 1), got {self.confidence!r}")
        if not isinstance(self.check_latency, bool):
            raise ValueError(f"check_latency must be true or false, got {self.check_latency!r}")


def load_policy(path: str | Path) -> RegressPolicy:
    """A policy YAML (keys = RegressPolicy fields); InputError naming the file and the key."""
    return build_dataclass(RegressPolicy, load_yaml_mapping(path), str(path))


@dataclass
class Estimate:
    value: float
    ci_low: float
    """Two-sided CI at the policy confidence."""
    ci_high: float
    bound: float
    """The one-sided bound that decides (upper for accuracy, lower for latency)."""


@dataclass
class RegressReport:
    baseline: str
    candidate: str
    benchmark: str
    num_problems: int
    policy: RegressPolicy
    accuracy_baseline: float
    accuracy_candidate: float
    accuracy_change_points: Estimate
    latency_baseline: float
    latency_candidate: float
    latency_change_pct: Estimate
    failures: list[str]
    allowed_differences: list[str] = dataclasses.field(default_factory=list)
    """Settings that differ and were allowed (`--allow-setting-diff`), shown in the report."""

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


def setting_differences(baseline: Result, candidate: Result) -> dict[str, str]:
    """name -> "a vs b" for every run setting that differs."""
    out = {}
    for name in SETTINGS:
        a, b = getattr(baseline, name), getattr(candidate, name)
        if a != b:
            out[name] = f"{a!r} vs {b!r}"
    for name in SAMPLING:
        a, b = getattr(baseline.sampling, name), getattr(candidate.sampling, name)
        if a != b:
            out[f"sampling.{name}"] = f"{a!r} vs {b!r}"
    return out


def check_comparable(baseline: Result, candidate: Result, allow: tuple[str, ...] = ()) -> list[str]:
    """Why the two results cannot be compared (benchmark, problem set, count unit, settings not in
    `allow`), or []."""
    problems = []
    if baseline.benchmark != candidate.benchmark:
        problems.append(f"benchmarks differ: '{baseline.benchmark}' vs '{candidate.benchmark}'")
    for name, r in (("baseline", baseline), ("candidate", candidate)):
        if not r.samples:
            problems.append(f"{name} '{r.model.name}' has no samples (a {r.provenance} result); "
                            "regress needs measured results")
    if problems:
        return problems
    b_ids, c_ids = set(baseline.problem_means("correct")), set(candidate.problem_means("correct"))
    if b_ids != c_ids:
        only_b, only_c = sorted(b_ids - c_ids), sorted(c_ids - b_ids)
        problems.append(f"problem sets differ: {len(only_b)} only in baseline (e.g. {only_b[:3]}), "
                        f"{len(only_c)} only in candidate (e.g. {only_c[:3]})")
    try:
        metrics.check_same_unit({"baseline": baseline.count_unit, "candidate": candidate.count_unit}, "latency")
    except InputError as exc:
        problems.append(str(exc).removeprefix("cannot compare latency: "))
    for name, diff in setting_differences(baseline, candidate).items():
        if name not in allow:
            problems.append(f"setting '{name}' differs: {diff} (allow it with --allow-setting-diff {name})")
    return problems


def _estimate(point: float, boot: np.ndarray, confidence: float, upper: bool) -> Estimate:
    tail = 100.0 * (1.0 - confidence)
    lo, hi = np.percentile(boot, [tail / 2, 100.0 - tail / 2])
    bound = np.percentile(boot, 100.0 - tail if upper else tail)
    return Estimate(float(point), float(lo), float(hi), float(bound))


def regress(baseline: Result, candidate: Result, policy: RegressPolicy | None = None, *, n_boot: int = 2000,
            seed: int = 0, allow: tuple[str, ...] = ()) -> RegressReport:
    """Paired bootstrap over problems of the accuracy change (points) and latency change (percent).
    `allow`: settings that may differ (a parallel model against its sequential baseline: "parallel")."""
    policy = policy or RegressPolicy()
    unknown = [a for a in allow if a not in SETTINGS + tuple(f"sampling.{s}" for s in SAMPLING)]
    if unknown:
        raise InputError(f"--allow-setting-diff: unknown setting '{unknown[0]}' (settings: "
                         f"{', '.join(SETTINGS + tuple(f'sampling.{s}' for s in SAMPLING))})")  # fmt: skip
    problems = check_comparable(baseline, candidate, allow)
    if problems:
        raise InputError("cannot compare: " + "; ".join(problems))
    ids = list(baseline.problem_means("correct"))

    def per_problem(r: Result, key: str) -> np.ndarray:
        means = r.problem_means(key)
        return np.array([means[p] for p in ids])

    report = compare_arrays(
        100.0 * per_problem(baseline, "correct"), 100.0 * per_problem(candidate, "correct"),
        per_problem(baseline, "critical_path_tokens"), per_problem(candidate, "critical_path_tokens"),
        policy, n_boot=n_boot, seed=seed)
    report.baseline, report.candidate, report.benchmark = baseline.model.name, candidate.model.name, baseline.benchmark
    report.allowed_differences = [f"{k}: {v}" for k, v in setting_differences(baseline, candidate).items()]
    return report


def compare_arrays(acc_b: np.ndarray, acc_c: np.ndarray, cp_b: np.ndarray, cp_c: np.ndarray,
                   policy: RegressPolicy, *, n_boot: int = 2000, seed: int = 0) -> RegressReport:
    """The decision on per-problem arrays (accuracy in percent, mean critical-path tokens), paired by index."""
    if n_boot < 100:
        raise InputError(f"--n-boot must be >= 100, got {n_boot}")
    n = len(acc_b)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    d_acc = (acc_c - acc_b)[idx].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        d_cp = np.nan_to_num(100.0 * (cp_c[idx].mean(axis=1) / cp_b[idx].mean(axis=1) - 1.0), nan=0.0)
    acc = _estimate(acc_c.mean() - acc_b.mean(), d_acc, policy.confidence, upper=True)
    cp_point = 100.0 * (cp_c.mean() / cp_b.mean() - 1.0) if cp_b.mean() > 0 else 0.0
    lat = _estimate(cp_point, d_cp, policy.confidence, upper=False)
    failures = []
    conf = f"{100 * policy.confidence:g}%"
    if acc.bound < -policy.max_accuracy_drop_points:
        failures.append(f"accuracy fell by {-acc.value:.2f} points; with {conf} confidence by more than "
                        f"{-acc.bound:.2f} > allowed {policy.max_accuracy_drop_points:g}")
    if policy.check_latency and lat.bound > policy.max_latency_increase_pct:
        failures.append(f"critical-path tokens rose by {lat.value:.2f}%; with {conf} confidence by more than "
                        f"{lat.bound:.2f}% > allowed {policy.max_latency_increase_pct:g}%")
    return RegressReport("baseline", "candidate", "?", n, policy, float(acc_b.mean()), float(acc_c.mean()), acc,
                         float(cp_b.mean()), float(cp_c.mean()), lat, failures)


def render_report(r: RegressReport) -> str:
    conf = f"{100 * r.policy.confidence:g}%"
    verdict = "PASS" if r.passed else "REGRESSION"
    a, lat = r.accuracy_change_points, r.latency_change_pct
    lines = [
        f"# Regression check: {r.candidate} vs {r.baseline} on {r.benchmark}: {verdict}", "",
        f"Paired bootstrap over {r.num_problems} problems (samples averaged within a problem).", "",
        f"| metric | baseline | candidate | change | {conf} CI | one-sided bound | allowed |",
        "|---|---|---|---|---|---|---|",
        f"| accuracy (%, Avg@k) | {r.accuracy_baseline:.2f} | {r.accuracy_candidate:.2f} | {a.value:+.2f} pts "
        f"| [{a.ci_low:+.2f}, {a.ci_high:+.2f}] | {a.bound:+.2f} (upper) | >= -{r.policy.max_accuracy_drop_points:g} |",
        f"| critical-path tokens | {r.latency_baseline:.1f} | {r.latency_candidate:.1f} | {lat.value:+.2f}% "
        f"| [{lat.ci_low:+.2f}, {lat.ci_high:+.2f}] | {lat.bound:+.2f}% (lower) "
        f"| <= +{r.policy.max_latency_increase_pct:g}%{'' if r.policy.check_latency else ' (not checked)'} |",
        "",
        "Policy: " + ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(r.policy).items()), "",
    ]
    if r.allowed_differences:
        lines += ["Settings that differ (allowed): " + "; ".join(r.allowed_differences), ""]
    lines += [f"- {f}" for f in r.failures] or ["No regression found."]
    return "\n".join(lines) + "\n"
