"""The sample record: one typed, versioned record per sampled trajectory, and the one JSONL layer for it.

Every producer writes it (the lm-eval backend's trajectory file, `threadweaver rollout`, the toy and
data-generation commands) and every consumer reads it (`results build`, `regrade`, `grade`, the SFT dataset
loader, the RL buffer) through `read_records` / `RecordWriter`:

    with RecordWriter("run/samples.jsonl") as out:       # appends and flushes one line per record
        out.write(record)
    for where, rec in read_records("run/samples.jsonl"):  # where = "FILE:LINE"
        rec.metrics.critical_path_tokens, rec.grade.status, rec.units[0].completion_ids

A killed writer leaves at most a torn last line: readers skip it; every other bad line is an error naming
FILE:LINE and the field. Old files are upgraded by `UPGRADES` (one function per old version).
Names: `problem_id`, `gold`, `response`, `budget_tokens` (never id/answer/text/budget); fractions, never
percent. The prompt is either `prompt` + `prompt_ids` (what was sent, chat template applied) or `messages`
(the chat turns of a data record made without a tokenizer: the reader renders them, harness.prompts).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.config import build_dataclass
from harness.counting import TrajectoryMetrics
from harness.errors import InputError
from harness.grading import Grade
from harness.jsonl import iter_jsonl

RECORD_VERSION = 1
UNIT_KINDS = ("trunk", "branch", "summary")
END_REASONS = ("eos", "budget", "context", "max_steps", "max_blocks", "error")
LIMIT_END_REASONS = ("budget", "context", "max_steps", "max_blocks", "refused_fork")
"""End reasons that are a limit, not the model's own end: these samples are "truncated" (formats.md s. 4)."""


@dataclass
class Unit:
    """One engine request of a trajectory and its completion (a training unit, threadweaver.md section 3).

    The request's prompt is `(prompt_ids + response_ids)[:context_tokens] + inserted_ids`: the shared
    context, then what the runtime appended for this request (a branch header). Times are seconds since the
    trajectory started.
    """

    kind: str
    """"trunk" (a sequential step), "branch" (a thread/path), or "summary" (a runtime-run closing part)."""
    depth: int
    context_tokens: int
    inserted_ids: list[int]
    completion_ids: list[int]
    stop_reason: str
    start_s: float
    end_s: float
    logprobs: list[float] | None = None
    """The engine's log-probability of each completion token, where it returns them."""


@dataclass
class RunHeader:
    """How the records of a run were made (resolved settings, not only what the user typed)."""

    format: str
    rollout: dict
    """The resolved harness.rollout.RolloutConfig."""
    engine: str | None = None
    engine_version: str | None = None
    dtype: str | None = None
    model: str | None = None
    """The path or hub id that was loaded."""
    model_fingerprint: str | None = None
    """harness.store.checkpoint_fingerprint of a local checkpoint (None for a hub id)."""
    zoo_name: str | None = None
    count_unit: str | None = None
    harness_version: str | None = None
    created_at: str | None = None


@dataclass
class SampleRecord:
    """One sampled trajectory: identity, prompt, response, counts, grade, the requests it issued, the run."""

    problem_id: str
    sample_index: int
    response: str
    benchmark: str | None = None
    task: str | None = None
    doc_id: int | None = None
    gold: str | None = None
    grading: str | None = None
    """The grading rule of the task (harness.grading.get_rule)."""
    prompt: str | None = None
    prompt_ids: list[int] | None = None
    messages: list[dict] | None = None
    response_ids: list[int] | None = None
    format: str = "threadweaver"
    metrics: TrajectoryMetrics | None = None
    grade: Grade | None = None
    end_reason: str | None = None
    faults: list[str] = field(default_factory=list)
    """What the rollout had to close, drop or refuse."""
    error: str | None = None
    wall_s: float | None = None
    engine_calls: int | None = None
    seed: int | None = None
    units: list[Unit] = field(default_factory=list)
    run: RunHeader | None = None
    schema_version: int = RECORD_VERSION

    @property
    def truncated(self) -> bool:
        """Ended at a limit (budget, steps, blocks) rather than on its own."""
        return self.end_reason in LIMIT_END_REASONS

    @property
    def valid(self) -> bool | None:
        """Format valid and no rollout fault (None when validity was not checked)."""
        if self.metrics is None or self.metrics.valid is None:
            return None
        return self.metrics.valid and not self.faults

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


