"""`threadweaver regrade`: re-score the saved responses of a run without generating again (issue 4)."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from harness.errors import InputError
from harness.jsonl import iter_jsonl

EXAMPLE = """example:
  threadweaver regrade runs/qwen3-8b-tw/          # rewrites every trajectories*.jsonl below it
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "regrade",
        help="Re-grade a saved run without generating again",
        description="Recompute `status` and `extracted` of every line of RUN_DIR/**/trajectories*.jsonl "
        '(fields `benchmark`, `gold`, `response`; `end_reason` == "budget" marks a truncated sample), '
        "rewrite each file atomically (recording the rule in `grading`) and print counts by status and "
        "accuracy per benchmark.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="folder of a run (searched recursively)")
    p.add_argument("--rule", default=None, help="grading rule of records without `grading` (math, minerva, "
                   "exact, digits or a rule's JSON)")  # fmt: skip
    p.add_argument("--workers", type=int, default=2, help="grader worker processes (default 2)")
    p.add_argument("--deadline-s", type=float, default=5.0, help="seconds allowed per sample (default 5)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=run)


def read_records(path: Path, rule: str | None = None) -> list[tuple[dict, object]]:
    """(record, its grading rule) per line: the record's `grading`, else --rule."""
    from harness.commands.grade import line_rule

    records = []
    for where, obj in iter_jsonl(path, required=("benchmark", "gold", "response")):
        if not isinstance(obj["response"], str):
            raise InputError(f"{where}: field `response` must be a string")
        records.append((obj, line_rule(obj, where, rule)))
    return records


def write_atomic(path: Path, records: list[dict]) -> None:
    """Write next to `path`, then os.replace: a crash leaves the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run(args) -> int:
    from harness.commands.grade import _check_pool_args, check_rule_flag, summary_lines
    from harness.grading import grade_many

    _check_pool_args(args)
    check_rule_flag(args)
    root = Path(args.run_dir)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder (RUN_DIR must be a run folder)")
    files = sorted(p for p in root.rglob("trajectories*.jsonl") if p.is_file())
    if not files:
        raise InputError(f"{root}: no trajectories*.jsonl file below it")
    loaded = [(path, read_records(path, args.rule)) for path in files]  # validate everything before writing
    statuses: list[str] = []
    per_benchmark: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for path, pairs in loaded:
        records = [r for r, _ in pairs]
        items = [(r["response"], str(r["gold"]), rule, r.get("end_reason") == "budget") for r, rule in pairs]
        grades = grade_many(items, workers=args.workers, deadline_s=args.deadline_s)
        for (r, rule), g in zip(pairs, grades, strict=True):
            r["status"], r["extracted"], r["grading"] = g.status, g.extracted, rule.name
            statuses.append(g.status)
            per_benchmark[r["benchmark"]][0] += g.correct
            per_benchmark[r["benchmark"]][1] += 1
        write_atomic(path, records)
    accuracy = {b: c / n for b, (c, n) in sorted(per_benchmark.items())}
    if args.json:
        print(json.dumps({"files": len(files), "samples": len(statuses), "status": dict(Counter(statuses)),
                          "accuracy": accuracy}))  # fmt: skip
        return 0
    print(f"regraded {len(statuses)} samples in {len(files)} file(s)")
    print("\n".join(summary_lines(statuses)))
    for b, acc in accuracy.items():
        c, n = per_benchmark[b]
        print(f"{b:<16}{acc:>8.4f}  ({c}/{n})")
    return 0
