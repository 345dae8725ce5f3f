"""Token counts and critical path of a trajectory in any format: one recursive walk (formats.md section 3).

    >>> m = measure_text("a <Parallel><Outlines><Outline>1: x</Outline></Outlines>"
    ...                  "<Thread>1: y z</Thread></Parallel>")
    >>> (m.total_tokens, m.critical_path_tokens, m.num_blocks, m.valid, m.count_unit)
    (20, 20, 1, True, 'builtin-v1')

Critical path of a span = its tokens outside every branch + for each block in it, the block's own part
(its open/close tags, plan, branch wrapper tags, summary) + the longest critical path among its branches,
computed recursively for nested blocks. A branch counts the tokens strictly between its open and close
tags (its `i:` header included). For a sequential trajectory it equals the total.

Lenient reading (formats.md section 3; for ThreadWeaver the rules of harness/formats/threadweaver.py):
a block open inside a block's own part, or beyond the format's depth, is text; a branch open outside a
block's own part is text; an unmatched close is text; a block close inside an open branch closes the
branch and then the block; whatever is open at the end is closed there. Malformed text is data.

Counted from token ids with the format's four structural tags as single ids (`count_ids`), or from text
with the built-in fallback counter (`FALLBACK_TOKEN_PATTERN`, each of the format's special tokens 1 token).
The trie rollout counts from the requests it issued instead (harness/rollout.py, "record first").
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from harness.formats import DEFAULT_FORMAT, ParallelFormat, get_format
from harness.tokens import FALLBACK_UNIT, count_unit, encode_batch, single_token_ids

# Built-in fallback counter (no tokenizer): each special token is 1 token; other text splits into
# runs of letters, single digits, whitespace runs and single other characters, 1 token each.
FALLBACK_TOKEN_PATTERN = r"[^\W\d_]+|\d|\s+|."
_FALLBACK = re.compile(FALLBACK_TOKEN_PATTERN, re.DOTALL)
BLOCK_OPEN, BLOCK_CLOSE, BRANCH_OPEN, BRANCH_CLOSE = 1, 2, 3, 4  # event codes of the walk


@dataclass
class TrajectoryMetrics:
    """Token counts of one trajectory; the field names are the result keys."""

    total_tokens: int
    critical_path_tokens: int
    num_blocks: int
    """Blocks at every depth, in the order they open."""
    threads_per_block: list[int]
    """Branches of each block (threads, paths, steps: the format's word), same order."""
    self_parallelism: float
    """total_tokens / critical_path_tokens; 1.0 for an empty trajectory."""
    is_parallel: bool
    """At least one block (formats.md section 3, activation)."""
    valid: bool | None
    """The format's strict checker passed; None when counted from ids without the text."""
    violations: list[str]
    count_unit: str
    """What one token is (harness.tokens.count_unit)."""

    def to_dict(self) -> dict:
        return asdict(self)


def metrics_from_counts(total: int, crit: int, per_block: list[int], violations: list[str] | None,
                        unit: str) -> TrajectoryMetrics:  # fmt: skip
    """Assemble the metrics; `violations` None = validity not checked."""
    return TrajectoryMetrics(
        total_tokens=total, critical_path_tokens=crit, num_blocks=len(per_block), threads_per_block=per_block,
        self_parallelism=total / crit if crit else 1.0, is_parallel=bool(per_block),
        valid=None if violations is None else not violations, violations=list(violations or []), count_unit=unit,
    )  # fmt: skip


@dataclass
class BlockCounts:
    """Token counts of one block (dataset statistics, trainers/datagen/stats.py)."""

    total_tokens: int
    """Every token from the block's open tag to its close tag, both included."""
    critical_path_tokens: int
    """The block's own part (tags, plan, wrappers) + the critical path of its longest branch."""
    threads: int
    """Its branches."""


def walk(gaps: list[int], codes: list[int], max_depth: int,
         blocks: list[BlockCounts] | None = None) -> tuple[int, int, list[int]]:  # fmt: skip
    """The one counter. `codes[k]` (an event code) is a one-token tag preceded by `gaps[k]` other tokens;
    `gaps[-1]` trails. Returns (total, critical path, branches per block); `blocks`, when given, gets one
    BlockCounts per block as it closes."""
    per_block: list[int] = []
    # frames: ["span", crit] (trunk or branch content) or ["block", own, longest, branches, index, start]
    stack: list[list] = [["span", 0]]
    depth = 0  # open blocks
    pos = 0  # tokens read so far

    def close_branch() -> None:
        branch = stack.pop()
        block = stack[-1]
        block[2] = max(block[2], branch[1])
        block[3] += 1
        per_block[block[4]] = block[3]

    def close_block() -> None:
        nonlocal depth
        block = stack.pop()
        stack[-1][1] += block[1] + block[2]
        depth -= 1
        if blocks is not None:
            blocks.append(BlockCounts(pos - block[5], block[1] + block[2], block[3]))

    for g, c in zip(gaps, codes, strict=False):
        top = stack[-1]
        top[1] += g
        pos += g + 1
        if top[0] == "block":  # the block's own part: tags, plan, text between branches
            top[1] += 1
            if c == BRANCH_OPEN:
                stack.append(["span", 0])
            elif c == BLOCK_CLOSE:
                close_block()
        elif c == BLOCK_OPEN and depth < max_depth:
            depth += 1
            per_block.append(0)
            stack.append(["block", 1, 0, 0, len(per_block) - 1, pos - 1])
        elif len(stack) > 1 and c in (BRANCH_CLOSE, BLOCK_CLOSE):  # inside a branch
            close_branch()
            stack[-1][1] += 1  # the tag belongs to the block's own part
            if c == BLOCK_CLOSE:
                close_block()
        else:  # text: a tag out of place
            top[1] += 1
    stack[-1][1] += gaps[-1]
    pos += gaps[-1]
    while len(stack) > 1:  # whatever is open at the end is closed there
        if stack[-1][0] == "span":
            close_branch()
        else:
            close_block()
    return sum(gaps) + len(codes), stack[0][1], per_block


def _events_to_walk(events: list[tuple[int, int]], length: int, max_depth: int,
                    blocks: list[BlockCounts] | None = None) -> tuple[int, int, list[int]]:  # fmt: skip
    events.sort()
    gaps, codes, prev = [], [], -1
    for pos, code in events:
        gaps.append(pos - prev - 1)
        codes.append(code)
        prev = pos
    gaps.append(length - prev - 1)
    return walk(gaps, codes, max_depth, blocks)


def count_ids(token_ids, tag_ids: dict[str, int], fmt: ParallelFormat | str = DEFAULT_FORMAT,
              text: str | None = None, unit: str = "tokens") -> TrajectoryMetrics:  # fmt: skip
    """Metrics from token ids (one pass). `tag_ids` maps the format's four structural tags to their ids.
    Pass the decoded `text` to fill `valid`/`violations`; without it `valid` is None (not checked)."""
    fmt = get_format(fmt)
    ids = token_ids if isinstance(token_ids, list) else list(token_ids)
    counts = _events_to_walk(_tag_events(ids, tag_ids, fmt), len(ids), fmt.max_depth)
    return metrics_from_counts(*counts, None if text is None else [str(v) for v in fmt.validate(text)], unit)


def _tag_events(ids: list[int], tag_ids: dict[str, int], fmt: ParallelFormat) -> list[tuple[int, int]]:
    events: list[tuple[int, int]] = []
    for code, tag in enumerate(fmt.counting_tags(), 1):
        tid, i = tag_ids[tag], -1
        try:  # list.index scans in C: only tag positions reach Python
            while True:
                i = ids.index(tid, i + 1)
                events.append((i, code))
        except ValueError:
            pass
    return events


def _fallback_counts(text: str, fmt: ParallelFormat,
                     blocks: list[BlockCounts] | None = None) -> tuple[int, int, list[int]]:  # fmt: skip
    split = re.compile("(" + "|".join(map(re.escape, fmt.special_tokens)) + ")")
    codes_of = {tag: code for code, tag in enumerate(fmt.counting_tags(), 1)}
    pieces = split.split(text)  # text, tag, text, ..., text
    gaps, codes = [], []
    run = len(_FALLBACK.findall(pieces[0]))
    for j in range(1, len(pieces), 2):
        code = codes_of.get(pieces[j], 0)
        if code:
            gaps.append(run)
            codes.append(code)
            run = 0
        else:
            run += 1
        run += len(_FALLBACK.findall(pieces[j + 1]))
    gaps.append(run)
    return walk(gaps, codes, fmt.max_depth, blocks)


def fallback_encode(text: str, fmt: ParallelFormat | str = DEFAULT_FORMAT) -> list[int]:
    """Ids of the built-in fallback counter: the format's special token i -> i, any other token -> one id
    past them. With `fallback_tag_ids`: `count_ids(fallback_encode(s), fallback_tag_ids(), text=s)` equals
    `measure_text(s)` but for the count unit."""
    fmt = get_format(fmt)
    split = re.compile("(" + "|".join(map(re.escape, fmt.special_tokens)) + ")")
    ids: list[int] = []
    other = len(fmt.special_tokens)
    for j, p in enumerate(split.split(text)):
        ids.extend([fmt.special_tokens.index(p)] if j % 2 else [other] * len(_FALLBACK.findall(p)))
    return ids


def fallback_tag_ids(fmt: ParallelFormat | str = DEFAULT_FORMAT) -> dict[str, int]:
    """tag -> id of `fallback_encode`."""
    return {t: i for i, t in enumerate(get_format(fmt).special_tokens)}


def tag_ids_of(tokenizer, fmt: ParallelFormat | str = DEFAULT_FORMAT) -> dict[str, int]:
    """Ids of the format's structural tags; ValueError unless each is one token of `tokenizer`."""
    return single_token_ids(tokenizer, get_format(fmt).counting_tags())


def measure_many(texts: list[str], tokenizer=None, fmt: ParallelFormat | str = DEFAULT_FORMAT) -> list[TrajectoryMetrics]:
    """Metrics of many texts: encoded in one batch with `tokenizer` (the format's tags must be single
    tokens), or counted by the built-in fallback counter when None."""
    fmt = get_format(fmt)
    if tokenizer is None:
        return [metrics_from_counts(*_fallback_counts(t, fmt), [str(v) for v in fmt.validate(t)], FALLBACK_UNIT)
                for t in texts]  # fmt: skip
    tag_ids, unit = tag_ids_of(tokenizer, fmt), count_unit(tokenizer)
    batch = encode_batch(tokenizer, list(texts))
    return [count_ids(ids, tag_ids, fmt, t, unit) for ids, t in zip(batch, texts, strict=True)]


def measure_text(text: str, tokenizer=None, fmt: ParallelFormat | str = DEFAULT_FORMAT) -> TrajectoryMetrics:
    """Metrics of one text (see `measure_many`)."""
    return measure_many([text], tokenizer, fmt)[0]


def measure_blocks(texts: list[str], tokenizer=None, fmt: ParallelFormat | str = DEFAULT_FORMAT) -> list[list[BlockCounts]]:
    """Per text, the BlockCounts of its blocks (in the order they close), counted like `measure_many`."""
    fmt = get_format(fmt)
    out: list[list[BlockCounts]] = [[] for _ in texts]
    if tokenizer is None:
        for text, blocks in zip(texts, out, strict=True):
            _fallback_counts(text, fmt, blocks)
        return out
    tag_ids = tag_ids_of(tokenizer, fmt)
    for ids, blocks in zip(encode_batch(tokenizer, list(texts)), out, strict=True):
        _events_to_walk(_tag_events(ids, tag_ids, fmt), len(ids), fmt.max_depth, blocks)
    return out
