"""`threadweaver datagen stage0 | stage2`: the rollout of a model over problems, then the selection of
training data (threadweaver.md section 4; trainers/datagen/select.py).

Both run `threadweaver rollout` (same flags, same engines, harness/engines/args.py) into a rollout file
(`--rollouts`, default OUT with `.rollouts.jsonl`), which resumes: samples already there are not run again.
The selection is then rebuilt from the whole rollout file into OUT (sample records the SFT trainer reads).
stage0 rolls out sequentially (`--no-parallel` is its default), stage2 in parallel.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.errors import InputError

EXAMPLE = """examples:
  threadweaver datagen stage0 --prompts problems.jsonl --engine vllm --model Qwen/Qwen3-8B --samples 4 \\
      --out seq.jsonl  # needs a GPU: an 8B model
  threadweaver datagen stage2 --prompts problems.jsonl --engine vllm --model out/sft1 --samples 8 \\
      --max-total-tokens 40960 --min-self-parallelism 1.05 --max-per-problem 4 --out stage2.jsonl  # needs a GPU: an 8B model
PROBLEMS lines: {"id": "p1", "problem": "question", "answer": "42"} (the benchmark files' fields).
"""


def add_parsers(sub) -> None:
    from threadweaver.commands.rollout import add_rollout_args

    for name, parallel, what in (("stage0", False, "sequential traces of the base model, correct ones kept"),
                                 ("stage2", True, "self-training: the model's correct, valid parallel rollouts")):  # fmt: skip
        p = sub.add_parser(name, help=f"Stage {name[-1]}: {what}", description=f"Stage {name[-1]}: {what}.",
                           epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        p.add_argument("--prompts", required=True, metavar="FILE.jsonl", help="problems: id, problem, answer")
        add_rollout_args(p)
        p.add_argument("--rollouts", help="every rollout, before selection (default: OUT as .rollouts.jsonl)")
        p.add_argument("--max-total-tokens", type=int, help="drop longer trajectories (default: no limit)")
        p.add_argument("--min-self-parallelism", type=float, default=1.0,
                       help="minimum acceleration, total / critical-path tokens (default 1.0)")  # fmt: skip
        p.add_argument("--max-per-problem", type=int, help="keep at most this many samples per problem")
        p.add_argument("--json", action="store_true", help="print the selection summary as JSON")
        p.set_defaults(func=run, parallel=parallel, stage=name)


def rollouts_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".jsonl") + ".rollouts.jsonl")


def run(args) -> int:
    summary = rollout_and_select(args)
    if args.json:
        print(json.dumps(summary))
    return 0


def rollout_and_select(args) -> dict:
    """Roll out (resuming), rebuild OUT from every rollout; the selection summary."""
    from harness.errors import CheckFailed
    from harness.records import RecordWriter, read_records
    from threadweaver.commands import rollout
    from trainers.datagen.select import SelectConfig, select_records

    try:
        limits = SelectConfig(args.max_total_tokens, args.min_self_parallelism, args.max_per_problem)
    except ValueError as exc:
        raise InputError(str(exc).replace("_", "-", 2)) from exc
    out = Path(args.out)
    raw = Path(args.rollouts) if args.rollouts else rollouts_path(out)
    if raw.resolve() == out.resolve():
        raise InputError("--rollouts must differ from --out")
    code = rollout.run(argparse.Namespace(**{**vars(args), "out": str(raw)}))
    if code:
        raise CheckFailed(f"{args.stage}: the rollout exited with {code}")
    records = [rec for _, rec in read_records(raw)]
    kept, dropped = select_records(records, limits)
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    with RecordWriter(tmp) as f:
        for rec in kept:
            f.write(rec)
    tmp.replace(out)
    summary = {"stage": args.stage, "rollouts": len(records), "kept": len(kept), "dropped": dict(dropped),
               "problems": len({r.problem_id for r in records}), "problems_kept": len({r.problem_id for r in kept})}  # fmt: skip
    print(f"{args.stage}: kept {len(kept)} of {len(records)} rollouts ({summary['problems_kept']} of "
          f"{summary['problems']} problems) -> {out}; dropped {dict(dropped) or 'none'}", file=sys.stderr)  # fmt: skip
    return summary
