"""The trie rollout (spec section 2): parallel reasoning on an unmodified engine, on token ids end to end.

    records = rollout_sync(engine, [prompt_ids], RolloutConfig(join="model", budget_tokens=40960))

A per-trajectory state machine issues plain completion requests:
1. sequential step: continue the context, stop at `</Outlines>` or end of sequence;
2. read the outline numbers of that step's last `<Outlines>` group (harness.trajectory.outline_numbers);
3. parallel step: one request per number, prompt = context + `thread_request_suffix(i)`, stop at
   `</Thread>`; all threads of a block are submitted together (asyncio.gather);
4. join and close with the exact pieces of harness.jointext; back to 1.
All trajectories run at once, so the engine's continuous batching and prefix caching do the work.

Token ids: the context is a list of ids. Each inserted piece (thread header, join prefix, `</Thread>`,
block close) is tokenised on its own (add_special_tokens=False) and appended. With tags as single special
ids the pieces meet at token boundaries, so this equals tokenising the joined text. Exception: a tokenizer
that would merge characters across a piece boundary (e.g. BPE merging the "\\n" before `<Thread>` with the
completion's last characters) gives ids that differ from tokenising the whole text; the rollout keeps the
piece-wise ids, which is what the engine saw. The output `text` is the decode of the output ids.

Faults (issue 3, item 4) are data: each one is closed deterministically and named in `faults`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from harness.engines.base import Completion, Request
from harness.jointext import (
    JOIN_MODES,
    block_close,
    close_thread,
    joined_thread_prefix,
    thread_request_suffix,
)
from harness.trajectory import (
    OUTLINES_CLOSE,
    OUTLINES_OPEN,
    PARALLEL_CLOSE,
    PARALLEL_OPEN,
    THREAD_CLOSE,
    measure_ids,
    measure_text,
    outline_numbers,
)

END_REASONS = ("eos", "budget", "max_steps", "error")


@dataclass
class RolloutConfig:
    """Settings of the trie rollout (spec section 2)."""

    parallel: bool = True
    """False = plain autoregressive decoding (tags are text), same code path: the sequential baseline."""
    join: str = "model"
    """"model": append "\\n" after the threads and the model writes </Parallel> (reference code);
    "orchestrator": append "\\n</Parallel>" (the paper's text)."""
    budget_tokens: int = 40960
    """Total tokens of one trajectory over ALL branches (generated + inserted); spec section 2, paper: 40k."""
    max_steps: int = 32
    """Most sequential steps per trajectory (reference code: 32)."""
    max_threads: int = 50
    """Most threads run per block; further outlines are dropped and recorded (spec section 1: <= 50)."""
    temperature: float = 1.0
    """0 = greedy."""
    top_p: float = 1.0
    """In (0, 1]."""
    top_k: int = -1
    """-1 = off, else >= 1."""
    seed: int | None = None
    """Sample k of a prompt uses seed + k; None = random."""
    retries: int = 2
    """Retries of a failed engine call before the trajectory ends with end_reason "error"."""
    retry_backoff_s: float = 1.0
    """Wait before retry r is retry_backoff_s * 2**r."""

    def __post_init__(self) -> None:
        checks = [
            ("join", self.join in JOIN_MODES, f"one of {JOIN_MODES}"),
            ("budget_tokens", isinstance(self.budget_tokens, int) and self.budget_tokens >= 1, "an int >= 1"),
            ("max_steps", isinstance(self.max_steps, int) and self.max_steps >= 1, "an int >= 1"),
            ("max_threads", isinstance(self.max_threads, int) and self.max_threads >= 1, "an int >= 1"),
            ("temperature", self.temperature >= 0, ">= 0"),
            ("top_p", 0 < self.top_p <= 1, "in (0, 1]"),
            ("top_k", self.top_k == -1 or self.top_k >= 1, "-1 or >= 1"),
            ("seed", self.seed is None or isinstance(self.seed, int), "an int or None"),
            ("retries", isinstance(self.retries, int) and self.retries >= 0, "an int >= 0"),
            ("retry_backoff_s", self.retry_backoff_s >= 0, ">= 0"),
        ]
        for name, ok, want in checks:
            if not ok:
                raise ValueError(f"{name} must be {want}, got {getattr(self, name)!r}")


@dataclass
class RequestLog:
    """One engine request of a trajectory; times in seconds since the trajectory started."""

    kind: str  # "sequential" | "thread"
    prompt_tokens: int
    completion_tokens: int
    stop_reason: str
    start_s: float
    end_s: float


@dataclass
class RolloutRecord:
    """One trajectory: the output (text and ids, prompt excluded), its metrics and how it ran."""

    prompt_ids: list[int]
    text: str
    token_ids: list[int]
    requests: list[RequestLog]
    total_tokens: int
    critical_path_tokens: int
    num_blocks: int
    threads_per_block: list[int]
    self_parallelism: float
    is_parallel: bool
    valid: bool | None
    """Format valid (spec section 1) and no rollout fault."""
    violations: list[str]
    """Format violations of the output text (harness.trajectory.validate_trajectory)."""
    faults: list[str]
    """What the rollout had to close or drop (issue 3, item 4)."""
    wall_s: float
    engine_calls: int
    end_reason: str
    error: str | None = None
    seed: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class _EngineFailed(Exception):
    pass


@dataclass
class _State:
    engine: object
    config: RolloutConfig
    seed: int | None
    t0: float
    prompt: list[int]
    out: list[int] = field(default_factory=list)
    used: int = 0  # generated + inserted tokens, all branches
    logs: list[RequestLog] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    calls: int = 0

    @property
    def remaining(self) -> int:
        return self.config.budget_tokens - self.used

    def context(self) -> list[int]:
        return self.prompt + self.out

    def insert(self, ids: list[int]) -> None:
        self.out.extend(ids)
        self.used += len(ids)


class _Pieces:
    """Tokenises inserted pieces on their own (cached) and picks stop ids or stop strings."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self._cache: dict[str, list[int]] = {}

    def ids(self, text: str) -> list[int]:
        if text not in self._cache:
            self._cache[text] = list(self.tokenizer.encode(text, add_special_tokens=False))
        return self._cache[text]

    def stops(self, tag: str) -> dict:
        ids = self.ids(tag)  # a single special id -> stop_token_ids, else a stop string
        return {"stop_token_ids": ids} if len(ids) == 1 else {"stop": [tag]}


async def _call(st: _State, prompt: list[int], max_tokens: int, kind: str, stops: dict, ignore_eos=False) -> Completion:
    cfg = st.config
    seed = None if st.seed is None else (st.seed * 1_000_003 + st.calls) % 2**31
    req = Request(prompt, max_tokens, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                  seed=seed, ignore_eos=ignore_eos, **stops)  # fmt: skip
    st.calls += 1
    last = ""
    for attempt in range(cfg.retries + 1):
        if attempt:
            await asyncio.sleep(cfg.retry_backoff_s * 2 ** (attempt - 1))
        try:
            c = await st.engine.generate(req)
        except Exception as exc:  # an engine error is data for this trajectory alone
            last = f"{type(exc).__name__}: {exc}"
            continue
        if c.stop_reason == "error":
            last = c.error or "engine returned an error"
            continue
        st.logs.append(RequestLog(kind, len(prompt), len(c.token_ids), c.stop_reason, c.start_s - st.t0, c.end_s - st.t0))
        return c
    raise _EngineFailed(f"{kind} request failed after {cfg.retries + 1} attempts: {last}")


async def _parallel_step(st: _State, pc: _Pieces, numbers: list[str], block: int) -> bool:
    """Run the threads of one block and join them; return False when the budget ran out (block closed)."""
    cfg = st.config
    if len(numbers) > cfg.max_threads:
        st.faults.append(f"block {block}: {len(numbers)} outlines, ran the first {cfg.max_threads} (max_threads)")
        numbers = numbers[: cfg.max_threads]
    context = st.context()
    jobs = []
    for n in numbers:
        suffix = pc.ids(thread_request_suffix(n))
        budget = st.remaining - len(suffix)
        if budget < 1:
            break
        jobs.append((n, _call(st, context + suffix, budget, "thread", pc.stops(THREAD_CLOSE))))
    results = await asyncio.gather(*(j for _, j in jobs), return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r if isinstance(r, _EngineFailed) else _EngineFailed(f"{type(r).__name__}: {r}")
    exhausted = len(jobs) < len(numbers)
    if exhausted:
        st.faults.append(f"block {block}: budget left no room for threads {', '.join(numbers[len(jobs):])}")
    for k, ((n, _), c) in enumerate(zip(jobs, results, strict=True)):
        st.insert(pc.ids(joined_thread_prefix(n, first=(k == 0))))
        st.out.extend(c.token_ids)
        st.used += len(c.token_ids)
        if c.stop_reason == "eos":
            st.faults.append(f"block {block}: thread {n} hit end of sequence; closed with {THREAD_CLOSE}")
        elif c.stop_reason == "length":
            exhausted = True
            st.faults.append(f"block {block}: thread {n} ran out of budget; closed with {THREAD_CLOSE}")
        if PARALLEL_OPEN in c.text or OUTLINES_OPEN in c.text:
            st.faults.append(f"block {block}: a block inside thread {n} (one level only; kept as thread text)")
        if close_thread(c.text) != c.text:
            st.insert(pc.ids(THREAD_CLOSE))
    st.insert(pc.ids(block_close(cfg.join)))
    if exhausted and cfg.join == "model":  # close the block ourselves: the model gets no further step
        st.insert(pc.ids(PARALLEL_CLOSE))
    return not exhausted and st.remaining > 0


async def _rollout_one(engine, prompt_ids: list[int], config: RolloutConfig, seed: int | None) -> RolloutRecord:
    st = _State(engine, config, seed, time.perf_counter(), list(prompt_ids))
    pc = _Pieces(engine.tokenizer)
    end_reason, error, block, block_open = "eos", None, 0, False
    try:
        if not config.parallel:  # autoregressive mode: one request to the end, tags are plain text
            c = await _call(st, st.context(), st.remaining, "sequential", {})
            st.out.extend(c.token_ids)
            st.used += len(c.token_ids)
            end_reason = "eos" if c.stop_reason in ("eos", "stop") else "budget"
        else:
            steps = 0
            while True:
                if steps >= config.max_steps or st.remaining < 1:
                    end_reason = "max_steps" if st.remaining >= 1 else "budget"
                    break
                steps += 1
                c = await _call(st, st.context(), st.remaining, "sequential", pc.stops(OUTLINES_CLOSE))
                st.out.extend(c.token_ids)
                st.used += len(c.token_ids)
                block_open = False
                if c.stop_reason != "stop":
                    end_reason = "eos" if c.stop_reason == "eos" else "budget"
                    break
                block += 1
                if OUTLINES_OPEN not in c.text:
                    st.faults.append(f"block {block}: {OUTLINES_CLOSE} without {OUTLINES_OPEN}; no threads run")
                    continue
                numbers = outline_numbers(c.text)
                if not numbers:
                    st.faults.append(f"block {block}: outlines with no numbers; block closed with no threads")
                    st.insert(pc.ids(block_close(config.join)))
                    block_open = config.join == "model"
                    continue
                if not await _parallel_step(st, pc, numbers, block):
                    end_reason = "budget"
                    break
                block_open = config.join == "model"
            if block_open:  # the model did not get the step in which it closes the block
                st.faults.append(f"block {block}: closed with {PARALLEL_CLOSE} by the rollout ({end_reason})")
                st.insert(pc.ids(PARALLEL_CLOSE))
    except _EngineFailed as exc:
        end_reason, error = "error", str(exc)
    except Exception as exc:  # a bug must not take the other trajectories down
        end_reason, error = "error", f"{type(exc).__name__}: {exc}"
    return _record(st, pc, end_reason, error)


def _record(st: _State, pc: _Pieces, end_reason: str, error: str | None) -> RolloutRecord:
    tok = pc.tokenizer
    text = tok.decode(st.out, skip_special_tokens=False)
    try:
        m = measure_ids(st.out, tok)
    except ValueError:  # tags are not single tokens: count with the built-in fallback counter
        m = measure_text(text)
    return RolloutRecord(
        prompt_ids=st.prompt, text=text, token_ids=list(st.out), requests=st.logs,
        total_tokens=m.total_tokens, critical_path_tokens=m.critical_path_tokens, num_blocks=m.num_blocks,
        threads_per_block=m.threads_per_block, self_parallelism=m.self_parallelism, is_parallel=m.is_parallel,
        valid=(m.valid and not st.faults) if m.valid is not None else None, violations=m.violations,
        faults=st.faults, wall_s=time.perf_counter() - st.t0, engine_calls=st.calls, end_reason=end_reason,
        error=error, seed=st.seed,
    )  # fmt: skip


def sample_seeds(config: RolloutConfig, sample_indices: list[int]) -> list[int | None]:
    """Per-sample seeds: config.seed + sample_index, or None (random) when config.seed is None."""
    return [None if config.seed is None else config.seed + k for k in sample_indices]


async def run_rollouts(
    engine,
    prompts: list[list[int]],
    config: RolloutConfig,
    seeds: list[int | None] | None = None,
    on_record: Callable[[int, RolloutRecord], None] | None = None,
) -> list[RolloutRecord]:
    """Roll out every prompt at once; records in prompt order. `on_record(i, record)` runs as each finishes.

    `seeds[i]` is prompt i's seed (default: `sample_seeds(config, range(len(prompts)))`).
    """
    seeds = sample_seeds(config, list(range(len(prompts)))) if seeds is None else seeds
    if len(seeds) != len(prompts):
        raise ValueError(f"seeds must have one entry per prompt ({len(prompts)}), got {len(seeds)}")

    async def one(i: int) -> RolloutRecord:
        rec = await _rollout_one(engine, prompts[i], config, seeds[i])
        if on_record is not None:
            on_record(i, rec)
        return rec

    return list(await asyncio.gather(*(one(i) for i in range(len(prompts)))))


def rollout_sync(engine, prompts: list[list[int]], config: RolloutConfig, **kwargs) -> list[RolloutRecord]:
    """`run_rollouts` from synchronous code (starts its own event loop)."""
    return asyncio.run(run_rollouts(engine, prompts, config, **kwargs))
