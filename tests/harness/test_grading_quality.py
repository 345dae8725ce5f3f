"""Grading quality over the offline benchmark data (issues 4 and 12, acceptance): figures print with `-s`.

- gold solutions of MATH500, Minerva Math and AIME24 grade `correct` (>= 99.5%);
  AIME25, AMC23 have no solution field; OlympiadBench solutions carry no `\\boxed{}`;
- every gold answer rewritten in equivalent forms (fractions, decimals, exact values, thousands separators,
  reordered lists, one box per listed answer, LaTeX variants) grades `correct` (>= 99.5%);
- the gold answer of a different problem grades `wrong` (>= 99.5% of pairs).
"""

from __future__ import annotations

import json
import os
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from harness import answer_norm as norm
from harness.grading import grade_many

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("THREADWEAVER_SHARED_DATA", REPO.parent / "shared" / "data"))
BENCHMARKS = ("aime24", "aime25", "amc23", "math500", "minerva_math", "olympiadbench")
RULE = {b: "minerva" if b == "minerva_math" else "math" for b in BENCHMARKS}  # as tasks/tw_*.yaml declare

pytestmark = pytest.mark.skipif(
    not (DATA / "math500.jsonl").exists(),
    reason=f"benchmark data not found at {DATA} (set THREADWEAVER_SHARED_DATA)",
)


def load(benchmark: str) -> list[dict]:
    with open(DATA / f"{benchmark}.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def boxed(s: str) -> str:
    return "The final answer is $\\boxed{" + s + "}$."


def rewrites(gold: str, benchmark: str) -> list[str]:
    """Equivalent forms of one gold answer: the forms models write for it (fractions, decimals, exact
    values, thousands separators, reordered lists, LaTeX variants)."""
    bare = norm.strip_dollars(gold).strip()
    forms = {gold, bare, "$" + bare + "$"}
    if (n := norm.simple_integer(bare)) is not None:
        forms |= {str(n), f"{n}.0"}
        if benchmark.startswith("aime"):
            forms |= {f"{n:03d}"}
        forms |= {f"x = {n}"}
        if abs(n) >= 1000:  # thousands separators
            grouped = f"{n:,}"
            forms |= {grouped, grouped.replace(",", "{,}"), grouped.replace(",", "\\,"), grouped.replace(",", " ")}
    m = re.fullmatch(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}", bare)
    if m:
        sign, a, b = m.groups()
        forms |= {f"{sign}\\dfrac{{{a}}}{{{b}}}", f"{sign}{a}/{b}", f"{sign}\\tfrac{{{a}}}{{{b}}}"}
        if len(a) == 1 and len(b) == 1:
            forms.add(f"{sign}\\dfrac{a}{b}")
        value = Fraction(int(a), int(b))
        if 10**6 % value.denominator == 0 or value.denominator in (2, 4, 5, 8, 10, 16, 20, 25, 40, 50):
            forms.add(sign + str(float(value)))
    if (d := re.fullmatch(r"(-?)(\d+\.\d{1,4})", bare)) and float(d.group(2)) != int(float(d.group(2))):
        exact = Fraction(Decimal(d.group(2)))  # a decimal gold as its exact fraction
        forms |= {f"{d.group(1)}{exact.numerator}/{exact.denominator}",
                  f"{d.group(1)}\\frac{{{exact.numerator}}}{{{exact.denominator}}}", bare + "0"}  # fmt: skip
    if "\\frac" in bare:
        forms |= {bare.replace("\\frac", "\\dfrac"), bare.replace("\\frac", "\\tfrac")}
    if "(" in bare and ")" in bare:
        forms.add(bare.replace("(", "\\left(").replace(")", "\\right)"))
    if benchmark == "minerva_math":
        if (v := norm.plain_number(bare)) is not None:
            v = float(v[0])
            forms |= {f"{v:.4g}", f"{v:.3e}".replace("e", "\\times 10^{") + "}", bare + " \\mathrm{~m}"}
    parts = norm.split_top_level(bare)
    if len(parts) > 1 and len(norm.split_top_level(norm.normalize(bare))) > 1:  # reordered lists
        forms |= {", ".join(reversed(parts)), ", ".join(f"${p}$" for p in reversed(parts))}
    return sorted(forms)


def responses(gold: str, benchmark: str) -> list[str]:
    """Whole responses: each rewrite in one box, and a list gold's answers in one box each (issue 12)."""
    out = [boxed(form) for form in rewrites(gold, benchmark)]
    bare = norm.strip_dollars(gold).strip()
    parts = norm.split_top_level(bare)
    if len(parts) > 1 and len(norm.split_top_level(norm.normalize(bare))) > 1:  # a list, not "10,\\!080"
        boxes = [f"$\\boxed{{{p}}}$" for p in reversed(parts)]
        out += ["<think>\\boxed{0} is wrong</think>The answers are " + " and ".join(boxes) + ".",
                "Work.\n\nSo the answers are " + ", ".join(boxes) + "."]
    return out


def test_gold_solutions_grade_correct():
    figures = {}
    for benchmark in ("math500", "minerva_math", "aime24"):
        rows = load(benchmark)
        grades = grade_many([(r["solution"], r["answer"], RULE[benchmark]) for r in rows], deadline_s=10.0)
        bad = [(r["id"], r["answer"], g) for r, g in zip(rows, grades, strict=True) if not g.correct]
        figures[benchmark] = (len(rows) - len(bad)) / len(rows)
        print(f"\n{benchmark}: gold solutions correct {len(rows) - len(bad)}/{len(rows)}", bad[:5])
    assert all(rate >= 0.995 for rate in figures.values()), figures


def test_equivalent_rewrites_grade_correct():
    items, labels = [], []
    for benchmark in BENCHMARKS:
        for row in load(benchmark):
            for response in responses(row["answer"], benchmark):
                items.append((response, row["answer"], RULE[benchmark]))
                labels.append((benchmark, row["answer"], response))
    grades = grade_many(items, deadline_s=10.0)
    bad = [(lab, g.status) for lab, g in zip(labels, grades, strict=True) if not g.correct]
    print(f"\nrewrites: {len(items) - len(bad)}/{len(items)} correct; failures: {bad[:10]}")
    assert (len(items) - len(bad)) / len(items) >= 0.995, bad[:20]


def test_other_problems_gold_grades_wrong():
    items, labels = [], []
    for benchmark in BENCHMARKS:
        rows = load(benchmark)
        for i, row in enumerate(rows):
            other = rows[(i + len(rows) // 2) % len(rows)]["answer"]
            gold = row["answer"]
            if norm.normalize(gold) == norm.normalize(other):
                continue  # the same answer text: not a different answer
            if norm.simple_integer(gold) is not None and norm.simple_integer(gold) == norm.simple_integer(
                other
            ):
                continue
            items.append((boxed(other), gold, RULE[benchmark]))
            labels.append((benchmark, gold, other))
    grades = grade_many(items, deadline_s=5.0)
    wrong = sum(g.status == "wrong" for g in grades)
    others = [(lab, g.status) for lab, g in zip(labels, grades, strict=True) if g.status != "wrong"]
    print(
        f"\nother problem's gold: wrong {wrong}/{len(items)} = {wrong / len(items):.4f}; not wrong: {others}"
    )
    assert wrong / len(items) >= 0.995
