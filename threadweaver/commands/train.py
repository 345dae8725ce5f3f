"""`threadweaver train sft|rl --config FILE.yaml`: trie-packed SFT (spec section 3), P-GRPO (rl.md).

YAML keys are SFTConfig fields (ours and transformers.TrainingArguments'); an unknown key is refused with
the closest known one. Progress goes to stderr (Trainer's bar), the loss log to output_dir/loss_log.jsonl,
and a one-line JSON summary to stdout.
"""

from __future__ import annotations

import argparse
import json

EXAMPLE = """example:
  threadweaver toy data --split train --mode parallel --limit 16 --out toy-train-parallel.jsonl
  threadweaver train sft --config trainers/toy/configs/toy-threadweaver.yaml --set output_dir=sft-try
  threadweaver train sft --config my.yaml --set num_train_epochs=1 --set output_dir=/tmp/out
  threadweaver toy data --split train --limit 8 --out toy-rl-train.jsonl
  threadweaver train rl --config trainers/toy/configs/toy-rl.yaml --set steps=2 --set prompts_per_step=2
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="Trainers: `train sft|rl --config FILE.yaml`",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="trainer", metavar="TRAINER", required=True)
    sft = sub.add_parser(
        "sft",
        help="Trie-packed SFT from a YAML of SFTConfig fields",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sft.add_argument("--config", required=True, help="YAML file; keys = SFTConfig fields")
    sft.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one key (value parsed as YAML); repeatable",
    )
    sft.set_defaults(func=run)
    rl = sub.add_parser(
        "rl",
        help="P-GRPO on one machine from a YAML of RLConfig fields (resumes in its output_dir)",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rl.add_argument("--config", required=True, help="YAML file; keys = RLConfig fields (trainers/rl/config.py)")
    rl.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override one key (value parsed as YAML; rollout.KEY / reward.KEY for nested ones); repeatable")
    rl.set_defaults(func=run_rl)


def load_config(path, overrides=()):
    from trainers.sft.config import load_sft_config

    return load_sft_config(path, overrides)


def run(args) -> int:
    from trainers.sft.trainer import train_sft

    config = load_config(args.config, args.set)
    summary = train_sft(config)
    print(json.dumps(summary))
    return 0


def run_rl(args) -> int:
    from trainers.rl.config import load_rl_config
    from trainers.rl.trainer import train_rl

    summary = train_rl(load_rl_config(args.config, args.set))
    print(json.dumps(summary))
    return 0
