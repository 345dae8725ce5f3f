"""`threadweaver bench rollout`: sequential vs parallel wall-clock of the same structure through the real
trie rollout (issue 3, item 6; harness/bench.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from harness.engines.args import add_cli_args
from harness.errors import InputError
from harness.formats import DEFAULT_FORMAT, FORMATS

EXAMPLE = """example:
  threadweaver bench rollout --engine hf --model path/to/model --scale 400 --batch-sizes 1,2 --out bench.json
  threadweaver bench rollout --engine hf --model path/to/model --lengths records.jsonl --batch-sizes 2
the README's figures: --engine vllm --enforce-eager --preset paper --scale 20 --batch-sizes 1,32 --repeats 2
(benchmarks/bench_rollout.md; minutes on a CPU)
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("bench", help="Benchmarks: `bench rollout` (sequential vs parallel wall-clock)")
    sub = p.add_subparsers(dest="bench", metavar="BENCH", required=True)
    r = sub.add_parser(
        "rollout",
        help="Sequential vs parallel decoding of one workload structure",
        description="Workload mode (fixed token counts, end of sequence ignored): the real trie rollout "
        "(harness.rollout) runs the same structure sequentially (parallel=false: one request per trajectory) "
        "and in parallel (its steps, branches and joins in --format), at each batch size, and reports ideal "
        "and measured speedup, efficiency, tokens/s, orchestration overhead and prefill tokens.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_cli_args(r)
    src = r.add_mutually_exclusive_group()
    src.add_argument("--preset", default="paper", choices=["paper"], help="structure from spec section 7")
    src.add_argument("--lengths", metavar="FILE.jsonl", help="structures from sample records (their units)")
    r.add_argument("--format", default=DEFAULT_FORMAT, choices=list(FORMATS), help="parallel format (default "
                   f"{DEFAULT_FORMAT})")  # fmt: skip
    joins = sorted({j for f in FORMATS.values() for j in f.join_modes})
    r.add_argument("--join", choices=joins, help="who closes a block, where the format offers a choice "
                   "(threadweaver: model | orchestrator; default: the format's)")  # fmt: skip
    r.add_argument("--scale", type=float, default=20.0, help="divide all lengths by this (default 20)")
    r.add_argument("--batch-sizes", default="1,32", help="comma-separated (default 1,32)")
    r.add_argument("--repeats", type=int, default=1, help="ABBA rounds per batch size (default 1; more for "
                   "a noisy machine)")  # fmt: skip
    r.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    r.add_argument("--out", help="write the results as JSON here")
    r.set_defaults(func=run)


def run(args) -> int:
    from harness.bench import bench_rollout, format_table, paper_structures, structures_from_records
    from harness.engines.args import EngineArgs
    from harness.workload import WorkloadError, compile_steps

    try:
        sizes = [int(x) for x in args.batch_sizes.split(",")]
    except ValueError as exc:
        raise InputError(f"--batch-sizes must be comma-separated ints, got {args.batch_sizes!r}") from exc
    if not sizes or min(sizes) < 1 or args.scale <= 0 or args.repeats < 1:
        raise InputError("--batch-sizes and --repeats must be >= 1 and --scale > 0")
    fmt = FORMATS[args.format]
    if args.join is not None and args.join not in fmt.join_modes:
        raise InputError(f"--join must be one of {', '.join(fmt.join_modes)} for --format {fmt.name}, got {args.join}")
    join = args.join or fmt.default_join()
    structs = structures_from_records(Path(args.lengths), args.scale) if args.lengths else paper_structures(args.scale)
    for s in structs:  # refuse a structure the format cannot write before starting an engine
        try:
            compile_steps(s, fmt.name, join)
        except WorkloadError as exc:
            raise InputError(f"{args.lengths or '--preset ' + args.preset}: {exc}") from None
    load_start = _load_average()
    engine = EngineArgs.from_cli(args).build()
    try:
        result = asyncio.run(bench_rollout(engine, structs, sizes, fmt=fmt.name, join=join,
                                           temperature=args.temperature, repeats=args.repeats))  # fmt: skip
    finally:
        engine.close()
    result["engine"], result["model"] = args.engine, args.model
    result["source"] = args.lengths or f"preset {args.preset}"
    result["scale"] = args.scale
    result["load_average"] = {"start": load_start, "end": _load_average()}
    print(format_table(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _load_average() -> list[float] | None:
    """1, 5, 15-minute load averages (timings on a shared machine need them)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
