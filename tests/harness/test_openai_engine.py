"""The `openai` engine against a real vLLM OpenAI-compatible server, started here on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.vllm
START_TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, trained_tiny_model):
    """(base_url, model_dir): one server per module; always terminated."""
    import httpx
    from test_engines import UNITS

    model = trained_tiny_model(UNITS)  # the same model as test_engines (trained once per session)
    port = _free_port()
    log = (tmp_path_factory.mktemp("server") / "server.log").open("w")
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--host", "127.0.0.1",
           "--port", str(port), "--dtype", "float32", "--enforce-eager", "--gpu-memory-utilization", "0.3",
           "--max-model-len", "2048"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited with {proc.returncode}; see {log.name}")
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vLLM server not ready after {START_TIMEOUT_S} s; see {log.name}")
            time.sleep(2)
        yield base, model
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def test_openai_engine_runs_the_rollout(server):
    from test_engines import HEAD, check_requests, roll

    from harness.engines import load_engine

    base, model = server
    engine = load_engine("openai", model=str(model), base_url=base, http_retries=1)
    rec, log = roll(engine)
    assert rec.end_reason == "eos" and rec.error is None, rec.error
    assert rec.metrics.num_blocks == 1 and rec.metrics.threads_per_block == [2], rec.response
    assert rec.response.startswith(HEAD + "\n<Thread>\n1:")
    check_requests(engine.tokenizer, rec, log)
    # the stop tag comes back as its id, in text and ids
    seq = log[0][1]
    assert seq.stop_reason == "stop" and seq.text.endswith("</Outlines>")
    assert seq.token_ids[-1] == engine.tokenizer.convert_tokens_to_ids("</Outlines>")


def test_openai_engine_error_is_recorded_not_raised(server):
    from harness.engines import load_engine
    from harness.rollout import RolloutConfig, rollout_sync

    _, model = server
    dead = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    engine = load_engine("openai", model=str(model), base_url=dead, http_retries=0, request_timeout_s=5)
    (rec,) = rollout_sync(engine, [[1, 2, 3]], RolloutConfig(retries=1, retry_backoff_s=0.0))
    assert rec.end_reason == "error" and "ConnectError" in rec.error


def test_openai_engine_returns_the_models_logprobs(server):
    from test_engine_logprobs import forward_logprobs
    from test_engines import PROMPT

    from harness.engines import load_engine
    from harness.engines.base import Request

    base, model = server
    engine = load_engine("openai", model=str(model), base_url=base, http_retries=1)
    ids = engine.tokenizer.encode(PROMPT, add_special_tokens=False)
    out = asyncio.run(engine.generate(Request(ids, max_tokens=12, temperature=0.0, logprobs=True)))
    plain = asyncio.run(engine.generate(Request(ids, max_tokens=4, temperature=0.0)))
    assert plain.logprobs is None
    assert len(out.logprobs) == len(out.token_ids) == 12
    want = forward_logprobs(model, ids, out.token_ids)
    assert max(abs(a - b) for a, b in zip(out.logprobs, want, strict=True)) < 1e-3, (out.logprobs, want)


def test_datagen_pipeline_stage1_on_vllm_records_why_each_trace_is_dropped(
    server, tmp_path, shared_data, capsys
):
    """Issue 15's plumbing run: `datagen pipeline` (stage 1 only) against this vLLM OpenAI server. The tiny
    model's replies are no use as rewrites; every trace must still end kept or dropped with its reason."""
    import json

    import yaml

    from threadweaver.cli import main

    base, model = server
    rows = [json.loads(x) for x in (shared_data / "math500.jsonl").read_text().splitlines()]
    # step 1's prompt is about 1,540 characters (one token each) plus the problem and the trace
    short = [r for r in rows if len(r["problem"] + r["solution"]) < 400 and r["solution"].count("\n") >= 2][
        :3
    ]
    long = next(r for r in rows if len(r["solution"]) > 2500)  # with the prompt, over --max-model-len 2048
    traces = tmp_path / "math500_solutions.jsonl"
    traces.write_text("".join(json.dumps(r) + "\n" for r in [*short, long]))
    config = tmp_path / "pipeline.yaml"
    config.write_text(yaml.safe_dump({
        "work_dir": str(tmp_path / "work"), "traces": str(traces), "stages": ["stage1"],
        "stage1": {"base_url": base, "model": str(model), "max_tokens": 48, "retries": 1, "backoff_s": 0.1,
                   "concurrency": 2, "timeout_s": 120},
    }))  # fmt: skip
    assert main(["datagen", "pipeline", "--config", str(config), "--json"]) == 0
    s1 = json.loads(capsys.readouterr().out.splitlines()[-1])["stage1"]
    work = tmp_path / "work" / "stage1.work"
    dropped = {d["trace_id"]: d for d in map(json.loads, (work / "dropped.jsonl").read_text().splitlines())}
    assert s1["in"] == 4 and s1["kept"] + len(dropped) == 4
    assert sum(n for by_reason in s1["dropped"].values() for n in by_reason.values()) == len(dropped)
    assert all(d["step"] in (1, 2, 3, 4, 5) and d["reason"] for d in dropped.values())
    # the over-long trace: vLLM refuses the request (HTTP 400, not retried), recorded as an LLM error
    assert dropped[f"{long['id']}#0"]["reason"].startswith("llm_error: HTTP 400")
    journal = [json.loads(x) for x in (work / "step1_structure.jsonl").read_text().splitlines()]
    answered = [e for e in journal if e["error"] is None]
    assert len(journal) == 4 and len(answered) == 3
    # the tiny model's replies are not the JSON step 1 asks for: dropped there, each with its reason
    others = [d for tid, d in dropped.items() if tid != f"{long['id']}#0"]
    assert [d["step"] for d in others] == [1, 1, 1]
    assert all(d["reason"].startswith(("truncated", "malformed")) for d in others), others
    assert all(e["response_id"] and e["prompt_tokens"] > 0 and e["completion_tokens"] > 0 for e in answered)
