"""harness.grading: extraction edge cases, each status, normalisations, the pool's hard deadline."""

from __future__ import annotations

import time

import pytest

from harness.grading import Grade, extract_answer, grade, grade_many, is_equivalent

pytestmark = pytest.mark.core


@pytest.mark.parametrize(
    "text, expected",
    [
        ("so \\boxed{5}.", "5"),
        ("\\boxed{1} then \\boxed{2}", "2"),  # the LAST box
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),  # nested braces
        ("\\boxed {7}", "7"),
        ("\\fbox{8}", "8"),
        ("$\\framebox{204}$ minutes", "204"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("\\boxed{x \\in \\{1}", "x \\in \\{1"),  # escaped braces are not grouping
        ("\\boxed 5 is it", "5"),
        ("no box here", None),
        ("\\boxed{unclosed", None),
        ("\\boxedx{3}", None),
        ("\\boxed{3} and \\fbox{4}", "4"),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_extract_after_think():
    text = "<think>maybe \\boxed{1}</think> so \\boxed{2}"
    assert extract_answer(text, require_after_think=True) == "2"
    assert extract_answer("<think>\\boxed{1}</think> done", require_after_think=True) is None
    assert extract_answer("\\boxed{1} no think tags", require_after_think=True) is None
    assert extract_answer("<think>\\boxed{1}</think> done") == "1"


@pytest.mark.parametrize(
    "pred, gold, benchmark",
    [
        ("25", "025", "aime24"),
        ("025", "25", "aime25"),
        ("27", "27.0", "amc23"),
        ("\\dfrac{1}{2}", "\\frac{1}{2}", "math500"),
        ("\\frac12", "0.5", "math500"),
        ("0.5", "\\frac{1}{2}", "olympiadbench"),
        ("90", "90^\\circ", "math500"),
        ("5", "x=5", "math500"),
        ("x = 5", "5", "math500"),
        ("Evelyn", "\\text{Evelyn}", "math500"),
        ("10080", "10,\\!080", "math500"),
        ("4.47 \\times 10^{33}", "4.5e33", "minerva_math"),  # 1% relative tolerance
        ("3.0 \\mathrm{m/s}", "3", "minerva_math"),
        ("1.6 \\text{ cm}", "1.6", "minerva_math"),
        ("\\arcsin(10/13)", "np.arcsin(10/13)", "minerva_math"),
        ("-1/3", "-1./3", "minerva_math"),
        ("1, 2", "$1$, $2$", "olympiadbench"),
        ("84, 69", "$69$,$84$", "olympiadbench"),
        ("(3,2), (1,1)", "$(1,1), (3,2)$", "olympiadbench"),
        ("E_2, E_1", "E_{1},E_{2}", "minerva_math"),
        ("\\frac{9}{32}\\sqrt{2}", "$M=\\frac{9}{32} \\sqrt{2}$", "olympiadbench"),
        ("62.5", "62.5%", "olympiadbench"),
        ("\\textbf{(073)}", "073", "aime24"),
    ],
)
def test_equivalent_forms(pred, gold, benchmark):
    assert is_equivalent(pred, gold, benchmark)


@pytest.mark.parametrize(
    "pred, gold, benchmark",
    [
        ("26", "025", "aime24"),
        ("0.51", "\\frac{1}{2}", "math500"),
        ("4.7e33", "4.5e33", "minerva_math"),  # 4.4% off: outside the tolerance
        ("4.47e33", "4.5e33", "math500"),  # no tolerance outside Minerva
        ("1", "$1$, $2$", "olympiadbench"),
        ("1, 3", "$1$, $2$", "olympiadbench"),
        ("\\text{Navin}", "\\text{Evelyn}", "math500"),
        ("q - p", "p - q", "math500"),
        ("", "5", "math500"),
        ("917", "0917", "toy"),  # toy answers are digit strings: the leading zero is chain a's result
    ],
)
def test_different_answers(pred, gold, benchmark):
    assert not is_equivalent(pred, gold, benchmark)


def test_unknown_benchmark_is_refused():
    with pytest.raises(ValueError, match="benchmark must be one of"):
        grade_many([("\\boxed{1}", "1", "gsm8k")])


def test_every_status_but_timeout_and_error():
    grades = grade_many(
        [
            ("\\boxed{2}", "2", "math500"),
            ("\\boxed{3}", "2", "math500"),
            ("I give up", "2", "math500"),
            ("I was cut off mid", "2", "math500", True),
            ("\\boxed{2}", "2", "math500", True),  # a boxed answer counts even when truncated
        ]
    )
    assert [g.status for g in grades] == ["correct", "wrong", "no_answer", "truncated", "correct"]
    assert grades[0] == Grade("correct", "2") and grades[2].extracted is None
    assert grade("\\boxed{\\dfrac12}", "0.5", "math500").correct


def test_hostile_answer_times_out_and_the_rest_is_graded():
    grade_many([("\\boxed{1}", "1", "math500")], workers=2)  # warm pool: time the batch only
    hostile = "\\boxed{9^{9^{9^{9}}}}"
    items = [(hostile, "1", "math500")] + [(f"\\boxed{{{i}}}", str(i), "math500") for i in range(6)]
    items.append(("\\boxed{2^{10^{10^{10}}}}", "1", "aime24"))
    deadline_s = 2.0
    start = time.monotonic()
    grades = grade_many(items, workers=2, deadline_s=deadline_s)
    elapsed = time.monotonic() - start
    assert grades[0].status == "timeout" and grades[0].extracted == "9^{9^{9^{9}}}"
    assert grades[-1].status == "timeout"
    assert [g.status for g in grades[1:-1]] == ["correct"] * 6
    # two hostile samples on two workers run side by side: one deadline, plus one second of slack
    assert elapsed <= deadline_s + 1.0, elapsed
    assert grade_many([("\\boxed{4}", "4", "math500")])[0].correct  # replacements work


def test_worker_exception_is_grader_error(monkeypatch):
    # A gold that is not a string reaches is_equivalent in the worker and raises there.
    from harness.grading import get_pool

    replies = get_pool(2).run([(None, "1", "math500"), ("1", "1", "math500")], deadline_s=5.0)
    assert replies[0][0] == "error" and replies[1] == ("ok", True)
    grades = grade_many([("\\boxed{1}", "1", "math500")])
    assert grades[0].correct


def test_order_is_kept_for_a_large_batch():
    items = [(f"\\boxed{{{i % 7}}}", str(i % 5), "math500") for i in range(60)]
    statuses = [g.status for g in grade_many(items)]
    assert statuses == ["correct" if i % 7 == i % 5 else "wrong" for i in range(60)]
