"""`threadweaver results build|check`: write a measured result file from a run; validate result files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import InputError

EXAMPLE = """examples:
  threadweaver results build runs/toy/trajectories.jsonl --model toy-threadweaver --zoo toy-threadweaver \\
      --parallel --join model --engine hf --temperature 1.0 --budget-tokens 4096 --out results/
  threadweaver results check results/*.json
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("results", help="Build and check result files", description=__doc__,
                              epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="results_command", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="Build a measured result from a trajectory JSONL", epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("trajectories", metavar="TRAJECTORIES.jsonl", help="trajectory file written by the backend")
    b.add_argument("--model", required=True, help="model name for tables and the file name")
    b.add_argument("--zoo", dest="zoo_name", help="zoo name of the model (default: --model if it is in the zoo)")
    b.add_argument("--pretrained", help="hub id or path that was loaded (default: from the zoo)")
    b.add_argument("--engine", help="engine used (vllm, hf, openai, scripted)")
    b.add_argument("--engine-version", help="version of the engine package")
    b.add_argument("--dtype", help="model dtype, e.g. bfloat16")
    b.add_argument("--temperature", type=float)
    b.add_argument("--top-p", type=float)
    b.add_argument("--top-k", type=int)
    b.add_argument("--budget-tokens", type=int, help="total-token budget per trajectory (spec section 2)")
    b.add_argument("--seeds", type=int, nargs="*", help="seeds used")
    mode = b.add_mutually_exclusive_group()
    mode.add_argument("--parallel", dest="parallel", action="store_true", default=None, help="trie rollout was used")
    mode.add_argument("--sequential", dest="parallel", action="store_false", help="plain sequential decoding")
    b.add_argument("--join", choices=("model", "orchestrator"), help="who closes a block (spec section 2)")
    b.add_argument("--out", default="results/", help="output file, or folder for <model>__<benchmark>.json")
    b.set_defaults(func=run_build)
    c = sub.add_parser("check", help="Validate result files (exit 2 naming file and field on the first bad one)")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.set_defaults(func=run_check)


def run_build(args) -> int:
    from harness.results import build_result, result_filename, save_result

    zoo_name, pretrained = args.zoo_name, args.pretrained
    from harness.zoo import load_zoo

    zoo = load_zoo()
    if zoo_name is None and args.model in zoo:
        zoo_name = args.model
    if zoo_name is not None:
        if zoo_name not in zoo:
            from harness.zoo import get_entry

            get_entry(zoo_name, zoo)  # raises with a did-you-mean
        pretrained = pretrained or zoo[zoo_name].pretrained()
    meta = {
        "model": {"name": args.model, "zoo_name": zoo_name, "pretrained": pretrained},
        "engine": args.engine, "engine_version": args.engine_version, "dtype": args.dtype,
        "sampling": {"temperature": args.temperature, "top_p": args.top_p, "top_k": args.top_k},
        "budget_tokens": args.budget_tokens, "seeds": args.seeds, "parallel": args.parallel, "join": args.join,
    }
    result = build_result(Path(args.trajectories), meta)
    out = Path(args.out)
    if out.suffix != ".json":
        out = out / result_filename(result)
    save_result(result, out)
    a = result.aggregates
    print(f"{out}: {result.benchmark}, {a.num_problems} problems x {result.num_samples_per_problem}, "
          f"accuracy {a.accuracy:.2f}%, critical-path tokens {a.critical_path_tokens:.1f}", file=sys.stderr)
    print(out)
    return 0


def run_check(args) -> int:
    from harness.results import load_result

    for f in args.files:
        if not Path(f).is_file():
            raise InputError(f"{f}: no such file")
        r = load_result(f)
        print(f"{f}: ok ({r.model.name}, {r.benchmark}, {r.provenance}, {len(r.samples)} samples)")
    return 0
