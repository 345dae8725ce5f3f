"""In-process side table: per-sample rollout statistics from the lm-eval backend to the task metrics.

lm-eval passes only the response strings from `generate_until` to a task's `process_results`. The backend
(harness/lmeval.py) therefore records each sample's statistics here, keyed by (doc, response text), and
tasks/utils.py reads them back. Both run in the same process within one `simple_evaluate` call. Two samples
of one doc with the same text are kept in sample order (`lookup` returns one entry per occurrence).
A response not found here (another lm-eval model, e.g. `--model hf`) gets None: the task then counts
tokens with the built-in counter and leaves wall-clock statistics out.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict

_TABLE: dict[tuple[str, str], list[dict]] = defaultdict(list)


def doc_key(doc: dict) -> str:
    """A stable key of a task doc (its JSON, keys sorted)."""
    blob = json.dumps(doc, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def record(doc: dict, response: str, stats: dict) -> None:
    """Remember the statistics of one sample (call in sample order)."""
    _TABLE[(doc_key(doc), response)].append(stats)


def lookup(doc: dict, responses: list[str]) -> list[dict | None]:
    """Statistics of each response of one doc, in order; None where the backend recorded nothing."""
    key = doc_key(doc)
    seen: dict[str, int] = defaultdict(int)
    out: list[dict | None] = []
    for text in responses:
        entries = _TABLE.get((key, text), [])
        n = seen[text]
        seen[text] += 1
        out.append(entries[n] if n < len(entries) else (entries[-1] if entries else None))
    return out


def clear() -> None:
    _TABLE.clear()


def _stats_of(responses: list[str], doc: dict) -> list[dict]:
    """Side-table statistics, or the built-in counter's when the backend recorded none."""
    found = lookup(doc, responses)
    if all(s is not None for s in found):
        return found  # type: ignore[return-value]
    from harness.counting import measure_text

    out = []
    for text, s in zip(responses, found, strict=True):
        if s is None:
            m = measure_text(text)
            s = {"critical_path_tokens": m.critical_path_tokens, "total_tokens": m.total_tokens,
                 "self_parallelism": m.self_parallelism, "is_parallel": m.is_parallel, "valid": m.valid,
                 "violations": len(m.violations), "wall_s": None, "engine_calls": None, "end_reason": None}  # fmt: skip
        out.append(s)
    return out


def _mean(values: list) -> float:
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else float("nan")


def score_doc(doc: dict, responses: list[str], workers: int = 2, deadline_s: float = 5.0) -> dict[str, float]:
    """The task metrics of one doc's k samples (spec section 6): accuracy, pass@k, maj@k, latency."""
    from harness.grading import grade_many
    from harness.metrics import maj_at_k

    stats = _stats_of(responses, doc)
    truncated = [s.get("end_reason") in ("budget", "max_steps") for s in stats]
    items = [(r, str(doc["answer"]), doc["grading"], t) for r, t in zip(responses, truncated, strict=True)]
    grades = grade_many(items, workers=workers, deadline_s=deadline_s)
    n, c = len(grades), sum(g.status == "correct" for g in grades)
    return {
        "acc": c / n,
        "pass@k": float(c > 0),  # the unbiased estimator 1 - C(n-c, k)/C(n, k) at k = n
        "maj@k": maj_at_k([g.extracted for g in grades], str(doc["answer"]), doc["grading"],
                          workers=workers, deadline_s=deadline_s),
        "critical_path_tokens": _mean([s["critical_path_tokens"] for s in stats]),
        "total_tokens": _mean([s["total_tokens"] for s in stats]),
        "self_parallelism": _mean([s["self_parallelism"] for s in stats]),
        "activation_ratio": _mean([bool(s["is_parallel"]) for s in stats]),
        "format_error_rate": _mean([s["valid"] is False or bool(s["violations"]) for s in stats]),
        "truncation_rate": _mean(truncated),
        "wall_s": _mean([s["wall_s"] for s in stats]),
        "engine_calls": _mean([s["engine_calls"] for s in stats]),
        "num_samples": float(n),
    }
