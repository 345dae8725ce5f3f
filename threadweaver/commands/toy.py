"""`threadweaver toy data | train | demo`: the toy task and the two shipped toy models (issue 5).

- `toy data --split test --out F.jsonl [--mode parallel|sequential] [--limit N]`: one sample record per
  problem (harness/records.py: `messages` = the user turn, `response` = the rendering, `gold`); the SFT
  trainer reads these.
- `toy train [--which both|threadweaver|sequential]`: re-creates models/toy-* (threadweaver/toy_models.py).
- `toy demo [--limit 200] [--engine vllm|hf]`: the embedded default. Evaluates both shipped models on
  `tw_toy` through the real `lm_eval --model threadweaver` CLI and prints accuracy, mean critical-path
  tokens and the speedup (sequential / parallel mean critical path, spec section 6).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.errors import CheckFailed, InputError

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS = {"toy-threadweaver": True, "toy-sequential": False}  # name -> parallel rollout
EXAMPLE = """examples:
  threadweaver toy data --split train --mode parallel --out /tmp/toy-train.jsonl
  threadweaver toy demo --limit 200 --engine vllm
  threadweaver toy train --which sequential --out-dir toy-models --set max_examples=16   # a 2-step trial
  (`threadweaver toy train` alone re-creates both shipped models: about 17 CPU minutes)
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "toy",
        help="The toy task and toy models: data, training, the embedded demo",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="toy_command", metavar="ACTION", required=True)
    data = sub.add_parser("data", help="Write a split of the toy task as JSONL")
    data.add_argument("--split", choices=("train", "test"), default="test")
    data.add_argument(
        "--mode",
        choices=("parallel", "sequential", "hybrid"),
        default="parallel",
        help="rendering of the completion (default: parallel; hybrid: some problems parallel, some "
        "sequential, deterministic per problem, tasks/toy.py hybrid_mode)",
    )
    data.add_argument("--format", default="threadweaver", dest="fmt",
                      help="parallel format of the parallel rendering (harness.formats; default threadweaver)")
    data.add_argument("--limit", type=int, default=None, help="first N problems (default: all)")
    data.add_argument("--out", required=True, help="output JSONL path ('-' = stdout)")
    data.set_defaults(func=run_data)
    train = sub.add_parser("train", help="Re-create the shipped toy models (threadweaver/toy_models.py)")
    train.add_argument("--which", choices=("both", "threadweaver", "sequential", "hybrid", "npr", "multiverse"),
                       default="both", help="both: the two shipped demo models; hybrid: toy-hybrid, the RL start "
                       "(issue 14); npr, multiverse: the toy in that format")
    train.add_argument("--out-dir", default=str(REPO_ROOT / "models"), help="where models/toy-* go")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override one key of the toy SFT config (value parsed as YAML); repeatable")
    train.set_defaults(func=run_train)
    demo = sub.add_parser(
        "demo",
        help="Evaluate both toy models on tw_toy with lm_eval; print the speedup",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--limit", type=int, default=200, help="held-out problems (default 200)")
    demo.add_argument("--engine", choices=("vllm", "hf"), default="vllm")
    demo.add_argument("--models-dir", default=str(REPO_ROOT / "models"))
    demo.add_argument("--output-path", default=None, help="keep lm_eval outputs here (default: a temp dir)")
    demo.set_defaults(func=run_demo)


def run_data(args) -> int:
    from threadweaver_tasks.toy import make_split, to_record

    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be >= 1, got {args.limit}")
    from harness.formats import FORMATS

    if args.fmt not in FORMATS:
        raise InputError(f"--format must be one of {sorted(FORMATS)}, got {args.fmt!r}")
    try:
        lines = [to_record(p, args.mode, args.fmt).to_json() for p in make_split(args.split, args.limit)]
    except ValueError as exc:  # a format the toy cannot render (a runtime-run summary)
        raise InputError(f"--format {args.fmt}: {exc}") from None
    text = "\n".join(lines) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text)
        print(f"wrote {len(lines)} {args.split} problems ({args.mode}) to {args.out}", file=sys.stderr)
    return 0


def run_train(args) -> int:
    from threadweaver.toy_models import make_models

    which = ("threadweaver", "sequential") if args.which == "both" else (args.which,)
    for summary in make_models(which, Path(args.out_dir), args.set):
        print(json.dumps(summary))
    return 0


def _lm_eval(model_dir: Path, parallel: bool, engine: str, limit: int, out: Path) -> dict:
    """Run the real lm_eval CLI on tw_toy for one model; return its tw_toy metrics."""
    model_args = f"pretrained={model_dir},engine={engine},parallel={str(parallel).lower()}"
    if engine == "vllm":  # no memory argument: on CPU the engine sizes its KV cache from the run's need
        model_args += ",max_model_len=2048,enforce_eager=true"
    cmd = [
        sys.executable,
        "-m",
        "lm_eval",
        "--model",
        "threadweaver",
        "--model_args",
        model_args,
        "--tasks",
        "tw_toy",
        "--include_path",
        str(REPO_ROOT / "tasks"),
        "--apply_chat_template",
        "--limit",
        str(limit),
        "--output_path",
        str(out),
    ]
    print("$ " + " ".join(cmd), file=sys.stderr)
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=os.environ | {"TOKENIZERS_PARALLELISM": "false"})
    if proc.returncode != 0:
        raise CheckFailed(f"lm_eval exited with {proc.returncode} for {model_dir.name}")
    files = sorted(out.rglob("results_*.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise CheckFailed(f"lm_eval wrote no results file under {out}")
    results = json.loads(files[-1].read_text())["results"]["tw_toy"]
    return {key.split(",")[0]: value for key, value in results.items() if "," in key and "stderr" not in key}


def run_demo(args) -> int:
    if args.limit < 1:
        raise InputError(f"--limit must be >= 1, got {args.limit}")
    models_dir = Path(args.models_dir)
    for name in MODELS:
        if not (models_dir / name / "config.json").exists():
            raise InputError(f"{models_dir / name} has no checkpoint; run `threadweaver toy train`")
    with tempfile.TemporaryDirectory(prefix="toy-demo-") as tmp:
        base = Path(args.output_path or tmp)
        rows = {
            name: _lm_eval(models_dir / name, parallel, args.engine, args.limit, base / name)
            for name, parallel in MODELS.items()
        }
    par, seq = rows["toy-threadweaver"], rows["toy-sequential"]
    speedup = seq["critical_path_tokens"] / par["critical_path_tokens"]
    print(f"{'model':<18} {'accuracy':>9} {'critical_path_tokens':>21} {'total_tokens':>13}")
    for name, r in rows.items():
        print(f"{name:<18} {r['acc']:>9.3f} {r['critical_path_tokens']:>21.1f} {r['total_tokens']:>13.1f}")
    print(
        f"speedup (critical path, sequential / parallel): {speedup:.2f}x on {args.limit} tw_toy problems "
        f"({args.engine} engine)"
    )
    return 0
