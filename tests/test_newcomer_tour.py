"""The README tour as a newcomer runs it: from a folder outside the repository, with the installed package,
no `--apply_chat_template` (the backend applies the model's chat template) and no `--include_path` (the
installed startup hook finds the tasks); `pretrained=zoo:NAME` brings the model's sampling and budget."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


# The tour's line (README, and `threadweaver --help`'s quick start: tests/test_examples.py checks it is here)
TOUR = "lm_eval --model threadweaver --model_args pretrained=zoo:toy-threadweaver,engine=hf --tasks tw_toy --limit 20"


def _lm_eval(tmp_path: Path, shared_data: Path, task: str, limit: int) -> tuple[dict, str, float]:
    out = tmp_path / task
    env = {**os.environ, "THREADWEAVER_DATA_DIR": str(shared_data), "THREADWEAVER_STORE_DIR": str(tmp_path / "store"),
           "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip
    argv = shlex.split(TOUR.replace("tw_toy --limit 20", f"{task} --limit {limit}"))
    start = time.perf_counter()
    res = subprocess.run([str(BIN / argv[0]), *argv[1:], "--output_path", str(out)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    seconds = time.perf_counter() - start
    assert res.returncode == 0, res.stderr[-3000:]
    results = json.loads(next(out.rglob("results_*.json")).read_text())["results"][task]
    return results, res.stderr, seconds


@pytest.mark.slow
def test_tour_scores_the_toy_task_and_finishes_math500_quickly(tmp_path, shared_data):
    results, err, _ = _lm_eval(tmp_path, shared_data, "tw_toy", 20)
    assert results["acc,none"] >= 0.9, results
    assert "applying the model's chat template" in err and "0 of 20 samples from the store" in err
    results, err, seconds = _lm_eval(tmp_path, shared_data, "tw_math500", 2)
    assert seconds < 120 and results["num_samples,none"] == 1.0
