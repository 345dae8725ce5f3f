"""Result files: one model on one benchmark under one setting (format: results/SCHEMA.md).

    result = load_result("results/threadweaver-qwen3-8b__aime24.json")
    results = build_results(["out/run1/"], {"model": "toy-threadweaver"})   # one per benchmark of the run
    save_result(results[0], "results/toy-threadweaver__toy.json")

Measured results are built from sample records (harness/records.py); every figure comes from
harness.metrics. Fractions in the file, percent only in rendered tables.

Every load error names the file and the field. Old files are upgraded by `UPGRADES` (one function per
old `schema_version`, each returning the next version), like append-only migrations.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import metrics
from harness.errors import InputError
from harness.formats.base import FIDELITIES

SCHEMA_VERSION = 3
STATUSES = ("correct", "wrong", "no_answer", "truncated", "timeout", "grader_error")
PROVENANCES = ("measured", "reported")

def _v1_to_v2(data: dict) -> dict:
    """v2: accuracy and activation_ratio become fractions; the count unit is recorded (unknown for v1)."""
    agg = dict(data.get("aggregates") or {})
    for name in ("accuracy", "activation_ratio"):
        if isinstance(agg.get(name), int | float) and not isinstance(agg.get(name), bool):
            agg[name] = round(agg[name] / 100.0, 6)
    return {**data, "aggregates": agg, "count_unit": data.get("count_unit")}


def _v2_to_v3(data: dict) -> dict:
    """v3: the figures of formats.md section 4 (trigger rate, strict/lenient format validity, inserted and
    re-prefilled tokens, accuracy without truncated samples, TPS) and `format_checker`; unknown (null) in v2."""
    return dict(data)


# old schema_version -> function(dict) returning the dict at version + 1. v1 is the first version.
UPGRADES: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2, 2: _v2_to_v3}


class FieldError(ValueError):
    """A field has a bad value; the loader adds the file name and the section prefix."""

    def __init__(self, name: str, expected: str, got: Any):
        self.name, self.expected, self.got = name, expected, got
        super().__init__(f"field '{name}' must be {expected}, got {got!r}")

    def within(self, prefix: str) -> FieldError:
        return FieldError(f"{prefix}{self.name}", self.expected, self.got)


def _num(obj, name: str, *, optional: bool = True, low: float | None = None, high: float | None = None) -> None:
    value = getattr(obj, name)
    if value is None and optional:
        return
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (low is None or value >= low) and (high is None or value <= high)
    if not ok:
        rng = "" if low is None else f" in [{low}, {'inf' if high is None else high}]"
        raise FieldError(name, f"a number{rng}" + (" or null" if optional else ""), value)


def _int(obj, name: str, *, optional: bool = True, low: int = 0) -> None:
    value = getattr(obj, name)
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise FieldError(name, f"an integer >= {low}" + (" or null" if optional else ""), value)


def _str(obj, name: str, *, optional: bool = True, choices: tuple[str, ...] | None = None) -> None:
    value = getattr(obj, name)
    if value is None and optional:
        return
    if not isinstance(value, str) or not value or (choices and value not in choices):
        expected = f"one of {list(choices)}" if choices else "a non-empty string"
        raise FieldError(name, expected + (" or null" if optional else ""), value)


@dataclass
class ModelInfo:
    name: str
    """Short model name used in tables and file names, e.g. `threadweaver-qwen3-8b`."""
    zoo_name: str | None = None
    """Name in harness/zoo.yaml, if the model is there."""
    pretrained: str | None = None
    """Hub id or local path that was loaded; null when unknown."""

    def __post_init__(self):
        _str(self, "name", optional=False)
        _str(self, "zoo_name")
        _str(self, "pretrained")


@dataclass
class Sampling:
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    """-1 means no top-k cut."""

    def __post_init__(self):
        _num(self, "temperature", low=0.0)
        _num(self, "top_p", low=0.0, high=1.0)
        _int(self, "top_k", low=-1)


@dataclass
class Citation:
    paper: str
    table: str | None = None
    note: str | None = None

    def __post_init__(self):
        _str(self, "paper", optional=False)
        _str(self, "table")
        _str(self, "note")


@dataclass
class Sample:
    """One graded trajectory: a problem and one of its samples."""

    problem_id: str
    sample_index: int
    status: str
    total_tokens: int
    critical_path_tokens: int
    is_parallel: bool | None = None
    wall_s: float | None = None
    end_reason: str | None = None
    """How the trajectory ended (harness.records.END_REASONS); a limit = truncated."""
    triggered: bool | None = None
    """A fork group was executed (branch requests issued; harness.metrics.triggered)."""
    valid: bool | None = None
    """The format's strict checker passed and the rollout closed or dropped nothing (SampleRecord.valid)."""
    tag_balance: str | None = None
    """Lenient reading: "balanced", "format_error" or "no_tags" (harness.metrics.tag_balance)."""
    inserted_tokens: int | None = None
    """Runtime-inserted tokens, part of total_tokens (harness.metrics.inserted_tokens)."""
    reprefill_tokens: int | None = None
    """Prompt tokens prefilled again after the first request (harness.metrics.reprefill_tokens)."""

    def __post_init__(self):
        _str(self, "problem_id", optional=False)
        _str(self, "end_reason")
        _str(self, "tag_balance", choices=metrics.TAG_BALANCES)
        _int(self, "inserted_tokens")
        _int(self, "reprefill_tokens")
        for name in ("triggered", "valid"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), bool):
                raise FieldError(name, "true, false or null", getattr(self, name))
        _int(self, "sample_index", optional=False)
        _str(self, "status", optional=False, choices=STATUSES)
        _int(self, "total_tokens", optional=False)
        _int(self, "critical_path_tokens", optional=False)
        if self.is_parallel is not None and not isinstance(self.is_parallel, bool):
            raise FieldError("is_parallel", "true, false or null", self.is_parallel)
        _num(self, "wall_s", low=0.0)


