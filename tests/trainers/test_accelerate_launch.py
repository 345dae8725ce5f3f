"""Both trainers under `accelerate launch` with 2 CPU processes (DDP over gloo) train exactly like one
process: SFT with 1 packed row per process against 2 rows in one process (the step's token mean over
both ranks: trainers/sft/trainer.py), RL with the step's prompts dealt out to the ranks
(trainers/rl/distributed.py). The first step's loss and gradient norm agree within 1e-5, the weights
after the update agree, and each 2-process checkpoint loads in the hf engine.

Cost: one `accelerate launch` (tests/trainers/ddp_driver.py runs SFT then RL in the same 2 processes)
running in the background while the 1-process runs train in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]
ACCELERATE = REPO_ROOT / "docs" / "accelerate"  # the documented configs (docs/distributed-training.md)
TINY_INIT = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 1,
             "num_key_value_heads": 1, "head_dim": 64, "max_position_embeddings": 1024}  # fmt: skip


def _configs(tmp: Path) -> dict[str, Path]:
    """SFT (from scratch; rows of unequal token counts, so a mean of per-rank means would differ) and RL
    (from the shipped toy model at temperature 1.6, so a group holds right and wrong answers)."""
    from threadweaver.toy_models import write_data

    par, seq = write_data("parallel", tmp / "par.jsonl", limit=2), write_data("sequential", tmp / "seq.jsonl", limit=4)
    out = {}
    for name, rows_per_process in (("one", 2), ("two", 1)):
        sft = {"dataset_path": [str(par), str(seq)], "output_dir": str(tmp / f"sft-{name}"), "model_init": TINY_INIT,
               "max_tokens": 700, "mask": "dense", "learning_rate": 3e-3, "warmup_steps": 0, "lr_scheduler_type": "constant",
               "max_steps": 2, "per_device_train_batch_size": rows_per_process, "logging_steps": 1, "use_cpu": True,
               "num_threads": 1, "deterministic": True, "disable_tqdm": True, "report_to": "none"}  # fmt: skip
        rl = {"model": str(REPO_ROOT / "models" / "toy-threadweaver"), "output_dir": str(tmp / f"rl-{name}"),
              "dataset_path": [str(par), str(seq)], "steps": 1, "prompts_per_step": 2, "rollouts_per_prompt": 2,
              "learning_rate": 1.0e-3, "rollout": {"format": "threadweaver", "join": "model", "budget_tokens": 300,
              "temperature": 1.6}, "max_batch_size": 1, "kl_monitor": False, "plot": False, "num_threads": 1,
              "device": "cpu", "seed": 0}  # fmt: skip
        for kind, data in (("sft", sft), ("rl", rl)):
            (tmp / f"{kind}-{name}.yaml").write_text(yaml.safe_dump(data))
            out[f"{kind}-{name}"] = tmp / f"{kind}-{name}.yaml"
    return out


def _launch(cfg: dict[str, Path], log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ACCELERATE / "ddp_cpu.yaml"),
           "--main_process_port", "0", "--dynamo_backend", "no",
           str(REPO_ROOT / "tests" / "trainers" / "ddp_driver.py"), str(cfg["sft-two"]), str(cfg["rl-two"])]  # fmt: skip
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)


def _log(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _max_weight_diff(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from threadweaver.cli import main

    tmp = tmp_path_factory.mktemp("ddp")
    cfg = _configs(tmp)
    proc = _launch(cfg, tmp / "launch.log")
    try:  # the 1-process runs meanwhile, here
        assert main(["train", "sft", "--config", str(cfg["sft-one"])]) == 0
        assert main(["train", "rl", "--config", str(cfg["rl-one"])]) == 0
        code = proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, (tmp / "launch.log").read_text()[-4000:]
    return tmp


def test_sft_two_processes_train_like_one(runs):
    one, two = _log(runs / "sft-one" / "loss_log.jsonl"), _log(runs / "sft-two" / "loss_log.jsonl")
    steps = [(a, b) for a, b in zip(one, two, strict=True) if "loss" in a]
    assert len(steps) == 2 and all(a["step"] == b["step"] for a, b in steps)
    for a, b in steps:  # step 2's loss is after one update: the gradients agreed too
        assert abs(a["loss"] - b["loss"]) < 1e-5 and abs(a["grad_norm"] - b["grad_norm"]) < 1e-5
    assert _max_weight_diff(runs / "sft-one", runs / "sft-two") < 1e-5


def test_rl_two_processes_train_like_one(runs):
    (a,), (b,) = _log(runs / "rl-one" / "rl_log.jsonl"), _log(runs / "rl-two" / "rl_log.jsonl")
    assert (a["processes"], b["processes"]) == (1, 2)
    assert b["advantage_abs_mean"] > 0 and b["grad_norm"] > 0  # a real update, not a zero gradient
    for key in ("trained_tokens", "trajectories", "reward_mean", "accuracy", "critical_path_tokens", "packed_tokens"):
        assert a[key] == b[key], key  # the same trajectories: seeds follow the step position, not the rank
    assert abs(a["loss"] - b["loss"]) < 1e-5 and abs(a["grad_norm"] - b["grad_norm"]) < 1e-5
    assert _max_weight_diff(runs / "rl-one", runs / "rl-two") < 1e-5


@pytest.mark.parametrize("which", ["sft-two", "rl-two"])
def test_two_process_checkpoints_load_in_the_hf_engine(runs, which):
    import asyncio

    from harness.engines.base import Request
    from harness.engines.hf import HFEngine

    engine = HFEngine(str(runs / which))
    ids = engine.tokenizer.encode("<|im_start|>user\nhi<|im_end|>\n", add_special_tokens=False)
    out = asyncio.run(engine.generate(Request(ids, max_tokens=8, temperature=0.0)))
    assert out.error is None and out.stop_reason in ("eos", "length", "stop")
    assert len(out.token_ids) + (out.stop_reason == "eos") >= 1  # it generated (EOS is dropped from token_ids)


@pytest.mark.parametrize(("name", "kind"), [("fsdp2", "FSDP"), ("deepspeed_zero3", "DEEPSPEED"), ("ddp_cpu", "MULTI_GPU")])
def test_documented_gpu_configs_parse_in_accelerate(name, kind):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(ACCELERATE / f"{name}.yaml"))
    assert config.distributed_type.value == kind
    if kind == "FSDP":
        assert config.fsdp_config["fsdp_version"] == 2 and config.fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == "Qwen3DecoderLayer"
    if kind == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] == 3
