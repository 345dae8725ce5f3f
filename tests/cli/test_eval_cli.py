"""Acceptance (issue 4): the real `lm_eval --model threadweaver` and `threadweaver eval` on the tiny model,
two tasks with --limit, results and samples files with accuracy and latency metrics; SIGKILL + resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")
from harness.records import read_records  # noqa: E402

BIN = Path(sys.executable).parent
TASKS = Path(__file__).resolve().parents[2] / "tasks"
METRICS = ("acc,none", "pass@k,none", "maj@k,none", "critical_path_tokens,none", "total_tokens,none",
           "self_parallelism,none", "wall_s,none", "truncation_rate,none")  # fmt: skip


def _overrides(tmp_path: Path, repeats: int = 2) -> Path:
    """An include dir that re-declares two tasks with `repeats` samples (how users override it)."""
    ov = tmp_path / "ov"
    ov.mkdir(exist_ok=True)
    for t in ("tw_math500", "tw_aime24"):
        (ov / f"{t}.yaml").write_text(f"include: {TASKS / t}.yaml\ntask: {t}\nrepeats: {repeats}\n")
    return ov


def _model_args(model: Path, engine: str, tmp_path: Path, **extra) -> str:
    args = {"pretrained": model, "engine": engine, "store": tmp_path / "store.jsonl", **extra}
    if engine == "vllm":
        # no memory argument: the engine sizes its KV cache from the run's need (a share of RAM fails when the
        # other xdist worker's engine holds memory: vLLM checks free RAM >= share * total at start)
        args.update(enforce_eager=True, max_model_len=2048)
    return ",".join(f"{k}={v}" for k, v in args.items())


def _cmd(tool: list[str], model_args: str, out: Path, limit: int = 2, budget: int = 256) -> list[str]:
    return [*tool, "--model", "threadweaver", "--model_args", model_args, "--tasks", "tw_math500,tw_aime24",
            "--limit", str(limit), "--gen_kwargs", f"max_gen_toks={budget},do_sample=false",
            "--apply_chat_template", "--output_path", str(out), "--log_samples"]  # fmt: skip


def _env(shared_data: Path) -> dict:
    return {**os.environ, "THREADWEAVER_DATA_DIR": str(shared_data), "TOKENIZERS_PARALLELISM": "false"}


def _check_outputs(out: Path, samples_per_doc: int = 2, fmt: str = "threadweaver") -> dict:
    results = [json.loads(p.read_text()) for p in out.rglob("results_*.json")]
    assert len(results) == 1, list(out.rglob("*"))
    res = results[0]["results"]
    for task in ("tw_math500", "tw_aime24"):
        for m in METRICS:
            assert m in res[task], (task, m)
        assert res[task]["critical_path_tokens,none"] > 0 and 0 <= res[task]["acc,none"] <= 1
        samples = [json.loads(x) for p in out.rglob(f"samples_{task}_*.jsonl") for x in p.read_text().splitlines()]
        assert len(samples) == 2
        for s in samples:
            assert len(s["resps"][0]) == samples_per_doc and "critical_path_tokens" in s and "acc" in s
    records = [r for p in out.rglob("threadweaver_trajectories_*.jsonl") for _, r in read_records(p)]
    assert len(records) == 2 * 2 * samples_per_doc
    r = records[0]
    assert r.grade is not None and r.metrics.critical_path_tokens > 0 and r.wall_s > 0 and r.run.engine
    assert r.format == r.run.format == r.run.rollout["format"] == fmt
    return results[0]


def _run(cmd, env, cwd, timeout=900):
    res = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["parallel-r1", "npr", "multiverse"])
def test_lm_eval_hf_two_tasks_peer_format(fmt, tiny_model_dir, shared_data, tmp_path):
    """A tiny random model with a peer format's tags (every format's are single ids in the fixture's
    tokenizer) through the real lm_eval CLI in that format (hf); NPR's result files say fidelity approximate."""
    out = tmp_path / "out"
    cmd = _cmd([str(BIN / "lm_eval"), "--include_path", str(_overrides(tmp_path))],
               _model_args(tiny_model_dir, "hf", tmp_path, format=fmt), out)  # fmt: skip
    _run(cmd, _env(shared_data), tmp_path)
    _check_outputs(out, fmt=fmt)
    if fmt == "npr":  # the format's fidelity reaches the result files built from the run's records
        from harness.measured import build_results

        built = build_results([out], {"model": "tiny-npr"})
        assert {r.fidelity for r in built} == {"approximate"} and {r.format for r in built} == {"npr"}


