"""Result files: schema validation with file+field errors, upgrades, building from trajectories."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness import results
from harness.counting import TrajectoryMetrics
from harness.errors import InputError
from harness.grading import Grade
from harness.leaderboard import load_boards_config
from harness.measured import build_results, check_aggregates, compute_aggregates
from harness.records import RecordWriter, RunHeader, SampleRecord
from harness.results import load_result, result_filename, save_result

pytestmark = pytest.mark.core

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN = RunHeader(format="threadweaver", rollout={"parallel": True, "join": "model", "budget_tokens": 4096, "seed": 0,
                "temperature": 1.0, "top_p": 1.0, "top_k": -1}, engine="hf", engine_version="5.0", dtype="float32",
                model="/m", count_unit="tokens:abc")  # fmt: skip


def record(problem_id, k, status, total, crit, parallel, wall, benchmark="toy", run=RUN, **kw) -> SampleRecord:
    m = TrajectoryMetrics(total, crit, int(parallel), [2] * int(parallel), total / crit, parallel, True, [], "tokens:abc")
    grade = None if status is None else Grade(status, "x")
    return SampleRecord(problem_id=problem_id, sample_index=k, response="r", benchmark=benchmark, gold="1",
                        grading="math", metrics=m, grade=grade, end_reason="eos", wall_s=wall, run=run, **kw)


def write_records(path: Path, recs: list[SampleRecord]) -> Path:
    with RecordWriter(path) as out:
        for r in recs:
            out.write(r)
    return path


# Two problems x two samples; counts chosen by hand.
ROWS = [
    record("p0", 0, "correct", 120, 80, True, 1.0),
    record("p0", 1, "wrong", 100, 100, False, 2.0),
    record("p1", 0, "correct", 60, 30, True, 0.5),
    record("p1", 1, "correct", 50, 50, False, 0.5),
]


def test_build_computes_aggregates_by_hand_and_takes_settings_from_the_run(tmp_path):
    (r,) = build_results([write_records(tmp_path / "t.jsonl", ROWS)], {"model": "toy-threadweaver"})
    a = r.aggregates
    assert r.provenance == "measured" and r.benchmark == "toy" and r.num_samples_per_problem == 2
    assert a.accuracy == pytest.approx(0.75)  # p0: 1/2, p1: 2/2 -> mean 0.75 (a fraction in files)
    assert a.critical_path_tokens == pytest.approx(65.0)  # (80+100+30+50)/4
    assert a.total_tokens == pytest.approx(82.5)
    assert a.self_parallelism == pytest.approx((1.5 + 1.0 + 2.0 + 1.0) / 4)
    assert a.activation_ratio == pytest.approx(0.5) and a.truncation_rate == 0.0
    assert a.wall_s == pytest.approx(1.0)
    assert (a.num_problems, a.num_samples) == (2, 4)
    assert (r.engine, r.parallel, r.join, r.format, r.budget_tokens, r.seeds) == ("hf", True, "model", "threadweaver", 4096, [0])
    assert (r.count_unit, r.model.pretrained, r.sampling.temperature) == ("tokens:abc", "/m", 1.0)
    assert result_filename(r) == "toy-threadweaver__toy.json"


def test_a_group_run_gives_one_result_per_benchmark_and_the_last_duplicate_wins(tmp_path):
    recs = [*ROWS, record("a1", 0, "wrong", 10, 10, False, 1.0, benchmark="aime24"),
            record("p0", 0, "wrong", 120, 80, True, 1.0)]  # a resumed run appended p0/0 again
    out = build_results([write_records(tmp_path / "run" / "t.jsonl", recs)], {"model": "m"})
    assert [r.benchmark for r in out] == ["aime24", "toy"]
    assert [s.status for s in out[1].samples][:2] == ["wrong", "wrong"]
    (tmp_path / "run" / "lm_eval_samples.jsonl").write_text('{"doc_id": 0, "resps": []}\n')  # not ours: skipped
    assert len(build_results([tmp_path / "run"], {"model": "m"})) == 2


def test_records_of_two_runs_are_refused(tmp_path):
    seq = RunHeader(**{**RUN.__dict__, "rollout": {**RUN.rollout, "parallel": False}})
    write_records(tmp_path / "a.jsonl", ROWS)
    write_records(tmp_path / "b.jsonl", [record("p0", 0, "correct", 9, 9, False, 1.0, run=seq)])
    with pytest.raises(InputError, match="records of 2 different runs"):
        build_results([tmp_path], {"model": "m"})


def test_avg_at_k_weights_problems_not_samples():
    # 3 samples of a solved problem and 1 of an unsolved one: Avg@k is 50%, not 75%.
    S = results.Sample
    samples = [S("a", i, "correct", 10, 10) for i in range(3)] + [S("b", 0, "wrong", 10, 10)]
    assert compute_aggregates(samples).accuracy == pytest.approx(0.5)


def test_save_load_roundtrip_and_check_recomputes_aggregates(tmp_path):
    (r,) = build_results([write_records(tmp_path / "t.jsonl", ROWS)], {"model": "m", "created_at": "2026-01-01T00:00:00Z"})
    path = save_result(r, tmp_path / "out" / result_filename(r))
    back = load_result(path)
    assert back == r
    assert json.loads(path.read_text())["schema_version"] == results.SCHEMA_VERSION
    check_aggregates(back, str(path))
    data = json.loads(path.read_text())
    data["aggregates"]["accuracy"] = 1.0  # claims 100% while its samples give 75%
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="aggregates.accuracy is 1.0 but its samples give 0.75"):
        check_aggregates(load_result(path), str(path))


def test_torn_last_line_is_ignored_but_a_bad_middle_line_is_not(tmp_path):
    path = write_records(tmp_path / "t.jsonl", ROWS)
    with path.open("a") as f:
        f.write('{"problem_id": "p2", "sample_')
    assert build_results([path], {"model": "m"})[0].aggregates.num_samples == 4
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{oops", *lines[1:4]]) + "\n")
    with pytest.raises(InputError, match=r"t\.jsonl:2: bad JSON"):
        build_results([path], {"model": "m"})


def test_missing_grades_are_graded_with_the_records_rule(tmp_path):
    recs = [record("q", 0, None, 9, 9, False, 1.0), record("q", 1, None, 5, 5, False, 1.0),
            record("q", 2, None, 7, 7, False, 1.0)]
    for r, text in zip(recs, ["so \\boxed{\\frac{1}{2}}", "\\boxed{3}", "no box"], strict=True):
        r.response, r.gold = text, "0.5"
    recs[2].end_reason = "budget"
    (r,) = build_results([write_records(tmp_path / "t.jsonl", recs)], {"model": "m"})
    assert [s.status for s in r.samples] == ["correct", "wrong", "truncated"]
    assert r.aggregates.truncation_rate == pytest.approx(1 / 3)
    recs[0].grading = None
    with pytest.raises(InputError, match="needs `gold` and `grading`"):
        build_results([write_records(tmp_path / "u.jsonl", recs)], {"model": "m"})


def test_a_v1_file_is_upgraded_to_fractions(tmp_path):
    data = _valid_dict()
    data["schema_version"] = 1
    data["aggregates"]["accuracy"], data["aggregates"]["activation_ratio"] = 79.9, 85.2
    data.pop("count_unit")
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    r = load_result(path)
    assert (r.schema_version, r.aggregates.accuracy, r.aggregates.activation_ratio) == (results.SCHEMA_VERSION, 0.799, 0.852)
    assert r.count_unit is None


def _valid_dict() -> dict:
    return json.loads((REPO_ROOT / "results" / "threadweaver-qwen3-8b__aime24.json").read_text())


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["aggregates"].update(accuracy="abc"), "field 'aggregates.accuracy' must be a number"),
        (lambda d: d["aggregates"].update(accuracy=1.3), "field 'aggregates.accuracy' must be a number in \\[0.0, 1.0\\]"),
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
            assert r.citation and re.search(r"arXiv \d{4}\.\d{5}", r.citation.paper) and not r.samples
    names = {p.name for p in files}
    for model in ("threadweaver-qwen3-8b", "qwen3-8b-seq-rl"):
        assert {f"{model}__{b}.json" for b in load_boards_config(REPO_ROOT / "results").average} <= names
