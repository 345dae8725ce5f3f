"""Shared fixtures: the shared offline data and a tiny random Qwen3-architecture model.

The tiny model is made here (no hub): the project's character tokenizer (format tags are single special
ids) and a randomly initialised Qwen3 with head_dim 64, the smallest that vLLM's CPU backend accepts.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("THREADWEAVER_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def make_tiny_model(out_dir: Path, *, seed: int = 0, layers: int = 2, tie: bool = True) -> Path:
    """Save a random tiny Qwen3 + the char tokenizer to `out_dir`; return it."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    from harness.tokenizer import build_char_tokenizer

    tokenizer = build_char_tokenizer(out_dir)
    config = Qwen3Config(
        vocab_size=128,  # >= len(tokenizer); a multiple of 64
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=1,
        num_key_value_heads=1,
        head_dim=64,
        max_position_embeddings=8192,
        tie_word_embeddings=tie,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    model.save_pretrained(out_dir)
    GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id).save_pretrained(
        out_dir
    )
    return out_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen3 checkpoint with the char tokenizer, made once per test session."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny-qwen3"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The offline benchmark copies (../shared/data); tests that need them skip with a reason if absent."""
    if not (SHARED_DATA / "math500.jsonl").exists():
        pytest.skip(f"offline benchmark data not found at {SHARED_DATA} (set THREADWEAVER_SHARED_DATA)")
    return SHARED_DATA
