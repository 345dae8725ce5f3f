"""`threadweaver train sft --config FILE.yaml`: trie-packed SFT (spec section 3).

YAML keys are SFTConfig fields (ours and transformers.TrainingArguments'); an unknown key is refused with
the closest known one. Progress goes to stderr (Trainer's bar), the loss log to output_dir/loss_log.jsonl,
and a one-line JSON summary to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
from pathlib import Path

from harness.errors import InputError

EXAMPLE = """example:
  threadweaver train sft --config trainers/toy/configs/toy-threadweaver.yaml
  threadweaver train sft --config my.yaml --set num_train_epochs=1 --set output_dir=/tmp/out
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="Trainers: `train sft --config FILE.yaml`",
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


def _field_names() -> list[str]:
    from trainers.sft.config import SFTConfig

    return [f.name for f in dataclasses.fields(SFTConfig) if f.init]


def load_config(path: str | Path, overrides: list[str] = ()):
    """SFTConfig from a YAML file (+ `KEY=VALUE` overrides); InputError names the file and the key."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of SFTConfig fields, got {type(data).__name__}")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--set expects KEY=VALUE, got {item!r}")
        data[key.strip()] = yaml.safe_load(value)
    names = _field_names()
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise InputError(f"{path}: unknown key '{key}'{hint}")
    if isinstance(data.get("dataset_path"), str):
        data["dataset_path"] = [data["dataset_path"]]
    from trainers.sft.config import SFTConfig

    try:
        return SFTConfig(**data)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: {exc}") from exc


def run(args) -> int:
    from trainers.sft.trainer import train_sft

    config = load_config(args.config, args.set)
    summary = train_sft(config)
    print(json.dumps(summary))
    return 0
