"""Answer comparison under a GradingRule. In-process and without a deadline: the worker pool
(harness.grading.pool) is the safe path for untrusted answers.
"""

from __future__ import annotations

import math

from harness import answer_norm as norm
from harness.grading.rules import GradingRule, get_rule


def _parse(s: str) -> list:
    from math_verify import parse

    return parse("\\boxed{" + s + "}", parsing_timeout=None)


def _mv_equal(gold: str, pred: str, rel_tol: float | None) -> bool:
    from math_verify import verify

    g, p = _parse(gold), _parse(pred)
    if not g or not p or _symbols_differ(g, p):
        return False
    if verify(g, p, timeout_seconds=None):
        return True
    if rel_tol is None:
        return False
    for ge in g:
        for pe in p:  # both sides numbers -> relative tolerance
            if getattr(ge, "is_number", False) and getattr(pe, "is_number", False):
                try:
                    if math.isclose(float(pe), float(ge), rel_tol=rel_tol):
                        return True
                except (TypeError, ValueError, OverflowError):
                    pass
    return False


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
    rule = get_rule(rule)
    g, p = norm.normalize(gold), norm.normalize(pred)
    if not p or not g:
        return False
    if rule.compare == "digits":
        return "".join(g.split()) == "".join(p.split())  # "0917" is not "917"
    if rule.compare == "exact":
        return " ".join(g.split()) == " ".join(p.split())
    return _math_equal(p, g, rule, split=True)


def _math_equal(p: str, g: str, rule: GradingRule, split: bool) -> bool:
    if g == p:
        return True
    gi = norm.simple_integer(g)
    if gi is not None and (pi := norm.simple_integer(p)) is not None:
        return gi == pi  # "025" == "25", "27.0" == "27"
    rel_tol = rule.rel_tol
    if rel_tol is not None and (gv := norm.minerva_number(g)) is not None:
        if (pv := norm.minerva_number(p)) is not None:
            return math.isclose(pv, gv, rel_tol=rel_tol)
    if norm.is_text_answer(g) or norm.is_text_answer(p):
        if norm.plain_text(g) and norm.plain_text(g) == norm.plain_text(p):
            return True
    if _mv_equal(g, p, rel_tol):
        return True
    g2, p2 = norm.drop_lhs(g), norm.drop_lhs(p)
    if (g2, p2) != (g, p) and _mv_equal(g2, p2, rel_tol):
        return True
    if split:
        gparts = norm.split_top_level(g)
        if len(gparts) > 1:  # several answers in one string: order-insensitive match
            pparts = norm.split_top_level(norm.unwrap_set(norm.split_alternatives(p)))
            return len(pparts) == len(gparts) and _match_all(gparts, pparts, rule)
    return False


def _match_all(golds: list[str], preds: list[str], rule: GradingRule) -> bool:
    if rule.ordered:
        return all(_math_equal(norm.normalize(p), norm.normalize(g), rule, split=False)
                   for g, p in zip(golds, preds, strict=True))  # fmt: skip
    unused = list(preds)
    for g in golds:
        hit = next((i for i, p in enumerate(unused)
                    if _math_equal(norm.normalize(p), norm.normalize(g), rule, split=False)), None)  # fmt: skip
        if hit is None:
            return False
        unused.pop(hit)
    return True
