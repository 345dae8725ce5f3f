"""Workload benchmark: sequential vs parallel decoding of the same structure through the real rollout.

    report = await bench_rollout(engine, paper_structures(20), [1, 32], fmt="threadweaver")

No trained model is needed: harness.workload.FixedLengthEngine wraps the engine so that the REAL trie
rollout (harness.rollout.run_rollouts) writes a given structure, every request generating a fixed number
of tokens (`ignore_eos`). A structure is a list of items: an int is a sequential segment of that many
tokens, a list of ints is a block whose branches have those lengths.
- sequential mode: the rollout with `parallel=False`, one request of `total_tokens` per trajectory;
- parallel mode: the rollout over the format (`--format`, `--join`), its steps, branches, joins and
  summaries as with a real model; the structural text (plans, close tags) is appended by the wrapper,
  not generated (harness/workload.py).

Each batch size runs sequential, parallel, parallel, sequential (ABBA, `repeats` times, means reported)
after a full-size warm-up in both modes. Figures: ideal speedup (total / critical-path tokens of the structures), wall
speedup (mean trajectory wall time, sequential / parallel), efficiency (wall / ideal), engine-generated
tokens per second in both modes and their ratio, the orchestration overhead (per trajectory: the record's
`wall_s` minus the time covered by its inner engine calls, measured by the wrapper; summed over
trajectories as a fraction of their wall time: the real orchestrator's time outside the engine), and
prefill: `prefill_tokens` = prompt tokens of each request not in the KV an earlier request of the same
trajectory computed (what the engine must prefill with perfect token-level prefix caching; after a join,
branches 2..n sit at new positions and are prefilled again), and on vLLM the engine's own figure from its
prefix-cache counters (`engine_prefill_tokens` = queried - hit; the cache reuses whole blocks of
`engine_block_size` tokens: 128 by default on vLLM's CPU backend).

Preset `paper` (spec section 7, ThreadWeaver on Qwen3-8B): per benchmark, total tokens T and
self-parallelism S give the critical path C = T / S. Our choice (not published): BLOCKS = 4 blocks of
THREADS_PER_BLOCK = 2 equal branches of t = (T - C) / BLOCKS tokens, the remaining C - BLOCKS * t
sequential tokens split evenly over the BLOCKS + 1 segments around the blocks; this reproduces T and S
(and fits Parallel-R1: 2 paths, at most 4 blocks). Trajectory j of a batch uses structure j mod count.
`--scale k` divides all lengths by k.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from harness.errors import InputError
from harness.formats import get_format
from harness.records import read_records
from harness.rollout import run_rollouts
from harness.workload import FixedLengthEngine, Structure, prefill_tokens

# spec section 7: ThreadWeaver total tokens and self-parallelism per benchmark
PAPER_STATS: dict[str, tuple[int, float]] = {
    "aime24": (21_100, 1.25), "aime25": (27_300, 1.18), "amc23": (15_000, 1.25),
    "math500": (7_700, 1.22), "minerva_math": (8_400, 1.14), "olympiadbench": (15_500, 1.22),
}  # fmt: skip
BLOCKS = 4
THREADS_PER_BLOCK = 2
PROMPT_TOKENS = 32
"""Random prompt per trajectory: makes it unique (the wrapper finds it by its prompt) and uncached."""


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


def structures_from_records(path: str | Path, scale: float = 1.0) -> list[Structure]:
    """Structures from sample records (harness.records): each trajectory's units in order, trunk and
    summary units -> sequential segments, the branch units of one fork (same shared context) -> one block;
    lengths are completion tokens (what the model generated, its tags included) / scale, at least 1."""
    out = []
    for where, rec in read_records(path):
        items: list[int | list[int]] = []
        fork = None  # context_tokens of the block being read
        for k, u in enumerate(rec.units):
            n = max(1, round(len(u.completion_ids) / scale))
            if u.kind != "branch":
                items.append(n)
                fork = None
            elif u.depth != 1:
                raise InputError(f"{where}: units[{k}]: a nested branch (depth {u.depth}); workload structures "
                                 "have one level")  # fmt: skip
            elif fork == u.context_tokens and isinstance(items[-1], list):
                items[-1].append(n)
            else:
                items.append([n])
                fork = u.context_tokens
        if items:
            out.append(Structure(items, where))
    if not out:
        raise InputError(f"{path}: no sample records with units (requests)")
    return out


def _covered(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of the intervals."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def prefix_cache_counters(engine) -> tuple[int, int] | None:
    """(queried, hit) prompt tokens of vLLM's prefix cache so far, from its in-process metrics; None for
    other engines or where vLLM does not expose them."""
    if type(engine).__module__ != "harness.engines.vllm":
        return None
    try:
        from vllm.v1.metrics.reader import Counter, get_metrics_snapshot
    except ImportError:
        return None
    found: dict[str, int] = {}
    for m in get_metrics_snapshot():
        if isinstance(m, Counter) and m.name in ("vllm:prefix_cache_queries", "vllm:prefix_cache_hits"):
            found[m.name] = found.get(m.name, 0) + int(m.value)
    if len(found) != 2:
        return None
    return found["vllm:prefix_cache_queries"], found["vllm:prefix_cache_hits"]


def engine_block_size(engine) -> int | None:
    """vLLM's KV cache block size (prefix caching reuses whole blocks only); None for other engines."""
    config = getattr(getattr(engine, "llm", None), "vllm_config", None)
    return getattr(getattr(config, "cache_config", None), "block_size", None)


