"""Re-create the shipped toy models models/toy-threadweaver and models/toy-sequential (issue 5), and the
toy task in the peer formats, models/toy-npr and models/toy-multiverse (issue 16).

    threadweaver toy train [--which threadweaver|sequential|both|npr|multiverse|hybrid]

toy-hybrid (issue 14, the RL start) is trained on the hybrid rendering (tasks/toy.py hybrid_mode: some
problems parallel, some sequential, deterministic per problem), with fewer examples (its config).

Each model: the toy task's train split rendered one way (tasks/toy.py), as sample records, then trie-packed
SFT with trainers/toy/configs/toy-<name>.yaml plus the task's step tokens (STEP_TOKENS), each model
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

import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

import trainers

CONFIG_DIR = Path(trainers.__file__).resolve().parent / "toy" / "configs"  # the SFT configs of the toy models
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
MODES = {"threadweaver": ("parallel", "threadweaver"), "sequential": ("sequential", "threadweaver"),
         "npr": ("parallel", "npr"), "multiverse": ("parallel", "multiverse"),
         "hybrid": ("hybrid", "threadweaver")}  # model -> (rendering, format)


def write_data(mode: str, out: Path, limit: int | None = None, fmt: str = "threadweaver") -> Path:
    """The train split rendered in `mode` (parallel ones in format `fmt`) as sample records (JSONL)."""
    from threadweaver_tasks.toy import make_split, to_record

    lines = [to_record(p, mode, fmt).to_json() for p in make_split("train", limit)]
    out.write_text("\n".join(lines) + "\n")
    return out


def make_model(which: str, models_dir: Path, overrides: list[str] = ()) -> dict:
    """Train one toy model (`which` in MODES) into models_dir/toy-<which>; return the training summary."""
    from threadweaver_tasks.toy import STEP_TOKENS

    from harness.tokenizer import check_extra_tokens
    from trainers.sft.config import load_sft_config
    from trainers.sft.trainer import train_sft

    if which not in MODES:
        raise ValueError(f"which must be one of {sorted(MODES)}, got {which!r}")
    final = models_dir / f"toy-{which}"
    with tempfile.TemporaryDirectory(prefix=f"toy-{which}-") as tmp:
        tmp = Path(tmp)
        mode, fmt = MODES[which]
        data = write_data(mode, tmp / f"toy-train-{mode}.jsonl", fmt=fmt)
        config = load_sft_config(
            CONFIG_DIR / f"toy-{which}.yaml",
            [f"dataset_path=[{data}]", f"output_dir={tmp / 'out'}", *overrides],
        )
        if config.model_init is not None:  # from scratch: the task's step tokens, where the config lacks them
            missing = [t for t in STEP_TOKENS if t not in config.extra_tokens]
            config.extra_tokens = check_extra_tokens([*config.extra_tokens, *missing])
        elif not Path(config.model).is_absolute():  # fine-tuning a sibling toy model (toy-hybrid)
            config.model = str(models_dir / config.model)
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
