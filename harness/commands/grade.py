"""`threadweaver grade`: grade responses against gold answers (issue 4; spec section 1)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from harness.errors import InputError
from harness.jsonl import iter_jsonl

EXAMPLE = """example:
  threadweaver grade samples.jsonl                 # table + counts by status
  threadweaver grade --json samples.jsonl > graded.jsonl
each input line: {"response": "... \\\\boxed{25}", "answer": "025", "benchmark": "aime24"}
"""


def add_parser(subparsers) -> None:
    from harness.grading import BENCHMARKS

    p = subparsers.add_parser(
        "grade",
        help="Grade responses against gold answers",
        description="Grade each line of FILE.jsonl: the last \\boxed{} of `response` against `answer`, "
        f"with the rules of `benchmark` ({', '.join(BENCHMARKS)}). Statuses: correct, wrong, "
        "no_answer, truncated, timeout, grader_error.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE.jsonl", help="one JSON object per line: response, answer, benchmark")
    p.add_argument("--json", action="store_true", help="one JSON line per sample: index, status, extracted")
    p.add_argument("--workers", type=int, default=2, help="grader worker processes (default 2)")
    p.add_argument("--deadline-s", type=float, default=5.0, help="seconds allowed per sample (default 5)")
    p.set_defaults(func=run)


def read_items(path: Path) -> list[tuple[str, str, str, bool]]:
    """(response, answer, benchmark, truncated) per non-empty line; InputError naming FILE:LINE."""
    from harness.grading import BENCHMARKS

    items = []
    for where, obj in iter_jsonl(path, required=("response", "answer", "benchmark")):
        if not isinstance(obj["response"], str):
            raise InputError(f"{where}: field `response` must be a string")
        if not isinstance(obj["answer"], str | int | float) or isinstance(obj["answer"], bool):
            raise InputError(f"{where}: field `answer` must be a string or a number")
        if obj["benchmark"] not in BENCHMARKS:
            raise InputError(
                f"{where}: field `benchmark` must be one of {', '.join(BENCHMARKS)}, got {obj['benchmark']!r}"
            )
        items.append(
            (obj["response"], str(obj["answer"]), obj["benchmark"], bool(obj.get("truncated", False)))
        )
    return items


def _check_pool_args(args) -> None:
    if args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    if getattr(args, "deadline_s", 1.0) <= 0:
        raise InputError(f"--deadline-s must be > 0, got {args.deadline_s}")


def summary_lines(statuses: list[str]) -> list[str]:
    from harness.grading import STATUSES

    counts = Counter(statuses)
    n = len(statuses)
    lines = [f"{s:<13}{counts.get(s, 0):>6}" for s in STATUSES]
    acc = counts.get("correct", 0) / n if n else 0.0
    lines.append(f"{'accuracy':<13}{acc:>10.4f}  ({counts.get('correct', 0)}/{n})")
    return lines


def run(args) -> int:
    from harness.grading import grade_many

    _check_pool_args(args)
    items = read_items(Path(args.file))
    grades = grade_many(items, workers=args.workers, deadline_s=args.deadline_s)
    if args.json:
        for i, g in enumerate(grades):
            print(json.dumps({"index": i, "status": g.status, "extracted": g.extracted}, ensure_ascii=False))
        return 0
    print(f"{'index':>5}  {'benchmark':<14}{'status':<13}extracted")
    for i, (item, g) in enumerate(zip(items, grades, strict=True)):
        shown = "-" if g.extracted is None else g.extracted.replace("\n", " ")
        print(f"{i:>5}  {item[2]:<14}{g.status:<13}{shown[:60]}")
    print()
    print("\n".join(summary_lines([g.status for g in grades])))
    sys.stdout.flush()
    return 0