async def _batch(engine, mode: str, structs: list[Structure], fmt: str, join: str | None, temperature: float,
                 rng: random.Random) -> dict:  # fmt: skip
    """One batch through the real rollout in `mode` ("sequential" | "parallel"); its figures."""
    tok = engine.tokenizer
    special = set(tok.all_special_ids)
    vocab = [i for i in range(len(tok)) if i not in special]
    prompts = [[rng.choice(vocab) for _ in range(PROMPT_TOKENS)] for _ in structs]  # fresh: no cross-run cache
    wl = FixedLengthEngine(engine, fmt, join, parallel=mode == "parallel")
    for p, s in zip(prompts, structs, strict=True):
        wl.add(p, s)
    config = wl.rollout_config(temperature=temperature)
    cache0 = prefix_cache_counters(engine)
    t0 = time.perf_counter()
    records = await run_rollouts(wl, prompts, config)
    wall = time.perf_counter() - t0
    cache1 = prefix_cache_counters(engine)
    wl.check(records)
    walls = [r.wall_s for r in records]
    busy = [_covered([(c.start_s, c.end_s) for c in wl.calls(i)]) for i in range(len(structs))]
    tokens = sum(len(c.generated_ids) for i in range(len(structs)) for c in wl.calls(i))
    prefill = sum(prefill_tokens(wl.calls(i)) for i in range(len(structs)))
    engine_prefill = engine_cached = None
    if cache0 is not None and cache1 is not None:
        engine_cached = cache1[1] - cache0[1]
        engine_prefill = cache1[0] - cache0[0] - engine_cached
    return {
        "wall_s": wall,
        "wall_per_trajectory_s": sum(walls) / len(walls),
        "tokens": tokens,
        "tokens_per_second": tokens / wall,
        "structural_tokens": sum(r.metrics.total_tokens for r in records) - tokens,
        "engine_calls": sum(len(wl.calls(i)) for i in range(len(structs))),
        "prefill_tokens": prefill,
        "prefill_share": prefill / (prefill + tokens),
        "engine_prefill_tokens": engine_prefill,
        "engine_cached_tokens": engine_cached,
        "overhead_fraction": sum(w - b for w, b in zip(walls, busy, strict=True)) / sum(walls),
        "faults": sum(len(r.faults) for r in records),
    }


def _mean_runs(runs: list[dict]) -> dict:
    """Field-wise mean of repeated `_batch` results (None where any run has None)."""
    return {k: None if any(r[k] is None for r in runs) else sum(r[k] for r in runs) / len(runs) for k in runs[0]}


async def bench_rollout(engine, structures: list[Structure], batch_sizes: list[int], *, fmt: str = "threadweaver",
                        join: str | None = None, temperature: float = 1.0, warmup: bool = True, repeats: int = 1,
                        seed: int = 0) -> dict:  # fmt: skip
    """Run each batch size in both modes, ABBA `repeats` times; return {"batch_sizes": {"b": {...}},
    "structures": [...], ...} with the means and, under "runs", every batch's figures."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    rng = random.Random(seed)
    if warmup:  # a full-size trajectory in each mode: the engine's first long requests are slower
        for mode in ("sequential", "parallel"):
            await _batch(engine, mode, structures[:1], fmt, join, temperature, rng)
    results = {}
    for b in batch_sizes:
        structs = [structures[j % len(structures)] for j in range(b)]
        runs: dict[str, list[dict]] = {"sequential": [], "parallel": []}
        for mode in ("sequential", "parallel", "parallel", "sequential") * repeats:  # ABBA: cancels order, drift
            runs[mode].append(await _batch(engine, mode, structs, fmt, join, temperature, rng))
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
            "prefill_tokens": {"sequential": seq["prefill_tokens"], "parallel": par["prefill_tokens"]},
            "engine_prefill_tokens": {"sequential": seq["engine_prefill_tokens"],
                                      "parallel": par["engine_prefill_tokens"]},  # fmt: skip
            "sequential": seq,
            "parallel": par,
            "runs": runs,
        }
    f = get_format(fmt)
    return {"format": f.name, "join": f.default_join() if join is None else join,
            "engine_block_size": engine_block_size(engine), "batch_sizes": results,
            "structures": [{"name": s.name, "items": s.items, "total_tokens": s.total_tokens,
                            "critical_path_tokens": s.critical_path_tokens} for s in structures]}  # fmt: skip


def _n(x) -> str:
    return "-" if x is None else f"{x:,.0f}"


def format_table(result: dict) -> str:
    head = ("batch", "ideal", "wall_speedup", "efficiency", "seq tok/s", "par tok/s", "par/seq", "overhead",
            "prefill seq/par", "engine prefill seq/par", "seq s/traj", "par s/traj")  # fmt: skip
    rows = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in result["batch_sizes"].values():
        tps, pre, eng = r["tokens_per_second"], r["prefill_tokens"], r["engine_prefill_tokens"]
        rows.append(" | ".join([
            str(r["batch_size"]), f"{r['ideal_speedup']:.3f}", f"{r['wall_speedup']:.3f}", f"{r['efficiency']:.3f}",
            f"{tps['sequential']:.0f}", f"{tps['parallel']:.0f}", f"{r['throughput_ratio']:.3f}",
            f"{100 * r['overhead_fraction']:.2f}%", f"{_n(pre['sequential'])} / {_n(pre['parallel'])}",
            f"{_n(eng['sequential'])} / {_n(eng['parallel'])}", f"{r['sequential']['wall_per_trajectory_s']:.2f}",
            f"{r['parallel']['wall_per_trajectory_s']:.2f}",
        ]))  # fmt: skip
    return "\n".join(rows)
