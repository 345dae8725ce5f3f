"""The rollout on real engines (hf, vllm) with a tiny Qwen3 taught one parallel trajectory.

A random tiny model rarely writes `<Outline>N:`, so the model here is the conftest tiny model trained
on the rollout units of ONE trajectory (spec section 3: each request/completion unit the rollout issues,
loss on completions only) until greedy decoding reproduces every unit (conftest.train_until_greedy;
the fixture errors otherwise). Greedy decoding then reproduces a block with two threads, which makes
the checks below meaningful: thread prompts = context + header, the joined context is what the next
request receives, and hf and vllm agree.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from harness.formats.threadweaver import ThreadWeaverFormat, outline_numbers
from harness.rollout import RolloutConfig, run_rollouts

TW = ThreadWeaverFormat()


def thread_request_suffix(n: str) -> str:
    return "".join(TW.branch_header(n, 1, joined=False))


def join_block(threads, join: str) -> str:
    return TW.join_text(threads, join)

PROMPT = "<|im_start|>user\nQ: 2+3?<|im_end|>\n<|im_start|>assistant\n"
HEAD = "<think>\n<Parallel>\n<Outlines>\n<Outline>1: add</Outline>\n<Outline>2: check</Outline>\n</Outlines>"
THREADS = [("1", " 2+3=5</Thread>"), ("2", " 5-3=2 ok</Thread>")]
JOINED = PROMPT + HEAD + join_block(THREADS, "model")
UNITS = [  # (prompt, completion): the units the rollout issues for this trajectory (join "model")
    (PROMPT, HEAD),
    *((PROMPT + HEAD + thread_request_suffix(n), t) for n, t in THREADS),
    (JOINED, "</Parallel>\nso \\boxed{5}</think>\n\\boxed{5}<|im_end|>"),
]
CONFIG = RolloutConfig(temperature=0.0, budget_tokens=400, max_steps=4)


class Recording:
    """Wraps an engine and logs (prompt ids, completion) of every request in submission order."""

    def __init__(self, engine) -> None:
        self.engine, self.tokenizer, self.log = engine, engine.tokenizer, []

    async def generate(self, request):
        entry = [list(request.prompt_ids), None]
        self.log.append(entry)
        entry[1] = await self.engine.generate(request)
        return entry[1]

    def close(self) -> None:
        pass


def roll(engine):
    """One greedy rollout of PROMPT; returns (record, request log)."""
    rec_engine = Recording(engine)
    ids = engine.tokenizer.encode(PROMPT, add_special_tokens=False)
    (rec,) = asyncio.run(run_rollouts(rec_engine, [ids], CONFIG))
    return rec, rec_engine.log


def check_requests(tok, rec, log) -> None:
    """Replay the request log: every prompt must be exactly what spec section 2 says."""
    enc = lambda s: tok.encode(s, add_special_tokens=False)  # noqa: E731
    ctx = enc(PROMPT)
    k = 0
    while k < len(log):
        prompt, c = log[k]
        assert prompt == ctx, f"request {k}: sequential prompt is not the joined context"
        ctx = ctx + c.token_ids
        k += 1
        if c.stop_reason != "stop":
            break
        numbers = outline_numbers(c.text)
        threads = log[k : k + len(numbers)]
        for n, (p, _) in zip(numbers, threads, strict=True):
            assert p == ctx + enc(thread_request_suffix(n)), f"thread {n}: prompt is not context + header"
        # the join is tokenised piece by piece; with this tokenizer that equals the joined text
        ctx = ctx + enc(join_block([(n, t.text) for n, (_, t) in zip(numbers, threads, strict=True)], "model"))
        k += len(numbers)
    assert rec.response_ids == ctx[len(enc(PROMPT)) :]


def structure(rec) -> tuple:
    return (rec.metrics.num_blocks, rec.metrics.threads_per_block, [u.kind for u in rec.units], rec.end_reason)


@pytest.fixture(scope="module")
def parallel_model(trained_tiny_model) -> Path:
    return trained_tiny_model(UNITS)  # conftest: trained once per session until greedy reproduces UNITS


@pytest.fixture(scope="module")
def hf_run(parallel_model):
    from harness.engines import load_engine

    engine = load_engine("hf", model=str(parallel_model))
    try:
        rec, log = roll(engine)
    finally:
        engine.close()
    return engine.tokenizer, rec, log


def test_hf_rollout_prompts_and_join(hf_run):
    tok, rec, log = hf_run
    assert rec.metrics.num_blocks >= 1 and rec.metrics.threads_per_block[0] == 2, rec.response
    check_requests(tok, rec, log)
    assert rec.response.startswith(HEAD + "\n<Thread>\n1:")


@pytest.mark.vllm
def test_vllm_rollout_agrees_with_hf(parallel_model, hf_run):
    from harness.engines import load_engine

    tok, hf_rec, _ = hf_run
    engine = load_engine("vllm", model=str(parallel_model), dtype="float32", enforce_eager=True,
                         max_model_len=2048)  # fmt: skip
    try:
        rec, log = roll(engine)
        rec2, _ = roll(engine)  # a second event loop on the same engine
    finally:
        engine.close()
    check_requests(tok, rec, log)
    assert structure(rec) == structure(hf_rec)
    assert rec.response_ids == hf_rec.response_ids == rec2.response_ids
