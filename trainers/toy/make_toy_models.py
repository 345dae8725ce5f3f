"""Re-create the shipped toy models models/toy-threadweaver and models/toy-sequential (issue 5).

    python -m trainers.toy.make_toy_models [threadweaver] [sequential]   # or: threadweaver toy train

Each model: the toy task's train split rendered one way (harness.toy), then `threadweaver train sft` with
trainers/toy/configs/toy-<name>.yaml plus the task's step tokens (harness.toy.STEP_TOKENS), each model
alone on two CPU threads (README, "Toy models", for the measured times). Seeds are fixed and torch runs
with deterministic algorithms and a fixed thread count, so a rerun on the same platform (CPU, torch
version, instruction set, thread count) gives the same weights bit for bit: a full rerun of
toy-sequential reproduced the shipped model.safetensors exactly (same SHA-256), and
tests/trainers/test_sft_trainer.py checks it on a short one-thread run. Other CPUs or torch builds may
differ in the last bits (different kernels), GPUs certainly do.
The checkpoint directory keeps only plain files: safetensors weights, config, tokenizer, generation config,
the loss log and TRAINING.json (times and losses); Trainer's pickled training_args.bin is removed.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
KEEP = (
    "model.safetensors",
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "loss_log.jsonl",
)
MODES = {"threadweaver": "parallel", "sequential": "sequential"}


def write_data(mode: str, out: Path, limit: int | None = None) -> Path:
    """The train split rendered in `mode` as sample records (JSONL)."""
    from harness.toy import make_split, to_record

    lines = [to_record(p, mode).to_json() for p in make_split("train", limit)]
    out.write_text("\n".join(lines) + "\n")
    return out


def make_model(which: str, models_dir: Path, overrides: list[str] = ()) -> dict:
    """Train one toy model (`which` in MODES) into models_dir/toy-<which>; return the training summary."""
    from harness.tokenizer import check_extra_tokens
    from harness.toy import STEP_TOKENS
    from trainers.sft.config import load_sft_config
    from trainers.sft.trainer import train_sft

    if which not in MODES:
        raise ValueError(f"which must be one of {sorted(MODES)}, got {which!r}")
    final = models_dir / f"toy-{which}"
    with tempfile.TemporaryDirectory(prefix=f"toy-{which}-") as tmp:
        tmp = Path(tmp)
        data = write_data(MODES[which], tmp / f"toy-train-{MODES[which]}.jsonl")
        config = load_sft_config(
            CONFIG_DIR / f"toy-{which}.yaml",
            [f"dataset_path=[{data}]", f"output_dir={tmp / 'out'}", *overrides],
        )
        # the config lists the prompt's phrases; the task's step tokens come from the task module
        config.extra_tokens = check_extra_tokens([*config.extra_tokens, *STEP_TOKENS])
        cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        summary = train_sft(config)
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        summary |= {
            "model": f"toy-{which}",
            "wall_s": round(time.perf_counter() - wall0, 1),
            "cpu_s": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1),
        }
        if final.exists():
            shutil.rmtree(final)
        final.mkdir(parents=True)
        for name in KEEP:
            if (tmp / "out" / name).exists():
                shutil.copy2(tmp / "out" / name, final / name)
        summary["output_dir"] = str(final)
        (final / "TRAINING.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def make_models(which: tuple[str, ...], models_dir: Path, overrides: list[str] = ()) -> list[dict]:
    return [make_model(w, models_dir, overrides) for w in which]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", help=f"models to make, of {sorted(MODES)} (default: both)")
    args = parser.parse_args(argv)
    for w in args.which:
        if w not in MODES:
            parser.error(f"unknown model {w!r}; choose from {sorted(MODES)}")
    models_dir = Path(__file__).resolve().parents[2] / "models"
    for summary in make_models(tuple(args.which) or tuple(MODES), models_dir):
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
