"""Completion.logprobs: the raw model log probability of each returned token, checked against a manual
forward pass of the tiny model (hf here; vllm in test_vllm_engine.py; openai against a server in
test_openai_engine.py)."""

from __future__ import annotations

import asyncio

import pytest

from harness.engines.base import Request
from harness.engines.openai import _token_logprobs


def forward_logprobs(model_dir, prompt_ids: list[int], token_ids: list[int]) -> list[float]:
    """log-softmax of the model's logits (float32, one unpadded row) at each generated token."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids + token_ids])).logits[0].float()
    table = torch.log_softmax(logits, dim=-1)
    return [table[len(prompt_ids) - 1 + k, tok].item() for k, tok in enumerate(token_ids)]


async def _gather(engine, requests):
    return await asyncio.gather(*(engine.generate(r) for r in requests))


def test_hf_logprobs_match_a_forward_pass(tiny_model_dir):
    from harness.engines.hf import HFEngine

    engine = HFEngine(str(tiny_model_dir), max_batch_size=8)
    greedy = [  # one batch: left padding (prompt lengths 7 and 2) and rows cut at different lengths
        Request([5, 6, 7, 8, 9, 10, 11], max_tokens=6, temperature=0.0, ignore_eos=True, logprobs=True),
        Request([12, 13], max_tokens=3, temperature=0.0, ignore_eos=True, logprobs=True),
        Request([14, 15, 16], max_tokens=4, temperature=0.0, ignore_eos=True),  # not asked: None
    ]
    # sampled with top-p: the returned values are still the raw (unprocessed) log probabilities
    sampled = [Request([20, 21, 22], max_tokens=5, temperature=0.7, top_p=0.5, seed=1, ignore_eos=True, logprobs=True)]
    try:
        outs = asyncio.run(_gather(engine, greedy)) + asyncio.run(_gather(engine, sampled))
    finally:
        engine.close()
    assert outs[2].logprobs is None
    for req, out in zip(greedy[:2] + sampled, outs[:2] + outs[3:], strict=True):
        assert len(out.token_ids) == req.max_tokens and len(out.logprobs) == len(out.token_ids)
        want = forward_logprobs(tiny_model_dir, req.prompt_ids, out.token_ids)
        assert max(abs(a - b) for a, b in zip(out.logprobs, want, strict=True)) < 1e-4, (out.logprobs, want)


def test_hf_logprobs_follow_the_cut_at_a_stop_token(tiny_model_dir):
    from harness.engines.hf import HFEngine

    engine = HFEngine(str(tiny_model_dir))
    try:
        free = asyncio.run(engine.generate(Request([5, 6, 7], max_tokens=6, temperature=0.0, ignore_eos=True,
                                                   logprobs=True)))  # fmt: skip
        stop = free.token_ids[2]
        cut = free.token_ids.index(stop) + 1
        out = asyncio.run(engine.generate(Request([5, 6, 7], max_tokens=6, temperature=0.0, ignore_eos=True,
                                                  stop_token_ids=[stop], logprobs=True)))  # fmt: skip
    finally:
        engine.close()
    assert out.stop_reason == "stop" and out.token_ids == free.token_ids[:cut]
    assert out.logprobs == pytest.approx(free.logprobs[:cut], abs=1e-6)


def test_openai_logprobs_are_kept_only_when_they_line_up_with_the_ids():
    choice = {"logprobs": {"tokens": ["a", "b"], "token_logprobs": [-0.5, -1.25]}}
    assert _token_logprobs(choice, 2) == [-0.5, -1.25]
    assert _token_logprobs(choice, 3) is None  # re-tokenised ids of another length
    assert _token_logprobs({"logprobs": None}, 0) is None
    assert _token_logprobs({"logprobs": {"token_logprobs": [None, -1.0]}}, 2) is None
