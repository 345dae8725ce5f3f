"""`bench rollout` through the real rollout: the fixed-length wrapper makes `harness.rollout.run_rollouts`
write exactly the structure asked for (scripted engine writing "z", the char tokenizer: hand-counted
texts and counts), on hf too; mismatches are errors; structures from sample records; the timing path end
to end on the hf engine and the CLI."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from harness.bench import bench_rollout, paper_structures, structures_from_records
from harness.counting import measure_text
from harness.engines.base import Request
from harness.engines.scripted import ScriptedEngine
from harness.formats import get_format
from harness.records import RecordWriter
from harness.rollout import run_rollouts
from harness.workload import FixedLengthEngine, Structure, WorkloadError, compile_steps, prefill_tokens
from threadweaver.cli import main

PLAN2 = "<Parallel>\n<Outlines>\n<Outline>1: part 1</Outline>\n<Outline>2: part 2</Outline>\n</Outlines>"
PLAN2_TOKENS = 4 + 2 * 12 + 1  # <Parallel> \n <Outlines> \n, 2 x (<Outline> "1: part 1" </Outline> \n), </Outlines>


@pytest.fixture(scope="module")
def zengine():
    return ScriptedEngine({"*": "z" * 4000})  # every request: as many "z" as asked (ignore_eos, max_tokens)


def _roll(inner, fmt, join, structures, parallel=True, prompts=None, **cfg):
    wl = FixedLengthEngine(inner, fmt, join, parallel=parallel)
    prompts = prompts or [inner.tokenizer.encode(f"Q{i}?", add_special_tokens=False) for i in range(len(structures))]
    for p, s in zip(prompts, structures, strict=True):
        wl.add(p, s)
    config = dataclasses.replace(wl.rollout_config(temperature=0.0), **cfg)
    records = asyncio.run(run_rollouts(wl, prompts, config))
    return wl, records


def _generated(rec, tok) -> Structure:
    """The structure the engine generated, read back from the record's units: the "z" of each request."""
    items, fork = [], None
    for u in rec.units:
        n = tok.decode(u.completion_ids, skip_special_tokens=False).count("z")
        if u.kind != "branch":
            items.append(n)
            fork = None
        elif fork == u.context_tokens:
            items[-1].append(n)
        else:
            items.append([n])
            fork = u.context_tokens
    return Structure(items)


@pytest.mark.parametrize("join", ["orchestrator", "model"])
def test_threadweaver_record_has_the_structure_exactly(zengine, join):
    s = Structure([3, [2, 4], 5])
    wl, [rec] = _roll(zengine, "threadweaver", join, [s])
    wl.check([rec])
    # orchestrator join: the runtime appends "\n</Parallel>"; model join: it appends "\n" and the next trunk
    # request writes "</Parallel>" (structural, from the wrapper) before its 5 generated tokens
    assert len(zengine.tokenizer.encode(PLAN2, add_special_tokens=False)) == PLAN2_TOKENS
    assert rec.response == "zzz" + PLAN2 + "\n<Thread>\n1:zz</Thread><Thread>\n2:zzzz</Thread>\n</Parallel>zzzzz"
    assert rec.end_reason == "eos" and rec.faults == [] and rec.error is None and rec.valid
    m = rec.metrics
    assert (m.num_blocks, m.threads_per_block) == (1, [2])
    # hand count: 3 + 29 (plan) + 2 ("\n<Thread>") + 5 ("\n1:zz") + 1 + 1 + 7 ("\n2:zzzz") + 1 + 2 + 5
    assert (m.total_tokens, m.critical_path_tokens) == (56, 51)
    # 42 structural tokens, all on the critical path but branch 1's header "\n1:"
    assert m.total_tokens == s.total_tokens + 42 and m.critical_path_tokens == s.critical_path_tokens + 42 - 3
    text = measure_text(rec.response, zengine.tokenizer, "threadweaver")  # the text counter agrees
    assert (text.total_tokens, text.critical_path_tokens, text.threads_per_block) == (56, 51, [2])
    g = _generated(rec, zengine.tokenizer)
    assert g.items == [3, [2, 4], 5] and [len(c.generated_ids) for c in wl.calls(0)] == [3, 2, 4, 5]


def test_threadweaver_longer_structure_both_joins_and_sequential(zengine):
    s = Structure([0, [1, 6, 2], 4, 3, [5, 5], 0, [2]], "edges")  # leading block, ints in a row, trailing block
    for join in ("orchestrator", "model"):
        wl, recs = _roll(zengine, "threadweaver", join, [s, Structure([7])])
        wl.check(recs)
        rec = recs[0]
        assert rec.metrics.threads_per_block == [3, 2, 1] and recs[1].metrics.num_blocks == 0
        assert rec.valid and rec.end_reason == "eos"
        g = _generated(rec, zengine.tokenizer)
        assert (g.total_tokens, g.critical_path_tokens) == (s.total_tokens, s.critical_path_tokens) == (28, 20)
        assert [b for b in g.blocks] == s.blocks
        text = measure_text(rec.response, zengine.tokenizer, "threadweaver")
        assert (text.total_tokens, text.critical_path_tokens) == (rec.metrics.total_tokens, rec.metrics.critical_path_tokens)
    wl, [rec] = _roll(zengine, "threadweaver", "orchestrator", [s], parallel=False)
    wl.check([rec])
    assert rec.response == "z" * 28 and rec.metrics.total_tokens == 28 and rec.engine_calls == 1


