"""`threadweaver bench rollout`: sequential vs parallel wall-clock of the same structure (issue 3, item 6)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from harness.engines.args import add_cli_args
from harness.errors import InputError

EXAMPLE = """example:
  threadweaver bench rollout --engine vllm --model path/to/model --enforce-eager --preset paper --scale 20 \\
      --batch-sizes 1,32 --out bench.json
  threadweaver bench rollout --engine vllm --model path/to/model --lengths rollouts.jsonl
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("bench", help="Benchmarks: `bench rollout` (sequential vs parallel wall-clock)")
    sub = p.add_subparsers(dest="bench", metavar="BENCH", required=True)
    r = sub.add_parser(
        "rollout",
        help="Sequential vs parallel decoding of one workload structure",
        description="Workload mode (fixed token counts, end of sequence ignored): runs the same structure "
        "as one sequential request per trajectory and as the trie rollout's segments and threads, "
        "at each batch size, and reports ideal and measured speedup, efficiency, tokens/s and overhead.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_cli_args(r)
    src = r.add_mutually_exclusive_group()
    src.add_argument("--preset", default="paper", choices=["paper"], help="structure from spec section 7")
    src.add_argument("--lengths", metavar="FILE.jsonl", help="structures from `threadweaver rollout` records")
    r.add_argument("--scale", type=float, default=20.0, help="divide all lengths by this (default 20)")
    r.add_argument("--batch-sizes", default="1,32", help="comma-separated (default 1,32)")
    r.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    r.add_argument("--out", help="write the results as JSON here")
    r.set_defaults(func=run)


def run(args) -> int:
    from harness.bench import bench_rollout, format_table, paper_structures, structures_from_records
    from harness.engines.args import EngineArgs

    try:
        sizes = [int(x) for x in args.batch_sizes.split(",")]
    except ValueError as exc:
        raise InputError(f"--batch-sizes must be comma-separated ints, got {args.batch_sizes!r}") from exc
    if not sizes or min(sizes) < 1 or args.scale <= 0:
        raise InputError("--batch-sizes must be >= 1 and --scale > 0")
    structs = structures_from_records(Path(args.lengths), args.scale) if args.lengths else paper_structures(args.scale)
    engine = EngineArgs.from_cli(args).build()
    try:
        result = asyncio.run(bench_rollout(engine, structs, sizes, temperature=args.temperature))
    finally:
        engine.close()
    result["engine"], result["model"] = args.engine, args.model
    result["source"] = args.lengths or f"preset {args.preset}"
    result["scale"] = args.scale
    print(format_table(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
