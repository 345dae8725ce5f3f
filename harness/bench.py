"""Workload benchmark: sequential vs parallel decoding of the same structure on one engine (issue 3, item 6).

No trained model is needed: every request generates a fixed number of tokens (`ignore_eos`), so the
structure is set by the workload, not by the model. A structure is a list of items: an int is a
sequential segment of that many tokens, a list of ints is a block whose threads have those lengths.
- sequential mode: one request per trajectory generating `total_tokens` (the autoregressive baseline);
- parallel mode: the trie rollout's request pattern (harness.rollout): each segment one request on the
  growing context, the threads of a block submitted together on context + thread header, then joined
  with the harness.jointext pieces.

Preset `paper` (spec section 7, ThreadWeaver on Qwen3-8B): per benchmark, total tokens T and
self-parallelism S give the critical path C = T / S. Our choice (not published): BLOCKS = 4 blocks of
THREADS_PER_BLOCK = 2 equal threads of t = (T - C) / BLOCKS tokens, the remaining C - BLOCKS * t
sequential tokens split evenly over the BLOCKS + 1 segments around the blocks; this reproduces T and S.
Trajectory j of a batch uses benchmark j mod 6. `--scale k` divides all lengths by k.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from pathlib import Path

from harness.engines.base import Request
from harness.errors import InputError
from harness.formats.threadweaver import ThreadWeaverFormat
from harness.jsonl import iter_jsonl

# spec section 7: ThreadWeaver total tokens and self-parallelism per benchmark
PAPER_STATS: dict[str, tuple[int, float]] = {
    "aime24": (21_100, 1.25), "aime25": (27_300, 1.18), "amc23": (15_000, 1.25),
    "math500": (7_700, 1.22), "minerva_math": (8_400, 1.14), "olympiadbench": (15_500, 1.22),
}  # fmt: skip
BLOCKS = 4
THREADS_PER_BLOCK = 2
PROMPT_TOKENS = 32
_TW = ThreadWeaverFormat()


@dataclass
class Structure:
    """One trajectory's workload: ints are sequential segments, lists are blocks of thread lengths."""

    items: list[int | list[int]]
    name: str = ""

    @property
    def total_tokens(self) -> int:
        return sum(x if isinstance(x, int) else sum(x) for x in self.items)

    @property
    def critical_path_tokens(self) -> int:
        return sum(x if isinstance(x, int) else max(x) for x in self.items)


