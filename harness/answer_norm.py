"""String normalisers applied to gold and extracted answers before math-verify sees them.

Pure string work (no sympy): each function is cheap and safe on hostile input. The per-benchmark gold
formats they exist for are described in `../shared/data/README.md`.

Numbers: thousands separators (`1,000`, `1{,}000`, `1\\,000`, `1\\;000`, `1\\!000`, `1 000`) make one number;
a decimal comma is never guessed (`1,22` stays a list of two answers: commas separate answers).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_OPEN, _CLOSE = "([{", ")]}"

# 4.5e33, -1.2E-5, 3e8 (Minerva golds): a number in e-notation, not part of a word
_E_NOTATION = re.compile(r"(?<![\w.\\])(\d+(?:\.\d*)?|\.\d+)[eE]([+-]?\d+)(?![\w.])")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree")
_PERCENT = re.compile(r"\\?%")
_FRAC_FAMILY = re.compile(r"\\[dt]frac\b")
# \frac12, \frac 59, \frac{270}7: single-character numerator/denominator without braces
_FRAC_SHORT = re.compile(r"\\frac\s*(\{[^{}]*\}|[0-9a-zA-Z])\s*(\{[^{}]*\}|[0-9a-zA-Z])")
_TRAILING_DOT_NUMBER = re.compile(r"(\d)\.(?!\d)")  # "-1./3" (Minerva) -> "-1/3"
_NUMPY_FUNC = re.compile(r"\bnp\.(arcsin|arccos|arctan|sin|cos|tan|exp|log|sqrt|pi)\b")
# a whole answer that is one number written with thousands separators: "10,\\!080", "1\\,000", "1 000"
_THOUSANDS_SEP = r"(?:,\\!\s*|\{,\}|,|\\[,;!]\s*|\\ |~| )"
_THOUSANDS = re.compile(rf"^[+-]?[1-9]\d{{0,2}}(?:{_THOUSANDS_SEP}\d{{3}})+(?:\.\d+)?$")
_THOUSANDS_SEP_RE = re.compile(_THOUSANDS_SEP)
_TEXT_CMD = re.compile(r"\\(?:text|textbf|mathrm|mbox|rm|operatorname)\s*\{([^{}]*)\}")
_SIMPLE_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_WRAPPER = re.compile(r"\\(?:textbf|mathbf|boxed|bf)\s*\{(.*)\}", re.S)
_PLAIN_NUMBER = re.compile(
    r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:\s*(?:\\times|\\cdot|x)\s*10\s*\^\s*\{?\s*([+-]?\d+)\s*\}?)?"
)
# A unit after a number: it starts with a space, ~, a thin space or a unit command (so "8/5", "10^{-3}",
# "1011_{2}" are not numbers with units), then letters, \mathrm{..}, /, ^digits, spaces; nothing that is math.
_UNIT_TAIL = re.compile(
    r"^(?:(?:\s|~|\\,|\\;|\\!|\\ |\\(?:mathrm|text|mbox|rm)\s*\{[^{}]*\})"
    r"(?:\s|~|\\,|\\;|\\!|\\ |\\(?:mathrm|text|mbox|rm)\s*\{[^{}]*\}|[A-Za-z/^\d{}\-.])*)?$"
)


def strip_dollars(s: str) -> str:
    """Remove `$` math delimiters (OlympiadBench golds: "$69$,$84$") and escaped dollar signs."""
    return s.replace("\\$", "").replace("$", "")


def normalize(s: str) -> str:
    """Canonical LaTeX-ish form of one answer string (gold or extracted)."""
    s = strip_dollars(s).strip()
    while (m := _WRAPPER.fullmatch(s)) is not None and _balanced(m.group(1)):  # \textbf{(073)}
        s = m.group(1).strip()
    s = s.replace("\\left", "").replace("\\right", "").replace("\\displaystyle", "")
    s = s.replace("\\geqslant", "\\geq").replace("\\leqslant", "\\leq").replace("\\quad", " ")
    s = _FRAC_FAMILY.sub(r"\\frac", s)
    s = _FRAC_SHORT.sub(lambda m: f"\\frac{_brace(m.group(1))}{_brace(m.group(2))}", s)
    s = _DEGREES.sub("", s)
    s = re.sub(r"_\s*([A-Za-z0-9])", r"_{\1}", s)  # E_2 -> E_{2}
    s = _PERCENT.sub("", s)
    s = _NUMPY_FUNC.sub(lambda m: "\\" + m.group(1), s)
    s = _TRAILING_DOT_NUMBER.sub(r"\1", s)
    s = _E_NOTATION.sub(lambda m: f"{m.group(1)}\\times10^{{{int(m.group(2))}}}", s)
    if _THOUSANDS.match(s):
        s = _THOUSANDS_SEP_RE.sub("", s)
    s = s.strip().rstrip(".").strip()
    while s.startswith("{") and s.endswith("}") and _balanced(s[1:-1]):  # "{1,2,3}": a group, not a set
        s = s[1:-1].strip()
    return s


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def _brace(tok: str) -> str:
    return tok if tok.startswith("{") else "{" + tok + "}"


def plain_text(s: str) -> str:
    """Letters and digits only, lower case: compares text answers ("\\text{Evelyn}" vs "Evelyn")."""
    s = _TEXT_CMD.sub(r"\1", s)
    return re.sub(r"[^0-9a-z]", "", s.lower())


def is_text_answer(s: str) -> bool:
    """A word answer such as "\\text{east}" or "\\text{(C)}" (not a formula)."""
    inner = _TEXT_CMD.fullmatch(s.strip())
    return bool(inner) and bool(re.search(r"[A-Za-z]", inner.group(1)))


def split_top_level(s: str) -> list[str]:
    """Split on commas outside brackets: "(1,1), (3,2)" -> ["(1,1)", "(3,2)"]; "(3,4]" stays whole."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(s):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0 and not s[i - 1 : i] == "\\":
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    parts = [p.strip() for p in parts]
    return [p for p in parts if p]