def test_parallel_r1_record_has_the_structure_exactly(zengine):
    s = Structure([3, [2, 4], 5])
    wl, [rec] = _roll(zengine, "parallel-r1", None, [s])
    wl.check([rec])
    # the segment after the block: summary 3 ("zzz</Summary>"), then the trunk 2 and the end of sequence
    assert rec.response == "zzz<Parallel><Path>zz</Path><Path>zzzz</Path></Parallel>\n<Summary>zzz</Summary>zz"
    assert [u.kind for u in rec.units] == ["trunk", "branch", "branch", "summary", "trunk"]
    assert rec.end_reason == "eos" and rec.valid and rec.metrics.threads_per_block == [2]
    g = _generated(rec, zengine.tokenizer)
    assert g.items == [3, [2, 4], 3, 2] and g.total_tokens == s.total_tokens
    # the paper preset (4 blocks of 2): the trajectory ends after the 4th summary, which takes the last segment
    p = paper_structures(100)[0]
    wl, [rec] = _roll(zengine, "parallel-r1", None, [p])
    wl.check([rec])
    g = _generated(rec, zengine.tokenizer)
    assert rec.end_reason == "max_blocks" and rec.metrics.threads_per_block == [2, 2, 2, 2]
    assert (g.total_tokens, g.critical_path_tokens) == (p.total_tokens, p.critical_path_tokens)
    assert rec.units[-1].kind == "summary" and g.items[-1] == p.items[-1]


def test_the_wrapper_refuses_what_the_structure_does_not_hold(zengine):
    with pytest.raises(WorkloadError, match="2 paths, got 3"):
        compile_steps(Structure([1, [1, 1, 1], 1]), "parallel-r1", "runtime")
    with pytest.raises(WorkloadError, match="5 blocks; the format ends a trajectory after 4"):
        compile_steps(Structure([1] + [[1, 1], 1] * 5), "parallel-r1", "runtime")
    wl = FixedLengthEngine(zengine, "threadweaver", "orchestrator")
    wl.add([5, 6, 7], Structure([2]))
    with pytest.raises(WorkloadError, match="no registered prompt"):
        asyncio.run(wl.generate(Request([9, 9, 9, 9], 10)))
    with pytest.raises(WorkloadError, match="prefix of another"):
        wl.add([5, 6], Structure([1]))
    branch = Request([5, 6, 7], 10, stop_token_ids=zengine.tokenizer.encode("</Thread>", add_special_tokens=False))
    with pytest.raises(WorkloadError, match="a branch request with no open block branch left"):
        asyncio.run(wl.generate(branch))
    # the rollout runs only 1 of the 2 branches (max_branches=1): its next trunk request is refused
    wl, recs = _roll(zengine, "threadweaver", "orchestrator", [Structure([3, [2, 4], 5])], max_branches=1)
    assert recs[0].end_reason == "error"
    with pytest.raises(WorkloadError, match="still has 1 branch"):
        wl.check(recs)
    # a budget below the structure: the wrapper says so instead of generating less
    wl, recs = _roll(zengine, "threadweaver", "orchestrator", [Structure([50])], budget_tokens=20)
    with pytest.raises(WorkloadError, match="allows 20 tokens, the structure needs 50"):
        wl.check(recs)


def test_prefill_counts_the_join_and_the_structural_text(zengine):
    wl, recs = _roll(zengine, "threadweaver", "orchestrator", [Structure([3, [2, 4], 5])])
    calls = wl.calls(0)
    # prompt "Q0?" 3 | branch 1: "z" (the last generated token, never computed) + plan 29 + "\n<Thread>\n1:" 5
    # | branch 2: "2:" 2 | trunk: "z" (branch 1's last) + "</Thread>" + "<Thread>" + "\n2:zzzz" 7 + "</Thread>"
    # + "\n</Parallel>" 2
    assert [c.kind for c in calls] == ["trunk", "branch", "branch", "trunk"]
    assert prefill_tokens(calls) == 3 + (1 + PLAN2_TOKENS + 5) + 2 + (1 + 1 + 1 + 7 + 1 + 2)
    expected = prefill_tokens(calls)
    # model join: the trunk writes "</Parallel>" itself; the wrapper puts it at the end of the inner prompt,
    # so the 5 generated tokens follow it in the engine's KV exactly as in the context (same prefill)
    wl, _ = _roll(zengine, "threadweaver", "model", [Structure([3, [2, 4], 5])])
    close = zengine.tokenizer.encode("</Parallel>", add_special_tokens=False)
    assert wl.calls(0)[3].prompt_ids[-2:] == zengine.tokenizer.encode("\n", add_special_tokens=False) + close
    assert prefill_tokens(wl.calls(0)) == expected
    wl, _ = _roll(zengine, "threadweaver", "orchestrator", [Structure([3, [2, 4], 5])], parallel=False)
    assert prefill_tokens(wl.calls(0)) == 3


