"""Parallel trajectories: parse, validate, serialise, and count tokens on the critical path.

Format and validity rules: spec section 1. Token latency (critical path): spec section 6.

    >>> m = measure_text("a <Parallel><Outlines><Outline>1: x</Outline></Outlines>"
    ...                  "<Thread>1: y z</Thread></Parallel>")
    >>> (m.total_tokens, m.critical_path_tokens, m.num_blocks, m.valid)
    (20, 20, 1, True)

Lenient reading (issue 2, matching the reference implementation), shared by `parse_trajectory` and the
counters so both always see the same blocks and threads:
- a `<Parallel>` inside an open block, or a `<Thread>` inside an open thread, is literal text of the
  current segment;
- `</Parallel>` inside an open thread closes the thread (it counts as a thread) and then the block
  (our choice; the reference rules do not name this case);
- a block still open at the end is closed there: its threads so far count, an unclosed last thread too;
- stray `</Parallel>`, `<Thread>`, `</Thread>` outside a block are sequential text.
Malformed text is data: nothing here raises on model output.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

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
# Spec section 1: the reference code adds 12 special tokens in all.
SPECIAL_TOKENS: tuple[str, ...] = FORMAT_TAGS + (THINK_OPEN, THINK_CLOSE, CONCLUSION_OPEN, CONCLUSION_CLOSE)
MAX_OUTLINES = 50  # spec section 1

# Tags that give a trajectory its structure (<Think> is plain text to the parser).
_STRUCT_TAGS = FORMAT_TAGS + (CONCLUSION_OPEN, CONCLUSION_CLOSE)
_STRUCT_SPLIT = re.compile("(" + "|".join(map(re.escape, _STRUCT_TAGS)) + ")")
_STRUCT_FIND = re.compile("|".join(map(re.escape, _STRUCT_TAGS)))
_ALL_SPLIT = re.compile("(" + "|".join(map(re.escape, SPECIAL_TOKENS)) + ")")
# "N: text", N possibly dotted ("1.2", spec section 1, inference).
_HEADER = re.compile(r"\s*(\d+(?:\.\d+)*)\s*:")

# Codes of the four tags that drive counting; any other token is code 0.
_P_OPEN, _P_CLOSE, _T_OPEN, _T_CLOSE = 1, 2, 3, 4
_CODE = {PARALLEL_OPEN: _P_OPEN, PARALLEL_CLOSE: _P_CLOSE, THREAD_OPEN: _T_OPEN, THREAD_CLOSE: _T_CLOSE}

# Built-in fallback counter (no tokenizer): each special token is 1 token; other text splits into
# runs of letters, single digits, whitespace runs and single other characters, 1 token each.
FALLBACK_TOKEN_PATTERN = r"[^\W\d_]+|\d|\s+|."
_FALLBACK = re.compile(FALLBACK_TOKEN_PATTERN, re.DOTALL)


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
    """Exact content between the tags; None renders `f"\\n{number}: {text}"` (spec section 2, join)."""
    closed: bool = True

    def content(self) -> str:
        return f"\n{self.number}: {self.text}" if self.raw is None else self.raw


@dataclass
class Block:
    """One `<Parallel>` block.

    `parts` is the exact body between `<Parallel>` and `</Parallel>` in order: strings (text and tags
    such as `<Outlines>`) and the same `Outline`/`Thread` objects listed in `outlines`/`threads`.
    With `parts=None` the block renders in the canonical layout of spec section 1.
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


@dataclass(frozen=True)
class Violation:
    """One broken rule of spec section 1. `block` is the 1-based block number, None outside blocks."""

    code: str
    message: str
    block: int | None = None

    def __str__(self) -> str:
        return self.message


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
    if b.parts is None:  # canonical layout, spec section 1
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