def unwrap_set(s: str) -> str:
    """Drop set braces: "\\{1, 2\\}" -> "1, 2" (a model may write a set where the gold lists values)."""
    t = s.strip()
    if t.startswith("\\{") and t.endswith("\\}"):
        return t[2:-2]
    return t


def split_alternatives(s: str) -> str:
    """Turn "1 \\text{ and } 2" / "1 \\text{or} 2" into "1, 2"."""
    return re.sub(r"\\text\s*\{\s*(?:and|or)\s*\}|\s+(?:and|or)\s+", ",", s)


def drop_lhs(s: str) -> str:
    """Drop a short variable or f(x) left of a single `=`: "x = 5" -> "5"."""
    m = re.match(r"^\s*(?:\\?[A-Za-z]+(?:_\{?[\w\\]+\}?)?(?:\([A-Za-z, ]*\))?)\s*=(?!=)(.+)$", s)
    if m and "=" not in m.group(1):
        return m.group(1).strip()
    return s


def plain_number(s: str) -> tuple[Decimal, bool] | None:
    """A plain decimal number, units dropped, as (exact value, written as an integer):
    "3.0 \\mathrm{m/s}" -> (3.0, False), "4.5e33" -> (4.5E+33, False), "120" -> (120, True).
    None for anything else: fractions ("8/5"), powers ("10^{-3}"), base-n numerals ("1011_{2}")."""
    s = normalize(s)
    m = _PLAIN_NUMBER.match(s)
    if not m or not _UNIT_TAIL.match(s[m.end() :]) or len(m.group(1)) > 60:
        return None
    try:
        value = Decimal(m.group(1))
        if m.group(2) is not None:
            exp = int(m.group(2))
            if abs(exp) > 300:
                return None
            value = value.scaleb(exp)
    except (InvalidOperation, ValueError):
        return None
    return value, m.group(2) is None and "." not in m.group(1)


def simple_integer(s: str) -> int | None:
    """Whole numbers: "025" -> 25, "27.0" -> 27 (AIME zero padding, AMC floats); else None."""
    t = normalize(s)
    if t.startswith("(") and t.endswith(")"):
        t = t[1:-1].strip()
    if not _SIMPLE_NUMBER.match(t) or len(t) > 40:
        return None
    if "." in t:
        whole, _, frac = t.partition(".")
        if frac.strip("0"):
            return None
        t = whole or "0"
    return int(t)
