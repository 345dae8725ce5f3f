"""Answer extraction: pure string work, linear time, safe on any model output.

- "boxed": the content of the LAST `\\boxed{...}` (also `\\fbox`, `\\framebox`, `\\boxed 5`) anywhere in the
  response (spec section 1). Text after the last box ("so the final answer is 7") does not count: the spec
  says the last box wins, so a sentence cannot overrule it; prose without any box is `no_answer`.
  Extension for golds that list several answers: when the answer part (after the last `</think>`, else
  the last paragraph) holds several boxes, they are the answer list, joined with ", ".
- "final_answer": the last case-insensitive `Final Answer:` up to the end of its line, searched in the last
  300 characters (Parallel-R1's reward; spec formats.md section 2.2 "answer").
- "answer_is", "last_number": the fallbacks of NPR's parser after the last box (formats.md section 2.1):
  the text after the last "he answer is", else after the last "final answer is", up to the end of its line
  (a trailing period and `$` dropped); else the last number of the response. Our implementation of the
  order the spec states, for the `npr` preset.
"""

from __future__ import annotations

import re

FINAL_ANSWER_WINDOW = 300  # characters at the end of the response searched for `Final Answer:`
_BOX_RE = re.compile(r"\\(?:boxed|fbox|framebox)(?![A-Za-z])([ \t]*)")
_TOKEN_RE = re.compile(r"[^\s$]+")
_BRACE_RE = re.compile(r"\\[{}]|[{}]")
_FINAL_ANSWER_RE = re.compile(r"final answer\s*:\s*([^\n]+)", re.IGNORECASE)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
THINK_CLOSE = "</think>"


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


def answer_part(response: str) -> str:
    """The text after the last `</think>`; without one, the last paragraph (after the last blank line)."""
    cut = response.rfind(THINK_CLOSE)
    if cut != -1:
        return response[cut + len(THINK_CLOSE) :]
    text = response.rstrip()
    breaks = list(_PARAGRAPH_BREAK.finditer(text))
    return text[breaks[-1].end() :] if breaks else text


def answer_boxes(response: str) -> list[str]:
    """The non-empty boxes of the answer part, in order."""
    return [b.strip() for b in box_contents(answer_part(response)) if b.strip()]


def last_box(response: str) -> str | None:
    """Extractor "boxed": the last box's content, stripped; None when there is no box."""
    boxes = box_contents(response)
    return boxes[-1].strip() if boxes else None


def final_answer(response: str) -> str | None:
    """Extractor "final_answer": text after the last `Final Answer:` in the last 300 characters."""
    found = _FINAL_ANSWER_RE.findall(response[-FINAL_ANSWER_WINDOW:])
    return found[-1].strip() if found else None


_ANSWER_IS = (re.compile(r"he answer is\s*:?\s*([^\n]+)"), re.compile(r"final answer is\s*:?\s*([^\n]+)"))
_NUMBER_RE = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?")


def answer_is(response: str) -> str | None:
    """Extractor "answer_is": after the last "he answer is", else the last "final answer is" (NPR)."""
    for pattern in _ANSWER_IS:
        found = pattern.findall(response)
        if found:
            return found[-1].strip().rstrip(".").strip("$ ") or None
    return None


def last_number(response: str) -> str | None:
    """Extractor "last_number": the last number in the response (NPR's final fallback)."""
    found = _NUMBER_RE.findall(response)
    return found[-1] if found else None


EXTRACT = {"boxed": last_box, "final_answer": final_answer, "answer_is": answer_is, "last_number": last_number}


def extract_with(
    response: str, extractors: tuple[str, ...], list_gold: bool = False
) -> tuple[str | None, str | None]:
    """(answer, how it was found) for the first extractor that finds a non-empty answer. With `list_gold`
    (the gold lists several answers), several boxes in the answer part are the answer ("boxes")."""
    for name in extractors:
        if name == "boxed" and list_gold and len(boxes := answer_boxes(response)) > 1:
            return ", ".join(boxes), "boxes"
        answer = EXTRACT[name](response)
        if answer:
            return answer, name
    return None, None


def gold_answer(gold: str) -> str:
    """The gold as an answer string. A gold written with boxes is read by its boxes: several boxes with at
    most three words between neighbours ("\\boxed{2}, \\boxed{3} and \\boxed{5}", "\\boxed{1} cm and
    \\boxed{2} cm") are that list; a sentence between boxes makes the earlier ones working steps, and the
    last box is the gold."""
    if "box" not in gold:
        return gold
    spans = _box_spans(gold)
    if not spans:
        return gold
    between = [gold[a[2] : b[0]] for a, b in zip(spans, spans[1:], strict=False)]
    if len(spans) > 1 and all(len(_WORD.findall(_COMMAND.sub(" ", t))) <= 3 for t in between):
        return ", ".join(gold[j + 1 : end - 1].strip() for _, j, end in spans)
    _, j, end = spans[-1]
    return gold[j + 1 : end - 1].strip()


_COMMAND = re.compile(r"\\[A-Za-z]+")
_WORD = re.compile(r"[A-Za-z]+")


def _box_spans(text: str) -> list[tuple[int, int, int]]:
    """(start of the command, its `{`, end after its `}`) of each braced box (pure string work, linear)."""
    spans, closing = [], None
    for m in _BOX_RE.finditer(text):
        j = m.end()
        if text[j : j + 1] == "{":
            closing = _closing_braces(text) if closing is None else closing
            if j in closing:
                spans.append((m.start(), j, closing[j] + 1))
    return spans