# ---------------------------------------------------------------- validation (spec section 1)


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
    """Every broken rule of spec section 1 (empty list = valid), in text order."""
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
    """Numbers of the outlines in the LAST `<Outlines>` group of `text` (spec section 2, step 2).

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


# ---------------------------------------------------------------- counting (spec section 6)


@dataclass
class TrajectoryMetrics:
    """Token counts of one trajectory; the field names are the result keys."""

    total_tokens: int
    critical_path_tokens: int
    num_blocks: int
    threads_per_block: list[int]
    self_parallelism: float
    """total_tokens / critical_path_tokens; 1.0 for an empty trajectory."""
    is_parallel: bool
    valid: bool | None
    """None when counted from ids without the text (validity not checked)."""
    violations: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def _walk(gaps: list[int], codes: list[int]) -> tuple[int, int, list[int]]:
    """The one-pass counter. `codes[k]` is a structural tag preceded by `gaps[k]` other tokens;
    `gaps[-1]` trails. Returns (total, critical path, threads per block)."""
    crit = own = cur = longest = n = 0
    state = 0  # 0 sequential, 1 in a block, 2 in a thread
    per_block: list[int] = []
    for g, c in zip(gaps, codes, strict=False):
        if state == 0:
            crit += g + 1  # a stray tag is sequential text; <Parallel> counts sequential too
            if c == _P_OPEN:
                state, own, longest, n = 1, 0, 0, 0
        elif state == 1:  # block's own part: tags, outlines, text between threads
            own += g + 1
            if c == _T_OPEN:
                state, cur = 2, 0
            elif c == _P_CLOSE:
                crit += own + longest
                per_block.append(n)
                state = 0
        else:  # thread: tokens strictly between its wrappers
            cur += g
            if c == _T_CLOSE or c == _P_CLOSE:
                n += 1
                longest = max(longest, cur)
                own += 1
                state = 1
                if c == _P_CLOSE:
                    crit += own + longest
                    per_block.append(n)
                    state = 0
            else:
                cur += 1  # a literal <Thread> or <Parallel>
    g = gaps[-1]
    if state == 0:
        crit += g
    else:  # a block still open at the end is closed there
        if state == 2:
            n += 1
            longest = max(longest, cur + g)
        else:
            own += g
        crit += own + longest
        per_block.append(n)
    return sum(gaps) + len(codes), crit, per_block


def _metrics(total: int, crit: int, per_block: list[int], text: str | None) -> TrajectoryMetrics:
    violations = None if text is None else validate_trajectory(parse_trajectory(text))
    return TrajectoryMetrics(
        total_tokens=total,
        critical_path_tokens=crit,
        num_blocks=len(per_block),
        threads_per_block=per_block,
        self_parallelism=total / crit if crit else 1.0,
        is_parallel=bool(per_block),
        valid=None if violations is None else not violations,
        violations=[] if violations is None else [str(v) for v in violations],
    )


def count_tokens(token_ids, tag_ids: dict[str, int], text: str | None = None) -> TrajectoryMetrics:
    """Metrics from token ids (one pass; rules in the module docstring, spec section 6).

    `tag_ids` maps at least `<Parallel>`, `</Parallel>`, `<Thread>`, `</Thread>` to their ids. Pass the
    decoded `text` to fill `valid`/`violations`; without it `valid` is None (not checked).
    """
    ids = token_ids if isinstance(token_ids, list) else list(token_ids)
    events: list[tuple[int, int]] = []
    for tag, code in _CODE.items():  # list.index scans in C: only tag positions reach Python
        tid, i = tag_ids[tag], -1
        try:
            while True:
                i = ids.index(tid, i + 1)
                events.append((i, code))
        except ValueError:
            pass
    events.sort()
    gaps, codes, prev = [], [], -1
    for pos, code in events:
        gaps.append(pos - prev - 1)
        codes.append(code)
        prev = pos
    gaps.append(len(ids) - prev - 1)
    return _metrics(*_walk(gaps, codes), text)


def fallback_encode(text: str) -> list[int]:
    """Ids of the built-in fallback counter: special token i -> i, every other token -> len(SPECIAL_TOKENS).

    Use with `FALLBACK_TAG_IDS`: `count_tokens(fallback_encode(s), FALLBACK_TAG_IDS, s) == measure_text(s)`.
    """
    pieces = _ALL_SPLIT.split(text)
    ids: list[int] = []
    other = len(SPECIAL_TOKENS)
    for j, p in enumerate(pieces):
        ids.extend([SPECIAL_TOKENS.index(p)] if j % 2 else [other] * len(_FALLBACK.findall(p)))
    return ids


FALLBACK_TAG_IDS: dict[str, int] = {t: i for i, t in enumerate(SPECIAL_TOKENS)}


def _fallback_counts(text: str) -> tuple[int, int, list[int]]:
    pieces = _ALL_SPLIT.split(text)  # text, tag, text, ..., text
    gaps, codes = [], []
    run = len(_FALLBACK.findall(pieces[0]))
    for j in range(1, len(pieces), 2):
        code = _CODE.get(pieces[j], 0)
        if code:
            gaps.append(run)
            codes.append(code)
            run = 0
        else:
            run += 1
        run += len(_FALLBACK.findall(pieces[j + 1]))
    gaps.append(run)
    return _walk(gaps, codes)


def _is_raw(tokenizer) -> bool:
    from tokenizers import Tokenizer

    return isinstance(tokenizer, Tokenizer)


def _encode_batch(tokenizer, texts: list[str]) -> list[list[int]]:
    if _is_raw(tokenizer):
        return [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def format_tag_ids(tokenizer) -> dict[str, int]:
    """Ids of the 8 format tags; ValueError unless each is one token of `tokenizer`.

    `tokenizer` (here and below): an HF tokenizer, or a raw `tokenizers.Tokenizer` (loads without
    transformers: `Tokenizer.from_file("DIR/tokenizer.json")`, what `threadweaver trace` uses).
    """
    raw = _is_raw(tokenizer)
    out = {}
    for tag in FORMAT_TAGS:
        ids = _encode_batch(tokenizer, [tag])[0]
        back = (
            (tokenizer.id_to_token if raw else tokenizer.convert_ids_to_tokens)(ids[0])
            if len(ids) == 1
            else None
        )
        if back != tag:
            raise ValueError(
                f"tokenizer does not hold {tag} as one token; add the tags with add_format_tokens"
            )
        out[tag] = ids[0]
    return out


def measure_many(texts: list[str], tokenizer=None) -> list[TrajectoryMetrics]:
    """`measure_text` over many texts; with a tokenizer they are encoded in one batch call."""
    if tokenizer is None:
        return [_metrics(*_fallback_counts(t), t) for t in texts]
    tag_ids = format_tag_ids(tokenizer)
    batch = _encode_batch(tokenizer, list(texts))
    return [count_tokens(ids, tag_ids, t) for ids, t in zip(batch, texts, strict=True)]


def measure_text(text: str, tokenizer=None) -> TrajectoryMetrics:
    """Metrics of one text: encoded whole with `tokenizer` (tags must be single special tokens), or
    counted by the built-in fallback (`FALLBACK_TOKEN_PATTERN`, tags 1 token each) when None."""
    return measure_many([text], tokenizer)[0]


def measure_ids(token_ids, tokenizer) -> TrajectoryMetrics:
    """Metrics of generated ids, decoded with special tokens kept for the validity check."""
    ids = list(token_ids)
    text = tokenizer.decode(ids, skip_special_tokens=False)
    return count_tokens(ids, format_tag_ids(tokenizer), text)


# ---------------------------------------------------------------- tokenizer and embeddings


def tag_word(tag: str) -> str:
    """The word inside a tag: "</Outlines>" -> "Outlines"."""
    return tag.strip("</>")


def add_format_tokens(tokenizer, model=None, tags: tuple[str, ...] = SPECIAL_TOKENS) -> dict[str, int]:
    """Add `tags` as special tokens (one id each) and return tag -> id (spec section 1).

    With a `model`, the embeddings are resized and each NEW tag's input row (and output row, when the
    output embeddings are not tied) starts as the mean of the rows of its word's tokens ("Parallel").
    Tags already in the vocabulary keep their id and rows.
    """
    from tokenizers import AddedToken

    pieces = {t: tokenizer.encode(tag_word(t), add_special_tokens=False) for t in tags}
    before = {t: tokenizer.convert_tokens_to_ids(t) for t in tags}
    missing = [t for t in tags if before[t] is None or before[t] == tokenizer.unk_token_id]
    if missing:
        tokenizer.add_tokens(
            [AddedToken(t, special=True, normalized=False) for t in missing], special_tokens=True
        )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in tags}
    if model is not None and missing:
        import torch

        emb = model.get_input_embeddings()
        if len(tokenizer) > emb.weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
            emb = model.get_input_embeddings()
        rows = [emb.weight]
        out = model.get_output_embeddings()
        if out is not None and out.weight.data_ptr() != emb.weight.data_ptr():
            rows.append(out.weight)
        with torch.no_grad():
            for w in rows:
                for t in missing:
                    w[ids[t]] = w[pieces[t]].mean(dim=0)
    return ids
