"""The vLLM adapter on a CPU machine: it starts with default memory arguments while another process holds
4 GiB, its log probabilities are the model's, and a start + close is quiet (stdout holds results only,
no traceback, no logging error at exit) and leaves no IPC socket behind."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from test_engine_logprobs import forward_logprobs

from harness.engines.base import Request

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
REPO_ROOT = Path(__file__).resolve().parents[2]
HOLD_4_GIB = "import numpy, sys; a = numpy.ones((4 << 30) // 8); print('held', flush=True); sys.stdin.read()"


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def cpu_engine(tiny_model_dir):
    """(engine, its log lines, the memory holder): started with default memory arguments while a
    subprocess holds 4 GiB (numpy.ones writes every page)."""
    from vllm.platforms import current_platform

    from harness.engines.vllm import VLLMEngine

    if not current_platform.is_cpu():
        pytest.skip("the KV cache sizing applies on the CPU platform only")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_4_GIB], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    adapter_log, records = logging.getLogger("harness.engines.vllm"), Records()
    level = adapter_log.level
    adapter_log.addHandler(records)
    adapter_log.setLevel(logging.INFO)
    try:
        assert holder.stdout.readline() == b"held\n"
        engine = VLLMEngine(str(tiny_model_dir), dtype="float32", enforce_eager=True)
        try:
            yield engine, records.lines, holder
        finally:
            engine.close()
    finally:
        adapter_log.removeHandler(records)
        adapter_log.setLevel(level)
        holder.kill()
        holder.wait()


def test_starts_with_default_memory_arguments_while_4_gib_are_held(cpu_engine):
    engine, lines, holder = cpu_engine
    out = asyncio.run(engine.generate(Request([5, 6, 7], max_tokens=4, temperature=0.0, ignore_eos=True)))
    assert holder.poll() is None, "the memory holder exited before the engine ran"
    assert len(out.token_ids) == 4 and out.stop_reason == "length" and out.logprobs is None
    sized = [line for line in lines if line.startswith("vllm on CPU: KV cache")]
    assert len(sized) == 1, lines  # logged once
    cache = engine.llm.vllm_config.cache_config
    model = engine.llm.vllm_config.model_config
    # tiny model: 2 layers x 1 KV head x head_dim 64 x (K and V) x 4 bytes = 1 KiB per token
    need = model.max_model_len * engine.llm.vllm_config.scheduler_config.max_num_seqs * 1024
    assert cache.kv_cache_memory_bytes == need, sized


def test_vllm_logprobs_match_a_forward_pass(cpu_engine, tiny_model_dir):
    engine, _, _ = cpu_engine
    requests = [
        Request([5, 6, 7, 8, 9], max_tokens=6, temperature=0.0, ignore_eos=True, logprobs=True),
        Request([20, 21, 22], max_tokens=5, temperature=0.7, top_p=0.5, seed=3, ignore_eos=True, logprobs=True),
    ]

    async def run():
        return await asyncio.gather(*(engine.generate(r) for r in requests))

    for req, out in zip(requests, asyncio.run(run()), strict=True):
        assert len(out.logprobs) == len(out.token_ids) == req.max_tokens
        want = forward_logprobs(tiny_model_dir, req.prompt_ids, out.token_ids)
        assert max(abs(a - b) for a, b in zip(out.logprobs, want, strict=True)) < 1e-3, (out.logprobs, want)


def test_repetition_penalty_reaches_vllm_and_hf_alike(cpu_engine, tiny_model_dir):
    """The per-request repetition penalty (NPR's 1.02 inside steps, formats.md 2.1) is honoured by both
    engines: greedy tokens agree between vLLM and transformers, and differ from those without it."""
    from harness.engines import load_engine

    engine, _, _ = cpu_engine
    hf = load_engine("hf", model=str(tiny_model_dir))
    prompt = [5, 6, 7, 5, 6, 7, 5, 6, 7]

    def run(e, penalty):
        req = Request(prompt, max_tokens=12, temperature=0.0, ignore_eos=True, repetition_penalty=penalty)
        return asyncio.run(e.generate(req)).token_ids

    try:
        plain, strong = run(engine, 1.0), run(engine, 3.0)
        assert strong == run(hf, 3.0) and plain == run(hf, 1.0)
        assert strong != plain
    finally:
        hf.close()


SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, tempfile

    from harness.engines.base import Request
    from harness.engines.vllm import VLLMEngine

    if __name__ == "__main__":
        # like pytest's capture: replaced streams while the engine runs, closed before the interpreter exits
        real = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        try:
            engine = VLLMEngine(sys.argv[1], dtype="float32", enforce_eager=True, max_model_len=512)
            req = Request([5, 6, 7], max_tokens=3, temperature=0.0, ignore_eos=True)
            out = asyncio.run(engine.generate(req))
            engine.close()
        finally:
            for captured, stream in zip((sys.stdout, sys.stderr), real):
                captured.seek(0)
                stream.write(captured.read())
                captured.close()
            sys.stdout, sys.stderr = real
        print("tokens", len(out.token_ids))
    """
)


def test_start_and_close_are_quiet_and_leave_no_socket(tiny_model_dir, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT, encoding="utf-8")
    tmp = Path(tempfile.mkdtemp(prefix="tw-test-", dir="/tmp"))  # short: socket paths have 107 characters
    env = {k: v for k, v in os.environ.items() if not k.startswith("VLLM_LOGGING") and k != "VLLM_RPC_BASE_PATH"}
    env["TMPDIR"] = str(tmp)  # vLLM puts its IPC sockets in the temp dir by default
    proc = subprocess.run([sys.executable, str(script), str(tiny_model_dir)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == "tokens 3\n", proc.stdout[-3000:]  # vLLM's logs are not on stdout
    for bad in ("Traceback", "Logging error", "EngineDeadError", "Task was destroyed", " INFO "):
        assert bad not in proc.stderr, proc.stderr[-3000:]
    try:
        left = [p for p in tmp.rglob("*") if stat.S_ISSOCK(p.lstat().st_mode) or p.name.startswith("tw-vllm-")]
        assert left == []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
