"""The deterministic steps of stage 1 (threadweaver.md section 4): number the lines (for step 1), cut threads
by line range (step 2), apply find/replace edits (step 3), assemble the parallel text (for step 5).

Only the reasoning is rewritten: with a `</think>`, the text between an opening `<think>` and it; without
one, the whole trace. Lines are numbered from 1 and ranges are inclusive.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from harness.formats import ParallelFormat

_THINK_OPEN = re.compile(r"\s*<think>\n?")
THINK_CLOSE = "</think>"


@dataclass
class Trace:
    """A sequential trace split into the part to rewrite (`lines`) and what stays as it is."""

    head: str
    lines: list[str]
    tail: str

    @classmethod
    def split(cls, response: str) -> Trace:
        end = response.find(THINK_CLOSE)
        if end < 0:
            return cls("", response.split("\n"), "")
        m = _THINK_OPEN.match(response)
        start = m.end() if m and m.end() <= end else 0
        return cls(response[:start], response[start:end].split("\n"), response[end:])

    def numbered(self) -> str:
        return "\n".join(f"{i}: {line}" for i, line in enumerate(self.lines, 1))


@dataclass
class CutBlock:
    """One accepted block: its line span and its threads' text (edited in step 3, planned in step 4)."""

    first: int
    last: int
    threads: list[str]
    outlines: list[str] = field(default_factory=list)


def cut_blocks(trace: Trace, proposed: list[list[tuple[int, int]]], min_saved_chars: int = 200
               ) -> tuple[list[CutBlock], list[str]]:  # fmt: skip
    """Step 2: the blocks that pass, in line order, and one "code: detail" note per dropped block.

    A block is dropped when it has fewer than 2 non-blank threads (`one_thread`), a range outside the trace
    or reversed (`bad_range`), threads that overlap each other or an earlier accepted block (`overlap`),
    non-blank lines between its threads (`not_adjacent`), or saves fewer than `min_saved_chars` characters
    on the critical path (`too_little_saved`: all threads' characters minus the longest thread's)."""
    n = len(trace.lines)
    kept: list[CutBlock] = []
    notes: list[str] = []
    for k, ranges in enumerate(proposed, 1):
        ranges = sorted(ranges)
        pairs = list(itertools.pairwise(ranges))
        note = None
        if len(ranges) < 2:
            note = f"one_thread: block {k} has {len(ranges)} thread"
        elif any(not 1 <= a <= b <= n for a, b in ranges):
            note = f"bad_range: block {k} has a range outside lines 1..{n} or reversed: {ranges}"
        elif any(b1 >= a2 for (_, b1), (a2, _) in pairs):
            note = f"overlap: block {k}'s threads overlap: {ranges}"
        elif any(trace.lines[i].strip() for (_, b1), (a2, _) in pairs for i in range(b1, a2 - 1)):
            note = f"not_adjacent: block {k} has text between its threads: {ranges}"
        elif any(not (b.last < ranges[0][0] or ranges[-1][1] < b.first) for b in kept):
            note = f"overlap: block {k} overlaps an earlier block: {ranges}"
        if note is None:
            texts = ["\n".join(trace.lines[a - 1 : b]).strip() for a, b in ranges]
            texts = [t for t in texts if t]
            saved = sum(map(len, texts)) - max(map(len, texts), default=0)
            if len(texts) < 2:
                note = f"one_thread: block {k} has fewer than 2 non-blank threads"
            elif saved < min_saved_chars:
                note = f"too_little_saved: block {k} saves {saved} characters (at least {min_saved_chars})"
            else:
                kept.append(CutBlock(ranges[0][0], ranges[-1][1], texts))
        if note:
            notes.append(note)
    kept.sort(key=lambda b: b.first)
    return kept, notes


def apply_edits(
    text: str, edits: list[tuple[str, str]], max_edit_share: float = 0.5
) -> tuple[str | None, str | None]:
    """Step 3: `text` with each (find, replace) applied in order; each `find` must occur exactly once.
    Edits must stay minimal: their `find` texts together at most `max_edit_share` of the thread."""
    if sum(len(f) for f, _ in edits) > max_edit_share * len(text):
        return None, f"edit_too_large: the edits replace more than {max_edit_share:.0%} of the thread"
    for find, replace in edits:
        count = text.count(find)
        if count == 0:
            return None, f"edit_not_found: {find[:60]!r} is not in the thread"
        if count > 1:
            return None, f"edit_ambiguous: {find[:60]!r} occurs {count} times in the thread"
        text = text.replace(find, replace)
    return text, None


def block_text(block: CutBlock, fmt: ParallelFormat, join: str) -> str:
    """The block as the model writes it, through the format plug-in (plan, joined threads, close)."""
    ids = [str(i) for i in range(1, len(block.threads) + 1)]
    text = fmt.plan_text(ids, block.outlines or None)
    text += fmt.join_text([(i, " " + t) for i, t in zip(ids, block.threads, strict=True)], join)
    return text if fmt.closes_block(join) else text + fmt.block_close


def assemble(trace: Trace, blocks: list[CutBlock], fmt: ParallelFormat, join: str) -> str:
    """The parallel trace: sequential lines as they were, each block's lines replaced by the block."""
    out, cursor = [], 1
    for b in blocks:
        before = trace.lines[cursor - 1 : b.first - 1]
        out.append("".join(line + "\n" for line in before) + block_text(b, fmt, join) + "\n")
        cursor = b.last + 1
    return trace.head + "".join(out) + "\n".join(trace.lines[cursor - 1 :]) + trace.tail


def context_before(trace: Trace, block: CutBlock, chars: int) -> str:
    """The last `chars` characters of the trace before `block` (step 4's context)."""
    return "\n".join(trace.lines[: block.first - 1])[-chars:]
