"""The model zoo: registry validation, `zoo:NAME` resolution, did-you-mean, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.results import load_result
from harness.zoo import REPO_ROOT, load_zoo, resolve_pretrained
from threadweaver.cli import main

pytestmark = pytest.mark.core

RESULTS = Path(__file__).resolve().parents[2] / "results"


def test_toy_checkpoints_resolve_under_the_repo_root():
    assert REPO_ROOT == Path(__file__).resolve().parents[2]
    path, entry = resolve_pretrained("zoo:toy-threadweaver")
    assert path == str(REPO_ROOT / "models" / "toy-threadweaver") and entry.parallel
    path, entry = resolve_pretrained("zoo:toy-sequential")
    assert path.endswith("models/toy-sequential") and entry.format is None and not entry.parallel
    # the toy RL proof (issue 14): the hybrid start and the two RL models, with their formats and modes
    for name, fmt, parallel in (("toy-hybrid", "threadweaver", True), ("toy-threadweaver-rl", "threadweaver", True),
                                ("toy-sequential-rl", None, False)):  # fmt: skip
        path, entry = resolve_pretrained(f"zoo:{name}")
        assert path == str(REPO_ROOT / "models" / name) and (entry.format, entry.parallel) == (fmt, parallel)


def test_hub_ids_and_pass_through():
    assert resolve_pretrained("zoo:qwen3-8b")[0] == "Qwen/Qwen3-8B"
    assert resolve_pretrained("some/hub-id") == ("some/hub-id", None)


def test_unknown_name_suggests_and_unknown_checkpoint_says_so():
    with pytest.raises(InputError, match="unknown zoo model 'toy-threadwever'; did you mean 'toy-threadweaver'"):
        resolve_pretrained("zoo:toy-threadwever")
    with pytest.raises(InputError, match="'threadweaver-qwen3-8b' has no known checkpoint"):
        resolve_pretrained("zoo:threadweaver-qwen3-8b")


def test_registry_is_valid_and_its_result_refs_exist():
    zoo = load_zoo()
    assert {"toy-threadweaver", "toy-sequential", "threadweaver-qwen3-8b", "qwen3-8b", "multiverse-32b"} <= set(zoo)
    for entry in zoo.values():
        for ref in entry.results:
            assert load_result(RESULTS / ref).model.zoo_name == entry.name


def test_bad_registry_keys_fail_with_a_suggestion(tmp_path):
    f = tmp_path / "zoo.yaml"
    f.write_text("m:\n  hub_id: a/b\n  formt: threadweaver\n")
    with pytest.raises(InputError, match="entry 'm': unknown key 'formt'; did you mean 'format'"):
        load_zoo(f)
    f.write_text("m:\n  hub_id: a/b\n  format: tree\n")
    with pytest.raises(InputError, match="format must be one of"):
        load_zoo(f)


def test_cli_list_and_show(capsys):
    assert main(["zoo", "list", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert "toy-threadweaver" in {d["name"] for d in lines}
    assert main(["zoo", "list"]) == 0
    assert "Qwen/Qwen3-8B" in capsys.readouterr().out
    assert main(["zoo", "show", "qwen3-8b", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pretrained"] == "Qwen/Qwen3-8B"
    assert main(["zoo", "show", "qwen-8b"]) == 2
    assert "did you mean" in capsys.readouterr().err