def paper_structure(benchmark: str, scale: float = 1.0) -> Structure:
    total, sp = PAPER_STATS[benchmark]
    total_s = total / scale
    crit = total_s / sp
    thread = max(1, round((total_s - crit) / (BLOCKS * (THREADS_PER_BLOCK - 1))))
    seq = max(BLOCKS + 1, round(crit - BLOCKS * thread))
    segs = [seq // (BLOCKS + 1) + (1 if k < seq % (BLOCKS + 1) else 0) for k in range(BLOCKS + 1)]
    items: list[int | list[int]] = [segs[0]]
    for k in range(BLOCKS):
        items += [[thread] * THREADS_PER_BLOCK, segs[k + 1]]
    return Structure(items, benchmark)


def paper_structures(scale: float) -> list[Structure]:
    return [paper_structure(b, scale) for b in PAPER_STATS]


def structures_from_records(path: Path, scale: float = 1.0) -> list[Structure]:
    """Structures from a `threadweaver rollout` record file: the request log of each trajectory
    (sequential requests -> segments, consecutive thread requests -> one block), lengths / scale."""
    out = []
    for where, record in iter_jsonl(path, required=("units",)):
        items: list[int | list[int]] = []
        for r in record["units"]:
            n = max(1, round(len(r["completion_ids"]) / scale))
            if r["kind"] == "branch":
                if items and isinstance(items[-1], list):  # threads of one block are logged together
                    items[-1].append(n)
                else:
                    items.append([n])
            else:
                items.append(n)
        if items:
            out.append(Structure(items, where))
    if not out:
        raise InputError(f"{path}: no rollout records with requests")
    return out


@dataclass
class _Run:
    wall_s: float
    busy_s: float  # time covered by at least one engine call of this trajectory
    tokens: int
    prefill_tokens: int = 0  # prompt tokens no earlier request of this trajectory had computed


def _covered(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


async def _sequential(engine, s: Structure, prompt: list[int], temperature: float) -> _Run:
    t0 = time.perf_counter()
    c = await engine.generate(Request(prompt, s.total_tokens, temperature=temperature, ignore_eos=True))
    wall = time.perf_counter() - t0
    return _Run(wall, c.end_s - c.start_s, len(c.token_ids), len(prompt))


async def _parallel(engine, s: Structure, prompt: list[int], temperature: float, ids) -> _Run:
    t0 = time.perf_counter()
    ctx, spans, tokens = list(prompt), [], 0
    computed, prefill = 0, 0  # KV already computed for ctx[:computed] (the last sampled token has none)
    for item in s.items:
        if isinstance(item, int):
            prefill += len(ctx) - computed
            c = await engine.generate(Request(ctx, item, temperature=temperature, ignore_eos=True))
            ctx += c.token_ids
            computed = len(ctx) - 1
            spans.append((c.start_s, c.end_s))
            tokens += len(c.token_ids)
            continue
        nums = [str(i) for i in range(1, len(item) + 1)]
        suffix = ["".join(_TW.branch_header(n, k, joined=False)) for k, n in enumerate(nums)]
        prefill += sum(len(ctx) - computed + len(ids(s)) for s in suffix)
        cs = await asyncio.gather(*(
            engine.generate(Request(ctx + ids(s), t, temperature=temperature, ignore_eos=True))
            for s, t in zip(suffix, item, strict=True)
        ))  # fmt: skip
        for k, (n, c) in enumerate(zip(nums, cs, strict=True)):
            ctx += ids("".join(_TW.branch_header(n, k, joined=True))) + c.token_ids
            computed = len(ctx) - 1 if k == 0 else computed  # later threads sat at other positions
            if not c.text.endswith(_TW.branch_close):
                ctx += ids(_TW.branch_close)
            spans.append((c.start_s, c.end_s))
            tokens += len(c.token_ids)
        ctx += ids(_TW.after_join("orchestrator"))
    wall = time.perf_counter() - t0
    return _Run(wall, _covered(spans), tokens, prefill)


async def _batch(engine, mode: str, structs: list[Structure], temperature: float, rng, ids) -> dict:
    vocab = [i for i in range(len(engine.tokenizer)) if i not in set(engine.tokenizer.all_special_ids)]
    prompts = [[rng.choice(vocab) for _ in range(PROMPT_TOKENS)] for _ in structs]  # fresh: no cross-run cache
    t0 = time.perf_counter()
    if mode == "sequential":
        runs = await asyncio.gather(*(_sequential(engine, s, p, temperature) for s, p in zip(structs, prompts, strict=True)))
    else:
        runs = await asyncio.gather(*(_parallel(engine, s, p, temperature, ids) for s, p in zip(structs, prompts, strict=True)))
    wall = time.perf_counter() - t0
    tokens = sum(r.tokens for r in runs)
    return {
        "wall_s": wall,
        "wall_per_trajectory_s": sum(r.wall_s for r in runs) / len(runs),
        "tokens": tokens,
        "tokens_per_second": tokens / wall,
        "prefill_tokens": sum(r.prefill_tokens for r in runs),
        "overhead_fraction": sum(r.wall_s - r.busy_s for r in runs) / sum(r.wall_s for r in runs),
    }


def _mean_runs(runs: list[dict]) -> dict:
    """Field-wise mean of repeated `_batch` results."""
    return {k: sum(r[k] for r in runs) / len(runs) for k in runs[0]}


async def bench_rollout(engine, structures: list[Structure], batch_sizes: list[int], *, temperature: float = 1.0,
                        warmup: bool = True, seed: int = 0) -> dict:  # fmt: skip
    """Run each batch size in both modes; return {"batch_sizes": {b: {...keys...}}, ...}."""
    rng = random.Random(seed)
    cache: dict[str, list[int]] = {}

    def ids(piece: str) -> list[int]:
        if piece not in cache:
            cache[piece] = engine.tokenizer.encode(piece, add_special_tokens=False)
        return cache[piece]

    if warmup:  # a full-size trajectory in each mode: the engine's first long requests are slower
        for mode in ("sequential", "parallel"):
            await _batch(engine, mode, structures[:1], temperature, rng, ids)
    results = {}
    for b in batch_sizes:
        structs = [structures[j % len(structures)] for j in range(b)]
        runs: dict[str, list[dict]] = {"sequential": [], "parallel": []}
        for mode in ("sequential", "parallel", "parallel", "sequential"):  # ABBA: cancels order and drift
            runs[mode].append(await _batch(engine, mode, structs, temperature, rng, ids))
        seq, par = _mean_runs(runs["sequential"]), _mean_runs(runs["parallel"])
        ideal = sum(s.total_tokens for s in structs) / sum(s.critical_path_tokens for s in structs)
        wall_speedup = seq["wall_per_trajectory_s"] / par["wall_per_trajectory_s"]
        results[str(b)] = {
            "batch_size": b,
            "ideal_speedup": ideal,
            "wall_speedup": wall_speedup,
            "efficiency": wall_speedup / ideal,
            "tokens_per_second": {"sequential": seq["tokens_per_second"], "parallel": par["tokens_per_second"]},
            "throughput_ratio": par["tokens_per_second"] / seq["tokens_per_second"],
            "overhead_fraction": par["overhead_fraction"],
            "sequential": seq,
            "parallel": par,
        }
    return {"batch_sizes": results, "structures": [{"name": s.name, "items": s.items,
            "total_tokens": s.total_tokens, "critical_path_tokens": s.critical_path_tokens} for s in structures]}  # fmt: skip


def format_table(result: dict) -> str:
    head = ("batch", "ideal", "wall_speedup", "efficiency", "seq tok/s", "par tok/s", "par/seq", "overhead",
            "seq s/traj", "par s/traj")  # fmt: skip
    rows = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in result["batch_sizes"].values():
        tps = r["tokens_per_second"]
        rows.append(" | ".join([
            str(r["batch_size"]), f"{r['ideal_speedup']:.3f}", f"{r['wall_speedup']:.3f}", f"{r['efficiency']:.3f}",
            f"{tps['sequential']:.0f}", f"{tps['parallel']:.0f}", f"{r['throughput_ratio']:.3f}",
            f"{100 * r['overhead_fraction']:.2f}%", f"{r['sequential']['wall_per_trajectory_s']:.2f}",
            f"{r['parallel']['wall_per_trajectory_s']:.2f}",
        ]))  # fmt: skip
    return "\n".join(rows)
