"""The trie rollout: parallel reasoning in any format on an unmodified engine, on token ids end to end.

    records = rollout_sync(engine, [prompt_ids], RolloutConfig(format="threadweaver", budget_tokens=40960))

A per-trajectory state machine issues plain completion requests; its steps come from the format object
(harness/formats/base.py has the loop: trunk step to the fork trigger, one request per branch with the
branch header, join, after-join text, an optional runtime-run summary). Branches of a block run at once,
and all trajectories run at once, so the engine's continuous batching and prefix caching do the work.
Nested blocks (formats with `max_depth` > 1) run the same loop inside a branch.

Token ids: the context is a list of ids. Each inserted piece (branch wrapper, branch header, forced close,
after-join text) is tokenised on its own and appended; with tags as single special ids the pieces meet at
token boundaries. A BPE tokenizer may merge characters across a piece boundary when the whole text is
encoded at once ("\\n1:" then "\\n..." -> ":\\n"); the rollout keeps the piece-wise ids, which is what the
engine saw, and the record keeps them (`response_ids`, `units`).

Counting is record first (formats.md section 3): the rollout counts the tokens of each branch and of
everything else from the requests it issued, in the engine tokenizer's unit, so a fork the runtime
refused counts as sequential and a tokenizer without single-id tags counts exactly too. Faults (what the
rollout had to close, drop or refuse) are data: each is closed deterministically and named in `faults`.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from harness.counting import metrics_from_counts
from harness.engines.base import Completion, Request
from harness.formats import DEFAULT_FORMAT, ParallelFormat, get_format
from harness.records import SampleRecord, Unit
from harness.rollout_parts import Pieces, Span, fork_refusal, sample_seeds
from harness.tokens import count_unit


@dataclass
class RolloutConfig:
    """Settings of the trie rollout (threadweaver.md section 2; formats.md section 2)."""

    parallel: bool = True
    """False = plain autoregressive decoding (tags are text), same code path: the sequential baseline."""
    format: str = DEFAULT_FORMAT
    """The parallel format (harness.formats): its tags and runtime loop."""
    join: str | None = None
    """Who closes a block, where the format offers a choice (ThreadWeaver: "model" appends "\\n" and the
    model writes </Parallel>, as the reference code; "orchestrator" appends "\\n</Parallel>", as the paper).
    None = the format's default."""
    budget_tokens: int = 40960
    """Total tokens of one trajectory over ALL branches (generated + inserted); paper: 40k."""
    max_steps: int = 32
    """Most sequential requests of the trunk per trajectory (reference code: 32)."""
    max_branches: int = 50
    """Most branches run per block; further ones are dropped and recorded (threadweaver.md: <= 50)."""
    temperature: float = 1.0
    """0 = greedy."""
    top_p: float = 1.0
    """In (0, 1]."""
    top_k: int = -1
    """-1 = off, else >= 1."""
    seed: int | None = None
    """Sample k of a prompt uses seed + k; None = random."""
    max_context_tokens: int | None = None
    """The model's context length: a request never asks for more than prompt + max_tokens <= this (the
    trajectory then ends with end_reason "context"); None = no limit."""
    logprobs: bool = False
    """Ask the engine for the log-probability of every completion token (RL); kept in each unit."""
    retries: int = 2
    """Retries of a failed engine call before the trajectory ends with end_reason "error"."""
    retry_backoff_s: float = 1.0
    """Wait before retry r is retry_backoff_s * 2**r."""

    def __post_init__(self) -> None:
        fmt = get_format(self.format)  # InputError for an unknown name
        if self.join is None:
            self.join = fmt.default_join()
        checks = [
            ("join", self.join in fmt.join_modes, f"one of {fmt.join_modes} for format {fmt.name!r}"),
            ("budget_tokens", isinstance(self.budget_tokens, int) and self.budget_tokens >= 1, "an int >= 1"),
            ("max_steps", isinstance(self.max_steps, int) and self.max_steps >= 1, "an int >= 1"),
            ("max_branches", isinstance(self.max_branches, int) and self.max_branches >= 1, "an int >= 1"),
            ("max_context_tokens", self.max_context_tokens is None
             or (isinstance(self.max_context_tokens, int) and self.max_context_tokens >= 1), "an int >= 1 or None"),
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

    def to_dict(self) -> dict:
        return asdict(self)


_NO_LIMIT = 1 << 62


class _EngineFailed(Exception):
    pass


@dataclass
class _State:
    engine: object
    fmt: ParallelFormat
    config: RolloutConfig
    pieces: Pieces
    seed: int | None
    t0: float
    prompt: list[int]
    out: list[int] = field(default_factory=list)
    used: int = 0  # generated + inserted tokens of the trajectory, all branches
    units: list[Unit] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    calls: int = 0
    steps: int = 0
    forks: int = 0

    @property
    def remaining(self) -> int:
        return self.config.budget_tokens - self.used


async def _call(st: _State, prompt: list[int], anchor: int, max_tokens: int, kind: str, depth: int,
                stops: dict, forked: bool = False) -> Completion:  # fmt: skip
    """One engine request (retried); logged as a unit whose shared context is prompt[:anchor]. `forked`:
    the request that starts a branch, which gets the format's `branch_sampling`."""
    cfg = st.config
    seed = None if st.seed is None else (st.seed * 1_000_003 + st.calls) % 2**31
    sampling = {"temperature": cfg.temperature, **(st.fmt.branch_sampling if forked else {})}
    req = Request(prompt, max_tokens, top_p=cfg.top_p, top_k=cfg.top_k, seed=seed, logprobs=cfg.logprobs,
                  **sampling, **stops)  # fmt: skip
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
        st.units.append(Unit(kind, depth, anchor, prompt[anchor:], list(c.token_ids), c.stop_reason,
                             c.start_s - st.t0, c.end_s - st.t0, c.logprobs))  # fmt: skip
        st.used += len(c.token_ids)
        return c
    raise _EngineFailed(f"{kind} request failed after {cfg.retries + 1} attempts: {last}")


def _room(st: _State, prompt_tokens: int) -> int:
    """Tokens a request on a prompt of this length may generate within the model's context."""
    cap = st.config.max_context_tokens
    return _NO_LIMIT if cap is None else cap - prompt_tokens


def _limit_hit(st: _State, context_tokens: int, reserve: int = 0, branch_tokens: int = 0) -> str:
    """Which limit a request that stopped on "length" ran into: the model's context, the format's
    per-branch cap (`branch_tokens` generated in this branch), else the trajectory's budget."""
    if _room(st, context_tokens) < 1:
        return "context"
    cap = st.fmt.max_branch_tokens
    if st.remaining - reserve >= 1 and cap is not None and branch_tokens >= cap:
        return "branch_limit"
    return "budget"


def _insert(st: _State, out: list[int], span: Span, text: str) -> None:
    """Append a runtime piece to `out`; it counts in `span`'s own (sequential) part."""
    ids = st.pieces.ids(text)
    out.extend(ids)
    span.seq += len(ids)
    st.used += len(ids)


async def _generate(st: _State, ctx: list[int], out: list[int], span: Span, depth: int, anchor: int | None,
                    close: str | None, reserve: int = 0) -> str:  # fmt: skip
    """Continue `ctx + out` (a trunk, or a branch until `close`), forking where the format says.

    Appends to `out` and counts into `span`; returns how it ended: "closed" (a branch wrote `close`),
    "eos", "budget", "context", "branch_limit" (a branch reached the format's per-branch cap),
    "max_steps", "max_blocks" or "refused_fork" (the format ended the request at a fork it refused).
    `anchor` is the length of the request prefix shared with the final trajectory (None: all of it, the
    trunk). `reserve`: tokens this branch will add at the join (its header), kept out of its requests'
    budget."""
    fmt, cfg = st.fmt, st.config
    block_open = False  # a block the model still has to close (join modes where the model writes it)
    refused = False  # a fork refused for budget: decode on without forking, end at the next branch close
    end, start = "eos", len(out)
    while True:
        if depth == 0 and st.steps >= cfg.max_steps:
            end = "max_steps"
            break
        limit = st.remaining - reserve
        if close is not None and fmt.max_branch_tokens is not None:
            limit = min(limit, fmt.max_branch_tokens - (len(out) - start))
        room = _room(st, len(ctx) + len(out))
        if min(limit, room) < 1:
            end = _limit_hit(st, len(ctx) + len(out), reserve, len(out) - start if close else 0)
            break
        limit = min(limit, room)
        st.steps += depth == 0
        tags = [close] if close else ([fmt.branch_close] if refused else [])
        if depth < fmt.max_depth and not refused and (fmt.max_blocks is None or st.forks < fmt.max_blocks):
            tags.append(fmt.fork_trigger)
        prompt = ctx + out
        c = await _call(st, prompt, len(prompt) if anchor is None else anchor, limit, "trunk" if depth == 0
                        else "branch", depth, st.pieces.stops(tags), close is not None and len(out) == start)  # fmt: skip
        out.extend(c.token_ids)
        block_open = False
        if depth >= fmt.max_depth and (fmt.block_open in c.text or fmt.fork_trigger in c.text):
            st.faults.append(f"block {st.forks}: a block inside a branch (nesting depth {fmt.max_depth}; kept as "
                             "branch text)")  # fmt: skip
        if close and c.stop_reason == "stop" and st.pieces.ends_with(c, close):
            span.seq += len(c.token_ids) - len(st.pieces.ids(close))  # the close tag is the parent's
            return "closed"
        span.seq += len(c.token_ids)
        if c.stop_reason != "stop":
            end = "eos" if c.stop_reason == "eos" else _limit_hit(st, len(ctx) + len(out), reserve,
                                                                   len(out) - start if close else 0)
            break
        if refused:  # the trunk after a refused fork ended at a branch close (NPR's engine does the same)
            end = "budget"
            break
        plan = fmt.plan_fork(c.text)
        if refusal := fork_refusal(fmt, plan, st.remaining - reserve):
            st.faults.append(f"block {st.forks + 1}: {refusal[1]}")
            if refusal[0] == "end":
                end = "refused_fork"
                break
            refused = True
            continue
        if len(plan.branch_ids) > cfg.max_branches:
            st.faults.append(f"block {st.forks + 1}: {len(plan.branch_ids)} branches, ran the first "
                             f"{cfg.max_branches} (max_branches)")  # fmt: skip
        ids = plan.branch_ids[: cfg.max_branches]
        if not ids:
            st.faults.append(f"block {st.forks + 1}: {plan.fault}")
            if plan.close_as_join:
                _insert(st, out, span, fmt.after_join(cfg.join))
                block_open = not fmt.closes_block(cfg.join)
            continue
        end = await _fork(st, ctx, out, span, depth, anchor, ids)
        if end != "joined":
            break
        block_open = not fmt.closes_block(cfg.join)
        if fmt.max_blocks is not None and st.forks >= fmt.max_blocks and depth == 0:
            end = "max_blocks"  # Parallel-R1: the trajectory ends right after the last block's summary
            block_open = False
            break
    if block_open:  # the model did not get the request in which it closes the block
        st.faults.append(f"block {st.forks}: closed with {fmt.block_close} by the rollout ({end})")
        _insert(st, out, span, fmt.block_close)
    return end


async def _fork(st: _State, ctx: list[int], out: list[int], span: Span, depth: int, anchor: int | None,
                ids: tuple[str, ...]) -> str:  # fmt: skip
    """Run the branches of one block at once, join them into `out`; "joined" or why the span ends."""
    fmt, cfg, pc = st.fmt, st.config, st.pieces
    context = ctx + out
    st.forks += 1
    block_no = st.forks
    shared = len(context) if anchor is None else anchor
    jobs = []
    for k, bid in enumerate(ids):
        wrapper, inside = fmt.branch_header(bid, k, joined=False)
        if st.remaining - len(pc.ids(wrapper)) - len(pc.ids(inside)) < 1:
            break
        reserve = len(pc.ids(wrapper)) + len(pc.ids(inside))
        jobs.append(_branch(st, context + pc.ids(wrapper), pc.ids(inside), depth + 1, shared, reserve))
    results = await asyncio.gather(*jobs, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r if isinstance(r, _EngineFailed) else _EngineFailed(f"{type(r).__name__}: {r}")
    limit = "budget" if len(jobs) < len(ids) else None  # a limit that ends the trajectory after this block
    if limit:
        st.faults.append(f"block {block_no}: budget left no room for branches {', '.join(ids[len(jobs):])}")
    block: list[Span] = []
    for k, (bid, (ids_k, bspan, how)) in enumerate(zip(ids, results, strict=False)):
        wrapper, _ = fmt.branch_header(bid, k, joined=True)
        _insert(st, out, span, wrapper)
        out.extend(ids_k)  # the branch header (counted in `used` now) and its completion (counted on arrival)
        st.used += bspan.header
        block.append(bspan)
        if how == "closed":
            span.seq += len(pc.ids(fmt.branch_close))
            continue
        if how in ("eos", "refused_fork"):  # the branch's request ended: closed, the block goes on
            what = "hit end of sequence" if how == "eos" else "ended at a refused fork"
            st.faults.append(f"block {block_no}: branch {bid} {what}; closed with {fmt.branch_close}")
        elif how == "branch_limit":  # the format's own per-branch cap: closed, the trajectory goes on
            st.faults.append(f"block {block_no}: branch {bid} reached {fmt.max_branch_tokens} tokens; closed with "
                             f"{fmt.branch_close}")  # fmt: skip
        else:
            limit = limit or how
            st.faults.append(f"block {block_no}: branch {bid} ran out of budget ({how}); closed with "
                             f"{fmt.branch_close}")  # fmt: skip
        _insert(st, out, span, fmt.branch_close)
    span.blocks.append(block)
    _insert(st, out, span, fmt.after_join(cfg.join))
    if limit:
        if not fmt.closes_block(cfg.join):  # the model gets no further step to close the block
            _insert(st, out, span, fmt.block_close)
        return limit
    if fmt.summary_close is not None:  # a runtime-run closing part (Parallel-R1's <Summary>)
        return await _summary(st, ctx, out, span, depth, anchor, block_no)
    return "joined"


async def _branch(st: _State, ctx: list[int], inside: list[int], depth: int, anchor: int, reserve: int) -> tuple:
    """One branch: (its ids in the joined text: header, completion, close tag if written; its span; how it
    ended)."""
    out = list(inside)
    span = Span(seq=len(inside), header=len(inside))
    how = await _generate(st, ctx, out, span, depth, anchor, st.fmt.branch_close, reserve)
    return out, span, how


async def _summary(st: _State, ctx: list[int], out: list[int], span: Span, depth: int, anchor: int | None,
                   block_no: int) -> str:  # fmt: skip
    """The runtime-run closing part after a join: one request up to `summary_close` (closed if needed)."""
    fmt = st.fmt
    if st.remaining < 1:  # no room: the bare opening tag stays (Parallel-R1's loop does the same)
        return "budget"
    prompt = ctx + out
    c = await _call(st, prompt, len(prompt) if anchor is None else anchor, st.remaining, "summary", depth,
                    st.pieces.stops([fmt.summary_close]))  # fmt: skip
    out.extend(c.token_ids)
    span.seq += len(c.token_ids)
    if c.stop_reason == "stop" and st.pieces.ends_with(c, fmt.summary_close):
        return "joined"
    st.faults.append(f"block {block_no}: summary closed with {fmt.summary_close} by the rollout ({c.stop_reason})")
    _insert(st, out, span, fmt.summary_close)
    return "joined" if c.stop_reason == "eos" else "budget"


async def _rollout_one(engine, prompt_ids: list[int], config: RolloutConfig, seed: int | None,
                       pieces: Pieces) -> SampleRecord:  # fmt: skip
    fmt = get_format(config.format)
    st = _State(engine, fmt, config, pieces, seed, time.perf_counter(), list(prompt_ids))
    span = Span()
    end, error = "eos", None
    try:
        if not config.parallel:  # autoregressive mode: one request to the end, tags are plain text
            room = min(st.remaining, _room(st, len(st.prompt)))
            if room < 1:
                end = "context"
            else:
                c = await _call(st, st.prompt, len(st.prompt), room, "trunk", 0, {})
                st.out.extend(c.token_ids)
                span.seq += len(c.token_ids)
                end = "eos" if c.stop_reason in ("eos", "stop") else _limit_hit(st, len(st.prompt) + len(st.out))
        else:
            end = await _generate(st, st.prompt, st.out, span, 0, None, None)
    except _EngineFailed as exc:
        end, error = "error", str(exc)
    except Exception as exc:  # a bug must not take the other trajectories down
        end, error = "error", f"{type(exc).__name__}: {exc}"
    tok = engine.tokenizer
    text = tok.decode(st.out, skip_special_tokens=False)
    metrics = metrics_from_counts(span.total(), span.critical_path(), span.branches_per_block(),
                                  [str(v) for v in fmt.validate(text)], count_unit(tok))  # fmt: skip
    return SampleRecord(
        problem_id="", sample_index=0, response=text, prompt_ids=st.prompt, response_ids=list(st.out),
        format=fmt.name, metrics=metrics, end_reason=end, faults=st.faults, error=error,
        wall_s=time.perf_counter() - st.t0, engine_calls=st.calls, seed=seed, units=st.units,
    )  # fmt: skip


async def run_rollouts(
    engine,
    prompts: list[list[int]],
    config: RolloutConfig,
    seeds: list[int | None] | None = None,
    on_record: Callable[[int, SampleRecord], object] | None = None,
) -> list[SampleRecord]:
    """Roll out every prompt at once; records in prompt order. `on_record(i, record)` runs as each finishes
    (awaited when it is a coroutine function: grading, writing).

    Records come with `problem_id` "" and `sample_index` 0: the caller fills in who they are.
    `seeds[i]` is prompt i's seed (default: `sample_seeds(config, range(len(prompts)))`).
    """
    seeds = sample_seeds(config, list(range(len(prompts)))) if seeds is None else seeds
    if len(seeds) != len(prompts):
        raise ValueError(f"seeds must have one entry per prompt ({len(prompts)}), got {len(seeds)}")
    pieces = Pieces(engine.tokenizer)

    async def one(i: int) -> SampleRecord:
        rec = await _rollout_one(engine, prompts[i], config, seeds[i], pieces)
        if on_record is not None and inspect.isawaitable(done := on_record(i, rec)):
            await done
        return rec

    return list(await asyncio.gather(*(one(i) for i in range(len(prompts)))))


def rollout_sync(engine, prompts: list[list[int]], config: RolloutConfig, **kwargs) -> list[SampleRecord]:
    """`run_rollouts` from synchronous code (starts its own event loop)."""
    return asyncio.run(run_rollouts(engine, prompts, config, **kwargs))
