"""`threadweaver regrade`: re-score the saved responses of a run without generating again (issue 4)."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from harness.errors import InputError

EXAMPLE = """example:
  threadweaver regrade out/                      # every sample-record file below out/ (the backend's included)
  threadweaver regrade out/ --rule minerva       # records without a `grading` rule get this one
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "regrade",
        help="Re-grade a saved run without generating again",
        description="Recompute the `grade` of every sample record (harness/records.py) in the *.jsonl files "
        "below RUN_DIR (other JSONL files, e.g. lm-eval's own samples, are left alone), with each record's "
        "`grading` rule (else --rule); a record that ended at a limit is `truncated` when it has no answer. "
        "Each file is rewritten atomically; prints counts by status and accuracy per benchmark.",
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


def write_atomic(path: Path, records: list) -> None:
    """Write next to `path`, then os.replace: a crash leaves the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for r in records:
                f.write(r.to_json() + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run(args) -> int:
    from harness.grading import get_rule, grade_many
    from harness.records import read_records, record_files
    from threadweaver.commands.grade import _check_pool_args, check_rule_flag, summary_lines

    _check_pool_args(args)
    check_rule_flag(args)
    root = Path(args.run_dir)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder (RUN_DIR must be a run folder)")
    files = record_files([root])
    loaded = [(path, list(read_records(path))) for path in files]  # validate everything before writing
    for _, records in loaded:
        for where, r in records:
            if r.gold is None:
                raise InputError(f"{where}: field `gold` is needed to grade")
            if r.grading is None and args.rule is None:
                raise InputError(f"{where}: no `grading` rule in the record; pass --rule")
    statuses: list[str] = []
    per_benchmark: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for path, records in loaded:
        recs = [r for _, r in records]
        rules = [get_rule(r.grading or args.rule) for r in recs]
        grades = grade_many([(r.response, r.gold, rule, r.truncated) for r, rule in zip(recs, rules, strict=True)],
                            workers=args.workers, deadline_s=args.deadline_s)  # fmt: skip
        for r, rule, g in zip(recs, rules, grades, strict=True):
            r.grade, r.grading = g, rule.name
            statuses.append(g.status)
            per_benchmark[r.benchmark or "?"][0] += g.correct
            per_benchmark[r.benchmark or "?"][1] += 1
        write_atomic(path, recs)
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
