"""Grading quality over the offline benchmark data (issue 4, acceptance): figures are printed (`-s`).

- gold solutions of MATH500, Minerva Math and AIME24 grade `correct` (>= 99.5%);
  AIME25, AMC23 have no solution field; OlympiadBench solutions carry no `\\boxed{}`;
- every gold answer rewritten in equivalent forms grades `correct`;
- the gold answer of a different problem grades `wrong` (>= 99.5% of pairs).
"""

from __future__ import annotations

import json
import os
import re
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
    """Equivalent forms of one gold answer: the forms models write for it."""
    bare = norm.strip_dollars(gold).strip()
    forms = {gold, bare, "$" + bare + "$"}
    if (n := norm.simple_integer(bare)) is not None:
        forms |= {str(n), f"{n}.0"}
        if benchmark.startswith("aime"):
            forms |= {f"{n:03d}"}
        forms |= {f"x = {n}"}
    m = re.fullmatch(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}", bare)
    if m:
        sign, a, b = m.groups()
        forms |= {f"{sign}\\dfrac{{{a}}}{{{b}}}", f"{sign}{a}/{b}"}
        if len(a) == 1 and len(b) == 1:
            forms.add(f"{sign}\\dfrac{a}{b}")
        value = Fraction(int(a), int(b))
        if 10**6 % value.denominator == 0 or value.denominator in (2, 4, 5, 8, 10, 16, 20, 25, 40, 50):
            forms.add(sign + str(float(value)))
    if benchmark == "minerva_math":
        if (v := norm.minerva_number(bare)) is not None:
            forms |= {f"{v:.4g}", f"{v:.3e}".replace("e", "\\times 10^{") + "}", bare + " \\mathrm{~m}"}
    parts = norm.split_top_level(bare)
    if benchmark == "olympiadbench" and len(parts) > 1:
        forms |= {", ".join(reversed(parts)), ", ".join(f"${p}$" for p in reversed(parts))}
    return sorted(forms)


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
            for form in rewrites(row["answer"], benchmark):
                items.append((boxed(form), row["answer"], RULE[benchmark]))
                labels.append((benchmark, row["answer"], form))
    grades = grade_many(items, deadline_s=10.0)
    bad = [(lab, g.status) for lab, g in zip(labels, grades, strict=True) if not g.correct]
    print(f"\nrewrites: {len(items) - len(bad)}/{len(items)} correct; failures: {bad[:10]}")
    assert not bad, bad[:20]


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
