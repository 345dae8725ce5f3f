"""`threadweaver rollout` and `bench rollout` in-process, on the scripted engine: records, resume, torn line."""

from __future__ import annotations

import json

import pytest

from harness.bench import PAPER_STATS, paper_structure, structures_from_records
from threadweaver.cli import main

HEAD = "<Parallel><Outlines><Outline>1: a</Outline><Outline>2: b</Outline></Outlines>"


@pytest.fixture
def files(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"id": "p1", "prompt": "Q1", "answer": "7"}\n{"id": "p2", "prompt": "Q2"}\n')
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"Q1": HEAD, "Q2": "plain answer", "*": " t</Thread>"}))
    return prompts, script, tmp_path / "out.jsonl"


def _run(prompts, script, out, *extra):
    return main(["rollout", str(prompts), "--engine", "scripted", "--model", str(script), "--out", str(out),
                 "--join", "orchestrator", "--max-steps", "1", "--no-chat-template", *extra])  # fmt: skip


def test_rollout_writes_one_record_per_sample_and_resumes(files, capsys):
    prompts, script, out = files
    assert _run(prompts, script, out, "--samples", "2", "--seed", "5") == 0
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted((r["problem_id"], r["sample_index"]) for r in recs) == [("p1", 0), ("p1", 1), ("p2", 0), ("p2", 1)]
    p1 = next(r for r in recs if r["problem_id"] == "p1")
    assert p1["metrics"]["threads_per_block"] == [2] and p1["end_reason"] == "max_steps" and p1["seed"] in (5, 6)
    assert p1["gold"] == "7" and p1["grade"]["status"] == "truncated" and p1["grading"] == "math"
    assert p1["run"]["format"] == "threadweaver" and p1["run"]["rollout"]["join"] == "orchestrator"
    assert [u["kind"] for u in p1["units"]] == ["trunk", "branch", "branch"] and p1["prompt"] == "Q1"
    assert next(r for r in recs if r["problem_id"] == "p2")["grade"] is None  # no answer: not graded
    # a killed run: drop one record, leave a torn half line; the re-run completes exactly the missing one
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])
    assert _run(prompts, script, out, "--samples", "2", "--seed", "5") == 0
    again = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(again) == 4
    assert {(r["problem_id"], r["sample_index"]) for r in again} == {(r["problem_id"], r["sample_index"]) for r in recs}
    assert "1 trajectories to run, 3 already" in capsys.readouterr().err


def test_rollout_retries_engine_errors_on_rerun(files, capsys):
    """A record that ended in an engine error is not a finished sample: the rerun retries it and the file keeps
    one record per sample."""
    prompts, script, out = files
    assert _run(prompts, script, out) == 0
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    first = sorted((r["problem_id"], r["end_reason"]) for r in recs)
    recs[0]["end_reason"] = "error"  # as the rollout writes a sample whose engine call raised
    out.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert _run(prompts, script, out) == 0
    again = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted((r["problem_id"], r["end_reason"]) for r in again) == first
    err = capsys.readouterr().err
    assert "1 records in" in err and "engine error: retrying" in err and "1 trajectories to run, 1 already" in err


def test_rollout_bad_input_is_one_error_line(files, capsys):
    prompts, script, out = files
    prompts.write_text('{"id": "p1", "text": "Q1"}\n')
    assert _run(prompts, script, out) == 2
    assert "prompts.jsonl:1: needs a string field `problem` (or `prompt`)" in capsys.readouterr().err
    assert _run(files[0], script, out, "--top-p", "1.5") == 2


def test_unknown_engine_suggests(files, capsys):
    prompts, script, out = files
    assert main(["rollout", str(prompts), "--engine", "vlm", "--model", "m", "--out", str(out)]) == 2
    assert "invalid choice: 'vlm'" in capsys.readouterr().err


def test_paper_preset_reproduces_published_self_parallelism():
    for bench, (total, sp) in PAPER_STATS.items():
        s = paper_structure(bench, scale=1)
        assert abs(s.total_tokens - total) <= 10
        assert abs(s.total_tokens / s.critical_path_tokens - sp) < 0.005
        assert sum(isinstance(x, list) for x in s.items) == 4


def test_structures_from_rollout_records(files):
    prompts, script, out = files
    assert _run(prompts, script, out) == 0
    structs = sorted(repr(s.items) for s in structures_from_records(out))
    # hand-counted char tokens: HEAD = 5 tags + "1: a" + "2: b" = 15; " t</Thread>" = 3; "plain answer" = 12
    assert structs == ["[12]", "[15, [3, 3]]"]


def test_no_request_runs_past_the_models_context(tmp_path, capsys):
    """`threadweaver rollout` stops every request where the model's context ends (its config.json), as the
    lm-eval backend does: toy-threadweaver run as Parallel-R1 forks at its own `<Parallel>` and its paths
    would otherwise generate to Parallel-R1's 4,096-token path cap."""
    import shutil
    from pathlib import Path

    from threadweaver_tasks.toy import make_split, user_message

    model = tmp_path / "toy"
    shutil.copytree(Path(__file__).resolve().parents[2] / "models/toy-threadweaver", model)
    config = json.loads((model / "config.json").read_text())
    config["max_position_embeddings"] = 200
    (model / "config.json").write_text(json.dumps(config))
    p = make_split("test", 1)[0]
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"id": "p0", "prompt": user_message(p), "answer": p.answer}) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["rollout", str(prompts), "--engine", "hf", "--model", str(model), "--format", "parallel-r1",
                 "--out", str(out)]) == 0  # fmt: skip
    record = json.loads(out.read_text())
    assert record["run"]["rollout"]["max_context_tokens"] == 200
    assert all(u["context_tokens"] + len(u["inserted_ids"]) + len(u["completion_ids"]) <= 200 for u in record["units"])
