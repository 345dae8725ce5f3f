"""The README's real-model workflow, run as written (README block `ci:workflow`), on a tiny test-built model.

The model: the conftest tiny Qwen3 (char tokenizer) taught ONE parallel trajectory after the prompts this
workflow sends (the first 2 problems of each benchmark, chat template applied as the backend does), as
the rollout's units plus the whole trajectory (so `parallel=false` writes the same text sequentially). It
is checked to reproduce every unit greedily before use (conftest.train_until_greedy); its logits are then
scaled up 4x (argmax unchanged) so that the tasks' temperature-1.0 sampling keeps to the trajectory. Substitutions (said in the
README): the two model paths, `engine=vllm` -> `engine=hf`, `--limit 2`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HEAD = "<think>\n<Parallel>\n<Outlines>\n<Outline>1: add</Outline>\n<Outline>2: check</Outline>\n</Outlines>"
THREADS = [("1", " 2+3=5</Thread>"), ("2", " 5-3=2, so 2+3=5 holds</Thread>")]
TAIL = "</Parallel>\nso \\boxed{5}</think>\n\\boxed{5}"
BENCHMARKS = ("aime24", "aime25", "amc23", "math500", "minerva_math", "olympiadbench")


def workflow_commands() -> list[str]:
    """The shell commands of the README's `ci:workflow` block (continuations joined, comments dropped)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- ci:workflow -->", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    joined = block.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def _units(prompt: str, tokenizer) -> list[tuple[str, str]]:
    from harness.formats import get_format

    tw = get_format("threadweaver")
    joined = prompt + HEAD + tw.join_text(THREADS, "model")
    units = [(prompt, HEAD)]
    units += [(prompt + HEAD + "".join(tw.branch_header(n, 1, joined=False)), t) for n, t in THREADS]
    units.append((joined, TAIL + tokenizer.eos_token))
    units.append((prompt, joined[len(prompt):] + TAIL + tokenizer.eos_token))  # the whole trajectory
    return units


def make_workflow_model(out: Path, data_dir: Path) -> Path:
    """A tiny model that writes the trajectory after ANY prompt of the workflow: every layer attends to a
    sliding window of 32 tokens, so with 2 layers a prediction sees at most the last 64 tokens, and every
    workflow prompt ends with the same 80-token instruction + chat template tail. Trained on the units
    after one prompt (`train_until_greedy`, conftest), checked greedily after every prompt of the
    workflow, then its logits sharpened 4x (the final norm's weight; argmax unchanged) and its context
    set to 1,024 tokens (a sample that strays is capped there)."""
    import torch
    from conftest import train_until_greedy
    from transformers import AutoModelForCausalLM

    from harness.datasets import load_docs
    from harness.prompts import doc_to_text, render_prompt
    from harness.tokenizer import build_char_tokenizer

    tok = build_char_tokenizer()
    prompts = [render_prompt(tok, doc_to_text(d)) for b in BENCHMARKS for d in load_docs(b, data_dir, grading="math")[:2]]
    train_until_greedy(out, _units(prompts[0], tok), threads=2, check_units=[u for p in prompts for u in _units(p, tok)],
                       use_sliding_window=True, sliding_window=32, max_window_layers=0)  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    with torch.no_grad():
        model.model.norm.weight.mul_(4.0)  # sharper at temperature 1.0: what the tasks sample with
    model.config.max_position_embeddings = 1024  # a sample that strays is capped by the context
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def workflow_model(tmp_path_factory, shared_data) -> Path:
    return make_workflow_model(tmp_path_factory.mktemp("workflow-model"), shared_data)


def _run(cmd: str, model: Path, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    cmd = cmd.replace("/path/to/threadweaver-qwen3-8b", str(model)).replace("/path/to/qwen3-8b-seq-rl", str(model))
    cmd = cmd.replace("engine=vllm", "engine=hf")
    argv = shlex.split(cmd)
    if argv[0] == "lm_eval":
        argv += ["--limit", "2"]
    argv[0] = str(BIN / argv[0])
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_readme_workflow_runs_as_written(workflow_model, shared_data, tmp_path):
    env = {**os.environ, "THREADWEAVER_DATA_DIR": str(shared_data), "THREADWEAVER_STORE_DIR": str(tmp_path / "store"),
           "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip
    commands = workflow_commands()
    assert [c.split()[0] for c in commands] == ["lm_eval", "lm_eval"] + ["threadweaver"] * 5
    for cmd in commands:
        res = _run(cmd, workflow_model, tmp_path, env)
        assert res.returncode == 0, f"{cmd}\n{res.stderr[-3000:]}"
    # one result file per benchmark for each run, with the run's settings and count unit
    results = tmp_path / "results"
    names = sorted(p.name for p in results.glob("*.json"))
    assert names == sorted(f"{m}__{b}.json" for m in ("my-model", "my-model-seq") for b in BENCHMARKS)
    par = json.loads((results / "my-model__aime24.json").read_text())
    seq = json.loads((results / "my-model-seq__aime24.json").read_text())
    assert (par["parallel"], seq["parallel"], par["format"], par["engine"]) == (True, False, "threadweaver", "hf")
    assert par["count_unit"] == seq["count_unit"] and par["count_unit"].startswith("tokens:")
    assert par["num_samples_per_problem"] == 32 and par["aggregates"]["activation_ratio"] > 0.9
    assert par["aggregates"]["critical_path_tokens"] < seq["aggregates"]["critical_path_tokens"]
    board = (tmp_path / "leaderboards" / "aime24.md").read_text()
    assert re.search(r"\| my-model \| measured \| 32 \|.*\| \d\.\d\dx \[", board), board
    # the gate: a rerun passes (exit 0); the sequential run as a candidate is slower (exit 1)
    same = _run("threadweaver regress --baseline results/my-model__aime24.json --candidate results/my-model__aime24.json",
                workflow_model, tmp_path, env)  # fmt: skip
    assert same.returncode == 0, same.stderr
    worse = _run("threadweaver regress --baseline results/my-model__aime24.json "
                 "--candidate results/my-model-seq__aime24.json --allow-setting-diff parallel",
                 workflow_model, tmp_path, env)  # fmt: skip
    assert worse.returncode == 1 and "critical-path tokens rose" in worse.stderr, worse.stderr
    # regrade found the backend's record files and graded every sample again
    regrade = _run("threadweaver regrade out/tw --json", workflow_model, tmp_path, env)
    summary = json.loads(regrade.stdout)
    assert summary["samples"] == 2 * (32 + 32 + 8 + 1 + 4 + 8) and summary["files"] == 1