@pytest.mark.slow
def test_threadweaver_eval_hf(tiny_model_dir, shared_data, tmp_path):
    out = tmp_path / "out"
    cmd = _cmd([str(BIN / "threadweaver"), "eval", "--repeats", "2"], _model_args(tiny_model_dir, "hf", tmp_path), out)
    res = _run(cmd, _env(shared_data), tmp_path)
    _check_outputs(out)
    assert "threadweaver summary" in res.stdout and "| tw_aime24 |" in res.stdout


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["parallel-r1", "npr"])
def test_vllm_two_tasks_peer_format(fmt, tiny_model_dir, shared_data, tmp_path):
    """Parallel-R1 and NPR through the real lm_eval CLI on vllm (the ThreadWeaver format runs on vllm through
    lm_eval in the README's main job, `threadweaver toy demo`, and in tests/harness/test_engines.py); the
    result files built from the run carry the formats.md section 4 figures from the records' units."""
    pytest.importorskip("vllm")
    out = tmp_path / "out"
    head = [str(BIN / "lm_eval"), "--include_path", str(_overrides(tmp_path))]
    args = _model_args(tiny_model_dir, "vllm", tmp_path, format=fmt)
    _run(_cmd(head, args, out), _env(shared_data), tmp_path)
    _check_outputs(out, fmt=fmt)
    from harness.formats import get_format
    from harness.measured import build_results

    for r in build_results([out], {"model": f"tiny-{fmt}"}):
        a = r.aggregates
        assert r.engine == "vllm" and r.format_checker == get_format(fmt).checker
        assert None not in (a.trigger_rate, a.format_valid_strict, a.format_valid_lenient, a.inserted_tokens,
                            a.reprefill_tokens, a.tokens_per_s)  # fmt: skip
        assert a.format_valid_lenient + a.format_error + a.no_tags == pytest.approx(1.0)
        assert all(s.reprefill_tokens >= 0 and s.inserted_tokens >= 0 for s in r.samples)


def _lines(path: Path) -> int:
    return sum(1 for x in path.read_bytes().split(b"\n") if x.strip()) if path.exists() else 0


@pytest.mark.slow
def test_sigkill_midway_then_resume_regenerates_nothing_finished(tiny_model_dir, shared_data, tmp_path):
    env, ov = _env(shared_data), _overrides(tmp_path, repeats=2)
    total = 2 * 3 * 2  # two tasks, --limit 3, 2 samples

    def cmd(name: str, store: Path) -> list[str]:
        args = _model_args(tiny_model_dir, "hf", tmp_path, store=store, trajectories=tmp_path / f"{name}.jsonl")
        return [*_cmd([str(BIN / "lm_eval"), "--include_path", str(ov)], args, tmp_path / name, limit=3,
                      budget=512), "--max_batch_size", "1"]  # fmt: skip

    store = tmp_path / "killed-store.jsonl"
    proc = subprocess.Popen(cmd("first", store), env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 600
    while _lines(store) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = _lines(store)
    assert 2 <= finished < total, f"could not kill midway: {finished} of {total} samples were done"

    res = _run(cmd("second", store), env, tmp_path)
    found = re.search(r"threadweaver: (\d+) of (\d+) samples from the store", res.stderr)
    assert found and int(found.group(2)) == total, res.stderr[-2000:]
    reused = int(found.group(1))
    assert reused >= finished - 1  # every finished sample was reused (a torn last line at most is redone) ...
    assert _lines(store) - finished == total - reused  # ... and only the rest was generated
    assert len(list(read_records(tmp_path / "second.jsonl"))) == total

    _run(cmd("clean", tmp_path / "clean-store.jsonl"), env, tmp_path)
    resumed = _check_outputs_any(tmp_path / "second")
    clean = _check_outputs_any(tmp_path / "clean")
    assert resumed == clean


def _check_outputs_any(out: Path) -> dict:
    """Per-task metrics of a run (ignoring wall-clock, which differs between runs)."""
    res = json.loads(next(out.rglob("results_*.json")).read_text())["results"]
    return {t: {k: v for k, v in m.items() if "wall_s" not in k and "stderr" not in k} for t, m in res.items()}
