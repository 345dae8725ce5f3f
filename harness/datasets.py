"""Benchmark docs for the tasks: offline JSONL (THREADWEAVER_DATA_DIR) or public hub datasets.

Every doc is normalised to `{"id", "problem", "answer", "benchmark", "grading"}` (the fields of the offline
copies, ../shared/data/README.md, plus the task's grading rule name), whatever the source calls them, so
prompts and grading see one shape.

    THREADWEAVER_DATA_DIR=/work/shared/data  ->  <dir>/<benchmark>.jsonl
    unset                                    ->  datasets.load_dataset(HUB_SOURCES[benchmark])
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.errors import InputError

DATA_DIR_ENV = "THREADWEAVER_DATA_DIR"


@dataclass(frozen=True)
class HubSource:
    """Where a benchmark lives on the hub; the field names are found by `_pick` (several spellings)."""

    path: str
    split: str
    name: str | None = None


# The hub copies most evaluation code uses; tasks/README.md lists them.
HUB_SOURCES: dict[str, HubSource] = {
    "aime24": HubSource("HuggingFaceH4/aime_2024", "train"),
    "aime25": HubSource("math-ai/aime25", "test"),
    "amc23": HubSource("math-ai/amc23", "test"),
    "math500": HubSource("HuggingFaceH4/MATH-500", "test"),
    "minerva_math": HubSource("math-ai/minervamath", "test"),
    "olympiadbench": HubSource("Hothan/OlympiadBench", "train", name="OE_TO_maths_en_COMP"),
}
_PROBLEM_FIELDS = ("problem", "question", "Problem", "Question")
_ANSWER_FIELDS = ("answer", "final_answer", "Answer", "expected_answer")
_ID_FIELDS = ("id", "unique_id", "idx", "ID")


def _pick(row: dict, fields: tuple[str, ...], what: str, where: str):
    for f in fields:
        if row.get(f) is not None:
            return row[f]
    raise InputError(f"{where}: no {what} field (looked for {', '.join(fields)}; got {', '.join(row)})")


def normalise(row: dict, benchmark: str, index: int, where: str, *, grading: str) -> dict:
    """One source row -> `{"id", "problem", "answer", "benchmark", "grading"}` (`grading`: a rule name)."""
    answer = _pick(row, _ANSWER_FIELDS, "answer", where)
    if isinstance(answer, list):  # OlympiadBench `final_answer` is a one-element list
        answer = answer[0] if answer else ""
    try:
        ident = _pick(row, _ID_FIELDS, "id", where)
    except InputError:
        ident = index
    ident = str(ident)
    if not ident.startswith(f"{benchmark}-"):
        ident = f"{benchmark}-{ident}"
    return {"id": ident, "problem": str(_pick(row, _PROBLEM_FIELDS, "problem", where)),
            "answer": str(answer), "benchmark": benchmark, "grading": grading}


def hub_unreachable(timeout_s: float = 3.0) -> str | None:
    """Why the hub cannot be reached (one request, `timeout_s`), or None when it answers or when the hub
    client is in offline mode (it then reads its local cache, which needs no network)."""
    import httpx
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return None
    try:
        httpx.head(constants.ENDPOINT, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return f"{constants.ENDPOINT}: {type(exc).__name__}: {exc}"[:160]
    return None


def load_docs(benchmark: str, data_dir: str | Path | None = None, *, grading: str | dict) -> list[dict]:
    """All docs of `benchmark`, from `data_dir` (or $THREADWEAVER_DATA_DIR) if set, else from the hub;
    each doc carries the canonical name of the grading rule `grading` (harness.grading.get_rule)."""
    from harness.grading.rules import get_rule

    grading = get_rule(grading).name
    if benchmark not in HUB_SOURCES:
        raise InputError(f"unknown benchmark '{benchmark}' (known: {', '.join(HUB_SOURCES)})")
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV)
    if data_dir:
        path = Path(data_dir).expanduser() / f"{benchmark}.jsonl"
        if not path.exists():
            raise InputError(f"{path} not found (${DATA_DIR_ENV}={data_dir}); expected <dir>/<benchmark>.jsonl")
        rows = []
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    rows.append(normalise(json.loads(line), benchmark, len(rows), f"{path}:{n}", grading=grading))
        return rows
    import datasets  # heavy; only for the hub path

    src = HUB_SOURCES[benchmark]
    unreachable = hub_unreachable()
    if unreachable:  # fail in seconds, not after the hub client's retries
        raise InputError(f"benchmark {benchmark}: the hub is not reachable ({unreachable}) and "
                         f"${DATA_DIR_ENV} is not set; set ${DATA_DIR_ENV}=DIR with DIR/{benchmark}.jsonl "
                         "(one JSON object per line: id, problem, answer)")  # fmt: skip
    try:
        ds = datasets.load_dataset(src.path, src.name, split=src.split)
    except Exception as exc:  # offline, no access, or a moved dataset: say what to do instead, in one line
        reason = " ".join(str(exc).split())[:160]
        raise InputError(f"benchmark {benchmark}: cannot load {src.path} from the hub ({type(exc).__name__}: {reason}); "
                         f"offline? set ${DATA_DIR_ENV}=DIR with DIR/{benchmark}.jsonl (fields id, problem, "
                         "answer)") from None  # fmt: skip
    return [normalise(dict(r), benchmark, i, f"{src.path}[{i}]", grading=grading) for i, r in enumerate(ds)]


def load_dataset_dict(
    benchmark: str, grading: str | dict | None = None, data_dir: str | None = None, **_ignored
) -> dict:
    """lm-eval `custom_dataset` hook: `{"test": datasets.Dataset}`. `dataset_kwargs` give `benchmark` and
    `grading` (the task's rule); lm-eval also passes the task metadata and `--metadata` as keyword
    arguments; those are ignored."""
    import datasets

    if grading is None:
        raise InputError(f"task of benchmark '{benchmark}': dataset_kwargs needs `grading` (a rule name such "
                         "as math, minerva, exact, digits, or a dict of rule fields)")  # fmt: skip
    try:
        docs = load_docs(benchmark, data_dir, grading=grading)
    except InputError as exc:  # inside lm-eval's task loading: one line and exit 2, not its traceback
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return {"test": datasets.Dataset.from_list(docs)}
