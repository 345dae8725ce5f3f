"""The design as a test: packages import only what lies below them, modules read in one sitting.

Layers (docs/ARCHITECTURE.md): the CLI (`threadweaver`) is the top layer and the only code that imports
both harness and trainers; `trainers` and the task package (`threadweaver_tasks`) build on harness; harness
imports neither. Inside harness, a module imports only modules of a lower layer (or its own package's
submodules): types and rules, then counting and grading, then the sample record, then what produces
records, then what consumes them, then the lm-eval glue. A new harness module must be placed here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"harness": "harness", "trainers": "trainers", "threadweaver": "threadweaver", "tasks": "threadweaver_tasks"}
# who may import whom, by top-level package
ALLOWED = {
    "harness": {"harness"},
    "trainers": {"harness", "trainers"},
    "threadweaver_tasks": {"harness", "threadweaver_tasks"},
    "threadweaver": {"harness", "trainers", "threadweaver", "threadweaver_tasks"},
}
HARNESS_LAYERS = {
    0: ["errors"],
    1: ["config", "jsonl", "tokens", "answer_norm", "formats", "engines.base", "prompts", "store", "lmeval_hook"],
    2: ["counting", "grading", "tokenizer", "engines.args", "engines.vllm_memory"],
    3: ["metrics", "records", "rollout_parts", "presets"],
    4: ["rollout", "reward", "datasets", "zoo", "engines", "engines.scripted", "engines.hf", "engines.vllm",
        "engines.openai"],
    5: ["results", "samplestats", "workload", "plots", "model_args", "pgrpo"],
    6: ["measured", "leaderboard", "regress", "bench"],
    7: ["lmeval"],
}  # fmt: skip
LAYER = {name: k for k, names in HARNESS_LAYERS.items() for name in names}
MAX_LINES = 450  # "a module reads in one sitting" (~400 lines)


def _modules():
    for folder, package in PACKAGES.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            if "data" in path.relative_to(REPO).parts:  # test data scripts are not package code
                continue
            rel = path.relative_to(REPO / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            yield path, package, ".".join([package, *parts])


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def _harness_key(module: str) -> str:
    """harness.engines.vllm -> "engines.vllm"; harness.grading.pool -> "grading" (its package's layer)."""
    rest = module.split(".")[1:]
    if not rest:
        return ""
    key = ".".join(rest[:2])
    return key if key in LAYER else rest[0]


MODULES = list(_modules())


@pytest.mark.parametrize(("path", "package", "module"), MODULES, ids=[m for _, _, m in MODULES])
def test_imports_follow_the_layers(path, package, module):
    for imported in _imports(path):
        top = imported.split(".")[0]
        if top not in ALLOWED:
            continue
        assert top in ALLOWED[package], f"{module} imports {imported}: {package} may import only {ALLOWED[package]}"
        if package == "harness" and top == "harness" and _harness_key(module) and _harness_key(imported):
            mine, theirs = _harness_key(module), _harness_key(imported)
            assert mine in LAYER, f"place {module} in a layer of tests/test_layers.py"
            assert theirs in LAYER, f"place {imported} in a layer of tests/test_layers.py"
            same_package = mine.split(".")[0] == theirs.split(".")[0]
            assert LAYER[theirs] < LAYER[mine] or same_package, (
                f"{module} (layer {LAYER[mine]}) imports {imported} (layer {LAYER[theirs]}): that reaches back")


@pytest.mark.parametrize(("path", "package", "module"), MODULES, ids=[m for _, _, m in MODULES])
def test_modules_read_in_one_sitting(path, package, module):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (at most {MAX_LINES}): split it"
