"""`threadweaver eval`: lm-eval's `run` with our tasks folder included, then a short summary table.

Every lm-eval flag passes through untouched; our own flag is `--repeats N` (samples per problem for every
tw_* task, instead of the paper's 32/32/8/1/4/8). Example:

    threadweaver eval --model threadweaver --model_args pretrained=zoo:toy-threadweaver,engine=hf \\
        --tasks tw_toy --limit 2 --repeats 2 --output_path out --log_samples
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import tempfile
from pathlib import Path

from harness.errors import InputError


def _tasks_dir() -> Path:
    """tasks/ of this checkout, else the installed `threadweaver_tasks` package."""
    checkout = Path(__file__).resolve().parents[2] / "tasks"
    if checkout.is_dir():
        return checkout
    import threadweaver_tasks

    return Path(threadweaver_tasks.__file__).parent


TASKS_DIR = _tasks_dir()
SUMMARY_METRICS = ("acc", "pass@k", "critical_path_tokens", "self_parallelism")


def split_args(argv: list[str]) -> tuple[int | None, list[str], list[str]]:
    """Take out our `--repeats N` and every `--include_path P`; the rest is lm-eval's."""
    repeats, includes, rest = None, [], []
    it = iter(argv)
    for a in it:
        name, eq, value = a.partition("=")
        if name in ("--repeats", "--include_path"):
            value = value if eq else next(it, None)
            if value is None:
                raise InputError(f"{name} needs a value")
            if name == "--include_path":
                includes.append(value)
                continue
            try:
                repeats = int(value)
            except ValueError:
                raise InputError(f"--repeats must be an int >= 1, got {value!r}") from None
            if repeats < 1:
                raise InputError(f"--repeats must be an int >= 1, got {repeats}")
        else:
            rest.append(a)
    return repeats, includes, rest


def write_repeat_overrides(out_dir: Path, repeats: int, tasks_dir: Path = TASKS_DIR) -> list[str]:
    """One YAML per tw_* task: `include` the original and set `repeats` (same task name, later path wins)."""
    names = []
    for src in sorted(tasks_dir.glob("tw_*.yaml")):
        found = re.search(r"^task:\s*(\S+)", src.read_text(encoding="utf-8"), re.MULTILINE)
        name = found.group(1) if found else src.stem
        (out_dir / src.name).write_text(f"include: {src}\ntask: {name}\nrepeats: {repeats}\n")
        names.append(name)
    return names


def summary_table(results: dict) -> str:
    """Markdown table: one row per task with accuracy and latency metrics (from lm-eval's results)."""
    rows = ["| task | " + " | ".join(SUMMARY_METRICS) + " |", "|---" * (len(SUMMARY_METRICS) + 1) + "|"]
    for task, res in sorted(results.get("results", {}).items()):
        vals = []
        for m in SUMMARY_METRICS:
            v = res.get(f"{m},none")
            vals.append("-" if not isinstance(v, (int, float)) or math.isnan(v) else f"{v:.4g}")
        if any(v != "-" for v in vals):
            rows.append(f"| {task} | " + " | ".join(vals) + " |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    """Run lm-eval in this process with our tasks folder; print the summary table to stdout."""
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
    repeats, includes, rest = split_args(argv)
    if any(a in ("-h", "--help") for a in rest) and not (rest and rest[0] in ("run", "ls", "validate")):
        rest = ["run", *rest]  # the flags of a run, not lm-eval's list of subcommands
    import lm_eval
    from lm_eval._cli import HarnessCLI
    from lm_eval.utils import setup_logging

    captured: dict = {}
    original = lm_eval.simple_evaluate

    def capturing_evaluate(*args, **kwargs):
        captured["results"] = original(*args, **kwargs)
        return captured["results"]

    saved_argv = sys.argv
    with tempfile.TemporaryDirectory(prefix="tw-tasks-") as tmp:
        paths = [str(TASKS_DIR), *includes]
        if repeats is not None:
            write_repeat_overrides(Path(tmp), repeats)
            paths.append(tmp)  # last: overrides the tasks of the same name
        try:
            sys.argv = ["lm_eval", *rest]  # lm-eval parses sys.argv; the backend reads --output_path there
            setup_logging()
            cli = HarnessCLI()
            args = cli.parse_args()
            if getattr(args, "command", None) == "run":
                args.include_path = paths
            lm_eval.simple_evaluate = capturing_evaluate  # the run command imports it at call time
            cli.execute(args)
        finally:
            lm_eval.simple_evaluate = original
            sys.argv = saved_argv
    if captured.get("results"):
        print("\nthreadweaver summary (per task; latency in tokens):")
        print(summary_table(captured["results"]))
    return 0


def add_parser(subparsers) -> None:
    """Stub for `threadweaver --help`; threadweaver.cli hands `eval` argv straight to `main`."""
    p = subparsers.add_parser("eval", help="lm-eval with the threadweaver backend and our tasks folder",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                              add_help=False)  # fmt: skip
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return main(list(args.rest))
