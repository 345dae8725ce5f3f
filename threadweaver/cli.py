"""The `threadweaver` command: a thin dispatcher over threadweaver/commands/* (the top layer: the only code
that imports both harness and trainers).

Each subcommand lives in its own module with `add_parser(subparsers)` and `run(args) -> int`, so that
`threadweaver --help` imports nothing heavy. Exit codes: 0 ok, 1 a check failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from harness.errors import CheckFailed, InputError

# registry key = CLI value = module name under threadweaver.commands
COMMANDS: dict[str, str] = {
    "trace": "Count tokens and critical path of parallel trajectories",
    "rollout": "Run the trie rollout over a JSONL of prompts (resumable)",
    "bench": "Benchmarks: `bench rollout` (sequential vs parallel wall-clock)",
    "eval": "lm-eval with the threadweaver backend and our tasks folder",
    "grade": "Grade responses against gold answers",
    "regrade": "Re-grade a saved run without generating again",
    "results": "Build and check result files",
    "leaderboard": "Build leaderboards (Markdown, CSV, plots) from results/",
    "zoo": "Known models: `zoo list`, `zoo show NAME`",
    "store": "The resume store: `store list`, `store clear`",
    "regress": "Is a candidate checkpoint worse than a baseline? (exit 1 if so)",
    "train": "Trainers: `train sft --config FILE.yaml`",
    "toy": "The toy task and toy models: data, training, the embedded demo",
    "datagen": "Parallel training data: stage0, stage1 (LLM rewrite), stage2 (self-training), stats",
}

EPILOG = """quick start:
  threadweaver trace harness/examples/spec_example.txt
  threadweaver zoo list
  lm_eval --model threadweaver --model_args pretrained=zoo:toy-threadweaver,engine=hf --tasks tw_toy --limit 20
"""


def _load(name: str):
    return importlib.import_module(f"threadweaver.commands.{name}")


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="threadweaver",
        description="ThreadWeaver Harness: evaluate and train adaptive parallel reasoners.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from harness.store import harness_version

    parser.add_argument("--version", action="version", version=f"threadweaver-harness {harness_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Import only the module of the command being run; the others get a stub entry for --help.
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, summary in COMMANDS.items():
        if name == wanted:
            try:
                _load(name).add_parser(sub)
            except ModuleNotFoundError as exc:
                if exc.name == f"threadweaver.commands.{name}":
                    raise InputError(f"command '{name}' is not available in this build") from exc
                raise
        else:
            sub.add_parser(name, help=summary, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "eval":  # lm-eval owns these flags; pass them through untouched
            return _load("eval").main(argv[1:])
        parser = build_parser(argv)
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # argparse's usage error (exit 2) or --help (exit 0): a return code
            return int(exc.code or 0)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0 if not argv else 2
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except CheckFailed as exc:
        print(f"check failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `threadweaver ... | head`: the reader left; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
