"""One run's sample records feed `results build`, `regrade` and the SFT dataset loader without conversion."""

from __future__ import annotations

import json

from harness.formats import get_format
from harness.tokenizer import build_char_tokenizer
from threadweaver.cli import main

HEAD = "<think>\n<Parallel>\n<Outlines>\n<Outline>1: a</Outline>\n<Outline>2: b</Outline>\n</Outlines>"
SCRIPT = {
    "*": " x</Thread>",
    "Q1": HEAD,
    "Q2": "just \\boxed{4}</think>",
}


def test_rollout_records_feed_results_regrade_and_sft(tmp_path, capsys):
    tok_dir = tmp_path / "tok"
    tok = build_char_tokenizer(tok_dir)
    tw = get_format("threadweaver")
    joined = "Q1" + HEAD + tw.join_text([("1", " x</Thread>"), ("2", " x</Thread>")], "model")
    (tmp_path / "script.json").write_text(json.dumps({**SCRIPT, joined: "</Parallel> so \\boxed{7}</think>"}))
    problems = tmp_path / "math.jsonl"
    problems.write_text('{"id": "p1", "prompt": "Q1", "answer": "7"}\n{"id": "p2", "prompt": "Q2", "answer": "5"}\n')
    run = tmp_path / "run"
    records = run / "samples.jsonl"
    assert main(["rollout", str(problems), "--engine", "scripted", "--model", str(tmp_path / "script.json"),
                 "--tokenizer", str(tok_dir), "--out", str(records), "--no-chat-template", "--samples", "2",
                 "--seed", "0"]) == 0  # fmt: skip
    lines = [json.loads(x) for x in records.read_text().splitlines()]
    assert {(r["benchmark"], r["grade"]["status"]) for r in lines} == {("math", "correct"), ("math", "wrong")}
    # results build: the same file, no conversion
    assert main(["results", "build", str(run), "--model", "scripted-model", "--out", str(tmp_path / "results")]) == 0
    result = json.loads((tmp_path / "results" / "scripted-model__math.json").read_text())
    assert result["aggregates"]["accuracy"] == 0.5 and result["count_unit"].startswith("tokens:")
    assert result["format"] == "threadweaver" and result["engine"] == "scripted"
    # regrade: rewrites the grades in place
    assert main(["regrade", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["status"] == {"correct": 2, "wrong": 2}
    # the SFT loader: the rollout's own units (same tokenizer), packed as trees
    from trainers.sft.packing import pack
    from trainers.sft.trainer import read_dataset, trajectory_units

    data = read_dataset([str(records)])
    units = [trajectory_units(where, rec, tok, None) for where, rec in data]
    parallel = next(u for (_, r), u in zip(data, units, strict=True) if r.problem_id == "p1")
    assert len(parallel) == 5  # trunk, 2 threads, trunk after the join, the whole trajectory
    assert parallel[1].prompt_ids == tuple(tok.encode("Q1" + HEAD + "\n<Thread>\n1:"))
    assert parallel[-1].completion_ids[-1] == tok.eos_token_id  # ended on its own: EOS trained
    rows = pack(units, max_tokens=1024)
    assert sum(r.num_trajectories for r in rows) == 4
