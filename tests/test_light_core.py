"""The light core installs and passes its tests without torch, transformers, lm-eval or vLLM.

RL on a cluster runs our core (formats, rollout state machine, token counting, grading, reward) inside
verl's environment, whose pins (transformers >=5.5.3,<5.11, torch 2.11; spec rl.md section 3.4) exclude
our `eval` extra. So the base dependencies must stand alone: this test makes a fresh venv, installs the
repo with the `dev` extra only (base + test tools; pip's cache is warm after the README setup), checks
that the heavy packages are absent there, and runs every test marked `core` in it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[1]
ABSENT = ("torch", "transformers", "lm_eval", "vllm")
INSTALL_TIMEOUT_S = 900
TESTS_TIMEOUT_S = 900


def _run(cmd: list[str], timeout_s: int, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, **kwargs)


def test_core_tests_pass_with_the_base_dependencies_alone(tmp_path):
    venv = tmp_path / "light-venv"
    py = str(venv / "bin" / "python")
    start = time.perf_counter()
    made = _run([sys.executable, "-m", "venv", str(venv)], 120)
    assert made.returncode == 0, made.stderr[-2000:]
    pip = _run([py, "-m", "pip", "install", "-q", "-e", f"{REPO_ROOT}[dev]"], INSTALL_TIMEOUT_S)
    assert pip.returncode == 0, (pip.stdout + pip.stderr)[-4000:]
    installed_s = time.perf_counter() - start

    probe = "import importlib.util as u, json, sys; print(json.dumps({m: bool(u.find_spec(m)) for m in sys.argv[1:]}))"  # fmt: skip
    found = json.loads(_run([py, "-c", probe, *ABSENT, "harness", "tokenizers"], 60).stdout)
    assert found == {**dict.fromkeys(ABSENT, False), "harness": True, "tokenizers": True}, found

    cmd = [py, "-m", "pytest", "-m", "core", "-q", "-p", "no:cacheprovider", "-rs", "tests"]
    tests = _run(cmd, TESTS_TIMEOUT_S, cwd=REPO_ROOT)
    tail = (tests.stdout + tests.stderr)[-6000:]
    assert tests.returncode == 0, tail
    summary = tests.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) > 0, tail
    tests_s = time.perf_counter() - start - installed_s
    print(f"\nlight env: install {installed_s:.0f} s, core tests {tests_s:.0f} s: {summary}")
