"""`threadweaver datagen stage1`: an LLM rewrites correct sequential traces into the parallel format
(threadweaver.md section 4; trainers/datagen/stage1/).

Input: sample records (stage 0's output: `response`, `gold`, the prompt) or problem lines with `problem`,
`answer` and a trace field (`--trace-field`, default `solution`: MATH500's gold solutions). Output: one
sample record per surviving trace, appended to OUT as it finishes. Beside OUT, in `--work-dir` (default
OUT with `.work`): one journal per LLM step (`step1_structure.jsonl`, `step3_decouple.jsonl`,
`step4_outlines.jsonl`), `dropped.jsonl` (every dropped trace with its step and reason) and `summary.json`
(what survived each step, tokens and cost). A rerun repeats no journaled call and appends only the records
not yet in OUT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from harness.errors import InputError

EXAMPLE = """examples:
  OPENAI_API_KEY=sk-... threadweaver datagen stage1 seq.jsonl --base-url http://127.0.0.1:8000/v1 --model gpt-x \\
      --out s1.jsonl
  threadweaver datagen stage1 math500.jsonl --trace-field solution --base-url http://127.0.0.1:8000/v1 \\
      --model Qwen/Qwen3-8B --concurrency 16 --usd-per-mtok 0.5 1.5 --out s1.jsonl
