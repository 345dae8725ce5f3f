"""Reading the LLM's replies: untrusted text in, a value or a drop reason out (never an exception).

Each parser returns `(value, None)` or `(None, "code: detail")`; the codes are stable (README "Data
generation" lists them). A reply may wrap its JSON in prose or a ``` fence; the first JSON object of the
right shape is taken.
"""

from __future__ import annotations

import json
import re

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
MAX_OUTLINE_CHARS = 600
OUTLINE_TELLS = ("\\boxed",)
"""An outline containing one of these gives away a result (threadweaver.md section 4, step 4)."""


def extract_json(text: str) -> dict | None:
    """The first JSON object in `text`: the whole text, a fenced block, or the first `{` that parses."""
    candidates = [text.strip(), *(m.group(1).strip() for m in _FENCE.finditer(text))]
    for c in candidates:
        try:
            obj = json.loads(c)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _obj(text: str, key: str) -> tuple[object, str | None]:
    obj = extract_json(text)
    if obj is None:
        return None, "malformed: no JSON object in the reply"
    if key not in obj:
        return None, f"malformed: the JSON object has no `{key}`"
    return obj[key], None


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def parse_structure(text: str) -> tuple[list[list[tuple[int, int]]] | None, str | None]:
    """Step 1: the proposed blocks, each a list of (first, last) line ranges as given (checked in step 2)."""
    blocks, err = _obj(text, "parallel_blocks")
    if err:
        return None, err
    if not isinstance(blocks, list):
        return None, "malformed: `parallel_blocks` is not a list"
    out = []
    for i, b in enumerate(blocks):
        threads = b.get("threads") if isinstance(b, dict) else None
        if not isinstance(threads, list):
            return None, f"malformed: parallel_blocks[{i}] has no list `threads`"
        ranges = []
        for t in threads:
            if not (isinstance(t, list) and len(t) == 2 and all(_is_int(x) for x in t)):
                return None, f"malformed: parallel_blocks[{i}] thread {t!r} is not [first, last]"
            ranges.append((t[0], t[1]))
        out.append(ranges)
    return out, None


def parse_edits(text: str) -> tuple[list[tuple[str, str]] | None, str | None]:
    """Step 3: (find, replace) pairs."""
    edits, err = _obj(text, "edits")
    if err:
        return None, err
    if not isinstance(edits, list):
        return None, "malformed: `edits` is not a list"
    out = []
    for e in edits:
        if not (isinstance(e, dict) and isinstance(e.get("find"), str) and isinstance(e.get("replace"), str)):
            return None, f"malformed: edit {str(e)[:80]!r} is not {{find, replace}} strings"
        if not e["find"]:
            return None, "malformed: an edit with an empty `find`"
        out.append((e["find"], e["replace"]))
    return out, None


def parse_outlines(text: str, count: int) -> tuple[list[str] | None, str | None]:
    """Step 4: exactly `count` one-line plans that reveal no result."""
    outlines, err = _obj(text, "outlines")
    if err:
        return None, err
    if not isinstance(outlines, list) or not all(isinstance(o, str) for o in outlines):
        return None, "malformed: `outlines` is not a list of strings"
    if len(outlines) != count:
        return None, f"outline_count: {len(outlines)} outlines for {count} threads"
    clean = [" ".join(o.split()) for o in outlines]
    for k, o in enumerate(clean, 1):
        if not o:
            return None, f"outline_empty: outline {k} is empty"
        if len(o) > MAX_OUTLINE_CHARS:
            return (
                None,
                f"outline_too_long: outline {k} has {len(o)} characters (at most {MAX_OUTLINE_CHARS})",
            )
        if any(t in o for t in OUTLINE_TELLS):
            return None, f"outline_reveals: outline {k} states a result ({o[:60]!r})"
    return clean, None
