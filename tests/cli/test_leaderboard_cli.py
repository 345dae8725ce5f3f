"""CLI of results/leaderboard: a corrupt or truncated result file is one `error:` line naming it, exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from threadweaver.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]
GOOD = REPO_ROOT / "results" / "threadweaver-qwen3-8b__aime24.json"


@pytest.mark.parametrize("how", ["truncated", "garbage", "bad-field"])
def test_broken_result_file_is_one_line_exit_2(tmp_path, capsys, how):
    folder = tmp_path / "results"
    folder.mkdir()
    shutil.copy(GOOD, folder / GOOD.name)
    bad = folder / "broken__aime24.json"
    text = GOOD.read_text()
    if how == "truncated":
        bad.write_text(text[: len(text) // 2])
    elif how == "garbage":
        bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    else:
        data = json.loads(text)
        data["aggregates"]["critical_path_tokens"] = "16.9k"
        bad.write_text(json.dumps(data))
    for argv in (["leaderboard", "--results", str(folder), "--out", str(tmp_path / "out")],
                 ["results", "check", str(GOOD), str(bad)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and str(bad) in err, err
    if how == "bad-field":
        assert "field 'aggregates.critical_path_tokens' must be a number" in err


def test_results_check_ok_and_missing(capsys):
    assert main(["results", "check", str(GOOD)]) == 0
    assert "ok (threadweaver-qwen3-8b, aime24, reported" in capsys.readouterr().out
    assert main(["results", "check", "nope.json"]) == 2
    assert "nope.json: no such file" in capsys.readouterr().err


def test_results_build_then_leaderboard(tmp_path, capsys):
    from harness.counting import TrajectoryMetrics
    from harness.grading import Grade
    from harness.records import RecordWriter, SampleRecord

    traj = tmp_path / "t.jsonl"
    with RecordWriter(traj) as w:
        for i in range(6):
            w.write(SampleRecord(problem_id=f"q{i}", sample_index=0, response="r", benchmark="toy",
                                 grade=Grade("correct" if i % 2 else "wrong", "1"),
                                 metrics=TrajectoryMetrics(100, 70, 1, [2], 100 / 70, True, True, [], "tokens:t")))
    out = tmp_path / "results"
    assert main(["results", "build", str(traj), "--model", "toy-threadweaver", "--parallel", "--join", "model",
                 "--temperature", "1.0", "--out", str(out)]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == out / "toy-threadweaver__toy.json"
    data = json.loads(path.read_text())
    assert data["model"]["zoo_name"] == "toy-threadweaver" and data["model"]["pretrained"].endswith("toy-threadweaver")
    assert data["aggregates"]["accuracy"] == 0.5 and data["sampling"]["temperature"] == 1.0
    assert data["count_unit"] == "tokens:t"
    assert main(["leaderboard", "--results", str(out), "--out", str(tmp_path / "boards")]) == 0
    assert "| toy-threadweaver | measured | 1 | 50.0 | 70 |" in (tmp_path / "boards" / "toy.md").read_text()
    # --fidelity overrides the format's label (a model trained here on the rollout's own positions)
    assert main(["results", "build", str(traj), "--model", "m", "--format", "npr", "--fidelity", "exact",
                 "--out", str(tmp_path / "fid")]) == 0  # fmt: skip
    capsys.readouterr()
    assert json.loads((tmp_path / "fid" / "m__toy.json").read_text())["fidelity"] == "exact"
    assert main(["results", "build", str(traj), "--model", "m", "--zoo", "toy-threadwever"]) == 2
    assert "did you mean 'toy-threadweaver'" in capsys.readouterr().err
