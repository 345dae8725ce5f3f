"""`threadweaver rollout`: the trie rollout over a JSONL of prompts, resumable (issue 3, item 5)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from harness.errors import InputError
from harness.jsonl import iter_jsonl

EXAMPLE = """example:
  threadweaver rollout prompts.jsonl --engine vllm --model path/to/model --out rollouts.jsonl --samples 4
  threadweaver rollout prompts.jsonl --engine hf --model path/to/model --out seq.jsonl --no-parallel
PROMPTS lines: {"id": "p1", "prompt": "question text"} (id defaults to the line number).
Re-running with the same --out skips the (id, sample_index) records already there.
"""


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """Engine flags shared by `rollout` and `bench rollout`."""
    p.add_argument("--engine", required=True, help="scripted | hf | vllm | openai")
    p.add_argument("--model", required=True, help="model folder or name (scripted: a JSON file of responses)")
    p.add_argument("--tokenizer", help="tokenizer folder, if not the model's")
    p.add_argument("--dtype", help="hf: float32 (default), bfloat16...; vllm: auto (default), float32...")
    p.add_argument("--device", default="cpu", help="hf: torch device (default cpu)")
    p.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm: GPUs per model copy")
    p.add_argument("--data-parallel-size", type=int, default=1, help="vllm: model copies")
    p.add_argument("--enforce-eager", action="store_true", help="vllm: no CUDA graphs / compilation")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="vllm: share of memory (0, 1]")
    p.add_argument("--max-model-len", type=int, help="vllm: longest context")
    p.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="openai: server URL")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="openai: env var holding the API key")


def engine_kwargs(args) -> dict:
    kw: dict = {"model": args.model}
    if args.tokenizer:
        kw["tokenizer"] = args.tokenizer
    if args.engine == "hf":
        kw.update(device=args.device, dtype=args.dtype or "float32")
    elif args.engine == "vllm":
        kw.update(dtype=args.dtype or "auto", tensor_parallel_size=args.tensor_parallel_size,
                  data_parallel_size=args.data_parallel_size, enforce_eager=args.enforce_eager,
                  gpu_memory_utilization=args.gpu_memory_utilization, max_model_len=args.max_model_len)  # fmt: skip
    elif args.engine == "openai":
        kw.update(base_url=args.base_url, api_key_env=args.api_key_env)
    elif args.engine == "scripted":
        kw = {"responses": args.model, **({"tokenizer": _tokenizer(args.tokenizer)} if args.tokenizer else {})}
    return kw


def _tokenizer(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "rollout",
        help="Run the trie rollout over a JSONL of prompts (resumable)",
        description="Roll out every prompt (x --samples) at once with the trie rollout of spec section 2 "
        "and append one JSON record per finished trajectory to --out.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("prompts", metavar="PROMPTS.jsonl", help="one {'prompt': ..., 'id': ...} per line")
    add_engine_args(p)
    p.add_argument("--out", required=True, help="records JSONL (appended; finished records are skipped)")
    p.add_argument("--samples", type=int, default=1, help="samples per prompt (default 1)")
    p.add_argument("--parallel", action=argparse.BooleanOptionalAction, default=True,
                   help="trie rollout (default) or plain autoregressive decoding")  # fmt: skip
    p.add_argument("--join", default="model", choices=["model", "orchestrator"], help="who writes </Parallel>")
    p.add_argument("--budget", type=int, default=40960, help="total tokens per trajectory (default 40960)")
    p.add_argument("--max-steps", type=int, default=32, help="sequential steps per trajectory (default 32)")
    p.add_argument("--max-threads", type=int, default=50, help="threads per block (default 50)")
    p.add_argument("--temperature", type=float, default=1.0, help="0 = greedy (default 1.0)")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=-1)
    p.add_argument("--seed", type=int, help="sample k uses seed + k (default: random)")
    p.add_argument("--chat-template", action=argparse.BooleanOptionalAction, default=True,
                   help="render prompts with the tokenizer's chat template (default on)")  # fmt: skip
    p.set_defaults(func=run)


def read_prompts(path: Path) -> list[tuple[str, str]]:
    """[(id, prompt)] from a JSONL file; InputError with file:line on a bad line."""
    out, seen = [], set()
    for where, row in iter_jsonl(path, required=("prompt",)):
        if not isinstance(row["prompt"], str):
            raise InputError(f"{where}: field `prompt` must be a string")
        pid = str(row.get("id", where.rsplit(":", 1)[1]))
        if pid in seen:
            raise InputError(f"{where}: duplicate id {pid!r}")
        seen.add(pid)
        out.append((pid, row["prompt"]))
    return out


def finished_keys(out: Path) -> set[tuple[str, int]]:
    """(id, sample_index) of the complete records in `out`; a torn last line is cut off the file."""
    if not out.exists():
        return set()
    data = out.read_bytes()
    keep = data if data.endswith(b"\n") or not data else data[: data.rfind(b"\n") + 1]
    if len(keep) != len(data):  # a killed writer left half a line: drop it so appends stay valid
        out.write_bytes(keep)
    keys = set()
    for line in keep.decode("utf-8").splitlines():
        try:
            rec = json.loads(line)
            keys.add((str(rec["id"]), int(rec["sample_index"])))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
    return keys


def run(args) -> int:
    from tqdm import tqdm

    from harness.engines import load_engine
    from harness.rollout import RolloutConfig, run_rollouts

    if args.samples < 1:
        raise InputError(f"--samples must be >= 1, got {args.samples}")
    try:
        config = RolloutConfig(parallel=args.parallel, join=args.join, budget_tokens=args.budget,
                               max_steps=args.max_steps, max_threads=args.max_threads, temperature=args.temperature,
                               top_p=args.top_p, top_k=args.top_k, seed=args.seed)  # fmt: skip
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    prompts = read_prompts(Path(args.prompts))
    out = Path(args.out)
    done = finished_keys(out)
    todo = [(pid, text, k) for pid, text in prompts for k in range(args.samples) if (pid, k) not in done]
    print(f"{len(todo)} trajectories to run, {len(done)} already in {out}", file=sys.stderr)
    if not todo:
        return 0
    engine = load_engine(args.engine, **engine_kwargs(args))
    try:
        tok = engine.tokenizer
        ids = [_encode(tok, text, args.chat_template) for _, text, _ in todo]
        seeds = [None if args.seed is None else args.seed + k for _, _, k in todo]
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("a", encoding="utf-8") as f, tqdm(total=len(todo), file=sys.stderr, unit="traj") as bar:

            def write(i: int, rec) -> None:
                pid, _, k = todo[i]
                f.write(json.dumps({"id": pid, "sample_index": k, **rec.to_dict()}) + "\n")
                f.flush()
                bar.update(1)

            records = asyncio.run(run_rollouts(engine, ids, config, seeds=seeds, on_record=write))
    finally:
        engine.close()
    errors = sum(r.end_reason == "error" for r in records)
    print(f"wrote {len(records)} records to {out} ({errors} ended with an engine error)", file=sys.stderr)
    return 0


def _encode(tokenizer, text: str, chat_template: bool) -> list[int]:
    if chat_template and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                             add_generation_prompt=True)  # fmt: skip
    return list(tokenizer.encode(text, add_special_tokens=False))
