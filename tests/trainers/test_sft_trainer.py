"""`threadweaver train sft`: config errors, and a short real toy training run (loss falls, checkpoint loads
in transformers and vLLM)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import InputError
from threadweaver.cli import main
from threadweaver.commands.train import load_config

TINY_INIT = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 1,
    "num_key_value_heads": 1,
    "head_dim": 64,
    "max_position_embeddings": 1024,
}


def _write_yaml(path: Path, data: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data))
    return path


def test_unknown_key_is_refused_with_suggestion(tmp_path, capsys):
    cfg = _write_yaml(
        tmp_path / "sft.yaml",
        {"dataset_path": ["d.jsonl"], "model": "m", "output_dir": "o", "lerning_rate": 1e-4},
    )
    assert main(["train", "sft", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {cfg}: unknown key 'lerning_rate'; did you mean 'learning_rate'?"


def test_bad_values_are_refused(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    cfg = _write_yaml(
        tmp_path / "c.yaml", {"dataset_path": ["d"], "model": "m", "output_dir": "o", "join": "both"}
    )
    with pytest.raises(InputError, match="max_tokens must be >= 16, got 3"):
        load_config(cfg, ["join=model", "max_tokens=3"])
    with pytest.raises(InputError, match="extra_tokens needs model_init"):
        load_config(cfg, ["join=model", "extra_tokens=[ab]"])
    with pytest.raises(InputError, match="extra token must be a string of 2\\+ printable characters, got 'x'"):
        load_config(cfg, ["join=model", "model=", "model_init={hidden_size: 64}", "extra_tokens=[x]"])
    with pytest.raises(InputError, match="tag_formats must name formats among .*got \\['nrp'\\]"):
        load_config(cfg, ["join=model", "tag_formats=[nrp]"])
    assert load_config(cfg, ["join=model", "tag_formats=[threadweaver, npr]"]).tag_formats == ["threadweaver", "npr"]


def test_paper_defaults(tmp_path):
    cfg = load_config(
        _write_yaml(tmp_path / "c.yaml", {"dataset_path": ["d"], "model": "m", "output_dir": "o"})
    )
    assert (cfg.learning_rate, cfg.adam_beta1, cfg.adam_beta2, cfg.weight_decay) == (1e-5, 0.9, 0.95, 0.01)
    assert (cfg.warmup_steps, str(cfg.lr_scheduler_type.value), cfg.num_train_epochs) == (0.05, "cosine", 8.0)


def _short_run(tmp: Path) -> Path:
    """A short real run: 16 toy trajectories (parallel rendering), 3 epochs, a tiny from-scratch Qwen3."""
    from threadweaver.toy_models import write_data

    data = write_data("parallel", tmp / "train.jsonl", limit=16)
    cfg = _write_yaml(
        tmp / "sft.yaml",
        {
            "dataset_path": [str(data)],
            "output_dir": str(tmp / "out"),
            "model_init": TINY_INIT,
            "extra_tokens": ["sum:", "\\boxed{"],
            "max_tokens": 1024,
            "mask": "dense",
            "learning_rate": 3e-3,
            "num_train_epochs": 3,
            "per_device_train_batch_size": 4,
            "logging_steps": 1,
            "use_cpu": True,
            "num_threads": 1,
            "deterministic": True,
            "disable_tqdm": True,
            "report_to": "none",
        },
    )
    assert main(["train", "sft", "--config", str(cfg)]) == 0
    return tmp / "out"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return _short_run(tmp_path_factory.mktemp("sft"))


def test_rerun_gives_the_same_weights_bit_for_bit(trained, tmp_path):
    """Fixed seeds, deterministic algorithms, one thread: `threadweaver toy train` relies on this."""
    import hashlib

    again = _short_run(tmp_path)
    digest = [hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest() for d in (trained, again)]
    assert digest[0] == digest[1]


def test_extra_tokens_are_single_ids_in_the_saved_tokenizer(trained):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(trained))
    ids = tok.encode("sum: a:3\n\\boxed{7}", add_special_tokens=False)
    assert [tok.decode([i]) for i in ids] == ["sum:", " ", "a", ":", "3", "\n", "\\boxed{", "7", "}"]


def test_short_run_loss_falls(trained):
    log = [json.loads(line) for line in (trained / "loss_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert len(losses) >= 6
    assert sum(losses[-2:]) / 2 < 0.8 * sum(losses[:2]) / 2


def test_checkpoint_loads_in_transformers(trained):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.formats.threadweaver import FORMAT_TAGS
    from harness.tokens import single_token_ids

    tok = AutoTokenizer.from_pretrained(trained)
    model = AutoModelForCausalLM.from_pretrained(trained)
    assert len(single_token_ids(tok, FORMAT_TAGS)) == 8  # the format tags are single ids in the saved tokenizer
    ids = tok("<|im_start|>user\nhi<|im_end|>\n", return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > ids.shape[1]


@pytest.mark.vllm
def test_checkpoint_loads_in_vllm(trained):
    pytest.importorskip("vllm")
    from vllm import LLM, SamplingParams

    llm = LLM(
        model=str(trained),
        dtype="float32",
        enforce_eager=True,
        kv_cache_memory_bytes=1 << 28,  # a fixed size: no free-RAM check at start
        max_model_len=1024,
    )
    out = llm.generate(["<|im_start|>user\nhi<|im_end|>\n"], SamplingParams(max_tokens=8, temperature=0))
    assert len(out[0].outputs[0].token_ids) >= 1
