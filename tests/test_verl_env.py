"""The cluster path on verl 0.9.1, proven on CPU in verl's own environment (rl.md sections 3.4-3.5).

verl pins transformers <5.11 and torch 2.11, which our environment cannot take, so its adapter
(integrations/verl, the `threadweaver-verl` distribution) is tested in a separate venv built here the way
rl.md section 3.5 describes: verl, transferqueue and tensordict with --no-deps, then ray and verl's light
runtime dependencies; torch, transformers and our harness come from this venv through a site dir
(as the worktree venvs reuse main's packages), the venv's own packages first. pip's cache is warm after
the README setup and the first run. Then integrations/verl/tests runs there: the agent loop against a
fake server manager, verl's broadcast advantages and token-mean normaliser against ours, the golden
file of the generated overrides composed into verl's config. A venv that cannot be built FAILS.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[1]
NO_DEPS = ["verl==0.9.1", "transferqueue==0.1.11", "tensordict==0.10.0"]  # their pins would replace our stack
WITH_DEPS = ["ray==2.55.0", "hydra-core==1.3.8", "omegaconf==2.3.1", "pyvers<0.2", "cloudpickle", "orjson",
             "torchdata==0.11.0", "peft==0.21.2", "codetiming==1.4.0"]  # fmt: skip
INSTALL_TIMEOUT_S = 600
TESTS_TIMEOUT_S = 600


def _run(cmd: list[str], timeout_s: int, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(RAY_USAGE_STATS_ENABLED="0", PYTHONWARNINGS="ignore")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, **kwargs)


def _ok(proc: subprocess.CompletedProcess, what: str) -> None:
    assert proc.returncode == 0, f"{what} failed:\n" + (proc.stdout + proc.stderr)[-4000:]


def test_verl_adapter_parity_in_verls_environment(tmp_path):
    venv = tmp_path / "verl-venv"
    py = str(venv / "bin" / "python")
    start = time.perf_counter()
    _ok(_run([sys.executable, "-m", "venv", str(venv)], 120), "venv")
    site = _run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], 60).stdout.strip()
    ours = sysconfig.get_paths()[
        "purelib"
    ]  # torch, transformers, pytest, the editable harness (+ its .pth files)
    Path(site, "zz_threadweaver_base.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _ok(_run([*pip, "--no-deps", *NO_DEPS], INSTALL_TIMEOUT_S), "pip install --no-deps verl")
    _ok(_run([*pip, *WITH_DEPS], INSTALL_TIMEOUT_S), "pip install verl's runtime dependencies")
    _ok(_run([*pip, "--no-deps", "--no-build-isolation", "-e", str(REPO_ROOT / "integrations" / "verl")],
             INSTALL_TIMEOUT_S), "pip install -e integrations/verl")  # fmt: skip
    built_s = time.perf_counter() - start

    probe = ("import importlib.metadata as m, importlib.util as u; "  # no import: pytest below imports verl
             "print(m.version('verl'), m.version('tensordict'), u.find_spec('harness').origin)")  # fmt: skip
    found = _run([py, "-c", probe], 60)
    _ok(found, "verl's metadata")
    version, tensordict, harness_file = found.stdout.split()[-3:]
    assert (version, tensordict) == ("0.9.1", "0.10.0") and Path(harness_file).is_relative_to(REPO_ROOT)

    cmd = [
        py,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        "-W",
        "ignore",
        "integrations/verl/tests",
    ]
    tests = _run(cmd, TESTS_TIMEOUT_S, cwd=REPO_ROOT)
    tail = (tests.stdout + tests.stderr)[-6000:]
    assert tests.returncode == 0, tail
    summary = tests.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 10 and "skipped" not in summary, tail
    print(
        f"\nverl env: built in {built_s:.0f} s, tests {time.perf_counter() - start - built_s:.0f} s: {summary}"
    )
