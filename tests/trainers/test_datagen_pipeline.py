"""`threadweaver datagen pipeline`: stage 0 -> 1 -> SFT -> 2 -> SFT from one YAML, end to end on this
machine (scripted engine for the rollouts, a real HTTP chat server for stage 1, two real SFT steps on a tiny
Qwen3), the summary of each stage, resume (nothing run twice), early refusal of bad config keys."""

from __future__ import annotations

import json

import pytest
import yaml
from chat_server import ChatServer, good_llm

from harness.errors import InputError
from harness.prompts import build_prompt
from harness.records import read_records
from threadweaver.cli import main

FILL = " because each term is checked" * 3
SEQ = ("<think>\nWe find x and y separately.\nFirst x = 3" + FILL + ".\nThen y = 4" + FILL
       + ".\nSo x + y = 7.\n</think>\n\\boxed{{{a}}}")  # fmt: skip
HEAD = "<think>\n<Parallel>\n<Outlines>\n<Outline>1: a</Outline>\n<Outline>2: b</Outline>\n</Outlines>"
JOINED = "\n<Thread>\n1: t</Thread><Thread>\n2: t</Thread>\n</Parallel>"


def setup(tmp_path, tiny_model_dir, server_url: str, **top) -> tuple:
    u = {q: build_prompt(q) for q in ("Q1", "Q2", "Q3")}
    problems = tmp_path / "problems.jsonl"
    problems.write_text(
        "".join(json.dumps({"id": f"p{i}", "problem": f"Q{i}", "answer": "7"}) + "\n" for i in (1, 2, 3))
    )
    seq = tmp_path / "seq_script.json"  # the base model: Q1 right, Q2 wrong, Q3 right but too short to split
    seq.write_text(json.dumps({u["Q1"]: SEQ.format(a=7), u["Q2"]: SEQ.format(a=5),
                               u["Q3"]: "<think>\nx + y = 7.\n</think>\n\\boxed{7}"}))  # fmt: skip
    par = tmp_path / "par_script.json"  # the stage-2 model: Q1 parallel and right, Q2 wrong, Q3 sequential
    par.write_text(json.dumps({u["Q1"]: HEAD, u["Q1"] + HEAD + JOINED: "\nSo 7.\n</think>\n\\boxed{7}",
                               u["Q2"]: "<think>\nguess\n</think>\n\\boxed{5}",
                               u["Q3"]: "<think>\nsum\n</think>\n\\boxed{7}", "*": " t</Thread>"}))  # fmt: skip
    rollout = {"engine": "scripted", "chat_template": False, "join": "orchestrator", "seed": 1}
    sft = {"max_steps": 2, "max_tokens": 1024, "learning_rate": 1e-3, "use_cpu": True, "num_threads": 1,
           "report_to": "none", "logging_steps": 1, "mask": "dense"}  # fmt: skip
    config = {
        "work_dir": str(tmp_path / "work"), "problems": str(problems),
        "stage0": {**rollout, "model": str(seq), "samples": 2},
        "stage1": {"base_url": server_url, "model": "test-llm", "min_saved_chars": 20, "backoff_s": 0.01},
        "sft1": {**sft, "model": str(tiny_model_dir)},
        "stage2": {**rollout, "model": str(par), "samples": 2, "min_self_parallelism": 1.05},
        "sft2": sft, **top,
    }  # fmt: skip
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, tmp_path / "work"


def test_pipeline_end_to_end_then_resumes_without_repeating(tmp_path, tiny_model_dir, capsys):
    with ChatServer(good_llm) as server:
        config, work = setup(tmp_path, tiny_model_dir, server.url)
        assert main(["datagen", "pipeline", "--config", str(config), "--json"]) == 0
        first_calls = len(server.calls)
        summary = json.loads(capsys.readouterr().out.splitlines()[-1])
        assert list(summary) == ["stage0", "stage1", "sft1", "stage2", "sft2"]
        # stage 0: 6 rollouts; Q2's two are wrong; Q1 and Q3 kept twice each
        assert (summary["stage0"]["in"], summary["stage0"]["kept"], summary["stage0"]["dropped"]) == (
            6,
            4,
            {"wrong": 2},
        )
        # stage 1: Q1's traces become parallel; Q3's (one short line) leave no block worth cutting
        s1 = summary["stage1"]
        assert (s1["in"], s1["kept"], s1["dropped"]) == (4, 2, {"step2_cut": {"no_block": 2}})
        assert [r.problem_id for _, r in read_records(work / "stage1.jsonl")] == ["p1", "p1"]
        assert all("<Parallel>" in r.response for _, r in read_records(work / "stage1.jsonl"))
        dropped = [json.loads(x) for x in (work / "stage1.work" / "dropped.jsonl").read_text().splitlines()]
        assert sorted((d["trace_id"], d["step"]) for d in dropped) == [("p3#0", 2), ("p3#1", 2)]
        # SFT 1 trained two steps on them; stage 2 kept Q1's parallel, right rollouts only; SFT 2 from SFT 1
        assert (summary["sft1"]["in"], summary["sft1"]["steps"], summary["sft1"]["skipped"]) == (2, 2, False)
        assert (work / "sft1" / "model.safetensors").is_file() and (
            work / "sft2" / "model.safetensors"
        ).is_file()
        s2 = summary["stage2"]
        assert (s2["in"], s2["kept"], s2["dropped"]) == (6, 2, {"wrong": 2, "low_acceleration": 2})
        assert (summary["sft2"]["in"], summary["sft2"]["steps"]) == (2, 2)
        assert all(
            isinstance(summary[s][k], float) for s in ("sft1", "sft2") for k in ("first_loss", "final_loss")
        )
        sft2_config = json.loads((work / "sft2" / "config.json").read_text())
        assert (
            sft2_config["vocab_size"] == json.loads((work / "sft1" / "config.json").read_text())["vocab_size"]
        )
        assert json.loads((work / "summary.json").read_text()) == summary
        capsys.readouterr()
        # rerun: no rollout, no LLM call, no training repeated; the same summary
        assert main(["datagen", "pipeline", "--config", str(config), "--json"]) == 0
        assert len(server.calls) == first_calls
    again = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert again["sft1"]["skipped"] and again["sft2"]["skipped"]
    assert {k: again[k] for k in ("stage0", "stage1", "stage2")} == {
        k: summary[k] for k in ("stage0", "stage1", "stage2")
    }


