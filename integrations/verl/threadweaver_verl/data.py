"""Prompts for verl: sample-record JSONL (harness/records.py) -> the parquet verl's RLHFDataset reads.

    python -m threadweaver_verl.data toy-rl-train.jsonl --out train.parquet

Columns: `prompt` (chat messages; verl applies the model's chat template), `data_source` (the
benchmark), `gold` and `grading` (the task's rule: ThreadWeaverAgentLoop grades with them),
`reward_model` ({"ground_truth": gold}, verl's convention) and `extra_info` ({"index", "problem_id"}).
A record with `prompt` text but no `messages` becomes one user message.
"""

from __future__ import annotations

import argparse

from harness.records import read_records


def rows_of(paths: list[str]) -> list[dict]:
    rows = []
    for path in paths:
        for where, rec in read_records(path):
            if rec.gold is None or rec.grading is None:
                raise SystemExit(f"error: {where}: an RL prompt needs `gold` and `grading` (the task's rule)")
            messages = rec.messages or ([{"role": "user", "content": rec.prompt}] if rec.prompt else None)
            if not messages:
                raise SystemExit(f"error: {where}: an RL prompt needs `messages` or `prompt` text")
            rows.append({"prompt": [dict(m) for m in messages], "data_source": rec.benchmark or "threadweaver",
                         "gold": str(rec.gold), "grading": str(rec.grading),
                         "reward_model": {"style": "rule", "ground_truth": str(rec.gold)},
                         "extra_info": {"index": len(rows), "problem_id": rec.problem_id}})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m threadweaver_verl.data", description=__doc__.split("\n")[0])
    ap.add_argument("records", nargs="+", help="sample-record JSONL files with gold and grading")
    ap.add_argument("--out", required=True, help="parquet to write")
    args = ap.parse_args(argv)
    import pandas as pd

    pd.DataFrame(rows_of(args.records)).to_parquet(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