@dataclass
class Aggregates:
    """Summary figures; measured files compute them from `samples`, reported files copy the paper."""

    accuracy: float
    """Avg@k as a fraction (threadweaver.md section 6)."""
    critical_path_tokens: float | None = None
    """Mean token latency per trajectory."""
    total_tokens: float | None = None
    self_parallelism: float | None = None
    """Mean over trajectories of total_tokens / critical_path_tokens."""
    activation_ratio: float | None = None
    """Share of trajectories with at least one parallel block."""
    truncation_rate: float | None = None
    """Share of trajectories that ended at a limit (budget, context, steps, blocks), not on their own."""
    wall_s: float | None = None
    """Mean wall-clock seconds per trajectory (measured only)."""
    accuracy_untruncated: float | None = None
    """Avg@k over the samples that did not end at a limit (truncation kept apart from wrong answers)."""
    trigger_rate: float | None = None
    """Share of trajectories in which at least one fork group was executed (formats.md section 4)."""
    format_valid_strict: float | None = None
    """Share passing the format's own full checker (`format_checker` names it)."""
    format_valid_lenient: float | None = None
    """Share whose control tags are balanced and properly nested; + format_error + no_tags = 1."""
    format_error: float | None = None
    """Share with unmatched or misnested control tags."""
    no_tags: float | None = None
    """Share without any control tag of the format."""
    inserted_tokens: float | None = None
    """Mean runtime-inserted tokens per trajectory (part of total_tokens)."""
    reprefill_tokens: float | None = None
    """Mean prompt tokens prefilled again per trajectory (joins; harness.metrics.reprefill_tokens)."""
    tokens_per_s: float | None = None
    """Generated tokens per wall-clock second of trajectory time (measured; harness.metrics.tokens_per_s)."""
    tps_ratio: float | None = None
    """Published TPS-ratio speedup vs `tps_baseline` (reported files; measured ones are computed on the
    board). A throughput ratio, never a critical-path speedup."""
    tps_baseline: str | None = None
    speedup: float | None = None
    """Published speedup vs `speedup_baseline` (reported files only; measured ones are computed)."""
    speedup_correct_only: float | None = None
    max_speedup: float | None = None
    speedup_baseline: str | None = None
    num_problems: int | None = None
    num_samples: int | None = None

    def __post_init__(self):
        _num(self, "accuracy", optional=False, low=0.0, high=1.0)
        _num(self, "activation_ratio", low=0.0, high=1.0)
        for name in ("truncation_rate", "accuracy_untruncated", "trigger_rate", "format_valid_strict",
                     "format_valid_lenient", "format_error", "no_tags"):
            _num(self, name, low=0.0, high=1.0)
        for name in ("critical_path_tokens", "total_tokens", "self_parallelism", "wall_s", "speedup",
                     "speedup_correct_only", "max_speedup", "inserted_tokens", "reprefill_tokens",
                     "tokens_per_s", "tps_ratio"):
            _num(self, name, low=0.0)
        _str(self, "speedup_baseline")
        _str(self, "tps_baseline")
        _int(self, "num_problems")
        _int(self, "num_samples")