def test_a_stage_that_keeps_nothing_stops_the_pipeline(tmp_path, tiny_model_dir, capsys):
    # stage 2 on the untrained tiny model (hf engine): nothing right, the pipeline stops before SFT 2
    config, work = setup(tmp_path, tiny_model_dir, "http://127.0.0.1:9/v1", stages=["stage2", "sft2"])
    data = yaml.safe_load(config.read_text())
    data["stage2"] = {"engine": "hf", "model": str(tiny_model_dir), "budget_tokens": 24, "samples": 1,
                      "temperature": 0}  # fmt: skip
    config.write_text(yaml.safe_dump(data))
    assert main(["datagen", "pipeline", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "stage2 kept nothing; the pipeline stops" in err
    summary = json.loads((work / "summary.json").read_text())
    assert summary["stage2"]["in"] == 3 and summary["stage2"]["kept"] == 0
    assert sum(summary["stage2"]["dropped"].values()) == 3 and not (work / "sft2").exists()
    rollouts = [r for _, r in read_records(work / "stage2.rollouts.jsonl")]
    assert len(rollouts) == 3 and all(r.grade is not None and not r.grade.correct for r in rollouts)


@pytest.mark.parametrize(("patch", "message"), [
    ({"stage2": {"temprature": 1.0}}, "pipeline.yaml: stage2: unknown key 'temprature'; did you mean 'temperature'?"),
    ({"sft2": {"lerning_rate": 1.0}}, "pipeline.yaml: sft2: unknown key 'lerning_rate'; did you mean 'learning_rate'?"),
    ({"stage0": {"out": "x.jsonl"}}, "pipeline.yaml: stage0.out: set by the pipeline"),
    ({"stages": ["stage1", "stage0"]}, "pipeline.yaml: stages must be in pipeline order"),
    ({"stage1": {"concurrency": "many"}}, "pipeline.yaml: stage1: argument concurrency: invalid int value: 'many'"),
    ({"stage0": {"engine": "no-such-engine"}}, "stage0: argument engine: invalid choice: 'no-such-engine'"),
    ({"workdir": "x"}, "pipeline.yaml: unknown key 'workdir'; did you mean 'work_dir'?"),
    ({"problems": None}, "pipeline.yaml: problems: needed by stage0 and stage2"),
])  # fmt: skip
def test_bad_config_is_refused_before_any_stage_runs(tmp_path, tiny_model_dir, patch, message):
    config, work = setup(tmp_path, tiny_model_dir, "http://127.0.0.1:9/v1")
    data = yaml.safe_load(config.read_text())
    for key, value in patch.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and key in data else value
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError) as exc:
        from threadweaver.commands.datagen_pipeline import Pipeline

        Pipeline(str(config), [])
    assert message in str(exc.value) and not work.exists()
    assert main(["datagen", "pipeline", "--config", str(config)]) == 2


def test_readme_pipeline_config_is_accepted(tmp_path):
    from pathlib import Path

    from threadweaver.commands.datagen_pipeline import Pipeline

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("`pipeline.yaml` (keys in", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    config = tmp_path / "pipeline.yaml"
    config.write_text(block)
    pipeline = Pipeline(str(config), [f"work_dir={tmp_path / 'w'}", "stage2.samples=2"])
    assert pipeline.cfg.stages == ["stage0", "stage1", "sft1", "stage2", "sft2"]
    assert pipeline.args["stage0"].samples == 4 and pipeline.args["stage2"].samples == 2
    assert pipeline.args["stage2"].model == str(tmp_path / "w" / "sft1")
    assert pipeline.args["stage2"].min_self_parallelism == 1.05 and pipeline.args["stage1"].concurrency == 16
    assert pipeline.sft["sft2"].model == str(tmp_path / "w" / "sft1")
    assert pipeline.sft["sft1"].dataset_path == [str(tmp_path / "w" / "stage1.jsonl")]
