"""In-process side table: each sample's record from the lm-eval backend to the task metrics.

lm-eval passes only the response strings from `generate_until` to a task's `process_results`. The backend
(harness/lmeval.py) therefore records each sample's SampleRecord here, keyed by (doc, response text), and
tasks/utils.py reads them back. Both run in the same process within one `simple_evaluate` call. Two samples
of one doc with the same text are kept in sample order (`lookup` returns one entry per occurrence).
A response not found here (another lm-eval model, e.g. `--model hf`) gets None: the task then counts its
tokens with the built-in counter, grades it, and leaves wall-clock statistics out.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict

from harness.records import SampleRecord

_TABLE: dict[tuple[str, str], list[SampleRecord]] = defaultdict(list)


def doc_key(doc: dict) -> str:
    """A stable key of a task doc (its JSON, keys sorted)."""
    blob = json.dumps(doc, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def record(doc: dict, response: str, rec: SampleRecord) -> None:
    """Remember the record of one sample (call in sample order)."""
    _TABLE[(doc_key(doc), response)].append(rec)


def lookup(doc: dict, responses: list[str]) -> list[SampleRecord | None]:
    """The record of each response of one doc, in order; None where the backend recorded nothing."""
    key = doc_key(doc)
    seen: dict[str, int] = defaultdict(int)
    out: list[SampleRecord | None] = []
    for text in responses:
        entries = _TABLE.get((key, text), [])
        n = seen[text]
        seen[text] += 1
        out.append(entries[n] if n < len(entries) else (entries[-1] if entries else None))
    return out


def clear() -> None:
    _TABLE.clear()


def records_of(doc: dict, responses: list[str], workers: int = 2, deadline_s: float = 5.0) -> list[SampleRecord]:
    """A graded record per response: the backend's, or one made here (built-in counter, graded now)."""
    from harness.counting import measure_text
    from harness.grading import grade_many

    out = []
    for i, (text, rec) in enumerate(zip(responses, lookup(doc, responses), strict=True)):
        if rec is None:
            rec = SampleRecord(problem_id=str(doc.get("id", "")), sample_index=i, response=text,
                               benchmark=doc.get("benchmark"), gold=str(doc["answer"]), grading=doc["grading"],
                               metrics=measure_text(text))  # fmt: skip
        out.append(rec)
    todo = [r for r in out if r.grade is None]
    if todo:
        items = [(r.response, r.gold if r.gold is not None else str(doc["answer"]), r.grading or doc["grading"],
                  r.truncated) for r in todo]  # fmt: skip
        for r, g in zip(todo, grade_many(items, workers=workers, deadline_s=deadline_s), strict=True):
            r.grade = g
    return out


def score_doc(doc: dict, responses: list[str], workers: int = 2, deadline_s: float = 5.0) -> dict[str, float]:
    """The task metrics of one doc's k samples (threadweaver.md section 6; harness.metrics)."""
    from harness import metrics

    recs = records_of(doc, responses, workers, deadline_s)
    correct = [r.grade.status == "correct" for r in recs]
    walls = [r.wall_s for r in recs]
    calls = [r.engine_calls for r in recs]
    return {
        "acc": metrics.avg_at_k(correct),
        "pass@k": metrics.pass_at_k(len(correct), sum(correct), len(correct)),
        "maj@k": metrics.maj_at_k([r.grade.extracted for r in recs], str(doc["answer"]), doc["grading"],
                                  workers=workers, deadline_s=deadline_s),  # fmt: skip
        "critical_path_tokens": metrics.mean([r.metrics.critical_path_tokens for r in recs]),
        "total_tokens": metrics.mean([r.metrics.total_tokens for r in recs]),
        "self_parallelism": metrics.mean([r.metrics.self_parallelism for r in recs]),
        "activation_ratio": metrics.rate(r.metrics.is_parallel for r in recs),
        "format_error_rate": metrics.rate(r.valid is False for r in recs),
        "truncation_rate": metrics.rate(r.truncated for r in recs),
        "wall_s": metrics.mean(walls),  # over the samples the backend timed
        "engine_calls": metrics.mean(calls),
        "num_samples": float(len(recs)),
    }
