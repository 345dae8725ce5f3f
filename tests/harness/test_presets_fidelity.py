"""Protocol presets (formats.md section 5: explicit args win over the preset, the preset over the zoo entry
and the task) and the fidelity label (formats.md section 1) from a run's records to the result file and
the leaderboard."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from harness.counting import TrajectoryMetrics
from harness.errors import InputError
from harness.grading import Grade, extract_answer
from harness.grading.rules import get_rule
from harness.leaderboard import build_boards, render_csv, render_markdown
from harness.measured import build_results
from harness.model_args import ThreadweaverArgs, rollout_settings
from harness.presets import get_preset, preset_messages, preset_rule
from harness.records import RecordWriter, RunHeader, SampleRecord
from harness.results import load_result, save_result
from harness.zoo import get_entry

pytestmark = pytest.mark.core
TASK = {"temperature": 0.6, "top_p": 0.95, "max_gen_toks": 1000}


def test_a_preset_sets_format_sampling_and_budget_and_explicit_args_win():
    cfg, _ = rollout_settings(TASK, ThreadweaverArgs("x", preset="npr"))
    assert (cfg.format, cfg.parallel, cfg.temperature, cfg.top_p, cfg.top_k, cfg.budget_tokens) == (
        "npr", True, 1.0, 0.7, -1, 40_000 - 128)  # fmt: skip
    args = ThreadweaverArgs("x", preset="npr", top_p=0.9, budget_tokens=500, format="threadweaver", parallel=False)
    cfg, _ = rollout_settings(TASK, args)
    assert (cfg.format, cfg.parallel, cfg.temperature, cfg.top_p, cfg.budget_tokens) == ("threadweaver", False, 1.0, 0.9, 500)
    # multiverse publishes no sampling or budget: the task's are used (and recorded in the run header)
    cfg, _ = rollout_settings(TASK, ThreadweaverArgs("x", preset="multiverse"))
    assert (cfg.format, cfg.temperature, cfg.top_p, cfg.budget_tokens) == ("multiverse", 0.6, 0.95, 1000)
    cfg, _ = rollout_settings(TASK, ThreadweaverArgs("x", preset="parallel-r1"))
    assert (cfg.format, cfg.temperature, cfg.top_p, cfg.budget_tokens) == ("parallel-r1", 1.0, 1.0, 3000)


def test_a_zoo_entry_brings_its_preset_and_model_args_may_name_another():
    zoo = get_entry("npr-4b")
    assert zoo.hub_id == "bigai-NPR/NPR-4B" and zoo.preset == "npr"
    cfg, _ = rollout_settings(TASK, ThreadweaverArgs("zoo:npr-4b"), zoo)
    assert (cfg.format, cfg.top_p, cfg.budget_tokens) == ("npr", 0.7, 39_872)
    cfg, _ = rollout_settings(TASK, ThreadweaverArgs("zoo:npr-4b", preset="threadweaver"), zoo)
    assert (cfg.format, cfg.top_p, cfg.budget_tokens) == ("threadweaver", 1.0, 40960)
    assert get_entry("parallel-sft-unseen").hub_id == "Parallel-R1/Parallel-SFT-Unseen"
    assert get_entry("multiverse-32b").preset == "multiverse"


def test_unknown_preset_is_one_line_with_a_suggestion():
    with pytest.raises(InputError, match="unknown preset 'nrp'; did you mean 'npr'"):
        ThreadweaverArgs("x", preset="nrp")


def test_preset_prompt_extraction_and_k():
    npr, pr1 = get_preset("npr"), get_preset("parallel-r1")
    (msg,) = preset_messages(npr, {"problem": "What is 1+1?"})
    assert msg["role"] == "user" and msg["content"].startswith("What is 1+1?\n\n") and "<guideline>" in msg["content"]
    assert preset_messages(pr1, {"problem": "x"}) is None  # their instruction is not shipped: the task's prompt
    with pytest.raises(InputError, match="no `problem` field"):
        preset_messages(npr, {"question": "x"})
    rule = get_rule(preset_rule(npr, "minerva"))
    assert rule.extract == ("boxed", "answer_is", "last_number") and rule.rel_tol == 0.01  # comparison kept
    assert extract_answer("so the answer is 42.", rule) == "42" and extract_answer("x = 3, y = 17", rule) == "17"
    assert extract_answer("\\boxed{5}; the answer is 6", rule) == "5"  # the last box first
    assert get_rule(preset_rule(pr1, "math")).extract == ("final_answer",)
    assert (npr.k_for("aime25"), pr1.k_for("aime24"), pr1.k_for("math500"), pr1.k_for("minerva_math")) == (8, 16, 1, None)
    assert get_preset("threadweaver").k_for("minerva_math") == 4


# ---------------------------------------------------------------------------------------------- fidelity
def _run(tmp_path: Path, fmt: str, name: str) -> Path:
    run = RunHeader(format=fmt, rollout={"parallel": True, "budget_tokens": 100, "temperature": 1.0, "top_p": 1.0,
                                         "top_k": -1}, engine="hf", count_unit="tokens:abc")  # fmt: skip
    path = tmp_path / f"{name}.jsonl"
    with RecordWriter(path) as out:
        for pid, ok in (("p0", True), ("p1", False)):
            m = TrajectoryMetrics(10, 8, 1, [2], 1.25, True, True, [], "tokens:abc")
            out.write(SampleRecord(problem_id=pid, sample_index=0, response="r", benchmark="toy", gold="1",
                                   grading="math", metrics=m, grade=Grade("correct" if ok else "wrong", "1"),
                                   end_reason="eos", wall_s=1.0, run=run))  # fmt: skip
    return path


def test_fidelity_label_round_trip_records_result_file_leaderboard(tmp_path):
    entries = []
    for fmt, name in (("npr", "npr-4b"), ("threadweaver", "tw")):
        (r,) = build_results([_run(tmp_path, fmt, name)], {"model": name})
        path = save_result(r, tmp_path / "results" / f"{name}__toy.json")
        assert json.loads(path.read_text())["fidelity"] == ("approximate" if fmt == "npr" else "exact")
        entries.append((path, load_result(path)))
    assert [e[1].fidelity for e in entries] == ["approximate", "exact"]
    (board,) = build_boards(entries)
    md = render_markdown(board, [])
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in md.splitlines() if line.startswith("| ")}
    assert rows["npr-4b"] == "measured, fidelity approximate" and rows["tw"] == "measured"
    assert "Fidelity approximate: the model was trained with restarted position ids" in md
    csv_rows = {r["model"]: r["fidelity"] for r in csv.DictReader(io.StringIO(render_csv(board)))}
    assert csv_rows == {"npr-4b": "approximate", "tw": "exact"}
    bad = json.loads(entries[0][0].read_text()) | {"fidelity": "approx"}
    entries[0][0].write_text(json.dumps(bad))
    with pytest.raises(InputError, match="field 'fidelity' must be one of \\['exact', 'approximate'\\] or null"):
        load_result(entries[0][0])
