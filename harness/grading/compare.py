"""Answer comparison under a GradingRule. In-process and without a deadline: the worker pool
(harness.grading.pool) is the safe path for untrusted answers.

"math" compares in steps; each decides only what it can prove, the rest falls through (rules.SPEC_NOTES):
equal strings; two whole numbers (exact); a gold listing several answers against a list of as many
(one to one); with `rel_tol`, two plain decimal numbers (exactly equal, or within the tolerance when they
are not both integers: base-n numerals and fractions are not plain decimals); word answers by their
letters; math-verify (gold first), also without a short left-hand side ("x = 5").
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from harness import answer_norm as norm
from harness.grading.extract import gold_answer
from harness.grading.rules import GradingRule, get_rule

DECIDERS = ("string", "integer", "numeric", "numeric tolerance", "math-verify", "list match")
PARSE_CACHE_SIZE = 4096  # parsed answers kept per worker (golds of the problems in flight, repeated answers)


@lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parse(s: str) -> list:
    """math-verify's reading of one answer string; cached, so a gold shared by the samples of one problem
    (an RL batch) is parsed once per worker."""
    from math_verify import parse

    return parse("\\boxed{" + s + "}", parsing_timeout=None)


def _mv_equal(gold: str, pred: str) -> bool:
    from math_verify import verify

    g, p = _parse(gold), _parse(pred)
    if not g or not p or _symbols_differ(g, p):
        return False
    return bool(verify(g, p, timeout_seconds=None))


def _symbols_differ(golds: list, preds: list) -> bool:
    """Plain expressions over different variables never match (math-verify's strict mode); deciding
    it here skips sympy simplifications that can run for seconds (a number vs an ODE solution)."""
    from sympy import Expr
    from sympy.core.relational import Relational

    pairs = [
        (g, p)
        for g in golds
        for p in preds
        for kind in (Expr, Relational)
        if isinstance(g, kind) and isinstance(p, kind)
    ]
    if not pairs:
        return False
    names = lambda e: {str(s) for s in e.free_symbols}  # noqa: E731
    return all(names(g) != names(p) for g, p in pairs)


def is_equivalent(pred: str, gold: str, rule: str | dict | GradingRule = "math") -> bool:
    """True when `pred` equals `gold` under `rule`. In-process, NO deadline: call it only on trusted
    strings or inside a worker; `grade_many` / `equivalent_many` are the safe paths."""
    return compare(pred, gold, rule)[0]


def compare(pred: str, gold: str, rule: str | dict | GradingRule = "math") -> tuple[bool, str]:
    """(equal, the comparison that decided: one of DECIDERS)."""
    rule = get_rule(rule)
    g, p = norm.normalize(gold_answer(gold)), norm.normalize(pred)
    if not p or not g:
        return False, "string"
    if rule.compare == "digits":
        return "".join(g.split()) == "".join(p.split()), "string"  # "0917" is not "917"
    if rule.compare == "exact":
        return " ".join(g.split()) == " ".join(p.split()), "string"
    return _math(p, g, rule, whole=True)


def gold_parts(gold: str) -> list[str]:
    """The answers a gold lists ("(1,1), (3,2)" -> two; "1 and 2" -> two); one part for a single answer."""
    return _parts(norm.normalize(gold_answer(gold)))


def _parts(s: str) -> list[str]:
    return norm.split_top_level(norm.unwrap_set(norm.split_alternatives(s)))


def _number_vs_numbers(one: list[str], many: list[str]) -> bool:
    """One plain number on one side, a list of plain numbers on the other."""
    return len(one) == 1 and len(many) > 1 and all(norm.plain_number(x) for x in (*one, *many))


def _math(p: str, g: str, rule: GradingRule, whole: bool) -> tuple[bool, str]:
    """Both normalised. Each step decides only what it can prove; the rest falls through to math-verify."""
    if g == p:
        return True, "string"
    gi = norm.simple_integer(g)
    if gi is not None and (pi := norm.simple_integer(p)) is not None:
        return gi == pi, "integer"  # "025" == "25", "27.0" == "27"
    listed = False
    if whole:
        gparts, pparts = _parts(g), _parts(p)
        listed = len(gparts) > 1
        if _number_vs_numbers(gparts, pparts) or _number_vs_numbers(pparts, gparts):
            return False, "list match"  # one number is never a list ("1,22" is not 1.22: no decimal comma)
        if listed:
            same = len(pparts) == len(gparts) and _match_list(gparts, pparts, rule)
            if same or rule.ordered:
                return same, "list match"
    if rule.rel_tol is not None and (gv := norm.plain_number(g)) and (pv := norm.plain_number(p)):
        if gv[0] == pv[0]:
            return True, "numeric"  # exactly equal numbers are equal
        if not (gv[1] and pv[1]) and abs(pv[0] - gv[0]) <= Decimal(str(rule.rel_tol)) * abs(gv[0]):
            return True, "numeric tolerance"  # not both integers: measured quantities agree within rel_tol
    if norm.is_text_answer(g) or norm.is_text_answer(p):
        if norm.plain_text(g) and norm.plain_text(g) == norm.plain_text(p):
            return True, "string"
    if _mv_equal(g, p):
        return True, "math-verify"
    g2, p2 = norm.drop_lhs(g), norm.drop_lhs(p)
    if (g2, p2) != (g, p) and _mv_equal(g2, p2):
        return True, "math-verify"
    return False, "list match" if listed else "math-verify"


def _match_list(golds: list[str], preds: list[str], rule: GradingRule) -> bool:
    """One to one: in order for an `ordered` rule, else each gold finds its own prediction."""
    same = lambda p, g: _math(norm.normalize(p), norm.normalize(g), rule, whole=False)[0]  # noqa: E731
    if rule.ordered:
        return all(same(p, g) for g, p in zip(golds, preds, strict=True))
    unused = list(preds)
    for g in golds:
        hit = next((i for i, p in enumerate(unused) if same(p, g)), None)
        if hit is None:
            return False
        unused.pop(hit)
    return True
