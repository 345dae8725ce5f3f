"""Answer extraction: pure string work, linear time, safe on any model output.

- "boxed": the content of the LAST `\\boxed{...}` (also `\\fbox`, `\\framebox`, `\\boxed 5`) anywhere in the
  response (spec section 1). Text after the last box ("so the final answer is 7") does not count.
- "final_answer": the last case-insensitive `Final Answer:` up to the end of its line, searched in the last
  300 characters (Parallel-R1's reward; spec formats.md section 2.2 "answer").
"""

from __future__ import annotations

import re

FINAL_ANSWER_WINDOW = 300  # characters at the end of the response searched for `Final Answer:`
_BOX_RE = re.compile(r"\\(?:boxed|fbox|framebox)(?![A-Za-z])([ \t]*)")
_TOKEN_RE = re.compile(r"[^\s$]+")
_BRACE_RE = re.compile(r"\\[{}]|[{}]")
_FINAL_ANSWER_RE = re.compile(r"final answer\s*:\s*([^\n]+)", re.IGNORECASE)


def _closing_braces(text: str) -> dict[int, int]:
    """Index of each `{` -> index of its `}`, in one pass (linear even on degenerate output)."""
    match, stack = {}, []
    for m in _BRACE_RE.finditer(text):
        if m.group(0) == "{":
            stack.append(m.start())
        elif m.group(0) == "}" and stack:
            match[stack.pop()] = m.start()
    return match  # `\{` and `\}` are literal braces: matched whole by _BRACE_RE, never paired


def box_contents(text: str) -> list[str]:
    """Contents of every `\\boxed{..}` / `\\boxed {..}` / `\\fbox{..}` / `\\boxed 5`, in order."""
    found: list[str] = []
    closing: dict[int, int] | None = None
    for m in _BOX_RE.finditer(text):
        j = m.end()
        if text[j : j + 1] == "{":
            closing = _closing_braces(text) if closing is None else closing
            if j in closing:
                found.append(text[j + 1 : closing[j]])
        elif m.group(1) and m.group(0).startswith("\\boxed"):  # "\boxed 5": one token
            if tok := _TOKEN_RE.match(text, j):
                found.append(tok.group(0))
    return found


def last_box(response: str) -> str | None:
    """Extractor "boxed": the last box's content, stripped; None when there is no box."""
    boxes = box_contents(response)
    return boxes[-1].strip() if boxes else None


def final_answer(response: str) -> str | None:
    """Extractor "final_answer": text after the last `Final Answer:` in the last 300 characters."""
    found = _FINAL_ANSWER_RE.findall(response[-FINAL_ANSWER_WINDOW:])
    return found[-1].strip() if found else None


EXTRACT = {"boxed": last_box, "final_answer": final_answer}


def extract_with(response: str, extractors: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(answer, extractor that found it) for the first extractor that finds a non-empty answer."""
    for name in extractors:
        answer = EXTRACT[name](response)
        if answer:
            return answer, name
    return None, None
