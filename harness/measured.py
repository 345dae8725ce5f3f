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
    """Avg@k accuracy, token means, rates (threadweaver.md section 6, formats.md section 4), all from
    harness.metrics; a figure some sample does not carry (older records, no units) is null."""
    from harness.records import LIMIT_END_REASONS

    ids = [s.problem_id for s in samples]
    walls = [s.wall_s for s in samples]
    ratios = [s.total_tokens / s.critical_path_tokens for s in samples if s.critical_path_tokens > 0]
    ends = [None if s.end_reason is None else s.end_reason in LIMIT_END_REASONS for s in samples]
    rest = [s for s, e in zip(samples, ends, strict=True) if e is False]

    def every(name: str) -> list | None:  # the per-sample values, or None when a sample lacks it
        values = [getattr(s, name) for s in samples]
        return None if None in values else values

    def share(flags: list | None) -> float | None:
        return None if flags is None else round(metrics.rate(flags), 6)

    def avg(values: list | None) -> float | None:
        return None if values is None else round(metrics.mean(values), 4)

    balance, inserted = every("tag_balance"), every("inserted_tokens")
    generated = [s.total_tokens - (s.inserted_tokens or 0) for s in samples]
    return Aggregates(
        accuracy=round(metrics.accuracy(ids, [s.status == "correct" for s in samples]), 6),
        critical_path_tokens=round(metrics.mean(s.critical_path_tokens for s in samples), 4),
        total_tokens=round(metrics.mean(s.total_tokens for s in samples), 4),
        self_parallelism=round(metrics.mean(ratios), 4) if ratios else None,
        activation_ratio=round(metrics.rate(s.is_parallel if s.is_parallel is not None
                                            else s.total_tokens > s.critical_path_tokens for s in samples), 6),
        truncation_rate=None if None in ends else round(metrics.rate(ends), 6),
        wall_s=round(metrics.mean(walls), 6) if None not in walls else None,
        accuracy_untruncated=round(metrics.accuracy([s.problem_id for s in rest], [s.status == "correct" for s in rest]), 6)
        if rest and None not in ends else None,
        trigger_rate=share(every("triggered")), format_valid_strict=share(every("valid")),
        format_valid_lenient=share(None if balance is None else [b == "balanced" for b in balance]),
        format_error=share(None if balance is None else [b == "format_error" for b in balance]),
        no_tags=share(None if balance is None else [b == "no_tags" for b in balance]),
        inserted_tokens=avg(inserted), reprefill_tokens=avg(every("reprefill_tokens")),
        tokens_per_s=None if inserted is None or (tps := metrics.tokens_per_s(generated, walls)) is None
        else round(tps, 4),
        num_problems=len(set(ids)), num_samples=len(samples),
    )  # fmt: skip


def sample_of(record) -> Sample:
    """The result-file sample of a graded sample record; the formats.md section 4 figures from its units."""
    m = record.metrics
    fmt = FORMATS.get(record.format)
    return Sample(
        problem_id=record.problem_id, sample_index=record.sample_index, status=record.grade.status,
        total_tokens=m.total_tokens, critical_path_tokens=m.critical_path_tokens, is_parallel=m.is_parallel,
        wall_s=record.wall_s, end_reason=record.end_reason,
        triggered=metrics.triggered(record.units) if record.units else (bool(m.threads_per_block) and
                                                                         max(m.threads_per_block) > 0),
        valid=record.valid,
        tag_balance=None if fmt is None else metrics.tag_balance(record.response, fmt.special_tokens),
        inserted_tokens=metrics.inserted_tokens(m.total_tokens, record.units),
        reprefill_tokens=metrics.reprefill_tokens(record.prompt_ids, record.response_ids, record.units),
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
        "format_checker": FORMATS[header.format].checker if header.format in FORMATS else None,
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
        s = sample_of(r)
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
