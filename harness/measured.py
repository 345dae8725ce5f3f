"""Measured results from sample records: one Result per benchmark of a run, aggregates from samples.

    results = build_results(["out/run1/"], {"model": "toy-threadweaver"})   # files or folders of one run
    check_aggregates(load_result(path), path)                              # aggregates == what samples give

Every figure comes from harness.metrics; the run's settings (engine, sampling, budget, format, count unit)
come from the records' run header (harness/records.py); metadata given by the caller wins.
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, datetime
from pathlib import Path

from harness import metrics
from harness.errors import InputError
from harness.formats import FORMATS
from harness.records import record_files
from harness.results import Aggregates, FieldError, Result, Sample, result_from_dict


def compute_aggregates(samples: list[Sample]) -> Aggregates:
    """Avg@k accuracy, token means, rates (threadweaver.md section 6), all from harness.metrics."""
    from harness.records import LIMIT_END_REASONS

    ids = [s.problem_id for s in samples]
    walls = [s.wall_s for s in samples]
    ratios = [s.total_tokens / s.critical_path_tokens for s in samples if s.critical_path_tokens > 0]
    ends = [None if s.end_reason is None else s.end_reason in LIMIT_END_REASONS for s in samples]
    return Aggregates(
        accuracy=round(metrics.accuracy(ids, [s.status == "correct" for s in samples]), 6),
        critical_path_tokens=round(metrics.mean(s.critical_path_tokens for s in samples), 4),
        total_tokens=round(metrics.mean(s.total_tokens for s in samples), 4),
        self_parallelism=round(metrics.mean(ratios), 4) if ratios else None,
        activation_ratio=round(metrics.rate(s.is_parallel if s.is_parallel is not None
                                            else s.total_tokens > s.critical_path_tokens for s in samples), 6),
        truncation_rate=None if None in ends else round(metrics.rate(ends), 6),
        wall_s=round(metrics.mean(walls), 6) if None not in walls else None,
        num_problems=len(set(ids)), num_samples=len(samples),
    )  # fmt: skip


def _grade_missing(records: list) -> None:
    """Grade records that have no grade yet, with their own grading rule (worker pool with deadline)."""
    todo = [(w, r) for w, r in records if r.grade is None]
    for where, r in todo:
        if r.gold is None or r.grading is None:
            raise InputError(f"{where}: an ungraded record needs `gold` and `grading` to be graded")
    if todo:
        from harness.grading import grade_many

        grades = grade_many([(r.response, r.gold, r.grading, r.truncated) for _, r in todo])
        for (_, r), g in zip(todo, grades, strict=True):
            r.grade = g


def _run_fields(header) -> dict:
    """Result fields from a record's run header."""
    if header is None:
        return {}
    ro = header.rollout or {}
    return {
        "engine": header.engine, "engine_version": header.engine_version, "dtype": header.dtype,
        "sampling": {k: ro.get(k) for k in ("temperature", "top_p", "top_k")},
        "budget_tokens": ro.get("budget_tokens"), "seeds": None if ro.get("seed") is None else [ro["seed"]],
        "parallel": ro.get("parallel"), "format": header.format, "join": ro.get("join"),
        "fidelity": FORMATS[header.format].fidelity if header.format in FORMATS else None,
        "count_unit": header.count_unit, "pretrained": header.model, "zoo_name": header.zoo_name,
    }  # fmt: skip


def build_results(paths: list[str | Path], metadata: dict) -> list[Result]:
    """Measured Results (one per benchmark) from the sample records of ONE run: files or folders.

    `metadata` holds top-level result fields: `model` (a name or {name, zoo_name, pretrained}) and any of
    engine, engine_version, dtype, sampling, budget_tokens, seeds, parallel, format, join; given values
    win over the run header's.
    """
    from harness.records import read_records

    files = record_files(paths)
    records = [item for f in files for item in read_records(f)]
    if not records:
        raise InputError(f"{', '.join(map(str, paths))}: no sample records")
    runs = {}
    for where, r in records:
        key = json.dumps(None if r.run is None else {**dataclasses.asdict(r.run), "created_at": None}, sort_keys=True)
        runs.setdefault(key, where)
    if len(runs) > 1:
        raise InputError(f"{', '.join(map(str, paths))}: records of {len(runs)} different runs (first lines: "
                         f"{', '.join(runs.values())}); build each run from its own folder or file")  # fmt: skip
    run = _run_fields(records[0][1].run)
    for where, r in records:
        if r.metrics is None:
            raise InputError(f"{where}: a record without `metrics` cannot go into a result")
    _grade_missing(records)
    meta = dict(metadata)
    model = meta.pop("model", None)
    model = {"name": model} if isinstance(model, str) else dict(model or {})
    for name in ("pretrained", "zoo_name"):
        model[name] = model.get(name) or run.pop(name, None)
        run.pop(name, None)
    fields = {**run, **{k: v for k, v in meta.items() if v is not None}}
    units = {r.metrics.count_unit for _, r in records}
    if len(units) > 1:
        raise InputError(f"{paths[0]}: records counted in different units: {sorted(units)}")
    fields["count_unit"] = fields.get("count_unit") or units.pop()
    by_benchmark: dict[str, dict] = {}
    for where, r in records:
        if not r.benchmark:
            raise InputError(f"{where}: field `benchmark` is needed to build a result")
        s = Sample(problem_id=r.problem_id, sample_index=r.sample_index, status=r.grade.status,
                   total_tokens=r.metrics.total_tokens, critical_path_tokens=r.metrics.critical_path_tokens,
                   is_parallel=r.metrics.is_parallel, wall_s=r.wall_s, end_reason=r.end_reason)  # fmt: skip
        by_benchmark.setdefault(r.benchmark, {})[(s.problem_id, s.sample_index)] = s  # a resumed run: last wins
    out = []
    for benchmark, keyed in sorted(by_benchmark.items()):
        samples = sorted(keyed.values(), key=lambda s: (s.problem_id, s.sample_index))
        counts: dict[str, int] = {}
        for s in samples:
            counts[s.problem_id] = counts.get(s.problem_id, 0) + 1
        data = {
            **fields, "model": model, "benchmark": benchmark, "provenance": "measured",
            "num_samples_per_problem": max(counts.values()),
            "created_at": fields.get("created_at") or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aggregates": dataclasses.asdict(compute_aggregates(samples)),
            "samples": [dataclasses.asdict(s) for s in samples],
        }  # fmt: skip
        try:
            out.append(result_from_dict(data))
        except FieldError as exc:
            raise InputError(f"result for {benchmark} from {paths[0]}: {exc}") from None
    return out


def check_aggregates(result: Result, source: str) -> None:
    """A measured file's aggregates must be what its samples give (harness.metrics); InputError otherwise."""
    if result.provenance != "measured":
        return
    want = dataclasses.asdict(compute_aggregates(result.samples))
    got = dataclasses.asdict(result.aggregates)
    for name, value in want.items():
        have = got.get(name)
        if (value is None) != (have is None) or (value is not None and not math.isclose(value, have, rel_tol=1e-6, abs_tol=1e-6)):
            raise InputError(f"{source}: aggregates.{name} is {have!r} but its samples give {value!r}")
