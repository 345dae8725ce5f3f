"""The ThreadWeaver format (threadweaver.md sections 1, 2 and 6): parse, validate, serialise, fork plans.

    <Parallel>
    <Outlines>
    <Outline>1: plan for sub-task 1</Outline>
    <Outline>2: plan for sub-task 2</Outline>
    </Outlines>
    <Thread>
    1: work for sub-task 1</Thread><Thread>
    2: work for sub-task 2</Thread>
    </Parallel>

Lenient reading (issue 2, matching the reference implementation), shared by `parse_trajectory` and the
counter (harness.counting) so both always see the same blocks and threads:
- a `<Parallel>` inside an open block, or a `<Thread>` inside an open thread, is literal text of the
  current segment;
- `</Parallel>` inside an open thread closes the thread (it counts as a thread) and then the block
  (our choice; the reference rules do not name this case);
- a block still open at the end is closed there: its threads so far count, an unclosed last thread too;
- stray `</Parallel>`, `<Thread>`, `</Thread>` outside a block are sequential text.
Malformed text is data: nothing here raises on model output.

Runtime pieces (threadweaver.md section 2): a thread request is context + "\\n<Thread>\\n{i}:", the join
puts thread 1 as "\\n<Thread>\\n1:...</Thread>" and each later one as "<Thread>\\n{i}:...</Thread>", then
join "model" appends "\\n" and the model writes `</Parallel>` (reference code), join "orchestrator"
appends "\\n</Parallel>" (the paper).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.formats.base import ForkPlan, ParallelFormat, Violation

PARALLEL_OPEN = "<Parallel>"
PARALLEL_CLOSE = "</Parallel>"
OUTLINES_OPEN = "<Outlines>"
OUTLINES_CLOSE = "</Outlines>"
OUTLINE_OPEN = "<Outline>"
OUTLINE_CLOSE = "</Outline>"
THREAD_OPEN = "<Thread>"
THREAD_CLOSE = "</Thread>"
THINK_OPEN = "<Think>"
THINK_CLOSE = "</Think>"
CONCLUSION_OPEN = "<Conclusion>"
CONCLUSION_CLOSE = "</Conclusion>"

FORMAT_TAGS: tuple[str, ...] = (
    PARALLEL_OPEN, PARALLEL_CLOSE, OUTLINES_OPEN, OUTLINES_CLOSE,
    OUTLINE_OPEN, OUTLINE_CLOSE, THREAD_OPEN, THREAD_CLOSE,
)  # fmt: skip
# threadweaver.md section 1: the reference code adds 12 special tokens in all.
SPECIAL_TOKENS: tuple[str, ...] = FORMAT_TAGS + (THINK_OPEN, THINK_CLOSE, CONCLUSION_OPEN, CONCLUSION_CLOSE)
MAX_OUTLINES = 50  # threadweaver.md section 1
JOIN_MODES = ("model", "orchestrator")

# Tags that give a trajectory its structure (<Think> is plain text to the parser).
_STRUCT_TAGS = FORMAT_TAGS + (CONCLUSION_OPEN, CONCLUSION_CLOSE)
_STRUCT_SPLIT = re.compile("(" + "|".join(map(re.escape, _STRUCT_TAGS)) + ")")
_STRUCT_FIND = re.compile("|".join(map(re.escape, _STRUCT_TAGS)))
# "N: text", N possibly dotted ("1.2", threadweaver.md section 1, inference).
_HEADER = re.compile(r"\s*(\d+(?:\.\d+)*)\s*:")


# ---------------------------------------------------------------- structure


def _split_header(raw: str) -> tuple[str, str]:
    m = _HEADER.match(raw)
    return (m.group(1), raw[m.end() :].strip()) if m else ("", raw.strip())


@dataclass
class Segment:
    """Sequential text outside any block (stray tags in it are kept as text)."""

    text: str


@dataclass
class Outline:
    """One `<Outline>`: `number` ("" when missing, may be dotted) and the `text` after "N:"."""

    number: str
    text: str
    raw: str | None = None
    """Exact content between the tags; None renders `f"{number}: {text}"`."""
    closed: bool = True

    def content(self) -> str:
        return f"{self.number}: {self.text}" if self.raw is None else self.raw


@dataclass
class Thread:
    """One `<Thread>`: `number` from its "i:" header and the `text` after it."""

    number: str
    text: str
    raw: str | None = None
    """Exact content between the tags; None renders `f"\\n{number}: {text}"` (threadweaver.md section 2, join)."""
    closed: bool = True

    def content(self) -> str:
        return f"\n{self.number}: {self.text}" if self.raw is None else self.raw


@dataclass
class Block:
    """One `<Parallel>` block.

    `parts` is the exact body between `<Parallel>` and `</Parallel>` in order: strings (text and tags
    such as `<Outlines>`) and the same `Outline`/`Thread` objects listed in `outlines`/`threads`.
    With `parts=None` the block renders in the canonical layout of threadweaver.md section 1.
    """

    outlines: list[Outline] = field(default_factory=list)
    threads: list[Thread] = field(default_factory=list)
    parts: list[str | Outline | Thread] | None = None
    closed: bool = True


@dataclass
class Trajectory:
    """A response as a sequence of sequential `Segment`s and parallel `Block`s."""

    items: list[Segment | Block] = field(default_factory=list)

    @property
    def blocks(self) -> list[Block]:
        return [x for x in self.items if isinstance(x, Block)]


def parse_trajectory(text: str) -> Trajectory:
    """Read `text` leniently (see module docstring); never raises. Serialising gives `text` back."""
    items: list[Segment | Block] = []
    seg: list[str] = []
    block: Block | None = None
    buf: list[str] | None = None  # content of the open outline or thread
    kind = ""  # "outline" | "thread" while buf is open

    def finish(closed: bool) -> None:
        nonlocal buf, kind
        raw = "".join(buf)
        number, body = _split_header(raw)
        if kind == "outline":
            obj: Outline | Thread = Outline(number, body, raw, closed)
            block.outlines.append(obj)
        else:
            obj = Thread(number, body, raw, closed)
            block.threads.append(obj)
        block.parts.append(obj)
        buf, kind = None, ""

    for piece in _STRUCT_SPLIT.split(text):
        if not piece:
            continue
        if block is None:
            if piece == PARALLEL_OPEN:
                if seg:
                    items.append(Segment("".join(seg)))
                    seg = []
                block = Block(parts=[], closed=False)
                items.append(block)
            else:
                seg.append(piece)
            continue
        if kind == "thread":
            if piece == THREAD_CLOSE:
                finish(True)
            elif piece == PARALLEL_CLOSE:
                finish(False)
                block.closed, block = True, None
            else:
                buf.append(piece)  # incl. a literal <Thread> or <Parallel>
            continue
        if kind == "outline":
            if piece == OUTLINE_CLOSE:
                finish(True)
                continue
            if piece not in (OUTLINES_CLOSE, THREAD_OPEN, PARALLEL_CLOSE):
                buf.append(piece)
                continue
            finish(False)  # these tags end an unclosed outline, then act at block level
        if piece == THREAD_OPEN:
            buf, kind = [], "thread"
        elif piece == OUTLINE_OPEN:
            buf, kind = [], "outline"
        elif piece == PARALLEL_CLOSE:
            block.closed, block = True, None
        else:
            block.parts.append(piece)  # incl. a literal nested <Parallel>
    if buf is not None:
        finish(False)
    if seg:
        items.append(Segment("".join(seg)))
    return Trajectory(items)


def _render_block(b: Block) -> str:
    if b.parts is None:  # canonical layout, threadweaver.md section 1
        body = (
            f"\n{OUTLINES_OPEN}\n"
            + "".join(f"{OUTLINE_OPEN}{o.content()}{OUTLINE_CLOSE}\n" for o in b.outlines)
            + f"{OUTLINES_CLOSE}\n"
            + "".join(f"{THREAD_OPEN}{t.content()}{THREAD_CLOSE}" for t in b.threads)
            + "\n"
        )
    else:
        out = []
        for p in b.parts:
            if isinstance(p, str):
                out.append(p)
            else:
                opening, closing = (
                    (OUTLINE_OPEN, OUTLINE_CLOSE) if isinstance(p, Outline) else (THREAD_OPEN, THREAD_CLOSE)
                )
                out.append(opening + p.content() + (closing if p.closed else ""))
        body = "".join(out)
    return PARALLEL_OPEN + body + (PARALLEL_CLOSE if b.closed else "")


def serialize_trajectory(t: Trajectory) -> str:
    """Text of `t`; `serialize_trajectory(parse_trajectory(s)) == s` for every string `s`."""
    return "".join(x.text if isinstance(x, Segment) else _render_block(x) for x in t.items)


# ---------------------------------------------------------------- validation (threadweaver.md section 1)


def _tags_in(s: str) -> list[str]:
    return _STRUCT_FIND.findall(s)


def _short(s: str, n: int = 30) -> str:
    s = s.strip().replace("\n", "\\n")
    return s if len(s) <= n else s[: n - 3] + "..."


def _validate_block(b: Block, k: int) -> list[Violation]:
    out: list[Violation] = []

    def bad(code: str, msg: str) -> None:
        out.append(Violation(code, f"block {k}: {msg}", k))

    if not b.closed:
        bad("unclosed_block", f"{PARALLEL_OPEN} is never closed")
    if b.parts is not None:  # order: <Outlines> group, then threads, then a legacy <Conclusion>
        phase = "start"  # start | outlines | threads | conclusion
        group_seen = thread_seen = False
        for p in b.parts:
            if isinstance(p, Outline):
                if phase != "outlines":
                    bad("misplaced_outline", f"outline {_short(p.content())!r} is outside {OUTLINES_OPEN}")
            elif isinstance(p, Thread):
                if phase == "outlines":
                    bad("order", f"thread {p.number or '?'} is inside {OUTLINES_OPEN}")
                elif phase == "conclusion":
                    bad("order", f"thread {p.number or '?'} is inside {CONCLUSION_OPEN}")
                thread_seen = True
                phase = "threads" if phase == "start" else phase
            elif p == OUTLINES_OPEN:
                if group_seen:
                    bad("order", f"a second {OUTLINES_OPEN}")
                elif thread_seen:
                    bad("order", f"{OUTLINES_OPEN} after threads")
                group_seen, phase = True, "outlines"
            elif p == OUTLINES_CLOSE:
                if phase != "outlines":
                    bad("unexpected_tag", f"{OUTLINES_CLOSE} without {OUTLINES_OPEN}")
                phase = "threads"
            elif p == CONCLUSION_OPEN and phase != "conclusion":
                phase = "conclusion"
            elif p == CONCLUSION_CLOSE and phase == "conclusion":
                phase = "threads"
            elif p == PARALLEL_OPEN:
                bad("nested_block", f"{PARALLEL_OPEN} inside an open block (no nesting)")
            elif p in _STRUCT_TAGS:
                bad("unexpected_tag", f"{p} where it is not allowed")
            elif p.strip() and phase != "conclusion":
                bad("unexpected_text", f"text {_short(p)!r} outside outlines and threads")
        if phase == "outlines":
            bad("unclosed_outlines", f"{OUTLINES_OPEN} is never closed")
        if not group_seen:
            bad("missing_outlines", f"no {OUTLINES_OPEN}")
    for kind, items in (("outline", b.outlines), ("thread", b.threads)):
        for i, x in enumerate(items, 1):
            if not x.closed:
                bad(f"unclosed_{kind}", f"{kind} {i} is never closed")
            for tag in _tags_in(x.content()):
                code = "nested_block" if tag == PARALLEL_OPEN else "tag_in_text"
                bad(code, f"tag {tag} inside the text of {kind} {i}")
            if not x.number:
                bad(f"{kind}_format", f"{kind} {i} does not start with 'N:'")
            elif kind == "outline" and not x.text:
                bad("outline_format", f"outline {i} has no text after '{x.number}:'")
    numbers = [o.number for o in b.outlines]
    if len(b.outlines) > MAX_OUTLINES:
        bad("too_many_outlines", f"{len(b.outlines)} outlines (at most {MAX_OUTLINES})")
    if numbers != [str(i) for i in range(1, len(numbers) + 1)]:
        bad(
            "outline_numbering",
            f"outlines numbered {', '.join(n or '?' for n in numbers) or 'none'}, expected 1..{len(numbers)}",
        )
    if len(b.threads) != len(b.outlines):
        bad("thread_count", f"{len(b.threads)} threads for {len(b.outlines)} outlines")
    elif [t.number for t in b.threads] != numbers:
        got = ", ".join(t.number or "?" for t in b.threads)
        bad("thread_number", f"thread numbers {got} do not match outline numbers {', '.join(numbers)}")
    return out


def validate_trajectory(t: Trajectory) -> list[Violation]:
    """Every broken rule of threadweaver.md section 1 (empty list = valid), in text order."""
    out: list[Violation] = []
    k = 0
    for x in t.items:
        if isinstance(x, Block):
            k += 1
            out.extend(_validate_block(x, k))
            continue
        for tag in _tags_in(x.text):
            if tag == PARALLEL_CLOSE:
                out.append(Violation("unbalanced", f"{PARALLEL_CLOSE} without an open block"))
            else:
                out.append(Violation("tag_outside_block", f"tag {tag} outside any block"))
    return out


def outline_numbers(text: str) -> list[str]:
    """Numbers of the outlines in the LAST `<Outlines>` group of `text` (threadweaver.md section 2, step 2).

    Dotted numbers are kept ("1.2"), duplicates dropped keeping order, outlines without a number skipped.
    """
    start = text.rfind(OUTLINES_OPEN)
    if start < 0:
        return []
    group = text[start + len(OUTLINES_OPEN) :]
    end = group.find(OUTLINES_CLOSE)
    group = group if end < 0 else group[:end]
    seen: dict[str, None] = {}
    for chunk in group.split(OUTLINE_OPEN)[1:]:
        m = _HEADER.match(chunk)
        if m:
            seen.setdefault(m.group(1), None)
    return list(seen)


# ---------------------------------------------------------------- the format object


class ThreadWeaverFormat(ParallelFormat):
    """ThreadWeaver (Lian et al. 2025): outlines, then one thread per outline; one level, both join modes."""

    name = "threadweaver"
    checker = "threadweaver-v1 (threadweaver.md section 1)"
    description = "ThreadWeaver: <Parallel><Outlines><Outline>i: ..</Outline></Outlines><Thread>..</Thread></Parallel>"
    special_tokens = SPECIAL_TOKENS
    block_open, block_close = PARALLEL_OPEN, PARALLEL_CLOSE
    branch_open, branch_close = THREAD_OPEN, THREAD_CLOSE
    fork_trigger = OUTLINES_CLOSE
    join_modes = JOIN_MODES

    def plan_fork(self, step_text: str) -> ForkPlan:
        """Outline numbers of the step's last `<Outlines>` group (threadweaver.md section 2, step 2)."""
        if OUTLINES_OPEN not in step_text:
            return ForkPlan(fault=f"{OUTLINES_CLOSE} without {OUTLINES_OPEN}; no threads run")
        numbers = outline_numbers(step_text)
        if not numbers:
            return ForkPlan(fault="outlines with no numbers; block closed with no threads", close_as_join=True)
        return ForkPlan(tuple(numbers))

    def branch_header(self, branch_id: str, k: int, joined: bool) -> tuple[str, str]:
        # the request always starts "\n<Thread>"; in the joined text threads 2..n follow "</Thread>" directly
        return ("\n" if k == 0 or not joined else "") + THREAD_OPEN, f"\n{branch_id}:"

    def after_join(self, join: str) -> str:
        return "\n" if self.check_join(join) == "model" else "\n" + PARALLEL_CLOSE

    def plan_text(self, branch_ids: list[str], plans: list[str] | None = None) -> str:
        plans = plans or [f"part {i}" for i in branch_ids]
        outlines = "".join(f"{OUTLINE_OPEN}{i}: {p}{OUTLINE_CLOSE}\n" for i, p in zip(branch_ids, plans, strict=True))
        return f"{PARALLEL_OPEN}\n{OUTLINES_OPEN}\n{outlines}{OUTLINES_CLOSE}"

    def closes_block(self, join: str) -> bool:
        return self.check_join(join) == "orchestrator"

    def validate(self, text: str) -> list[Violation]:
        return validate_trajectory(parse_trajectory(text))
