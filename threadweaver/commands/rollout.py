"""`threadweaver rollout`: the trie rollout over a JSONL of prompts, resumable (issue 3, item 5)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from harness.engines.args import add_cli_args
from harness.errors import InputError
from harness.jsonl import iter_jsonl

EXAMPLE = """examples:
  threadweaver rollout problems.jsonl --engine hf --model path/to/model --out rollouts.jsonl --samples 2
  threadweaver rollout problems.jsonl --engine hf --model path/to/model --out seq.jsonl --no-parallel
  threadweaver rollout problems.jsonl --engine hf --model M --format parallel-r1 --out pr1.jsonl
PROBLEMS lines, the fields of the benchmark files: {"id": "p1", "problem": "question", "answer": "42"}
(`problem` gets the spec's instruction appended; a `prompt` field is sent as the user turn as it is;
id defaults to the line number; with `answer` each sample is graded with --grading).
Output: one sample record per trajectory (harness/records.py). Re-running with the same --out skips the
(problem_id, sample_index) records already there.
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "rollout",
        help="Run the trie rollout over a JSONL of prompts (resumable)",
        description="Roll out every prompt (x --samples) at once with the trie rollout of spec section 2 "
        "and append one JSON record per finished trajectory to --out.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("prompts", metavar="PROBLEMS.jsonl", help="one {'id', 'problem' or 'prompt', 'answer'?} per line")
    add_rollout_args(p)
    p.set_defaults(func=run)


def add_rollout_args(p) -> None:
    """The engine, sampling and rollout flags (shared with `datagen stage0|stage2`); `--out` included."""
    add_cli_args(p)
    p.add_argument("--out", required=True, help="records JSONL (appended; finished records are skipped)")
    p.add_argument("--samples", type=int, default=1, help="samples per prompt (default 1)")
    p.add_argument("--parallel", action=argparse.BooleanOptionalAction, default=True,
                   help="trie rollout (default) or plain autoregressive decoding")  # fmt: skip
    p.add_argument("--format", default="threadweaver", help="parallel format (harness.formats): threadweaver, "
                   "parallel-r1 (default threadweaver)")  # fmt: skip
    p.add_argument("--join", default=None, help="who closes a block, where the format offers a choice "
                   "(threadweaver: model (default) or orchestrator)")  # fmt: skip
    p.add_argument("--budget-tokens", type=int, default=40960, help="total tokens per trajectory (default 40960)")
    p.add_argument("--max-steps", type=int, default=32, help="sequential steps per trajectory (default 32)")
    p.add_argument("--max-branches", type=int, default=50, help="branches per block (default 50)")
    p.add_argument("--temperature", type=float, default=1.0, help="0 = greedy (default 1.0)")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=-1)
    p.add_argument("--seed", type=int, help="sample k uses seed + k (default: random)")
    p.add_argument("--chat-template", action=argparse.BooleanOptionalAction, default=True,
                   help="render prompts with the tokenizer's chat template (default on)")  # fmt: skip
    p.add_argument("--grading", default="math", help="grading rule for lines with an `answer` (default math)")
    p.add_argument("--benchmark", help="the records' `benchmark` (default: the problem file's name without .jsonl)")


def read_problems(path: Path) -> list[tuple[str, str, str | None]]:
    """[(problem id, user turn, gold or None)] from a JSONL file; InputError with file:line on a bad line."""
    from harness.prompts import build_prompt

    out, seen = [], set()
    for where, row in iter_jsonl(path):
        text = row.get("prompt", row.get("problem"))
        if not isinstance(text, str):
            raise InputError(f"{where}: needs a string field `problem` (or `prompt`)")
        user = text if "prompt" in row else build_prompt(text)
        pid = str(row.get("id", row.get("problem_id", where.rsplit(":", 1)[1])))
        if pid in seen:
            raise InputError(f"{where}: duplicate id {pid!r}")
        seen.add(pid)
        gold = row.get("answer")
        out.append((pid, user, None if gold is None else str(gold)))
    return out


