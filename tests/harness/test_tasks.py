"""The tw_* tasks: loading from THREADWEAVER_DATA_DIR, the paper's protocol, per-doc metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

from harness import samplestats  # noqa: E402
from harness.datasets import load_dataset_dict, load_docs, normalise  # noqa: E402
from harness.errors import InputError  # noqa: E402
from harness.prompts import PROMPT_SUFFIX  # noqa: E402

TASKS = Path(__file__).resolve().parents[2] / "tasks"
PAPER = {"tw_aime24": (30, 32), "tw_aime25": (30, 32), "tw_amc23": (40, 8), "tw_math500": (500, 1),
         "tw_minerva_math": (272, 4), "tw_olympiadbench": (675, 8)}  # fmt: skip


@pytest.fixture
def task_manager(shared_data, monkeypatch):
    from lm_eval.tasks import TaskManager

    monkeypatch.setenv("THREADWEAVER_DATA_DIR", str(shared_data))
    return TaskManager(include_path=str(TASKS))


def test_six_tasks_follow_the_paper_protocol(task_manager):
    assert "threadweaver_math" in task_manager.all_tasks
    tasks = task_manager.load(list(PAPER))["tasks"]
    for name, (count, repeats) in PAPER.items():
        task = next(t for key, t in tasks.items() if str(key).endswith(name))
        docs = list(task.test_docs())
        assert len(docs) == count and task.config.repeats == repeats, name
        gen = task.config.generation_kwargs
        assert (gen["temperature"], gen["max_gen_toks"], gen["do_sample"]) == (1.0, 40960, True)
        text = task.doc_to_text(docs[0])
        assert text == docs[0]["problem"].strip() + PROMPT_SUFFIX
        assert set(docs[0]) == {"id", "problem", "answer", "benchmark", "grading"}
        assert docs[0]["benchmark"] == name[3:]
        assert docs[0]["grading"] == ("minerva" if name == "tw_minerva_math" else "math")


def test_normalise_handles_hub_spellings():
    row = normalise({"question": "Q", "final_answer": ["$3$"], "id": 7}, "olympiadbench", 0, "x", grading="math")
    assert row == {"id": "olympiadbench-7", "problem": "Q", "answer": "$3$", "benchmark": "olympiadbench",
                   "grading": "math"}  # fmt: skip
    assert normalise({"problem": "P", "answer": 27.0}, "amc23", 4, "x", grading="math")["id"] == "amc23-4"


def test_load_docs_from_data_dir(shared_data):
    docs = load_docs("aime24", shared_data, grading={"compare": "math", "rel_tol": 0.01})
    assert docs[0]["id"].startswith("aime24-") and len(docs) == 30
    assert docs[0]["grading"] == "minerva"  # the rule's canonical name
    with pytest.raises(InputError, match="unknown grading rule 'aime'"):
        load_docs("aime24", shared_data, grading="aime")
    with pytest.raises(InputError, match="dataset_kwargs needs `grading`"):
        load_dataset_dict("aime24", data_dir=str(shared_data))


def test_no_data_dir_and_no_hub_fails_in_one_line(monkeypatch, capsys):
    """Issue 13 item 5: no $THREADWEAVER_DATA_DIR and no hub: one line naming the variable and the layout,
    exit 2, without waiting for the hub client's retries (one short request to an address that refuses)."""
    from huggingface_hub import constants

    monkeypatch.delenv("THREADWEAVER_DATA_DIR", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # the discard port: connection refused
    with pytest.raises(SystemExit) as exit_:
        load_dataset_dict("math500", grading="math")
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: benchmark math500: the hub is not reachable")
    assert "$THREADWEAVER_DATA_DIR=DIR with DIR/math500.jsonl" in err


def test_score_doc_grades_all_samples_and_reads_side_table():
    doc = {"id": "math500-z", "problem": "P", "answer": "\\frac{1}{2}", "benchmark": "math500", "grading": "math"}
    responses = ["so \\boxed{0.5}", "so \\boxed{1/2}", "so \\boxed{3}", "no box"]
    from harness.counting import TrajectoryMetrics
    from harness.records import SampleRecord

    metrics = TrajectoryMetrics(20, 10, 1, [2], 2.0, True, True, [], "tokens:t")
    samplestats.record(doc, responses[0], SampleRecord(problem_id="math500-z", sample_index=0, response=responses[0],
                                                       gold=doc["answer"], grading="math", metrics=metrics,
                                                       end_reason="eos", wall_s=1.0, engine_calls=3))  # fmt: skip
    m = samplestats.score_doc(doc, responses)
    assert m["acc"] == 0.5 and m["pass@k"] == 1.0 and m["maj@k"] == 1.0 and m["num_samples"] == 4
    assert m["activation_ratio"] == 0.25 and m["wall_s"] == 1.0  # only the first has backend stats
    wrong_majority = samplestats.score_doc(doc, ["\\boxed{3}", "\\boxed{3.0}", "\\boxed{0.5}"])
    assert wrong_majority["maj@k"] == 0.0 and wrong_majority["pass@k"] == 1.0