"""


def add_parser(sub) -> None:
    p = sub.add_parser("stage1", help="Stage 1: an LLM rewrites sequential traces into the parallel format",
                       description=__doc__.split("\n\n", 1)[1], epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument(
        "traces", metavar="TRACES.jsonl", help="sample records, or problem lines with a trace field"
    )
    p.add_argument("--out", required=True, help="sample records of the surviving traces (appended)")
    p.add_argument("--work-dir", help="journals, dropped.jsonl, summary.json (default: OUT with .work)")
    p.add_argument(
        "--base-url", required=True, help="OpenAI-compatible endpoint root, e.g. http://127.0.0.1:8000/v1"
    )
    p.add_argument("--model", required=True, help="the `model` field of each chat request")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY",
                   help="environment variable holding the API key (default OPENAI_API_KEY; unset: no key)")  # fmt: skip
    p.add_argument(
        "--trace-field", default="solution", help="trace field of problem lines (default solution)"
    )
    p.add_argument("--format", default="threadweaver", help="the written format (default threadweaver)")
    p.add_argument("--join", default=None, help="who closes a block, where the format offers a choice")
    p.add_argument("--grading", default="math", help="rule for traces that name none (default math)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    p.add_argument("--timeout-s", type=float, default=300.0, help="per request (default 300)")
    p.add_argument("--retries", type=int, default=4, help="after a timeout, 429 or 5xx (default 4)")
    p.add_argument("--backoff-s", type=float, default=2.0, help="first retry wait, doubling (default 2)")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--max-tokens", type=int, default=4096, help="per reply (default 4096)")
    p.add_argument("--min-saved-chars", type=int, default=200, help="step 2's minimum saving (default 200)")
    p.add_argument("--usd-per-mtok", type=float, nargs=2, metavar=("PROMPT", "COMPLETION"),
                   help="prices per million prompt and completion tokens, for the cost in the summary")  # fmt: skip
    p.add_argument("--retry-errors", action="store_true", help="ask again the calls that failed last time")
    p.add_argument("--limit", type=int, help="first N traces")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def read_traces(path: Path, trace_field: str, limit: int | None):
    """[(TraceInput, template record)] from sample records or problem lines."""
    from harness.jsonl import iter_jsonl
    from harness.prompts import PROMPT_SUFFIX, build_prompt
    from harness.records import SampleRecord, is_record_file, read_records
    from trainers.datagen.stage1.pipeline import TraceInput

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    out, seen = [], set()
    if is_record_file(path):
        for where, rec in read_records(path):
            if rec.gold is None:
                raise InputError(f"{where}: a trace needs `gold` to be checked in step 5")
            user = (rec.messages or [{}])[-1].get("content") if rec.messages else rec.prompt
            user = (user or "").removesuffix(PROMPT_SUFFIX)  # the LLM sees the problem, not our instruction
            item = TraceInput(
                f"{rec.problem_id}#{rec.sample_index}", user or "", rec.response, rec.gold, rec.grading
            )
            out.append((item, rec, where))
    else:
        for where, row in iter_jsonl(path):
            for name in ("problem", "answer", trace_field):
                if not isinstance(row.get(name), str):
                    raise InputError(f"{where}: needs a string field `{name}`")
            pid = str(row.get("id", where.rsplit(":", 1)[1]))
            rec = SampleRecord(pid, 0, row[trace_field], benchmark=path.name.removesuffix(".jsonl"),
                               gold=row["answer"], messages=[{"role": "user", "content": build_prompt(row["problem"])}])  # fmt: skip
            out.append((TraceInput(f"{pid}#0", row["problem"], row[trace_field], row["answer"]), rec, where))
    for item, _, where in out:
        if item.trace_id in seen:
            raise InputError(f"{where}: duplicate trace {item.trace_id!r}")
        seen.add(item.trace_id)
    return [(item, rec) for item, rec, _ in out][:limit]


def run(args) -> int:
    from tqdm import tqdm

    from harness.counting import measure_text
    from harness.formats import get_format
    from harness.grading import grade_many, with_extractors
    from harness.records import RecordWriter, read_records
    from trainers.datagen.llm import ChatClient, ChatConfig
    from trainers.datagen.stage1.journal import Journal
    from trainers.datagen.stage1.pipeline import STEP_NAMES, Stage1Config, Stage1Run, summarize
    from trainers.datagen.stage1.templates import STEPS

    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be >= 1, got {args.limit}")
    fmt = get_format(args.format)
    if fmt.summary_close is not None:
        raise InputError(f"--format {args.format}: stage 1 writes formats without a runtime summary part")
    try:
        chat = ChatConfig(args.base_url, args.model, args.temperature, args.max_tokens, args.concurrency,
                          args.timeout_s, args.retries, args.backoff_s)  # fmt: skip
        config = Stage1Config(args.format, args.join, args.min_saved_chars, grading=args.grading)
        fmt.check_join(args.join or fmt.default_join())
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    traces = read_traces(Path(args.traces), args.trace_field, args.limit)
    out = Path(args.out)
    work = Path(args.work_dir) if args.work_dir else out.with_name(out.name.removesuffix(".jsonl") + ".work")
    written = {f"{r.problem_id}#{r.sample_index}" for _, r in read_records(out)} if out.exists() else set()
    journals = {step: Journal(work / f"{name}.jsonl", args.retry_errors) for step, name in STEPS.items()}

    grading_lock = None

    async def grade_fn(response, gold, rule):  # one grading call at a time: the worker pool is shared
        nonlocal grading_lock
        grading_lock = grading_lock or asyncio.Lock()
        rule = with_extractors(rule, fmt.answer_extract)
        async with grading_lock:
            return (await asyncio.to_thread(grade_many, [(response, gold, rule)]))[0]

    async def main():
        async with ChatClient(chat, os.environ.get(args.api_key_env)) as client:
            stage = Stage1Run(client, journals, config, grade_fn)
            with RecordWriter(out) as writer, tqdm(total=len(traces), file=sys.stderr, unit="trace",
                                                   desc="stage 1") as bar:  # fmt: skip

                async def one(item, rec):
                    outcome = await stage.trace(item)
                    if outcome.kept and item.trace_id not in written:
                        rec.response, rec.format, rec.grade = outcome.response, fmt.name, outcome.grade
                        rec.grading = item.grading or args.grading
                        rec.metrics = measure_text(outcome.response, None, fmt)
                        rec.response_ids, rec.units, rec.end_reason, rec.faults, rec.run = (
                            None,
                            [],
                            None,
                            [],
                            None,
                        )
                        writer.write(rec)
                    bar.update(1)
                    return outcome

                outcomes = await asyncio.gather(*(one(item, rec) for item, rec in traces))
            return outcomes, stage

    try:
        outcomes, stage = asyncio.run(main())
    finally:
        for j in journals.values():
            j.close()
    with open(work / "dropped.jsonl", "w", encoding="utf-8") as f:
        for o in outcomes:
            if not o.kept:
                f.write(json.dumps({"trace_id": o.trace_id, "step": o.step, "step_name": STEP_NAMES[o.step],
                                    "reason": o.reason, "notes": o.notes}, ensure_ascii=False) + "\n")  # fmt: skip
    summary = summarize(
        outcomes, stage.used, stage.new_calls, tuple(args.usd_per_mtok) if args.usd_per_mtok else None
    )
    summary |= {
        "model": args.model,
        "prompts": {t.name: t.version for t in stage.templates.values()},
        "out": str(out),
    }
    (work / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    survived = ", ".join(f"{k} {v}" for k, v in summary["survived"].items())
    calls = sum(u["calls"] for u in summary["usage"].values())
    new = sum(u["new_calls"] for u in summary["usage"].values())
    print(f"stage 1: {summary['kept']} of {len(outcomes)} traces kept -> {out}\n  survived: {survived}\n"
          f"  dropped: {summary['dropped'] or 'none'}\n  LLM calls: {calls} ({new} new this run)"
          + (f", cost ${summary['cost_usd']:.4f}" if "cost_usd" in summary else "")
          + f"\n  details: {work}/summary.json, {work}/dropped.jsonl", file=sys.stderr)  # fmt: skip
    if args.json:
        print(json.dumps(summary))
    return 0
