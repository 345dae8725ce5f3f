"""The figures of formats.md section 4 every leaderboard row carries: trigger rate, strict and lenient format
validity, truncation apart from wrong answers, inserted and re-prefilled tokens (hand-counted on NPR's loop
with the raw character tokenizer: one character = one token, each tag one id), and the TPS ratio, kept apart
from the critical-path speedup; from records to result files (schema v3) to the boards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import metrics
from harness.engines.scripted import ScriptedEngine
from harness.formats import FORMATS, get_format
from harness.grading import Grade
from harness.leaderboard import BoardsConfig, build_boards, render_markdown
from harness.measured import build_results, check_aggregates
from harness.records import RecordWriter, RunHeader
from harness.results import Aggregates, Citation, ModelInfo, Result, Sample, load_result, save_result
from harness.rollout import RolloutConfig, rollout_sync
from harness.tokenizer import build_char_tokenizer

pytestmark = pytest.mark.core
RESULTS = Path(__file__).resolve().parents[2] / "results"
TOK = build_char_tokenizer(formats=tuple(FORMATS), raw=True)
P = "Q\n"
G2 = "<guideline>\n<plan>1: a.</plan>\n<plan>2: b.</plan>\n</guideline>"
STEPS = {"\n<step>\n1:": " x is 1.\n</step>", "\n<step>\n2:": " y is 22.\n</step>"}
TAIL = "so 23.\n</takeaway>\nThe answer is \\boxed{23}."


def npr_model(prompt: str) -> str:
    if prompt == P:
        return G2
    for header, text in STEPS.items():
        if prompt.endswith(header):
            return text
    if prompt.endswith("<takeaway>\n"):
        return TAIL
    return "The answer is \\boxed{23}."  # the sequential run (no fork)


def npr_record(parallel: bool = True):
    engine = ScriptedEngine(npr_model, tokenizer=TOK)
    (rec,) = rollout_sync(engine, [TOK.encode(P)], RolloutConfig(format="npr", parallel=parallel, temperature=0.0))
    return rec


@pytest.mark.parametrize("text, want", [
    ("<guideline><plan>1</plan></guideline><step>a</step><takeaway>t</takeaway>", "balanced"),
    ("plain text, \\boxed{3}", "no_tags"),
    ("<step>a<plan></step></plan>", "format_error"),  # misnested
    ("<guideline><plan>1</plan>", "format_error"),  # left open
    ("</step>", "format_error"),  # unmatched close
])  # fmt: skip
def test_tag_balance(text, want):
    assert metrics.tag_balance(text, get_format("npr").special_tokens) == want


def test_inserted_and_reprefilled_tokens_hand_counted_on_npr_loop():
    rec = npr_record()
    assert [u.kind for u in rec.units] == ["trunk", "branch", "branch", "trunk"]
    # inserted: two step headers "\n<step>\n1:" (5 ids each) and "\n<takeaway>\n" (3)
    assert metrics.inserted_tokens(rec.metrics.total_tokens, rec.units) == 5 + 5 + 3
    # each step request: its header (5) + </guideline>, the trunk's last sampled token (never run); the
    # steps run at once, so neither reuses the other. The continuation after the join reuses step 1's
    # request but its last token: </step> (1) + header 2 (5) + " y is 22.\n" (10) + </step> (1) +
    # "\n<takeaway>\n" (3) = 20
    assert metrics.reprefill_tokens(rec.prompt_ids, rec.response_ids, rec.units) == 6 + 6 + 20
    assert metrics.triggered(rec.units) is True
    seq = npr_record(parallel=False)
    assert metrics.triggered(seq.units) is False
    assert metrics.inserted_tokens(seq.metrics.total_tokens, seq.units) == 0
    assert metrics.reprefill_tokens(seq.prompt_ids, seq.response_ids, seq.units) == 0
    assert metrics.reprefill_tokens(None, None, []) is None and metrics.triggered([]) is None


def test_tps_ratio_and_tokens_per_s():
    assert metrics.tokens_per_s([100, 300], [1.0, 3.0]) == 100.0
    assert metrics.tokens_per_s([100], [None]) is None
    assert metrics.tps_ratio(460.0, 100.0) == pytest.approx(4.6) and metrics.tps_ratio(None, 1.0) is None


def _write(path, records, fmt: str):
    run = RunHeader(format=fmt, rollout={"parallel": True, "budget_tokens": 4096, "temperature": 0.0, "top_p": 1.0,
                                         "top_k": -1, "join": "runtime"}, engine="scripted", count_unit="tokens:t")  # fmt: skip
    with RecordWriter(path) as out:
        for i, r in enumerate(records):
            r.problem_id, r.sample_index, r.benchmark, r.run, r.wall_s = f"p{i}", 0, "toy", run, 2.0
            r.grade = Grade("correct" if r.end_reason == "eos" else "truncated", "23")
            out.write(r)
    return path


def test_records_to_result_file_to_board(tmp_path):
    """Per-sample figures from the records' units into the result file (schema v3), aggregates recomputed by
    `results check`, the board's second table; a measured TPS ratio vs the measured sequential model on the
    same engine; a reported row shows "-" where its paper gave nothing, and its own TPS ratio and baseline."""
    par = [npr_record(), npr_record()]
    par[1].end_reason = "budget"  # a truncated sample: apart from wrong answers
    par[1].response = par[1].response.replace("</takeaway>", "")  # unbalanced tags
    seq = [npr_record(parallel=False), npr_record(parallel=False)]
    paths = {}
    for name, recs in (("npr-toy", par), ("seq-toy", seq)):
        (res,) = build_results([_write(tmp_path / f"{name}.jsonl", recs, "npr")], {"model": name})
        paths[name] = save_result(res, tmp_path / "results" / f"{name}__toy.json")
    data = json.loads(paths["npr-toy"].read_text())
    assert data["schema_version"] == 3 and data["format_checker"] == get_format("npr").checker
    assert [s["triggered"] for s in data["samples"]] == [True, True]
    assert [s["tag_balance"] for s in data["samples"]] == ["balanced", "format_error"]
    agg = data["aggregates"]
    assert (agg["trigger_rate"], agg["format_valid_strict"], agg["format_valid_lenient"], agg["format_error"],
            agg["no_tags"]) == (1.0, 1.0, 0.5, 0.5, 0.0)  # strict: the record's own `valid` (text as rolled out)
    assert (agg["truncation_rate"], agg["accuracy"], agg["accuracy_untruncated"]) == (0.5, 0.5, 1.0)
    assert (agg["inserted_tokens"], agg["reprefill_tokens"]) == (13.0, 32.0)
    gen_par = sum(s["total_tokens"] - s["inserted_tokens"] for s in data["samples"])
    assert agg["tokens_per_s"] == pytest.approx(gen_par / 4.0, abs=1e-4)
    for path in paths.values():
        check_aggregates(load_result(path), str(path))
    seq_res = load_result(paths["seq-toy"])
    # decoded without forking, the guideline alone: tags balanced (lenient) but no steps (NPR's checker)
    a = seq_res.aggregates
    assert (a.trigger_rate, a.format_valid_strict, a.format_valid_lenient, a.inserted_tokens) == (0.0, 0.0, 1.0, 0.0)
    reported = Result(ModelInfo("paper-model"), "toy", "reported", Aggregates(accuracy=0.4, tps_ratio=4.6,
                      tps_baseline="paper-seq"), citation=Citation("A paper", "Table 1"))  # fmt: skip
    entries = [(p, load_result(p)) for p in paths.values()] + [(tmp_path / "r.json", reported)]
    (board,) = build_boards(entries, BoardsConfig(baselines=["seq-toy"]))
    rows = {r.model: r for r in board.rows}
    want = agg["tokens_per_s"] / seq_res.aggregates.tokens_per_s
    assert rows["npr-toy"].tps_ratio == pytest.approx(want) and rows["npr-toy"].tps_baseline == "seq-toy"
    assert (rows["paper-model"].tps_ratio, rows["paper-model"].tps_baseline) == (4.6, "paper-seq")
    md = render_markdown(board, [])
    second = md.split("## Format, truncation and cost")[1]
    line = next(x for x in second.splitlines() if x.startswith("| paper-model |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[2:12] == ["-"] * 10 and cells[-1] == "4.60x vs paper-seq"
    npr_line = next(x for x in second.splitlines() if x.startswith("| npr-toy |"))
    assert [c.strip() for c in npr_line.strip("|").split("|")][2:9] == ["100.0", "100.0", "50.0", "50.0", "0.0",
                                                                         "50.0", "100.0"]  # fmt: skip
    first = md.split("## Format")[0]
    assert "TPS" not in first  # the TPS ratio never sits next to the critical-path speedup
    assert f"strict checker of npr-toy: {get_format('npr').checker}" in md


def test_a_v2_file_reads_with_the_new_figures_unknown(tmp_path):
    data = json.loads((RESULTS / "toy-threadweaver__toy.json").read_text())
    data["schema_version"] = 2
    for name in ("accuracy_untruncated", "trigger_rate", "format_valid_strict", "format_valid_lenient",
                 "format_error", "no_tags", "inserted_tokens", "reprefill_tokens", "tokens_per_s", "tps_ratio",
                 "tps_baseline"):  # fmt: skip
        data["aggregates"].pop(name, None)
    data.pop("format_checker", None)
    (tmp_path / "old.json").write_text(json.dumps(data))
    r = load_result(tmp_path / "old.json")
    assert r.schema_version == 3 and r.aggregates.trigger_rate is None and r.format_checker is None
    assert Sample("p", 0, "correct", 3, 3).tag_balance is None
