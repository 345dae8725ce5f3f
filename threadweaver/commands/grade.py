"""`threadweaver grade`: grade responses against gold answers (issues 4 and 12; spec section 1).

`--explain` is the grading report: per sample the extracted answer, the rule and the comparison that
decided (string, integer, numeric, numeric tolerance, math-verify, list match), then how each rule reads
answers (harness.grading.SPEC_NOTES).
"""

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
  threadweaver grade --rule minerva samples.jsonl  # every line without a `grading` field: rule minerva
  threadweaver grade --explain samples.jsonl      # which comparison decided each sample, and why
  threadweaver grade --json samples.jsonl > graded.jsonl
each input line: {"response": "... \\\\boxed{25}", "gold": "025", "grading": "math"} (sample records work as they are)
"""


def add_parser(subparsers) -> None:
    from harness.grading import RULES

    p = subparsers.add_parser(
        "grade",
        help="Grade responses against gold answers",
        description="Grade each line of FILE.jsonl: the answer in `response` (by default the last \\boxed{}) "
        "against `gold`, with the line's `grading` rule, else --rule. Sample records (harness/records.py) work "
        "as they are. Statuses: correct, wrong, no_answer, truncated, timeout, grader_error.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE.jsonl", help="one JSON object per line: response, gold[, grading]")
    p.add_argument("--rule", default=None, help=f"grading rule of lines without `grading`: {', '.join(RULES)} "
                   "or a rule's JSON (default math)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="one JSON line per sample: index, status, extracted "
                   "(with --explain also rule, decided_by)")  # fmt: skip
    p.add_argument("--explain", action="store_true", help="per sample: extracted answer, rule, the comparison "
                   "that decided; then how the rules read answers")  # fmt: skip
    p.add_argument("--workers", type=int, default=2, help="grader worker processes (default 2)")
    p.add_argument("--deadline-s", type=float, default=5.0, help="seconds allowed per sample (default 5)")
    p.set_defaults(func=run)


def line_rule(obj: dict, where: str, rule: str | None):
    """The grading rule of one input line: its `grading` field, else `rule` (--rule), else "math".
    A line that names only a `benchmark` is refused: benchmark names do not pick rules."""
    from harness.grading import get_rule

    if "grading" in obj:
        try:
            return get_rule(obj["grading"])
        except InputError as exc:
            raise InputError(f"{where}: field `grading`: {exc}") from None
    if rule is None and "benchmark" in obj:
        raise InputError(f"{where}: field `benchmark` does not choose a grading rule; add a `grading` field "
                         "(math, minerva, exact, digits) or pass --rule")  # fmt: skip
    return get_rule(rule or "math")


def read_items(path: Path, rule: str | None = None) -> list[tuple]:
    """(response, gold, rule, truncated) per non-empty line (sample records, or lines with at least
    `response` and `gold`); InputError naming FILE:LINE."""
    from harness.records import LIMIT_END_REASONS

    items = []
    for where, obj in iter_jsonl(path):
        if "gold" not in obj and "answer" in obj:
            raise InputError(f"{where}: the gold answer of a sample is field `gold` (harness/records.py), "
                             "not `answer`")  # fmt: skip
        for field in ("response", "gold"):
            if field not in obj:
                raise InputError(f"{where}: missing field `{field}`")
        if not isinstance(obj["response"], str):
            raise InputError(f"{where}: field `response` must be a string")
        if not isinstance(obj["gold"], str | int | float) or isinstance(obj["gold"], bool):
            raise InputError(f"{where}: field `gold` must be a string or a number")
        truncated = bool(obj.get("truncated", False)) or obj.get("end_reason") in LIMIT_END_REASONS
        items.append((obj["response"], str(obj["gold"]), line_rule(obj, where, rule), truncated))
    return items


def check_rule_flag(args) -> None:
    from harness.grading import get_rule

    if args.rule is not None:
        try:
            get_rule(args.rule)
        except InputError as exc:
            raise InputError(f"--rule: {exc}") from None


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
    check_rule_flag(args)
    items = read_items(Path(args.file), args.rule)
    grades = grade_many(items, workers=args.workers, deadline_s=args.deadline_s)
    if args.json:
        for i, (item, g) in enumerate(zip(items, grades, strict=True)):
            row = {"index": i, "status": g.status, "extracted": g.extracted}
            if args.explain:
                row |= {"rule": item[2].name, "decided_by": g.decided_by}
            print(json.dumps(row, ensure_ascii=False))
        return 0
    print(f"{'index':>5}  {'rule':<10}{'status':<13}" + ("decided by         " if args.explain else "") + "extracted")
    for i, (item, g) in enumerate(zip(items, grades, strict=True)):
        shown = "-" if g.extracted is None else g.extracted.replace("\n", " ")
        how = f"{_decided(g):<19}" if args.explain else ""
        print(f"{i:>5}  {item[2].name[:9]:<10}{g.status:<13}{how}{shown[:60]}")
    print()
    print("\n".join(summary_lines([g.status for g in grades])))
    if args.explain:
        print("\nrules:")
        for rule in {item[2].name: item[2] for item in items}.values():
            print(f"  {rule.name}: {json.dumps(rule.spec())}")
        from harness.grading import SPEC_NOTES

        print("how answers are read and compared:")
        print("\n".join(f"  - {note}" for note in SPEC_NOTES))
    sys.stdout.flush()
    return 0


def _decided(g) -> str:
    """What decided a sample: the comparison, or why none ran."""
    if g.decided_by is not None:
        return g.decided_by
    return {"no_answer": "no answer found", "truncated": "no answer found", "timeout": "deadline"}.get(
        g.status, "error"
    )
