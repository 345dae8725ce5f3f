"""Leaderboards: the paper's average row, paper speedup, Pareto flags, deterministic committed output."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from harness.counting import TrajectoryMetrics
from harness.errors import InputError
from harness.grading import Grade
from harness.leaderboard import (
    build_boards,
    build_leaderboards,
    fmt_tokens,
    load_boards_config,
    pareto_flags,
    render_csv,
    render_markdown,
)
from harness.measured import build_results
from harness.metrics import paper_speedup
from harness.records import RecordWriter, RunHeader, SampleRecord
from harness.results import Result, load_result, save_result

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS = REPO_ROOT / "results"
REPORTED = [p for p in sorted(RESULTS.glob("*.json")) if load_result(p).provenance == "reported"]
CONFIG = load_boards_config(RESULTS)


def reported_entries():
    return [(p, load_result(p)) for p in REPORTED]


def md_row(board_md: str, model: str) -> list[str]:
    for line in board_md.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells and cells[0] == model:
            return cells
    raise AssertionError(f"no row for {model}")


def test_average_row_reproduces_the_paper_from_reported_results_alone():
    boards = {b.name: b for b in build_boards(reported_entries(), CONFIG)}
    avg = boards["average"]
    md = render_markdown(avg, [])
    seq, tw = md_row(md, "qwen3-8b-seq-rl"), md_row(md, "threadweaver-qwen3-8b")
    # model | provenance | k | accuracy | critical-path | total | self-par | activation | speedup | wall | Pareto
    assert (seq[3], seq[4]) == ("72.2", "15.1k")
    assert (tw[3], tw[4], tw[8]) == ("71.9", "13.2k", "1.22x")
    # only the models with all six benchmarks are averaged: ThreadWeaver's two and NPR's table (the other
    # peers have 1-4); NPR on Qwen3-4B-Instruct-2507: (63.3 + 50.4 + 93.1 + 93.6 + 43.0 + 63.7) / 6
    assert {r.model for r in avg.rows} == {"qwen3-8b-seq-rl", "threadweaver-qwen3-8b", "npr-qwen3-4b",
                                           "npr-qwen3-4b-instruct-2507", "sr-qwen3-4b-instruct-2507"}  # fmt: skip
    npr = next(r for r in avg.rows if r.model == "npr-qwen3-4b-instruct-2507")
    a = npr.aggregates
    assert a.accuracy == pytest.approx(407.1 / 600) and a.trigger_rate == 1.0 and a.critical_path_tokens is None
    assert len([b for b in boards if b in CONFIG.average]) == 6


def test_per_benchmark_boards_use_published_speedups():
    boards = {b.name: b for b in build_boards(reported_entries(), CONFIG)}
    rows = {r.model: r for r in boards["minerva_math"].rows}
    assert rows["threadweaver-qwen3-8b"].speedup == pytest.approx(1.53)
    assert rows["qwen3-8b-seq-rl"].speedup == pytest.approx(1.0)
    aime = {r.model: r for r in boards["aime24"].rows}
    mv = aime["multiverse-32b"]
    assert mv.speedup is None and mv.aggregates.accuracy == pytest.approx(0.538)


def test_fmt_tokens():
    assert (fmt_tokens(15133.3), fmt_tokens(632.4), fmt_tokens(None)) == ("15.1k", "632", "-")


def test_pareto_flags():
    pts = [(80.0, 100.0), (70.0, 50.0), (60.0, 120.0), (80.0, 100.0), (75.0, None), (70.0, 60.0)]
    assert pareto_flags(pts) == [True, True, False, True, False, False]


def _result(name: str, cp: dict[str, list[int]], correct: dict[str, list[bool]]) -> Result:
    from harness.results import Aggregates, ModelInfo, Sample

    samples = [Sample(pid, i, "correct" if ok else "wrong", c, c)
               for pid in sorted(cp) for i, (c, ok) in enumerate(zip(cp[pid], correct[pid], strict=True))]
    return Result(ModelInfo(name), "toy", "measured", Aggregates(accuracy=0.0), samples=samples)


def test_paper_speedup_by_hand():
    base = _result("b", {"a": [100, 300], "b": [100, 100]}, {"a": [True, False], "b": [False, False]})
    model = _result("m", {"a": [100, 100], "b": [50, 150]}, {"a": [True, True], "b": [True, False]})
    lat = "critical_path_tokens"
    s = paper_speedup(base.per_problem(lat), model.per_problem(lat), base.per_problem("correct"),
                      model.per_problem("correct"), n_boot=500, seed=0)  # fmt: skip
    # a: 200/100 = 2.0, b: 100/100 = 1.0 -> mean 1.5; correct-only: only a (b has no correct baseline): 100/100
    assert s.speedup == pytest.approx(1.5)
    assert s.speedup_correct_only == pytest.approx(1.0) and s.max_speedup == pytest.approx(1.0)
    assert 1.0 <= s.ci_low <= s.speedup <= s.ci_high <= 2.0
    assert s.problems == 2


def write_toy_run(path: Path, model_scale: float, acc: float, seed: int, unit: str = "tokens:test") -> Path:
    """Sample records of 40 problems x 4 samples; critical path = per-problem length x model_scale,
    total = length."""
    lengths = np.random.default_rng(0).integers(200, 800, size=40)  # the same problems for every model
    rng = np.random.default_rng(seed)
    run = RunHeader(format="threadweaver", rollout={"parallel": model_scale < 1, "budget_tokens": 4096,
                    "temperature": 1.0, "top_p": 1.0, "top_k": -1, "join": "model"}, engine="hf", count_unit=unit)
    with RecordWriter(path) as out:
        for pid in range(40):
            length = int(lengths[pid])
            for k in range(4):
                cp = int(length * model_scale * rng.uniform(0.9, 1.1))
                total = max(cp, length)
                m = TrajectoryMetrics(total, cp, int(model_scale < 1), [2] * int(model_scale < 1), total / cp,
                                      model_scale < 1, True, [], unit)  # fmt: skip
                out.write(SampleRecord(
                    problem_id=f"toy-{pid:03d}", sample_index=k, response="...", benchmark="toy", task="tw_toy",
                    doc_id=pid, gold="1", grading="digits", metrics=m, end_reason="eos", wall_s=cp / 1000.0, run=run,
                    grade=Grade("correct" if rng.random() < acc else "wrong", "1"),
                ))  # fmt: skip
    return path


def test_measured_toy_board_end_to_end(tmp_path):
    res = tmp_path / "results"
    for name, scale, acc, seed in (("toy-sequential", 1.0, 0.9, 1), ("toy-threadweaver", 0.7, 0.9, 2)):
        (r,) = build_results([write_toy_run(tmp_path / f"{name}.jsonl", scale, acc, seed)], {"model": name})
        save_result(r, res / f"{name}__toy.json")
    out = tmp_path / "boards"
    build_leaderboards(res, out, ("toy-sequential",))
    md = (out / "toy.md").read_text()
    tw = md_row(md, "toy-threadweaver")
    assert tw[1] == "measured" and tw[9] != "-"  # wall-clock shown for measured
    speed = float(tw[8].split("x")[0])
    assert 1.3 < speed < 1.55  # same problems, ~0.7x the critical path
    assert "[" in tw[8]  # bootstrap CI shown
    assert md_row(md, "toy-sequential")[8] == "1.00x"
    for stem in ("toy_critical_path_tokens", "toy_total_tokens", "toy_wall_s"):
        assert (out / f"{stem}.png").stat().st_size > 0 and (out / f"{stem}.svg").stat().st_size > 0
    rows = list(csv.DictReader(io.StringIO((out / "toy.csv").read_text())))
    assert {r["model"] for r in rows} == {"toy-sequential", "toy-threadweaver"}
    assert "average" not in (out / "README.md").read_text()


def test_duplicate_results_are_refused(tmp_path):
    src = RESULTS / "qwen3-8b__aime24.json"
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(src.read_text())
    with pytest.raises(InputError, match=r"b\.json: duplicate result for model 'qwen3-8b'.*a\.json"):
        build_leaderboards(tmp_path, tmp_path / "out")


def test_csv_is_plain_numbers():
    boards = {b.name: b for b in build_boards(reported_entries(), CONFIG)}
    rows = list(csv.DictReader(io.StringIO(render_csv(boards["average"]))))
    tw = next(r for r in rows if r["model"] == "threadweaver-qwen3-8b")
    assert float(tw["accuracy"]) == pytest.approx(0.7188, abs=1e-4) and tw["pareto"] == "True"


def test_speedup_is_not_computed_across_count_units(tmp_path):
    res = tmp_path / "results"
    for name, scale, unit in (("toy-sequential", 1.0, "tokens:aaa"), ("toy-threadweaver", 0.7, "tokens:bbb")):
        (r,) = build_results([write_toy_run(tmp_path / f"{name}.jsonl", scale, 0.9, 1, unit)], {"model": name})
        save_result(r, res / f"{name}__toy.json")
    build_leaderboards(res, tmp_path / "boards", ("toy-sequential",))
    md = (tmp_path / "boards" / "toy.md").read_text()
    assert md_row(md, "toy-threadweaver")[8] == "-"
    assert "toy-threadweaver: no speedup (cannot compare latency: counted in different units" in md


def test_committed_leaderboards_equal_a_fresh_build(tmp_path):
    """leaderboards/ must be exactly what `threadweaver leaderboard` makes from results/ (tables and plots)."""
    committed = REPO_ROOT / "leaderboards"
    build_leaderboards(RESULTS, tmp_path)
    fresh = {p.name for p in tmp_path.iterdir()}
    assert fresh == {p.name for p in committed.iterdir()}, "run `threadweaver leaderboard` and commit"
    for name in sorted(fresh):
        assert (tmp_path / name).read_bytes() == (committed / name).read_bytes(), f"{name} differs"


def test_plot_y_range_is_honest_and_omissions_are_listed():
    from harness.plots import MIN_SPAN_POINTS, plot_note, y_limits

    assert y_limits([(100.0, 0.0, 0.0)]) == (100.0 - MIN_SPAN_POINTS, 100.0)  # never above 100%
    assert y_limits([(0.0, 0.0, 0.0)]) == (0.0, MIN_SPAN_POINTS)  # never below 0%
    lo, hi = y_limits([(71.9, 0.0, 0.0), (72.2, 0.0, 0.0)])
    assert hi - lo == MIN_SPAN_POINTS and lo < 71.9 and hi > 72.2  # a 0.3-point gap does not fill the plot
    lo, hi = y_limits([(40.0, 5.0, 5.0), (90.0, 5.0, 15.0)])
    assert lo <= 35.0 and hi == 100.0  # error bars fit, clipped at 100
    boards = {b.name: b for b in build_boards(reported_entries(), CONFIG)}
    note = plot_note(boards["aime24"], "critical_path_tokens")
    shown = {r.model for r in boards["aime24"].rows if r.aggregates.critical_path_tokens is not None}
    hidden = note.split("Not shown (no critical path tokens): ")[1].rstrip(".").split(", ")
    assert {"qwen3-8b", "multiverse-32b", "parallel-r1-seen", "npr-qwen3-4b"} <= set(hidden)
    assert set(hidden) == {r.model for r in boards["aime24"].rows} - shown
    assert plot_note(boards["average"], "critical_path_tokens").endswith(
        "Not shown (no critical path tokens): npr-qwen3-4b-instruct-2507, npr-qwen3-4b, sr-qwen3-4b-instruct-2507.")


def test_measured_rows_carry_bootstrap_intervals(tmp_path):
    (r,) = build_results([write_toy_run(tmp_path / "t.jsonl", 0.7, 0.8, 1)], {"model": "m"})
    (board,) = build_boards([(tmp_path / "m.json", r)], CONFIG)
    ci = board.rows[0].ci
    assert set(ci) == {"accuracy", "critical_path_tokens", "total_tokens", "wall_s"}
    lo, hi = ci["accuracy"]
    assert lo <= r.aggregates.accuracy <= hi and hi - lo > 0
