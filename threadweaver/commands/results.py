"""`threadweaver results build|check`: write a measured result file from a run; validate result files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import InputError

EXAMPLE = """examples:
  threadweaver results build out/tw --model my-model --out results/       # one file per benchmark of the run
  threadweaver results build out/seq --model my-model-seq --out results/  # its sequential baseline run
  threadweaver results check results/*.json
Settings (engine, sampling, budget, format, count unit, ...) come from the records' run header; the flags
below override them.
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("results", help="Build and check result files", description=__doc__,
                              epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="results_command", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="Build measured results (one per benchmark) from a run's sample records",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("runs", nargs="+", metavar="RUN", help="record file(s) or a run folder (searched recursively)")
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
    b.add_argument("--format", help="parallel format of the run (harness.formats)")
    b.add_argument("--fidelity", choices=("exact", "approximate"),
                   help="override the format's label (formats.md section 1) when the model's training positions "
                   "are known: e.g. exact for an NPR-format model trained here with trie SFT (ordinary positions)")
    b.add_argument("--out", default="results/", help="folder for <model>__<benchmark>.json (or a .json file "
                   "when the run holds one benchmark)")
    b.set_defaults(func=run_build)
    c = sub.add_parser("check", help="Validate result files, and recompute measured aggregates from samples "
                       "(exit 2 naming file and field on the first bad one)")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.set_defaults(func=run_check)


def run_build(args) -> int:
    from harness.measured import build_results
    from harness.results import result_filename, save_result
    from harness.zoo import get_entry, load_zoo

    zoo_name, pretrained = args.zoo_name, args.pretrained
    zoo = load_zoo()
    if zoo_name is None and args.model in zoo:
        zoo_name = args.model
    if zoo_name is not None:
        pretrained = pretrained or get_entry(zoo_name, zoo).pretrained()
    meta = {
        "model": {"name": args.model, "zoo_name": zoo_name, "pretrained": pretrained},
        "engine": args.engine, "engine_version": args.engine_version, "dtype": args.dtype,
        "budget_tokens": args.budget_tokens, "seeds": args.seeds, "parallel": args.parallel, "join": args.join,
        "format": args.format, "fidelity": args.fidelity,
    }  # fmt: skip
    sampling = {"temperature": args.temperature, "top_p": args.top_p, "top_k": args.top_k}
    if any(v is not None for v in sampling.values()):
        meta["sampling"] = sampling
    results = build_results(args.runs, meta)
    out = Path(args.out)
    if out.suffix == ".json" and len(results) > 1:
        raise InputError(f"--out {out}: the run holds {len(results)} benchmarks; give a folder")
    for result in results:
        path = out if out.suffix == ".json" else out / result_filename(result)
        save_result(result, path)
        a = result.aggregates
        print(f"{path}: {result.benchmark}, {a.num_problems} problems x {result.num_samples_per_problem}, "
              f"accuracy {100 * a.accuracy:.2f}%, critical-path tokens {a.critical_path_tokens:.1f} "
              f"({result.count_unit})", file=sys.stderr)  # fmt: skip
        print(path)
    return 0


def run_check(args) -> int:
    from harness.measured import check_aggregates
    from harness.results import load_result

    for f in args.files:
        if not Path(f).is_file():
            raise InputError(f"{f}: no such file")
        r = load_result(f)
        check_aggregates(r, f)
        print(f"{f}: ok ({r.model.name}, {r.benchmark}, {r.provenance}, {len(r.samples)} samples)")
    return 0
