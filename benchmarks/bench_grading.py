"""Grading throughput: samples per second through `grade_many` (2 worker processes by default).

    .venv/bin/python benchmarks/bench_grading.py                 # MATH500 gold solutions
    .venv/bin/python benchmarks/bench_grading.py --mix hard      # other problems' golds: full math-verify path

`solutions` grades each MATH500 solution against its gold (a realistic correct-answer mix); `hard` grades the
gold of a different problem from every benchmark, so nothing short-circuits on equal strings.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("THREADWEAVER_SHARED_DATA", REPO.parent / "shared" / "data"))
BENCHMARKS = ("aime24", "aime25", "amc23", "math500", "minerva_math", "olympiadbench")
RULE = {b: "minerva" if b == "minerva_math" else "math" for b in BENCHMARKS}  # as tasks/tw_*.yaml declare


def load(benchmark: str) -> list[dict]:
    with open(DATA / f"{benchmark}.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def items_for(mix: str) -> list[tuple[str, str, str]]:
    if mix == "solutions":
        return [(r["solution"], r["answer"], "math") for r in load("math500")]
    items = []
    for b in BENCHMARKS:
        rows = load(b)
        for i, r in enumerate(rows):
            other = rows[(i + len(rows) // 2) % len(rows)]["answer"]
            items.append(("\\boxed{" + other + "}", r["answer"], RULE[b]))
    return items


def main() -> None:
    from harness.grading import grade_many

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mix", choices=["solutions", "hard"], default="solutions")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--deadline-s", type=float, default=5.0)
    args = p.parse_args()
    if not (DATA / "math500.jsonl").exists():
        raise SystemExit(f"benchmark data not found at {DATA} (set THREADWEAVER_SHARED_DATA)")
    items = items_for(args.mix)
    grade_many(items[:2], workers=args.workers)  # start the pool: measure grading, not process start-up
    start = time.perf_counter()
    grades = grade_many(items, workers=args.workers, deadline_s=args.deadline_s)
    wall_s = time.perf_counter() - start
    counts: dict[str, int] = {}
    for g in grades:
        counts[g.status] = counts.get(g.status, 0) + 1
    print(f"mix={args.mix} workers={args.workers} samples={len(items)} wall_s={wall_s:.1f} "
          f"samples_per_s={len(items) / wall_s:.1f} statuses={counts}")  # fmt: skip


if __name__ == "__main__":
    main()
