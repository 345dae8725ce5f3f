"""Grading throughput: samples per second through `grade_many` (2 worker processes, hard deadline) and,
for reference, plain math-verify without a deadline. Runs alternate between configurations (ABAB...) so a
shared machine's load hits them alike; compare the ratios, not the absolute rates across runs.

    .venv/bin/python benchmarks/bench_grading.py --mix solutions   # MATH500 gold solutions (correct answers)
    .venv/bin/python benchmarks/bench_grading.py --mix hard        # other problems' golds: full math-verify path
    .venv/bin/python benchmarks/bench_grading.py --mix rl8         # 8 samples per problem (an RL reward batch)
    .venv/bin/python benchmarks/bench_grading.py --mix rl8 --configs pool,pool-spread,plain,plain2 --repeats 2

Configurations: `pool` = grade_many (samples of one problem to one worker, whose parse cache reads the
gold once); `pool-spread` = the same pool with tasks dealt round-robin; `plain` = one process,
`verify(parse(gold), parse(response))` with default settings; `plain2` = that on 2 processes. Every pool run
starts fresh workers (empty caches); start-up is not timed.
`solutions` grades MATH500's solution texts; `hard` grades the gold of a different problem of each of the six
benchmarks (1,547 items), so nothing short-circuits on equal strings; `rl8` gives every problem of the six
benchmarks 8 samples: its gold in four spellings and four other problems' golds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("THREADWEAVER_SHARED_DATA", REPO.parent / "shared" / "data"))
BENCHMARKS = ("aime24", "aime25", "amc23", "math500", "minerva_math", "olympiadbench")
RULE = {b: "minerva" if b == "minerva_math" else "math" for b in BENCHMARKS}  # as tasks/tw_*.yaml declare
CONFIGS = ("pool", "pool-spread", "plain", "plain2")


def load(benchmark: str) -> list[dict]:
    with open(DATA / f"{benchmark}.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def boxed(answer: str) -> str:
    return "The final answer is $\\boxed{" + answer + "}$."


def items_for(mix: str, problems: int | None) -> list[tuple[str, str, str]]:
    """(response, gold, rule) items, the samples of one problem next to each other."""
    if mix == "solutions":
        return [(r["solution"], r["answer"], "math") for r in load("math500")][:problems]
    items = []
    for b in BENCHMARKS:
        rows = load(b)
        for i, r in enumerate(rows):
            others = [rows[(i + len(rows) // 2 + k) % len(rows)]["answer"] for k in range(4)]
            if mix == "hard":
                items.append((boxed(others[0]), r["answer"], RULE[b]))
                continue
            bare = r["answer"].replace("$", "")
            for k, form in enumerate((r["answer"], bare, f"${bare}$", f"{bare}.")):
                items += [(boxed(form), r["answer"], RULE[b]), (boxed(others[k]), r["answer"], RULE[b])]
    if problems is not None:
        items = items[: problems * (8 if mix == "rl8" else 1)]
    return items


def _plain_one(item: tuple[str, str, str]) -> bool:
    from math_verify import parse, verify

    try:
        return bool(verify(parse(item[1]), parse(item[0])))
    except Exception:
        return False


def run_config(config: str, items: list, workers: int, deadline_s: float) -> tuple[float, dict]:
    """(wall seconds, counts of results) of one timed run."""
    import logging

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    counts: dict[str, int] = {}
    if config.startswith("pool"):
        from harness.grading import close_pool, get_pool, grade_many

        close_pool()
        get_pool(workers).affinity = config == "pool"
        grade_many([("\\boxed{1}", "1", "math"), ("\\boxed{2}", "3", "math")], workers=workers)  # start
        start = time.perf_counter()
        grades = grade_many(items, workers=workers, deadline_s=deadline_s)
        wall_s = time.perf_counter() - start
        for g in grades:
            counts[g.status] = counts.get(g.status, 0) + 1
        return wall_s, counts
    if config == "plain":
        start = time.perf_counter()
        verdicts = [_plain_one(it) for it in items]
    else:
        import multiprocessing as mp

        with mp.get_context("forkserver").Pool(2) as pool:
            pool.map(_plain_one, items[:2])  # start
            start = time.perf_counter()
            verdicts = pool.map(_plain_one, items, chunksize=16)
    wall_s = time.perf_counter() - start
    counts = {"correct": sum(verdicts), "wrong": len(verdicts) - sum(verdicts)}
    return wall_s, counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mix", choices=["solutions", "hard", "rl8"], default="solutions")
    p.add_argument("--configs", default="pool", help=f"comma list of {', '.join(CONFIGS)} (default pool)")
    p.add_argument("--repeats", type=int, default=1, help="rounds over the configurations, interleaved")
    p.add_argument("--problems", type=int, default=None, help="only the first N problems")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--deadline-s", type=float, default=5.0)
    args = p.parse_args()
    configs = args.configs.split(",")
    if unknown := [c for c in configs if c not in CONFIGS]:
        raise SystemExit(f"--configs: unknown {unknown[0]!r} (known: {', '.join(CONFIGS)})")
    if not (DATA / "math500.jsonl").exists():
        raise SystemExit(f"benchmark data not found at {DATA} (set THREADWEAVER_SHARED_DATA)")
    items = items_for(args.mix, args.problems)
    rates: dict[str, list[float]] = {c: [] for c in configs}
    for rnd in range(args.repeats):
        for config in configs if rnd % 2 == 0 else configs[::-1]:  # ABBA: no config always goes first
            wall_s, counts = run_config(config, items, args.workers, args.deadline_s)
            rates[config].append(len(items) / wall_s)
            print(f"mix={args.mix} config={config} round={rnd} samples={len(items)} wall_s={wall_s:.1f} "
                  f"samples_per_s={len(items) / wall_s:.1f} statuses={counts}", flush=True)  # fmt: skip
    base = statistics.median(rates[configs[0]])
    for config in configs:
        median = statistics.median(rates[config])
        print(f"summary mix={args.mix} config={config} median_samples_per_s={median:.1f} "
              f"ratio_to_{configs[0]}={median / base:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
