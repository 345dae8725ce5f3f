"""`threadweaver datagen pipeline --config FILE.yaml`: stage 0 -> stage 1 -> SFT -> stage 2 -> SFT from one
config (trainers/datagen/pipeline_config.py), with a summary of what survived each stage.

Each stage is the command of its own (`datagen stage0|stage1|stage2`, `train sft`), run in this process
with its flags from the config, reading the previous stage's output in `work_dir`:

    stage0.jsonl (+ .rollouts.jsonl)  correct sequential traces of the base model
    stage1.jsonl (+ .work/)           the LLM's rewrites that validate and grade correct
    sft1/                             SFT on stage1.jsonl
    stage2.jsonl (+ .rollouts.jsonl)  sft1's correct, valid parallel rollouts within the limits
    sft2/                             SFT on stage2.jsonl, from sft1
    summary.json                      per stage: what went in, what was kept, why the rest was dropped

Resume: run the same config again. Rollouts already in a stage's rollout file are not run again, stage 1
repeats no journaled LLM call, and an SFT stage whose checkpoint was trained on the same data with the same
section (`PIPELINE.json` in its folder) is skipped. A stage that keeps nothing stops the pipeline before
the next stage (exit 1) after the summary, which names the file with the reasons.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

from harness.errors import CheckFailed, InputError

EXAMPLE = """example:
  threadweaver datagen pipeline --config pipeline.yaml
  threadweaver datagen pipeline --config pipeline.yaml --set stages=[stage2,sft2] --set stage2.samples=4
config keys: trainers/datagen/pipeline_config.py (README, "Data generation").
"""
MARKER = "PIPELINE.json"


def add_parser(sub) -> None:
    p = sub.add_parser("pipeline", help="Stage 0 -> 1 -> SFT -> 2 -> SFT from one config (resumable)",
                       description=__doc__.split("\n\n", 1)[1].split("\n\nResume", 1)[0], epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--config", required=True, help="YAML file (trainers/datagen/pipeline_config.py)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key (SECTION.KEY for a stage's key; value parsed as YAML); repeatable")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def stage_parser(name: str, where: str) -> argparse.ArgumentParser:
    """The real parser of `datagen NAME`, raising InputError (prefixed with `where`) instead of exiting."""
    from threadweaver.commands import datagen_rollout, datagen_stage1

    sub = argparse.ArgumentParser(prog="threadweaver datagen").add_subparsers()
    datagen_rollout.add_parsers(sub)
    datagen_stage1.add_parser(sub)
    parser = sub.choices[name]

    def error(message: str):
        keys = re.sub(
            r"--([a-z][a-z0-9-]*)", lambda m: m.group(1).replace("-", "_"), message
        )  # flags as keys
        raise InputError(f"{where}: {keys}")

    parser.error = error
    return parser


def section_argv(
    parser: argparse.ArgumentParser, section: dict, owned: tuple[str, ...], where: str
) -> list[str]:
    """A config section (`max_total_tokens: 4096`) as the command's flags (`--max-total-tokens 4096`)."""
    from harness.config import check_keys

    actions = {a.dest: a for a in parser._actions if a.option_strings and a.dest not in ("help", *owned)}
    check_keys(section, list(actions), where)
    argv = []
    for key, value in section.items():
        action = actions[key]
        flag = next(s for s in action.option_strings if s.startswith("--") and not s.startswith("--no-"))
        if isinstance(action, argparse.BooleanOptionalAction) or action.nargs == 0:
            if not isinstance(value, bool):
                raise InputError(f"{where}: {key} must be true or false, got {value!r}")
            if value or isinstance(action, argparse.BooleanOptionalAction):
                argv.append(flag if value else "--no-" + flag[2:])
        elif value is None:
            continue  # the command's default
        elif isinstance(value, list):
            argv += [flag, *map(str, value)]
        elif isinstance(value, dict):
            raise InputError(f"{where}: {key} must be a value or a list, got a mapping")
        else:
            argv += [flag, str(value)]
    return argv


