"""`threadweaver leaderboard`: Markdown/CSV tables and Pareto plots per benchmark, from result files only."""

from __future__ import annotations

import argparse
import sys

EXAMPLE = """example:
  threadweaver leaderboard --results results/ --out leaderboards/
  threadweaver leaderboard --baseline toy-sequential --out /tmp/boards
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "leaderboard", help="Build leaderboards (Markdown, CSV, plots) from results/",
        description="One board per benchmark and one for the average over the benchmarks listed in "
        "RESULTS/boards.yaml (models with all of them); titles and speedup baselines come from that file too. "
        "Output is deterministic: the committed leaderboards/ equals a fresh build.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results", help="folder of result files (default: results)")
    p.add_argument("--out", default="leaderboards", help="output folder (default: leaderboards)")
    p.add_argument("--baseline", action="append", metavar="NAME",
                   help="speedup baseline model; repeat to give fallbacks, the first present on a board is used "
                   "(default: `baselines` in RESULTS/boards.yaml)")
    p.set_defaults(func=run)


def run(args) -> int:
    from harness.leaderboard import build_leaderboards

    written = build_leaderboards(args.results, args.out, tuple(args.baseline or ()))
    print(f"wrote {len(written)} files to {args.out}", file=sys.stderr)
    return 0
