"""Result files: schema validation with file+field errors, upgrades, building from trajectories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import results
from harness.errors import InputError
from harness.results import (
    MATH_BENCHMARKS,
    build_result,
    compute_aggregates,
    load_result,
    result_filename,
    save_result,
)

pytestmark = pytest.mark.core

REPO_ROOT = Path(__file__).resolve().parents[2]


def write_trajectories(path: Path, rows: list[dict], benchmark: str = "toy") -> Path:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"task": f"tw_{benchmark}", "benchmark": benchmark, "prompt_hash": "x", **r}) + "\n")
    return path


# Two problems x two samples; counts chosen by hand.
ROWS = [
    {"doc_id": 0, "problem_id": "p0", "sample_index": 0, "status": "correct", "total_tokens": 120,
     "critical_path_tokens": 80, "is_parallel": True, "wall_s": 1.0},
    {"doc_id": 0, "problem_id": "p0", "sample_index": 1, "status": "wrong", "total_tokens": 100,
     "critical_path_tokens": 100, "is_parallel": False, "wall_s": 2.0},
    {"doc_id": 1, "problem_id": "p1", "sample_index": 0, "status": "correct", "total_tokens": 60,
     "critical_path_tokens": 30, "is_parallel": True, "wall_s": 0.5},
    {"doc_id": 1, "problem_id": "p1", "sample_index": 1, "status": "correct", "total_tokens": 50,
     "critical_path_tokens": 50, "is_parallel": False, "wall_s": 0.5},
]


def test_build_result_computes_aggregates_by_hand(tmp_path):
    traj = write_trajectories(tmp_path / "t.jsonl", ROWS)
    r = build_result(traj, {"model": "toy-threadweaver", "parallel": True, "join": "model",
                            "sampling": {"temperature": 1.0}, "budget_tokens": 4096, "seeds": [0, 1]})
    a = r.aggregates
    assert r.provenance == "measured" and r.benchmark == "toy" and r.num_samples_per_problem == 2
    assert a.accuracy == pytest.approx(75.0)  # p0: 1/2, p1: 2/2 -> mean 0.75
    assert a.critical_path_tokens == pytest.approx(65.0)  # (80+100+30+50)/4
    assert a.total_tokens == pytest.approx(82.5)
    assert a.self_parallelism == pytest.approx((1.5 + 1.0 + 2.0 + 1.0) / 4)
    assert a.activation_ratio == pytest.approx(50.0)
    assert a.wall_s == pytest.approx(1.0)
    assert (a.num_problems, a.num_samples) == (2, 4)
    assert result_filename(r) == "toy-threadweaver__toy.json"


def test_avg_at_k_weights_problems_not_samples():
    # 3 samples of a solved problem and 1 of an unsolved one: Avg@k is 50%, not 75%.
    S = results.Sample
    samples = [S("a", i, "correct", 10, 10) for i in range(3)] + [S("b", 0, "wrong", 10, 10)]
    assert compute_aggregates(samples).accuracy == pytest.approx(50.0)


def test_save_load_roundtrip(tmp_path):
    r = build_result(write_trajectories(tmp_path / "t.jsonl", ROWS), {"model": "m", "created_at": "2026-01-01T00:00:00Z"})
    path = save_result(r, tmp_path / "out" / result_filename(r))
    back = load_result(path)
    assert back == r
    assert json.loads(path.read_text())["schema_version"] == results.SCHEMA_VERSION


def test_torn_last_line_is_ignored_but_a_bad_middle_line_is_not(tmp_path):
    traj = write_trajectories(tmp_path / "t.jsonl", ROWS)
    with traj.open("a") as f:
        f.write('{"problem_id": "p2", "sample_')
    assert build_result(traj, {"model": "m"}).aggregates.num_samples == 4
    lines = traj.read_text().splitlines()
    traj.write_text("\n".join([lines[0], "{oops", *lines[1:4]]) + "\n")
    with pytest.raises(InputError, match=r"t\.jsonl:2: not valid JSON"):
        build_result(traj, {"model": "m"})


def test_build_result_refuses_mixed_benchmarks_and_keeps_the_last_duplicate(tmp_path):
    rows = [dict(ROWS[0]), dict(ROWS[1], benchmark="aime24")]
    traj = tmp_path / "t.jsonl"
    traj.write_text("\n".join(json.dumps({"benchmark": "toy", **r}) for r in rows) + "\n")
    with pytest.raises(InputError, match=r"one benchmark.*aime24.*toy"):
        build_result(traj, {"model": "m"})
    # a resumed run appends a sample again: the last line wins
    again = dict(ROWS[0], status="wrong")
    r = build_result(write_trajectories(tmp_path / "d.jsonl", [ROWS[0], ROWS[1], again]), {"model": "m"})
    assert [s.status for s in r.samples] == ["wrong", "wrong"]


def test_bad_sample_field_names_line_and_field(tmp_path):
    traj = write_trajectories(tmp_path / "t.jsonl", [ROWS[0], dict(ROWS[1], status="maybe")])
    with pytest.raises(InputError, match=r"t\.jsonl:2: field 'status' must be one of"):
        build_result(traj, {"model": "m"})


def test_missing_status_is_graded_with_math_verify(tmp_path):
    rows = [
        {"problem_id": "q", "sample_index": 0, "response": "so \\boxed{\\frac{1}{2}}", "gold": "0.5",
         "total_tokens": 9, "critical_path_tokens": 9},
        {"problem_id": "q", "sample_index": 1, "response": "\\boxed{3}", "gold": "0.5",
         "total_tokens": 5, "critical_path_tokens": 5},
        {"problem_id": "q", "sample_index": 2, "response": "no box", "gold": "0.5", "end_reason": "budget",
         "total_tokens": 7, "critical_path_tokens": 7},
    ]
    r = build_result(write_trajectories(tmp_path / "t.jsonl", rows, benchmark="math500"), {"model": "m"})
    assert [s.status for s in r.samples] == ["correct", "wrong", "truncated"]


def _valid_dict() -> dict:
    return json.loads((REPO_ROOT / "results" / "threadweaver-qwen3-8b__aime24.json").read_text())


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["aggregates"].update(accuracy="abc"), "field 'aggregates.accuracy' must be a number"),
        (lambda d: d["aggregates"].update(accuracy=130), "field 'aggregates.accuracy' must be a number in"),
        (lambda d: d["aggregates"].pop("accuracy"), "field 'aggregates.accuracy' must be present"),
        (lambda d: d["model"].pop("name"), "field 'model.name' must be present"),
        (lambda d: d.update(provenance="guessed"), "field 'provenance' must be one of"),
        (lambda d: d.update(citation=None), "field 'citation' must be an object"),
        (lambda d: d["sampling"].update(top_p=2), "field 'sampling.top_p' must be a number"),
        (lambda d: d["aggregates"].update(acuracy=1), "'aggregates.acuracy' must be a known field \\(did you mean 'accuracy'"),
        (lambda d: d.update(samples=[{"problem_id": "a"}]), "field 'samples\\[0\\].sample_index' must be present"),
        (lambda d: d.update(schema_version="1"), "field 'schema_version' must be an integer"),
    ],
)
def test_load_errors_name_file_and_field(tmp_path, mutate, message):
    data = _valid_dict()
    mutate(data)
    path = tmp_path / "x.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=rf"^{tmp_path}/x\.json: .*{message}"):
        load_result(path)


@pytest.mark.parametrize("text", ["", "{\"schema_version\": 1, \"model\": {", "\x00\x01garbage", "[1, 2]"])
def test_corrupt_or_truncated_file_names_the_file(tmp_path, text):
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(InputError, match=r"broken\.json: "):
        load_result(path)


def test_upgrade_chain_with_a_fake_v0(tmp_path, monkeypatch):
    # Pretend v0 kept accuracy at the top level; its upgrade moves it into aggregates.
    def v0_to_v1(d: dict) -> dict:
        d["aggregates"] = {"accuracy": d.pop("accuracy"), "critical_path_tokens": d.pop("latency")}
        return d

    monkeypatch.setitem(results.UPGRADES, 0, v0_to_v1)
    data = _valid_dict()
    data.pop("aggregates")
    data.update(schema_version=0, accuracy=12.5, latency=999)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    r = load_result(path)
    assert (r.schema_version, r.aggregates.accuracy, r.aggregates.critical_path_tokens) == (1, 12.5, 999)
    monkeypatch.delitem(results.UPGRADES, 0)
    with pytest.raises(InputError, match="old.json: no upgrade from schema_version 0"):
        load_result(path)


def test_newer_schema_is_refused(tmp_path):
    data = _valid_dict()
    data["schema_version"] = results.SCHEMA_VERSION + 1
    path = tmp_path / "new.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="newer than this harness reads"):
        load_result(path)


def test_measured_needs_samples_and_reported_has_none(tmp_path):
    data = _valid_dict()
    data["provenance"] = "measured"
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="field 'samples' must be a non-empty list"):
        load_result(path)


def test_committed_reported_results_are_valid_and_named_by_model_and_benchmark():
    files = sorted((REPO_ROOT / "results").glob("*.json"))
    assert files
    for path in files:
        r = load_result(path)
        assert path.name == result_filename(r)
        if r.provenance == "reported":
            assert r.citation and "2512.07843" in r.citation.paper and not r.samples
    names = {p.name for p in files}
    for model in ("threadweaver-qwen3-8b", "qwen3-8b-seq-rl"):
        assert {f"{model}__{b}.json" for b in MATH_BENCHMARKS} <= names


def test_problem_id_falls_back_to_doc_id(tmp_path):
    rows = [dict(ROWS[0], problem_id=None, doc_id=7), dict(ROWS[2], problem_id=None, doc_id=8)]
    r = build_result(write_trajectories(tmp_path / "t.jsonl", rows), {"model": "m"})
    assert [s.problem_id for s in r.samples] == ["7", "8"]
