"""`threadweaver datagen stage0 | stage2` on the scripted engine: the rollout command's records, then only
correct, valid trajectories within the limits; resumable (no sample rolled out twice)."""

from __future__ import annotations

import json

from harness.prompts import build_prompt
from harness.records import read_records
from threadweaver.cli import main

HEAD = "<think>\n<Parallel>\n<Outlines>\n<Outline>1: a</Outline>\n<Outline>{k}: b</Outline>\n</Outlines>"
JOINED = "\n<Thread>\n1: t</Thread><Thread>\n{k}: t</Thread>\n</Parallel>"


def problems_and_script(tmp_path):
    u = {q: build_prompt(q) for q in ("Q1", "Q2", "Q3", "Q4")}
    script = {
        u["Q1"]: HEAD.format(k=2),  # parallel, valid, correct
        u["Q1"] + HEAD.format(k=2) + JOINED.format(k=2): "\nSo 7.\n</think>\n\\boxed{7}",
        u["Q2"]: "<think>\nguess\n</think>\n\\boxed{5}",  # wrong
        u["Q3"]: "<think>\nsum\n</think>\n\\boxed{7}",  # sequential, correct: no acceleration
        u["Q4"]: HEAD.format(k=3),  # outlines 1 and 3: the format's checker refuses it
        u["Q4"] + HEAD.format(k=3) + JOINED.format(k=3): "\n</think>\n\\boxed{7}",
        "*": " t</Thread>",  # every thread
    }
    prompts, script_path = tmp_path / "problems.jsonl", tmp_path / "script.json"
    prompts.write_text(
        "".join(json.dumps({"id": f"p{i}", "problem": f"Q{i}", "answer": "7"}) + "\n" for i in range(1, 5))
    )
    script_path.write_text(json.dumps(script))
    return prompts, script_path


def _run(stage, prompts, script, out, *extra):
    return main(["datagen", stage, "--prompts", str(prompts), "--engine", "scripted", "--model", str(script),
                 "--out", str(out), "--no-chat-template", "--join", "orchestrator", "--samples", "2", "--seed", "1",
                 "--json", *extra])  # fmt: skip


def test_stage2_keeps_correct_valid_accelerated_and_resumes(tmp_path, capsys):
    prompts, script = problems_and_script(tmp_path)
    out = tmp_path / "stage2.jsonl"
    assert (
        _run("stage2", prompts, script, out, "--min-self-parallelism", "1.05", "--max-per-problem", "1") == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"stage": "stage2", "rollouts": 8, "kept": 1, "problems": 4, "problems_kept": 1,
                       "dropped": {"wrong": 2, "low_acceleration": 2, "invalid": 2, "over_per_problem": 1}}  # fmt: skip
    [(_, rec)] = list(read_records(out))
    assert (rec.problem_id, rec.sample_index, rec.grade.status, rec.valid) == ("p1", 0, "correct", True)
    assert rec.metrics.threads_per_block == [2] and [u.kind for u in rec.units] == [
        "trunk",
        "branch",
        "branch",
        "trunk",
    ]
    raw = tmp_path / "stage2.rollouts.jsonl"
    assert len(raw.read_text().splitlines()) == 8
    # resume: nothing is rolled out again; new limits rebuild the selection from every rollout
    assert _run("stage2", prompts, script, out, "--max-total-tokens", "10") == 0
    captured = capsys.readouterr()
    assert "0 trajectories to run, 8 already" in captured.err
    assert json.loads(captured.out)["dropped"] == {"wrong": 2, "too_long": 4, "invalid": 2}
    assert out.read_text() == "" and len(raw.read_text().splitlines()) == 8
    # a killed run: the last rollout lost; the rerun runs exactly that one
    lines = raw.read_text().splitlines()
    raw.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:30])
    assert _run("stage2", prompts, script, out) == 0
    assert "1 trajectories to run, 7 already" in capsys.readouterr().err
    assert len(raw.read_text().splitlines()) == 8 and len(out.read_text().splitlines()) == 4  # p1 x2, p3 x2


def test_stage0_sequential_keeps_correct_traces(tmp_path, capsys):
    prompts, script = problems_and_script(tmp_path)
    prompts.write_text(
        "".join(json.dumps({"id": f"p{i}", "problem": f"Q{i}", "answer": "7"}) + "\n" for i in (2, 3))
    )
    out = tmp_path / "seq.jsonl"
    assert _run("stage0", prompts, script, out) == 0
    assert json.loads(capsys.readouterr().out)["dropped"] == {"wrong": 2}
    recs = [r for _, r in read_records(out)]
    assert [(r.problem_id, r.sample_index) for r in recs] == [("p3", 0), ("p3", 1)]
    assert all(r.run.rollout["parallel"] is False and r.grade.correct for r in recs)
    assert _run("stage0", prompts, script, out, "--max-per-problem", "0") == 2
    assert "max-per-problem must be >= 1" in capsys.readouterr().err


def test_an_engine_error_is_its_own_drop_reason():
    from harness.grading import Grade
    from harness.records import SampleRecord
    from trainers.datagen.select import SelectConfig, select_records

    failed = SampleRecord("p1", 0, "", gold="7", end_reason="error", grade=Grade("no_answer", None, None))
    unanswered = SampleRecord("p2", 0, "<think>\nhm\n</think>", gold="7", end_reason="eos",
                              grade=Grade("no_answer", None, None))  # fmt: skip
    kept, dropped = select_records([failed, unanswered], SelectConfig())
    assert kept == [] and dropped == {"engine_error": 1, "wrong": 1}
