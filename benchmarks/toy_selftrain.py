"""Stage 2 (self-training) on the toy task (issue 15 acceptance): does SFT on an under-trained parallel
model's own correct, valid trajectories raise its held-out accuracy or activation?

    nice -n 10 .venv/bin/python benchmarks/toy_selftrain.py --work /tmp/toy-selftrain

Steps (each skipped when its output is already there, so a rerun resumes; WORK/log.txt has the commands):
1. an under-trained toy-threadweaver: the toy recipe (trainers/toy/configs/toy-threadweaver.yaml through
   threadweaver/toy_models.py) on only the first `--train-examples` train problems, into WORK/under
   (1,200 problems, 150 steps: 1% held-out accuracy, too weak), then 1b: SFT from it on the gold renderings
   of the next `--more-examples` problems (800, 100 steps at `--more-lr`), into WORK/under-more;
2. its held-out figures: the real `lm_eval --model threadweaver` CLI, vllm engine, greedy, the first
   `--eval-limit` tw_toy test problems (threadweaver/commands/toy.py, as `threadweaver toy demo` runs it);
3. `threadweaver datagen pipeline` with stages [stage2, sft2] (WORK/pipeline.yaml): that model's parallel
   rollouts (vllm, `--samples` per problem, temperature `--temperature`) over `--problems` train problems
   it never saw, only correct and valid trajectories kept, then SFT from that model on them
   (`--sft-epochs`, learning rate `--sft-lr`);
4. the figures of step 2 for WORK/pipeline/sft2.
Prints one JSON object (also WORK/result.json): both models' accuracy, activation_ratio, format_error_rate,
critical_path_tokens, and the pipeline summary (what stage 2 kept and why the rest was dropped).
Stage 2 sets no per-request seed: vLLM's CPU sampler crashed on seeded requests here ("CPU Generator does
not use offset"; the rollout recorded every sample as an engine error).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIGURES = (
    "acc",
    "activation_ratio",
    "format_error_rate",
    "truncation_rate",
    "critical_path_tokens",
    "total_tokens",
)
VLLM_CPU = {"max_model_len": 2048, "enforce_eager": True}


def log(work: Path, line: str) -> None:
    print(line, file=sys.stderr, flush=True)
    with open(work / "log.txt", "a") as f:
        f.write(line + "\n")


def train_under(work: Path, examples: int) -> Path:
    from threadweaver.toy_models import make_model

    out = work / "under"
    if not (out / "toy-threadweaver" / "TRAINING.json").is_file():
        log(work, f"step 1: make_model('threadweaver', {out}, ['max_examples={examples}'])")
        make_model("threadweaver", out, [f"max_examples={examples}"])
    return out / "toy-threadweaver"


def train_more(work: Path, under: Path, args) -> Path:
    """Step 1b: SFT from `under` on the gold parallel renderings of the next `--more-examples` train
    problems (the toy recipe's settings, learning rate `--more-lr`): tunes the start into the 40-80% band."""
    import yaml
    from threadweaver_tasks.toy import make_split, to_record

    from trainers.sft.config import load_sft_config
    from trainers.sft.trainer import train_sft

    out = work / "under-more"
    if args.more_examples == 0:
        return under
    if (out / "TRAINING.json").is_file():
        return out
    data = work / "more.jsonl"
    picked = make_split("train", args.train_examples + args.more_examples)[args.train_examples :]
    data.write_text("".join(to_record(p, "parallel").to_json() + "\n" for p in picked))
    config = work / "more.yaml"
    config.write_text(yaml.safe_dump(sft_section(under, args.more_lr, 1.0) | {"dataset_path": [str(data)],
                                                                          "output_dir": str(out)}))  # fmt: skip
    log(work, f"step 1b: threadweaver train sft --config {config}")
    summary = train_sft(load_sft_config(config))
    (out / "TRAINING.json").write_text(json.dumps(summary, indent=1) + "\n")
    return out


def sft_section(model: Path, lr: float, epochs: float) -> dict:
    """The toy recipe's SFT settings (trainers/toy/configs/toy-threadweaver.yaml) for fine-tuning `model`."""
    import yaml

    recipe = yaml.safe_load((REPO / "trainers/toy/configs/toy-threadweaver.yaml").read_text())
    drop = ("dataset_path", "output_dir", "model_init", "extra_tokens", "max_examples", "warmup_steps")
    sft = {k: v for k, v in recipe.items() if k not in drop}
    return sft | {"model": str(model), "learning_rate": lr, "num_train_epochs": epochs, "logging_steps": 5}


def evaluate(work: Path, model: Path, name: str, limit: int) -> dict:
    from threadweaver.commands.toy import _lm_eval

    cached = work / f"eval-{name}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    log(
        work,
        f"eval {name}: lm_eval --model threadweaver ({model}, engine=vllm) --tasks tw_toy --limit {limit}",
    )
    row = _lm_eval(model, True, "vllm", limit, work / f"lm_eval-{name}")
    row = {k: row[k] for k in FIGURES if k in row}
    cached.write_text(json.dumps(row, indent=1) + "\n")
    return row


def self_train(work: Path, under: Path, args) -> dict:
    import yaml
    from threadweaver_tasks.toy import GRADING, make_split

    problems = work / "stage2_problems.jsonl"
    seen = args.train_examples + args.more_examples  # stage 2's problems: unseen in steps 1 and 1b
    picked = make_split("train", seen + args.problems)[seen:]
    problems.write_text("".join(json.dumps({"id": p.problem_id, "problem": p.question, "answer": p.answer}) + "\n"
                                for p in picked))  # fmt: skip
    sft = sft_section(under, args.sft_lr, args.sft_epochs)
    config = {
        "work_dir": str(work / "pipeline"), "problems": str(problems), "stages": ["stage2", "sft2"],
        "stage2": {"engine": "vllm", "model": str(under), "samples": args.samples, "temperature": args.temperature,
                   "grading": GRADING, "budget_tokens": 1024, **VLLM_CPU},
        "sft2": sft,
    }  # fmt: skip
    path = work / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "threadweaver.cli", "datagen", "pipeline", "--config", str(path), "--json"]
    log(work, "step 3: " + " ".join(cmd))
    proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(
            f"the pipeline exited with {proc.returncode}; see {work / 'pipeline' / 'summary.json'}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", required=True, help="work folder (reruns resume here)")
    p.add_argument(
        "--train-examples", type=int, default=1200, help="train problems of the under-trained model"
    )
    p.add_argument("--more-examples", type=int, default=800, help="step 1b's train problems (0: no step 1b)")
    p.add_argument("--more-lr", type=float, default=2e-3, help="step 1b's learning rate")
    p.add_argument("--problems", type=int, default=100, help="unseen train problems for stage 2")
    p.add_argument("--samples", type=int, default=4, help="stage-2 samples per problem")
    p.add_argument("--temperature", type=float, default=1.0, help="stage-2 sampling temperature")
    p.add_argument("--sft-epochs", type=float, default=1.0)
    p.add_argument("--sft-lr", type=float, default=1e-3)
    p.add_argument("--eval-limit", type=int, default=200, help="held-out tw_toy problems")
    args = p.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    under = train_more(work, train_under(work, args.train_examples), args)
    before = evaluate(work, under, under.name, args.eval_limit)
    log(work, f"under-trained: {before}")
    summary = self_train(work, under, args)
    after = evaluate(work, work / "pipeline" / "sft2", "selftrained", args.eval_limit)
    result = {"settings": vars(args), "under_trained": before, "self_trained": after, "pipeline": summary}
    (work / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
