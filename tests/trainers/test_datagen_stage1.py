"""`threadweaver datagen stage1` end to end against a real HTTP server speaking the OpenAI chat API
(tests/trainers/chat_server.py): the prompts sent, every drop reason, accounting, resume after SIGKILL,
and MATH500's gold solutions rewritten into records that validate, grade correct and train."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from chat_server import ChatServer, Reply, good_llm

from harness.records import read_records
from threadweaver.cli import main
from trainers.datagen.stage1.templates import load_templates

REPO = Path(__file__).resolve().parents[2]
FILL = " and so on" * 25  # 250 characters: each thread saves more than 200


def trace_lines(tag: str) -> list[str]:
    return ["We find x and y.", f"For x [{tag}]: x = 3 since{FILL}.",
            f"For y, using the value of x from above: y = 4 since{FILL}.", "So x + y = 7.",
            "The answer is $\\boxed{7}$."]  # fmt: skip


def write_records(path: Path, tags: list[str], gold: dict | None = None) -> None:
    """Stage-0 style sample records: a user turn, a sequential response, the gold answer."""
    lines = []
    for tag in tags:
        rec = {"schema_version": 1, "problem_id": tag, "sample_index": 0, "response": "\n".join(trace_lines(tag)),
               "gold": (gold or {}).get(tag, "7"), "grading": "math", "benchmark": "unit",
               "messages": [{"role": "user", "content": f"Problem {tag}: find x + y."}]}  # fmt: skip
        lines.append(json.dumps(rec) + "\n")
    path.write_text("".join(lines))


def tag_of(user: str) -> str:
    return re.search(r"For x \[(\w+)\]", user).group(1)  # thread 1 is in every step's prompt


def script(step: int, user: str, previous: int):
    """Per trace tag: the replies that drive it to one drop reason (or through)."""
    tag = tag_of(user)
    if step == 1:
        return {
            "malformed": Reply("Lines 2 and 3 are independent."),
            "truncated": Reply('{"parallel_blocks": [{"threads": [[2, 2], ', finish_reason="length"),
            "http": Reply(status=400),
            "noblock": Reply('{"steps": [], "parallel_blocks": []}'),
            "short": Reply('{"parallel_blocks": [{"threads": [[4, 4], [5, 5]]}]}'),
        }.get(tag, Reply('```json\n{"steps": [], "parallel_blocks": [{"threads": [[2, 2], [3, 3]]}]}\n```'))
    if step == 3:
        edit = {"editbad": ("from below", "x"), "tag": ("using the value of x from above", "</Thread>")}.get(
            tag, ("using the value of x from above", "on its own"))  # fmt: skip
        return Reply(json.dumps({"edits": [{"find": edit[0], "replace": edit[1]}]}))
    outlines = ["Find x."] if tag == "outlinebad" else ["Find x.", "Find y."]
    return Reply(json.dumps({"outlines": outlines}))


def stage1(traces: Path, out: Path, server: ChatServer, *extra: str) -> int:
    return main(["datagen", "stage1", str(traces), "--base-url", server.url, "--model", "test-llm", "--out", str(out),
                 "--backoff-s", "0.01", "--usd-per-mtok", "1.5", "10", *extra])  # fmt: skip


def test_prompts_sent_and_the_record_written(tmp_path, monkeypatch, capsys):
    traces, out = tmp_path / "seq.jsonl", tmp_path / "s1.jsonl"
    write_records(traces, ["good"])
    monkeypatch.setenv("MY_LLM_KEY", "sekret-123")
    with ChatServer(script) as server:
        assert stage1(traces, out, server, "--api-key-env", "MY_LLM_KEY") == 0
    t = load_templates()
    lines = trace_lines("good")
    thread1, thread2 = lines[1], lines[2]
    want = [
        t[1].messages(problem="Problem good: find x + y.", numbered="\n".join(f"{i}: {s}" for i, s in enumerate(lines, 1))),
        t[3].messages(number="2", thread=thread2, siblings=f"Part 1:\n<<<\n{thread1}\n>>>"),
        t[4].messages(count="2", context=lines[0], parts=f"Part 1:\n<<<\n{thread1}\n>>>\n\n"
                      f"Part 2:\n<<<\n{thread2.replace('using the value of x from above', 'on its own')}\n>>>"),
    ]  # fmt: skip
    assert [c["body"]["messages"] for c in server.calls] == want
    assert {c["body"]["model"] for c in server.calls} == {"test-llm"}
    assert {c["auth"] for c in server.calls} == {"Bearer sekret-123"}
    [(_, rec)] = list(read_records(out))
    assert rec.response == (
        "We find x and y.\n<Parallel>\n<Outlines>\n<Outline>1: Find x.</Outline>\n<Outline>2: Find y.</Outline>\n"
        f"</Outlines>\n<Thread>\n1: For x [good]: x = 3 since{FILL}.</Thread><Thread>\n2: For y, on its own: y = 4 since{FILL}."
        "</Thread>\n</Parallel>\nSo x + y = 7.\nThe answer is $\\boxed{7}$.")  # fmt: skip
    assert (rec.problem_id, rec.gold, rec.grade.status, rec.metrics.valid, rec.metrics.threads_per_block) == (
        "good", "7", "correct", True, [2])  # fmt: skip
    assert rec.messages == [{"role": "user", "content": "Problem good: find x + y."}] and rec.units == []
    journal = [
        json.loads(x) for x in (tmp_path / "s1.work" / "step1_structure.jsonl").read_text().splitlines()
    ]
    assert journal[0]["key"] == "good#0" and journal[0]["prompt"] == "step1_structure@1"
    written = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file()) + capsys.readouterr().err
    assert "sekret" not in written  # the key is never logged or stored


TAGS = ["malformed", "truncated", "http", "noblock", "short", "editbad", "outlinebad", "tag", "wrong", "good"]


def test_every_drop_reason_accounting_and_rerun(tmp_path, capsys):
    traces, out = tmp_path / "seq.jsonl", tmp_path / "s1.jsonl"
    write_records(traces, TAGS, gold={"wrong": "8"})
    with ChatServer(script) as server:
        assert stage1(traces, out, server, "--json") == 0
        summary = json.loads(capsys.readouterr().out)
        dropped = {
            d["trace_id"]: d
            for d in map(json.loads, (tmp_path / "s1.work" / "dropped.jsonl").read_text().splitlines())
        }
        assert {k.removesuffix("#0"): (d["step"], d["reason"].split(":")[0]) for k, d in dropped.items()} == {
            "malformed": (1, "malformed"), "truncated": (1, "truncated"), "http": (1, "llm_error"),
            "noblock": (2, "no_block"), "short": (2, "no_block"), "editbad": (3, "edit_not_found"),
            "outlinebad": (4, "outline_count"), "tag": (5, "invalid_format"), "wrong": (5, "wrong_answer")}  # fmt: skip
        assert dropped["short#0"]["notes"] == ["too_little_saved: block 1 saves 13 characters (at least 200)"]
        assert dropped["http#0"]["reason"].startswith("llm_error: HTTP 400")
        assert summary["survived"] == {"step1_structure": 7, "step2_cut": 5, "step3_decouple": 4,
                                       "step4_outlines": 3, "step5_check": 1}  # fmt: skip
        assert summary["dropped"]["step5_check"] == {"invalid_format": 1, "wrong_answer": 1}
        calls = {"step1_structure": 10, "step3_decouple": 5, "step4_outlines": 4}
        assert {k: (u["calls"], u["new_calls"]) for k, u in summary["usage"].items()} == {
            k: (v, v) for k, v in calls.items()
        }
        assert len(server.calls) == 19 and summary["usage"]["step3_decouple"]["prompt_tokens"] == 500
        # 18 calls with usage (100 prompt, 20 completion tokens); the HTTP 400 one has none
        assert summary["cost_usd"] == round(18 * (100 * 1.5 + 20 * 10) / 1e6, 6)
        assert [r.problem_id for _, r in read_records(out)] == ["good"]
        # a rerun asks nothing again and writes nothing twice
        assert stage1(traces, out, server, "--json") == 0
        again = json.loads(capsys.readouterr().out)
        assert len(server.calls) == 19 and sum(u["new_calls"] for u in again["usage"].values()) == 0
        assert again["survived"] == summary["survived"] and len(out.read_text().splitlines()) == 1
        assert stage1(traces, out, server, "--retry-errors") == 0  # only the failed call is asked again
        assert len(server.calls) == 20 and server.calls[-1]["body"]["messages"][1]["content"].startswith(
            "Below is a worked solution"
        )


def test_resume_after_sigkill_repeats_no_finished_call(tmp_path):
    traces, out = tmp_path / "seq.jsonl", tmp_path / "s1.jsonl"
    tags = [f"t{i}" for i in range(8)]
    write_records(traces, tags)
    with ChatServer(script, delay_s=0.1) as server:
        cmd = [sys.executable, "-m", "threadweaver.cli", "datagen", "stage1", str(traces), "--base-url", server.url,
               "--model", "m", "--out", str(out), "--concurrency", "1"]  # fmt: skip
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while len(server.calls) < 10 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        first = len(server.calls)
        journals = [json.loads(x) for p in sorted((tmp_path / "s1.work").glob("step*.jsonl"))
                    for x in p.read_text().splitlines() if x.endswith("}")]  # fmt: skip
        assert 0 < len(journals) < 24 and first < 24  # killed mid-run
        finished = {server.calls[int(e["response_id"].removeprefix("call-"))]["hash"] for e in journals}
        assert (
            main(
                [
                    "datagen",
                    "stage1",
                    str(traces),
                    "--base-url",
                    server.url,
                    "--model",
                    "m",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        repeated = [c for c in server.calls[first:] if c["hash"] in finished]
        assert repeated == []
        assert len({c["hash"] for c in server.calls}) == 24  # 8 traces x (step 1, 3, 4)
    ids = [r.problem_id for _, r in read_records(out)]
    assert sorted(ids) == tags  # every trace once, the ones written before the kill not again


def test_math500_solutions_become_valid_correct_training_records(tmp_path, shared_data, capsys):
    rows = [json.loads(x) for x in (shared_data / "math500.jsonl").read_text().splitlines()]
    picked = [r for r in rows if len(r["solution"]) > 700 and r["solution"].count("\n") >= 4][:4]
    traces, out = tmp_path / "math500_solutions.jsonl", tmp_path / "s1.jsonl"
    traces.write_text("".join(json.dumps(r) + "\n" for r in picked))
    with ChatServer(good_llm) as server:
        assert main(["datagen", "stage1", str(traces), "--trace-field", "solution", "--base-url", server.url,
                     "--model", "m", "--out", str(out), "--json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    by_id = {rec.problem_id: rec for _, rec in read_records(out)}
    records = [by_id[row["id"]] for row in picked]
    assert summary["kept"] == len(by_id) == 4
    from harness.formats import get_format
    from harness.grading import grade_many

    fmt = get_format("threadweaver")
    assert all(fmt.validate(r.response) == [] and r.metrics.threads_per_block == [2] for r in records)
    grades = grade_many([(r.response, row["answer"], "math") for r, row in zip(records, picked, strict=True)])
    assert [g.status for g in grades] == ["correct"] * 4
    assert [r.messages[0]["content"].split(" Let's think")[0] for r in records] == [
        row["problem"] for row in picked
    ]
    assert main(["datagen", "stats", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["size"], stats["parallel_ratio"], stats["num_blocks"], stats["threads_per_block"]) == (
        4,
        1.0,
        1.0,
        2.0,
    )
    assert stats["critical_path_tokens"] < stats["total_tokens"] and stats["self_parallelism"] > 1.0
    assert stats["parallel_path_tokens"] < stats["tokens_per_block"]
    # the SFT trainer reads them: each record cuts into the rollout's units (trunk, 2 threads, trunk, whole)
    from harness.tokenizer import build_char_tokenizer
    from trainers.sft.trainer import trajectory_units

    tok = build_char_tokenizer()
    units = trajectory_units("r", records[0], tok, "model")
    tails = [tok.decode(list(u.prompt_ids))[-12:] for u in units]
    assert len(units) == 5 and sum(t.endswith(("<Thread>\n1:", "<Thread>\n2:")) for t in tails) == 2


def test_changed_trace_is_asked_again_and_bad_input_is_one_line(tmp_path, capsys):
    traces, out = tmp_path / "seq.jsonl", tmp_path / "s1.jsonl"
    write_records(traces, ["good"])
    with ChatServer(script) as server:
        assert stage1(traces, out, server) == 0
        assert server.steps() == [1, 3, 4]
        traces.write_text(traces.read_text().replace("Problem good:", "Problem good, restated:"))
        assert stage1(traces, out, server) == 0  # only step 1's prompt changed: only it is asked again
        assert server.steps() == [1, 3, 4, 1] and len(out.read_text().splitlines()) == 1
    capsys.readouterr()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "p1", "problem": "Q", "answer": "1"}\n')
    assert main(["datagen", "stage1", str(bad), "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
                 "--out", str(out)]) == 2  # fmt: skip
    assert capsys.readouterr().err.strip() == f"error: {bad}:1: needs a string field `solution`"
    assert main(["datagen", "stage1", str(traces), "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
                 "--out", str(out), "--format", "parallel-r1"]) == 2  # fmt: skip
    assert "stage 1 writes formats without a runtime summary part" in capsys.readouterr().err
