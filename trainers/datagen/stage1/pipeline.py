"""Stage 1 over a chat endpoint: each trace goes through steps 1-5, all traces at once (the client bounds
the requests in flight). Every LLM call goes through a journal (journal.py) first; every trace ends as a
record or as a drop with its step and reason (`Outcome`).

    run = Stage1Run(client, journals, Stage1Config(format="threadweaver"), model="m")
    outcome = await run.trace(TraceInput(trace_id, problem, response, gold, grading))
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from harness.formats import get_format
from trainers.datagen.stage1.cut import Trace, apply_edits, assemble, context_before, cut_blocks
from trainers.datagen.stage1.parse import parse_edits, parse_outlines, parse_structure
from trainers.datagen.stage1.templates import load_templates

STEP_NAMES = {1: "structure", 2: "cut", 3: "decouple", 4: "outlines", 5: "check"}


@dataclass
class Stage1Config:
    format: str = "threadweaver"
    join: str | None = None
    """Who closes a block in the written text, where the format offers a choice (default: the format's)."""
    min_saved_chars: int = 200
    """Step 2 drops a block saving fewer characters on the critical path (threadweaver.md section 4)."""
    max_edit_share: float = 0.5
    """Step 3: the edits' `find` texts may cover at most this share of a thread (edits stay minimal)."""
    context_chars: int = 1500
    """Step 4 shows the LLM this many characters before a block."""
    grading: str = "math"
    """Step 5's rule for traces that do not name one."""


@dataclass
class TraceInput:
    trace_id: str
    problem: str
    response: str
    gold: str
    grading: str | None = None


@dataclass
class Outcome:
    trace_id: str
    response: str | None = None
    """The parallel trace (None when dropped)."""
    step: int | None = None
    """The step that dropped it."""
    reason: str | None = None
    notes: list[str] = field(default_factory=list)
    """Blocks dropped on the way (step 2) without dropping the trace."""
    grade: object = None

    @property
    def kept(self) -> bool:
        return self.response is not None


def _code(reason: str) -> str:
    return reason.split(":", 1)[0]


class Stage1Run:
    def __init__(self, client, journals: dict, config: Stage1Config, grade_fn=None) -> None:
        self.client, self.journals, self.config = client, journals, config
        self.templates = load_templates()
        self.fmt = get_format(config.format)
        self.join = self.fmt.check_join(config.join or self.fmt.default_join())
        self.has_plans = "\x00" in self.fmt.plan_text(["1", "2"], ["\x00", "\x00"])
        self.grade_fn = grade_fn
        self.new_calls: Counter = Counter()
        self.used: dict[int, list[dict]] = defaultdict(list)

    async def call(self, step: int, key: str, trace_id: str, **fields: str) -> tuple[str | None, str | None]:
        """(reply text, None) or (None, drop reason) of one journaled call."""
        template, journal = self.templates[step], self.journals[step]
        messages = template.messages(**fields)
        digest = hashlib.sha256(json.dumps([self.client.config.model, messages]).encode()).hexdigest()
        entry = journal.get(key, template.tag)
        if entry is None or entry.get("request_sha256") != digest:  # new, or the trace / model changed
            reply = await self.client.chat(messages)
            entry = {"key": key, "trace_id": trace_id, "prompt": template.tag, "request_sha256": digest, "text": reply.text,
                     "finish_reason": reply.finish_reason, "prompt_tokens": reply.prompt_tokens,
                     "completion_tokens": reply.completion_tokens, "attempts": reply.attempts, "error": reply.error,
                     "http_statuses": reply.http_statuses, "response_id": reply.response_id}  # fmt: skip
            journal.add(entry)
            self.new_calls[step] += 1
        self.used[step].append(entry)
        if entry.get("error"):
            return None, f"llm_error: {entry['error']}"
        if entry.get("finish_reason") == "length":
            return None, "truncated: the reply hit the token limit"
        return entry.get("text") or "", None

    async def trace(self, t: TraceInput) -> Outcome:
        cfg, out = self.config, Outcome(t.trace_id)
        trace = Trace.split(t.response)

        def drop(step: int, reason: str) -> Outcome:
            out.step, out.reason = step, reason
            return out

        # step 1: structure and parallel candidates
        text, err = await self.call(1, t.trace_id, t.trace_id, problem=t.problem, numbered=trace.numbered())
        proposed, err = (None, err) if err else parse_structure(text)
        if err:
            return drop(1, err)
        # step 2: threads by line range
        blocks, out.notes = cut_blocks(trace, proposed, cfg.min_saved_chars)
        if not blocks:
            return drop(
                2,
                "no_block: " + ("; ".join(out.notes) if out.notes else "the LLM proposed no parallel block"),
            )
        # step 3: per thread after the first, edits that remove references to its siblings
        jobs = [(b, block, j) for b, block in enumerate(blocks, 1) for j in range(2, len(block.threads) + 1)]

        async def decouple(b: int, block, j: int) -> str | None:
            siblings = "\n\n".join(
                f"Part {i}:\n<<<\n{s}\n>>>" for i, s in enumerate(block.threads, 1) if i != j
            )
            text, err = await self.call(3, f"{t.trace_id}#b{b}t{j}", t.trace_id, number=str(j),
                                        thread=block.threads[j - 1], siblings=siblings)  # fmt: skip
            edits, err = (None, err) if err else parse_edits(text)
            if err:
                return err
            edited, err = apply_edits(block.threads[j - 1], edits, cfg.max_edit_share)
            if err:
                return err
            block.threads[j - 1] = edited
            return None

        errors = await asyncio.gather(*(decouple(b, block, j) for b, block, j in jobs))
        if any(errors):
            return drop(3, next(e for e in errors if e))

        # step 4: outlines that plan without revealing results
        async def outline(b: int, block) -> str | None:
            parts = "\n\n".join(f"Part {i}:\n<<<\n{s}\n>>>" for i, s in enumerate(block.threads, 1))
            text, err = await self.call(4, f"{t.trace_id}#b{b}", t.trace_id, count=str(len(block.threads)),
                                        context=context_before(trace, block, cfg.context_chars), parts=parts)  # fmt: skip
            outlines, err = (None, err) if err else parse_outlines(text, len(block.threads))
            if err:
                return err
            block.outlines = outlines
            return None

        if self.has_plans:
            errors = await asyncio.gather(*(outline(b, block) for b, block in enumerate(blocks, 1)))
            if any(errors):
                return drop(4, next(e for e in errors if e))
        # step 5: the format's validator, then the grade
        response = assemble(trace, blocks, self.fmt, self.join)
        violations = [str(v) for v in self.fmt.validate(response)]
        if violations:
            return drop(5, "invalid_format: " + "; ".join(violations[:3]))
        out.grade = await self.grade_fn(response, t.gold, t.grading or cfg.grading)
        if not out.grade.correct:
            return drop(5, f"wrong_answer: graded {out.grade.status} (extracted {out.grade.extracted!r})")
        out.response = response
        return out


def summarize(outcomes: list[Outcome], used: dict[int, list[dict]], new_calls: Counter,
              usd_per_mtok: tuple[float, float] | None = None) -> dict:  # fmt: skip
    """What survived each step, why the rest was dropped, and the calls' tokens (and cost with prices)."""
    n = len(outcomes)
    dropped_at = Counter(o.step for o in outcomes if not o.kept)
    survived, left = {}, n
    for step in sorted(STEP_NAMES):
        left -= dropped_at.get(step, 0)
        survived[f"step{step}_{STEP_NAMES[step]}"] = left
    reasons: dict[str, Counter] = defaultdict(Counter)
    for o in outcomes:
        if not o.kept:
            reasons[f"step{o.step}_{STEP_NAMES[o.step]}"][_code(o.reason)] += 1
    usage = {}
    for step, entries in sorted(used.items()):
        p = sum(e.get("prompt_tokens") or 0 for e in entries)
        c = sum(e.get("completion_tokens") or 0 for e in entries)
        row = {
            "calls": len(entries),
            "new_calls": new_calls.get(step, 0),
            "prompt_tokens": p,
            "completion_tokens": c,
        }
        if usd_per_mtok is not None:
            row["cost_usd"] = round((p * usd_per_mtok[0] + c * usd_per_mtok[1]) / 1e6, 6)
        usage[f"step{step}_{STEP_NAMES[step]}"] = row
    summary = {"traces": n, "kept": sum(o.kept for o in outcomes), "survived": survived,
               "dropped": {k: dict(v) for k, v in reasons.items()}, "usage": usage}  # fmt: skip
    if usd_per_mtok is not None:
        summary["cost_usd"] = round(sum(r["cost_usd"] for r in usage.values()), 6)
    return summary