def test_structures_from_sample_records(zengine, tmp_path):
    out = tmp_path / "records.jsonl"
    _, tw = _roll(zengine, "threadweaver", "orchestrator", [Structure([3, [2, 4], 5]), Structure([6])])
    _, pr = _roll(zengine, "parallel-r1", None, [Structure([3, [2, 4], 5])])
    with RecordWriter(out) as w:
        for k, rec in enumerate(tw + pr):
            rec.problem_id = f"p{k}"
            w.write(rec)
    got = [s.items for s in structures_from_records(out)]
    # completion tokens: the trunk's 3 + the plan 29; branches 2 + </Thread>, 4 + </Thread>; Parallel-R1's
    # trunk 3 + <Parallel> (one id in the char tokenizer), paths + </Path> (7 chars), summary 3 + </Summary>
    # (10 chars), trunk 2
    assert got == [[32, [3, 5], 5], [6], [4, [9, 11], 13, 2]]
    assert [s.items for s in structures_from_records(out, scale=2)][0] == [16, [2, 2], 2]  # round half even
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"schema_version": 1, "problem_id": "x", "sample_index": 0, "response": "", "unitz": []}\n')
    with pytest.raises(Exception, match="unknown key 'unitz'; did you mean 'units'"):
        structures_from_records(bad)


def test_bench_rollout_timing_path_on_the_hf_engine(tiny_model_dir):
    from harness.engines.hf import HFEngine

    engine = HFEngine(str(tiny_model_dir))
    structures = [Structure([6, [8, 4], 5], "uneven"), Structure([3, [5, 5, 5], 2], "three")]
    try:
        # the wrapper on a real engine: a random model writes anything, the record still has the structure
        wl, recs = _roll(engine, "threadweaver", "model", structures)
        wl.check(recs)
        assert [len(c.generated_ids) for c in wl.calls(1)] == [3, 5, 5, 5, 2]
        report = asyncio.run(bench_rollout(engine, structures, [1, 2], join="orchestrator", temperature=0.0))
    finally:
        engine.close()
    assert (report["format"], report["join"], report["engine_block_size"]) == ("threadweaver", "orchestrator", None)
    for b, structs in (("1", structures[:1]), ("2", structures)):
        r = report["batch_sizes"][b]
        ideal = sum(s.total_tokens for s in structs) / sum(s.critical_path_tokens for s in structs)
        assert abs(r["ideal_speedup"] - ideal) < 1e-9
        assert r["efficiency"] == r["wall_speedup"] / r["ideal_speedup"]
        assert 0.0 <= r["overhead_fraction"] < 1.0
        for mode in ("sequential", "parallel"):  # ignore_eos: exactly the structure's tokens
            assert r[mode]["tokens"] == sum(s.total_tokens for s in structs)
            assert r["tokens_per_second"][mode] > 0
            assert r["engine_prefill_tokens"][mode] is None  # hf has no prefix cache figures
        assert r["prefill_tokens"]["sequential"] == 32 * len(structs)  # the random prompts, once
        assert r["prefill_tokens"]["parallel"] > r["prefill_tokens"]["sequential"]
        assert r["parallel"]["engine_calls"] == sum(3 + len(s.blocks[0]) for s in structs) - len(structs)
        assert r["sequential"]["engine_calls"] == len(structs)
        assert [len(r["runs"][m]) for m in ("sequential", "parallel")] == [2, 2]  # ABBA, once
    assert report["structures"][0]["critical_path_tokens"] == 6 + 8 + 5


def test_bench_rollout_cli_on_the_scripted_engine(tmp_path, capsys):
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"*": "z" * 4000}))
    out = tmp_path / "bench.json"
    base = ["bench", "rollout", "--engine", "scripted", "--model", str(script), "--scale", "200"]
    assert main([*base, "--format", "parallel-r1", "--batch-sizes", "1,2", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["format"] == "parallel-r1" and report["join"] == "runtime" and report["scale"] == 200
    assert set(report["batch_sizes"]) == {"1", "2"} and "par/seq" in capsys.readouterr().out
    assert main([*base, "--format", "parallel-r1", "--join", "model"]) == 2
    assert "--join must be one of runtime for --format parallel-r1" in capsys.readouterr().err
    records = tmp_path / "r.jsonl"
    _, recs = _roll(ScriptedEngine({"*": "z" * 50}), "threadweaver", "orchestrator", [Structure([1, [1, 1, 1], 1])])
    with RecordWriter(records) as w:
        w.write(recs[0])
    assert main([*base, "--format", "parallel-r1", "--lengths", str(records)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {records}") and "block 1: a Parallel-R1 block has 2 paths, got 3" in err
    assert get_format("parallel-r1").max_blocks == 4