class Pipeline:
    def __init__(self, config_path: str, overrides: list[str]) -> None:
        from trainers.datagen.pipeline_config import PIPELINE_OWNED, load_pipeline_config

        self.where = config_path
        self.cfg = load_pipeline_config(config_path, overrides)
        self.owned = PIPELINE_OWNED
        self.summary: dict = {}
        # check every section before anything runs: a typo in sft2 must not cost a stage 0 first
        self.args = {
            name: self.stage_args(name) for name in ("stage0", "stage1", "stage2") if name in self.cfg.stages
        }
        self.sft = {name: self.sft_config(name) for name in ("sft1", "sft2") if name in self.cfg.stages}

    def stage_args(self, name: str) -> argparse.Namespace:
        cfg, where = self.cfg, f"{self.where}: {name}"
        section = dict(getattr(cfg, name))
        out = cfg.path(name)
        if name == "stage1":
            fixed = [str(cfg.stage1_input()), "--out", str(out)]
        else:
            prompts = cfg.stage2_problems if name == "stage2" and cfg.stage2_problems else cfg.problems
            fixed = ["--prompts", str(prompts), "--out", str(out)]
            if name == "stage2":
                section.setdefault("model", str(cfg.path("sft1")))
        parser = stage_parser(name, where)
        return parser.parse_args(fixed + section_argv(parser, section, self.owned[name], where))

    def sft_config(self, name: str):
        from harness.config import build_dataclass
        from trainers.sft.config import SFTConfig

        section = dict(getattr(self.cfg, name))
        if name == "sft2":
            section.setdefault("model", str(self.cfg.path("sft1")))
        data = self.cfg.path("stage1" if name == "sft1" else "stage2")
        section |= {"dataset_path": [str(data)], "output_dir": str(self.cfg.path(name))}
        return build_dataclass(SFTConfig, section, f"{self.where}: {name}")

    # ----------------------------------------------------------------------------------------- stages
    def run(self) -> dict:
        self.cfg.root.mkdir(parents=True, exist_ok=True)
        for i, name in enumerate(self.cfg.stages):
            print(f"== datagen pipeline: {name}", file=sys.stderr)
            try:
                kept = getattr(self, "run_" + name[:-1])(name)
            finally:
                self.write_summary()
            if kept == 0 and i + 1 < len(self.cfg.stages):
                raise CheckFailed(
                    f"{name} kept nothing; the pipeline stops (why: {self.summary[name]['why']})"
                )
        return self.summary

    def run_stage(self, name: str) -> int:
        from threadweaver.commands import datagen_rollout, datagen_stage1

        args = self.args[name]
        if name == "stage1":
            source = Path(args.traces)
            if not source.is_file():
                raise InputError(
                    f"{self.where}: stage1 reads {source}, which does not exist (run stage0 first)"
                )
            datagen_stage1.run(args)
            work = Path(args.out).with_name(Path(args.out).name.removesuffix(".jsonl") + ".work")
            s = json.loads((work / "summary.json").read_text())
            row = {"in": s["traces"], "kept": s["kept"], "survived": s["survived"], "dropped": s["dropped"],
                   "why": str(work / "dropped.jsonl")}  # fmt: skip
            if "cost_usd" in s:
                row["cost_usd"] = s["cost_usd"]
        else:
            s = datagen_rollout.rollout_and_select(args)
            row = {"in": s["rollouts"], "kept": s["kept"], "problems": s["problems"],
                   "problems_kept": s["problems_kept"], "dropped": s["dropped"],
                   "why": str(datagen_rollout.rollouts_path(Path(args.out)))}  # fmt: skip
        self.summary[name] = {"out": args.out, **row}
        return row["kept"]

    def run_sft(self, name: str) -> int:
        from harness.records import read_records
        from trainers.sft.trainer import train_sft

        config = self.sft[name]
        data = Path(config.dataset_path[0])
        if not data.is_file():
            raise InputError(
                f"{self.where}: {name} trains on {data}, which does not exist (run the stage before)"
            )
        rows = sum(1 for _ in read_records(data))
        out = Path(config.output_dir)
        fingerprint = hashlib.sha256(data.read_bytes() + json.dumps(getattr(self.cfg, name), sort_keys=True,
                                                                    default=str).encode()).hexdigest()  # fmt: skip
        marker = out / MARKER
        done = json.loads(marker.read_text()) if marker.is_file() else {}
        if done.get("fingerprint") == fingerprint:
            print(f"{name}: {out} was trained on this data with this config; skipped", file=sys.stderr)
            self.summary[name] = done["summary"] | {"skipped": True}
            return rows
        if rows == 0:
            self.summary[name] = {"in": 0, "kept": 0, "why": f"{data} holds no trajectory"}
            return 0
        marker.unlink(missing_ok=True)
        result = train_sft(config)
        losses = {k: result.get(k) for k in ("first_loss", "final_loss")}  # nan when no step was logged: None
        row = {"in": rows, "kept": rows, "out": str(out), "steps": result.get("steps"),
               **{k: v if isinstance(v, float) and v == v else None for k, v in losses.items()}}  # fmt: skip
        marker.write_text(json.dumps({"fingerprint": fingerprint, "summary": row}, indent=1) + "\n")
        self.summary[name] = row | {"skipped": False}
        return rows

    def write_summary(self) -> None:
        (self.cfg.root / "summary.json").write_text(json.dumps(self.summary, indent=1) + "\n")


def format_summary(summary: dict) -> str:
    lines = [f"{'stage':<8} {'in':>7} {'kept':>7}  details"]
    for name, row in summary.items():
        if name.startswith("sft"):
            detail = (f"{row.get('steps')} steps, loss {row.get('first_loss')} -> {row.get('final_loss')}"
                      + (" (skipped: already trained)" if row.get("skipped") else "")) if "steps" in row else row.get("why", "")  # fmt: skip
        else:
            detail = (
                f"dropped {json.dumps(row['dropped']) if row['dropped'] else 'none'}; reasons: {row['why']}"
            )
        lines.append(f"{name:<8} {row.get('in', 0):>7} {row.get('kept', 0):>7}  {detail}")
    return "\n".join(lines) + "\n"


def run(args) -> int:
    pipeline = Pipeline(args.config, args.set)
    try:
        summary = pipeline.run()
    finally:
        sys.stderr.write("datagen pipeline summary (" + str(pipeline.cfg.root / "summary.json") + ")\n"
                         + format_summary(pipeline.summary))  # fmt: skip
        if args.json:
            print(json.dumps(pipeline.summary))
    return 0 if summary else 1