# ------------------------------------------------------------------------------------------- reading
def record_from_dict(data: dict, where: str = "<record>") -> SampleRecord:
    """A SampleRecord from its dict at any known version; InputError names `where` and the field."""
    data = upgrade(dict(data), where)
    for name, cls in (("metrics", TrajectoryMetrics), ("grade", Grade), ("run", RunHeader)):
        if data.get(name) is not None:
            data[name] = build_dataclass(cls, data[name], f"{where}: field `{name}`")
    if not isinstance(data.get("units", []), list):
        raise InputError(f"{where}: field `units` must be a list")
    data["units"] = [build_dataclass(Unit, u, f"{where}: units[{i}]") for i, u in enumerate(data.get("units", []))]
    rec = build_dataclass(SampleRecord, data, where)
    for name, kind in (("problem_id", str), ("sample_index", int), ("response", str)):
        value = getattr(rec, name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InputError(f"{where}: field `{name}` must be a {kind.__name__}, got {value!r}")
    return rec


def read_records(path: str | Path) -> Iterator[tuple[str, SampleRecord]]:
    """Yield ("FILE:LINE", record), streaming; a torn last line (killed writer) is skipped."""
    for where, obj in iter_jsonl(path, allow_torn_tail=True):
        yield where, record_from_dict(obj, where)


def record_files(paths: list[str | Path]) -> list[Path]:
    """The sample-record files among `paths` (files, or folders searched recursively)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = [f for f in sorted(p.rglob("*.jsonl")) if is_record_file(f)]
            if not found:
                raise InputError(f"{p}: no sample-record files (*.jsonl) below this folder")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    return out



def is_record_file(path: str | Path) -> bool:
    """True when the first line of `path` is a sample record (any version); cheap, reads one line."""
    try:
        with open(path, encoding="utf-8") as f:
            first = json.loads(f.readline())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(first, dict) and ("schema_version" in first and "problem_id" in first or _is_v0(first))


def cut_torn_tail(path: Path, chunk: int = 1 << 16) -> None:
    """Cut a killed writer's half last line off `path`, so that appends stay valid JSONL."""
    with open(path, "rb+") as f:
        end = f.seek(0, 2)
        if end == 0:
            return
        f.seek(end - 1)
        if f.read(1) == b"\n":
            return
        pos = end
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            k = f.read(pos - start).rfind(b"\n")
            if k >= 0:
                f.truncate(start + k + 1)
                return
            pos = start
        f.truncate(0)


class RecordWriter:
    """Appends records to a JSONL file, one flushed line each (a SIGKILL loses only records in flight)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            cut_torn_tail(self.path)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for appends

    def write(self, record: SampleRecord) -> None:
        self._fh.write(record.to_json() + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----------------------------------------------------------------------------------------- upgrades
_V0_METRICS = ("total_tokens", "critical_path_tokens", "num_blocks", "threads_per_block", "self_parallelism",
               "is_parallel", "valid", "violations")  # fmt: skip


def _is_v0(d: dict) -> bool:
    return "schema_version" not in d and ("completion" in d or "text" in d)


def _upgrade_v0(d: dict) -> dict:
    """Files written before the sample record: SFT/toy data ({prompt: user turn, completion}) and the
    backend's / `threadweaver rollout`'s trajectory lines (flat rollout fields, `text`, `token_ids`)."""
    if "completion" in d:  # {problem_id?, prompt, completion, answer?}
        return {"problem_id": str(d.get("problem_id", d.get("id", ""))), "sample_index": 0,
                "messages": [{"role": "user", "content": d.get("prompt", "")}], "response": d["completion"],
                "gold": None if d.get("answer") is None else str(d["answer"])}  # fmt: skip
    metrics = {k: d.get(k) for k in _V0_METRICS}
    out = {
        "problem_id": str(d.get("problem_id") if d.get("problem_id") is not None else d.get("id", d.get("doc_id", ""))),
        "sample_index": int(d.get("sample_index", 0)), "response": d.get("response", d["text"]),
        "benchmark": d.get("benchmark"), "task": d.get("task"), "doc_id": d.get("doc_id"),
        "gold": None if d.get("gold") is None else str(d["gold"]), "prompt_ids": d.get("prompt_ids"),
        "response_ids": d.get("token_ids"), "end_reason": d.get("end_reason"), "faults": d.get("faults") or [],
        "error": d.get("error"), "wall_s": d.get("wall_s"), "engine_calls": d.get("engine_calls"),
        "seed": d.get("seed"),
    }  # fmt: skip
    if d.get("total_tokens") is not None:
        out["metrics"] = {**metrics, "violations": metrics["violations"] or [], "count_unit": "unknown"}
    if d.get("status"):
        out["grade"] = {"status": d["status"], "extracted": d.get("extracted")}
    return out


UPGRADES = {0: _upgrade_v0}


def upgrade(data: dict, where: str) -> dict:
    """Bring a record dict to RECORD_VERSION, one upgrade function at a time."""
    version = data.get("schema_version", 0 if _is_v0(data) else None)
    if not isinstance(version, int) or isinstance(version, bool):
        raise InputError(f"{where}: not a sample record (no `schema_version`; see harness/records.py)")
    if version > RECORD_VERSION:
        raise InputError(f"{where}: record schema_version {version} is newer than this harness reads "
                         f"({RECORD_VERSION}); upgrade threadweaver-harness")  # fmt: skip
    while version < RECORD_VERSION:
        data = UPGRADES[version](data)
        version += 1
        data["schema_version"] = version
    return data