@dataclass
class Result:
    model: ModelInfo
    benchmark: str
    provenance: str
    """"measured" (built here from samples) or "reported" (copied from a paper, no samples)."""
    aggregates: Aggregates
    engine: str | None = None
    engine_version: str | None = None
    dtype: str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    budget_tokens: int | None = None
    seeds: list[int] | None = None
    parallel: bool | None = None
    format: str | None = None
    """The parallel format (harness.formats) the run used."""
    join: str | None = None
    fidelity: str | None = None
    """"exact" or "approximate": whether the rollout reproduced the authors' inference (formats.md section 1;
    the format's `fidelity`); null = not stated."""
    format_checker: str | None = None
    """The strict checker behind `format_valid_strict` and its version (the format's `checker`)."""
    count_unit: str | None = None
    """What one token is (harness/tokens.py); figures in different units are never compared."""
    num_samples_per_problem: int | None = None
    citation: Citation | None = None
    created_at: str | None = None
    samples: list[Sample] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self):
        _str(self, "benchmark", optional=False)
        _str(self, "provenance", optional=False, choices=PROVENANCES)
        for name in ("engine", "engine_version", "dtype", "created_at", "format", "join", "count_unit",
                     "format_checker"):
            _str(self, name)
        _str(self, "fidelity", choices=FIDELITIES)
        _int(self, "budget_tokens", low=1)
        _int(self, "num_samples_per_problem", low=1)
        if self.parallel is not None and not isinstance(self.parallel, bool):
            raise FieldError("parallel", "true, false or null", self.parallel)
        if self.seeds is not None and not (
            isinstance(self.seeds, list) and all(isinstance(s, int) and not isinstance(s, bool) for s in self.seeds)
        ):
            raise FieldError("seeds", "a list of integers or null", self.seeds)
        if self.provenance == "reported" and self.citation is None:
            raise FieldError("citation", "an object {paper, table} for a reported result", None)
        if self.provenance == "reported" and self.samples:
            raise FieldError("samples", "empty for a reported result", f"{len(self.samples)} samples")
        if self.provenance == "measured" and not self.samples:
            raise FieldError("samples", "a non-empty list for a measured result", [])

    def to_dict(self) -> dict:
        out = {"schema_version": self.schema_version}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "samples":  # optional per-sample fields are left out when null, to keep files small
                out[f.name] = [{k: v for k, v in dataclasses.asdict(s).items() if v is not None} for s in value]
            elif f.name != "schema_version":
                out[f.name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
        return out

    def per_problem(self, key: str, correct_only: bool = False) -> dict[str, list[float]]:
        """problem id -> its samples' `key` ("correct" = 0/1 correctness, or a token field)."""
        samples = [s for s in self.samples if not correct_only or s.status == "correct"]
        values = [float(s.status == "correct") if key == "correct" else float(getattr(s, key)) for s in samples]
        return metrics.by_problem([s.problem_id for s in samples], values)

    def problem_means(self, key: str) -> dict[str, float]:
        """Per problem, the mean over its samples of `key`."""
        return {pid: sum(v) / len(v) for pid, v in self.per_problem(key).items()}


# ----- loading and saving -----

def _section(cls, data: Any, prefix: str):
    """Build dataclass `cls` from dict `data`; errors get `prefix` (e.g. "aggregates.")."""
    if not isinstance(data, dict):
        raise FieldError(prefix.rstrip(".") or "(top level)", "an object", data)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        import difflib

        hint = difflib.get_close_matches(unknown[0], names, n=1)
        raise FieldError(f"{prefix}{unknown[0]}", "a known field" + (f" (did you mean '{hint[0]}'?)" if hint else ""),
                         data[unknown[0]])
    missing = [f.name for f in dataclasses.fields(cls)
               if f.name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise FieldError(f"{prefix}{missing[0]}", "present", "nothing")
    try:
        return cls(**data)
    except FieldError as exc:
        raise exc.within(prefix) from None


def result_from_dict(data: dict) -> Result:
    """Build a Result from a dict at the current schema version; raises FieldError."""
    if not isinstance(data, dict):
        raise FieldError("(top level)", "an object", type(data).__name__)
    data = dict(data)
    data["model"] = _section(ModelInfo, data.get("model"), "model.")
    if "sampling" in data:
        data["sampling"] = _section(Sampling, data["sampling"], "sampling.")
    if data.get("citation") is not None:
        data["citation"] = _section(Citation, data["citation"], "citation.")
    data["aggregates"] = _section(Aggregates, data.get("aggregates"), "aggregates.")
    samples = data.get("samples", [])
    if not isinstance(samples, list):
        raise FieldError("samples", "a list", samples)
    data["samples"] = [_section(Sample, s, f"samples[{i}].") for i, s in enumerate(samples)]
    return _section(Result, data, "")


def upgrade(data: dict, source: str = "<dict>") -> dict:
    """Bring a result dict from its `schema_version` to SCHEMA_VERSION, one upgrade function at a time."""
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise InputError(f"{source}: field 'schema_version' must be an integer, got {version!r}")
    if version > SCHEMA_VERSION:
        raise InputError(f"{source}: schema_version {version} is newer than this harness reads "
                         f"({SCHEMA_VERSION}); upgrade threadweaver-harness")
    while version < SCHEMA_VERSION:
        if version not in UPGRADES:
            raise InputError(f"{source}: no upgrade from schema_version {version}")
        data = UPGRADES[version](dict(data))
        version += 1
        data["schema_version"] = version
    return data


def load_result(path: str | Path) -> Result:
    """Read, upgrade and validate one result file; every error is an InputError naming file and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read result file ({exc.__class__.__name__}: {exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (corrupt or truncated?) at line {exc.lineno} "
                         f"column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a result file must hold a JSON object, got {type(data).__name__}")
    try:
        return result_from_dict(upgrade(data, str(path)))
    except FieldError as exc:
        raise InputError(f"{path}: {exc}") from None


def load_results(folder: str | Path) -> list[Result]:
    """Every `*.json` under `folder` (recursively), in sorted path order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: results folder does not exist")
    return [load_result(p) for p in sorted(folder.rglob("*.json"))]


def save_result(result: Result, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def result_filename(result: Result) -> str:
    return f"{result.model.name}__{result.benchmark}.json"
