"""`threadweaver grade` and `threadweaver regrade`, run in-process through threadweaver.cli.main."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from threadweaver.cli import main

pytestmark = pytest.mark.core

SAMPLES = [
    {"response": "so \\boxed{025}", "gold": "25", "grading": "math"},
    {"response": "\\boxed{26}", "gold": "27.0", "grading": "math"},
    {"response": "no box", "gold": "1", "grading": "digits"},
    {"response": "\\boxed{\\dfrac12}", "gold": "0.5", "grading": "math"},
    {"response": "\\boxed{1, 2}", "gold": "$2$, $1$", "grading": "minerva"},
]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_grade_json_one_line_per_sample_in_order(tmp_path, capsys):
    f = write_jsonl(tmp_path / "s.jsonl", SAMPLES)
    assert main(["grade", str(f), "--json"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["index"] for o in out] == list(range(5))
    assert [o["status"] for o in out] == ["correct", "wrong", "no_answer", "correct", "correct"]
    assert out[0]["extracted"] == "025" and out[2]["extracted"] is None
    assert set(out[0]) == {"index", "status", "extracted"}


def test_grade_table_and_summary(tmp_path, capsys):
    f = write_jsonl(tmp_path / "s.jsonl", SAMPLES)
    assert main(["grade", str(f), "--workers", "1", "--deadline-s", "3"]) == 0
    out = capsys.readouterr().out
    assert "minerva" in out and "digits" in out
    assert "correct           3" in out and "no_answer         1" in out
    assert "accuracy         0.6000  (3/5)" in out


def test_grade_bad_input_names_file_line_and_field(tmp_path, capsys):
    cases = [
        ('{"response": "x"}', "missing field `gold`"),
        ('{"response": "x", "answer": "1"}', "the gold answer of a sample is field `gold`"),
        ('{"response": "x", "gold": "1", "grading": "gsm8k"}', "field `grading`: unknown grading rule"),
        ('{"response": "x", "gold": "1", "benchmark": "aime24"}', "add a `grading` field"),
        ("{not json", "bad JSON"),
        ('{"response": 3, "gold": "1", "grading": "digits"}', "field `response` must be a string"),
    ]
    for bad, message in cases:
        f = tmp_path / "bad.jsonl"
        f.write_text(json.dumps(SAMPLES[0]) + "\n" + bad + "\n")
        assert main(["grade", str(f)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {f}:2: ") and message in err, err
    assert main(["grade", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["grade", str(f), "--workers", "0"]) == 2
    assert main(["grade", str(f), "--rule", "minerv"]) == 2
    assert "--rule: unknown grading rule 'minerv'; did you mean 'minerva'?" in capsys.readouterr().err


def test_grade_rule_flag_and_default(tmp_path, capsys):
    rows = [{"response": "\\boxed{4.47e33}", "gold": "4.5e33", "benchmark": "minerva_math"},
            {"response": "\\boxed{4.47e33}", "gold": "4.5e33"},
            {"response": "\\boxed{4.47e33}", "gold": "4.5e33", "grading": "math"}]  # fmt: skip
    f = write_jsonl(tmp_path / "s.jsonl", rows)
    assert main(["grade", str(f), "--json", "--rule", "minerva"]) == 0
    out = [json.loads(line)["status"] for line in capsys.readouterr().out.splitlines()]
    assert out == ["correct", "correct", "wrong"]  # a line's own `grading` wins over --rule
    f = write_jsonl(tmp_path / "s.jsonl", rows[1:])
    assert main(["grade", str(f), "--json"]) == 0  # no --rule: "math"
    out = [json.loads(line)["status"] for line in capsys.readouterr().out.splitlines()]
    assert out == ["wrong", "wrong"]


def _record(benchmark, gold, response, end_reason, pid, k, **kw):
    from harness.records import SampleRecord

    return SampleRecord(problem_id=pid, sample_index=k, response=response, benchmark=benchmark, gold=gold,
                        end_reason=end_reason, **kw)


def _write_records(path, recs):
    from harness.records import RecordWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    with RecordWriter(path) as out:
        for r in recs:
            out.write(r)
    return path


def test_regrade_rewrites_grades_of_record_files(tmp_path, capsys):
    from harness.grading import Grade

    run = tmp_path / "run" / "aime24"
    recs = [
        _record("aime24", "025", "\\boxed{25}", "eos", "0", 0, grade=Grade("wrong", None), wall_s=9.0),
        _record("aime24", "025", "cut off", "budget", "0", 1),
        _record("math500", "\\frac{1}{2}", "\\boxed{0.5}", "eos", "1", 0),
        _record("math500", "3", "\\boxed{4}", "eos", "2", 0),
    ]  # fmt: skip
    path = _write_records(run / "threadweaver_trajectories_T.jsonl", recs)
    (run / "samples_tw_aime24.jsonl").write_text('{"doc_id": 0}\n')  # lm-eval's own file: left alone
    assert main(["regrade", str(tmp_path / "run")]) == 2  # no rule in the records, none given
    assert "no `grading` rule in the record; pass --rule" in capsys.readouterr().err
    assert main(["regrade", str(tmp_path / "run"), "--rule", "math"]) == 0
    out = capsys.readouterr().out
    new = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["grade"]["status"] for r in new] == ["correct", "truncated", "correct", "wrong"]
    assert [r["grade"]["extracted"] for r in new] == ["25", None, "0.5", "4"]
    assert new[0]["wall_s"] == 9.0 and new[2]["problem_id"] == "1"  # other fields kept
    assert "aime24            0.5000  (1/2)" in out and "math500           0.5000  (1/2)" in out
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    assert [r["grading"] for r in new] == ["math"] * 4  # the rule is recorded: no --rule needed again
    assert (run / "samples_tw_aime24.jsonl").read_text() == '{"doc_id": 0}\n'
    assert main(["regrade", str(tmp_path / "run"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == {"correct": 2, "truncated": 1, "wrong": 1}


def test_regrade_bad_input(tmp_path, capsys):
    assert main(["regrade", str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["regrade", str(tmp_path)]) == 2
    assert "no sample-record files" in capsys.readouterr().err
    good = _record("toy", "1", "\\boxed{1}", "eos", "a", 0, grading="digits")
    path = _write_records(tmp_path / "t.jsonl", [good, _record("toy", None, "x", "eos", "b", 0, grading="digits")])
    before = path.read_text()
    assert main(["regrade", str(tmp_path)]) == 2
    assert f"{path}:2: field `gold` is needed to grade" in capsys.readouterr().err
    assert path.read_text() == before  # nothing written when any line is bad


def test_grade_explain_names_rule_and_deciding_comparison(tmp_path, capsys):
    rows = [{"response": "so \\boxed{025}", "gold": "25"},
            {"response": "\\boxed{8/5}", "gold": "1.6", "grading": "minerva"},
            {"response": "\\boxed{4.47e33}", "gold": "4.5e33", "grading": "minerva"},
            {"response": "</think>\\boxed{(1,2)} and \\boxed{(3,4)}", "gold": "(3,4), (1,2)"},
            {"response": "no box", "gold": "1"}]  # fmt: skip
    f = write_jsonl(tmp_path / "s.jsonl", rows)
    assert main(["grade", str(f), "--explain", "--json"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(o["rule"], o["status"], o["decided_by"]) for o in out] == [
        ("math", "correct", "integer"), ("minerva", "correct", "math-verify"),
        ("minerva", "correct", "numeric tolerance"), ("math", "correct", "list match"),
        ("math", "no_answer", None)]  # fmt: skip
    assert out[3]["extracted"] == "(1,2), (3,4)"
    assert main(["grade", str(f), "--explain"]) == 0
    text = capsys.readouterr().out
    assert "decided by" in text and "numeric tolerance" in text and "no answer found" in text
    assert 'minerva: {"compare": "math", "rel_tol": 0.01}' in text and "decimal comma is never guessed" in text