def finished_keys(out: Path) -> set[tuple[str, int]]:
    """(problem_id, sample_index) of the finished records in `out` (a torn last line is ignored). Records that
    ended in an engine error are not finished: they are cut from the file here, so the rerun retries them
    and the file keeps one record per sample."""
    import os

    from harness.records import read_records

    if not out.exists():
        return set()
    records = [r for _, r in read_records(out)]
    kept = [r for r in records if r.end_reason != "error"]
    if len(kept) < len(records):
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text("".join(r.to_json() + "\n" for r in kept), encoding="utf-8")
        os.replace(tmp, out)
        print(f"{len(records) - len(kept)} records in {out} ended in an engine error: retrying them", file=sys.stderr)
    return {(r.problem_id, r.sample_index) for r in kept}


def run(args) -> int:
    import time

    from tqdm import tqdm

    from harness.engines.args import EngineArgs
    from harness.formats import get_format
    from harness.grading import grade_many, with_extractors
    from harness.prompts import encode_prompt, render_prompt
    from harness.records import RecordWriter, RunHeader
    from harness.rollout import RolloutConfig, run_rollouts
    from harness.store import harness_version, package_version
    from harness.tokens import count_unit

    if args.samples < 1:
        raise InputError(f"--samples must be >= 1, got {args.samples}")
    try:
        config = RolloutConfig(parallel=args.parallel, format=args.format, join=args.join,
                               budget_tokens=args.budget_tokens, max_steps=args.max_steps,
                               max_branches=args.max_branches, temperature=args.temperature, top_p=args.top_p,
                               top_k=args.top_k, seed=args.seed)  # fmt: skip
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    rule = with_extractors(args.grading, get_format(args.format).answer_extract)
    problems = read_problems(Path(args.prompts))
    benchmark = args.benchmark or Path(args.prompts).name.removesuffix(".jsonl")
    out = Path(args.out)
    done = finished_keys(out)
    todo = [(pid, user, gold, k) for pid, user, gold in problems for k in range(args.samples) if (pid, k) not in done]
    print(f"{len(todo)} trajectories to run, {len(done)} already in {out}", file=sys.stderr)
    if not todo:
        return 0
    engine_args = EngineArgs.from_cli(args)
    engine = engine_args.build()
    config.max_context_tokens = engine_args.context_length(engine)  # no request runs past the model's context
    try:
        tok = engine.tokenizer
        prompts = [render_prompt(tok, user, args.chat_template) for _, user, _, _ in todo]
        ids = [encode_prompt(tok, p) for p in prompts]
        seeds = [None if args.seed is None else args.seed + k for *_, k in todo]
        engine_pkg = {"vllm": "vllm", "hf": "transformers", "openai": "httpx"}.get(args.engine)
        header = RunHeader(format=config.format, rollout=config.to_dict(), engine=args.engine,
                           engine_version=package_version(engine_pkg) if engine_pkg else None,
                           dtype=engine_args.dtype,
                           model=args.model, count_unit=count_unit(tok), harness_version=harness_version(),
                           created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))  # fmt: skip
        with RecordWriter(out) as f, tqdm(total=len(todo), file=sys.stderr, unit="traj") as bar:

            async def write(i: int, rec) -> None:
                pid, _, gold, k = todo[i]
                rec.problem_id, rec.sample_index, rec.gold, rec.prompt, rec.run = pid, k, gold, prompts[i], header
                rec.benchmark = benchmark
                if gold is not None:
                    rec.grading = rule.name
                    rec.grade = (await asyncio.to_thread(grade_many, [(rec.response, gold, rule, rec.truncated)]))[0]
                f.write(rec)
                bar.update(1)

            records = asyncio.run(run_rollouts(engine, ids, config, seeds=seeds, on_record=write))
    finally:
        engine.close()
    errors = sum(r.end_reason == "error" for r in records)
    print(f"wrote {len(records)} records to {out} ({errors} ended with an engine error)", file=sys.stderr)
    return 0
