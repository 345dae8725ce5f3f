"""harness.metrics: pass@k against brute-force enumeration, maj@k voting, bootstrap, stderr, speedup."""

from __future__ import annotations

import itertools
import math

import pytest

from harness.metrics import (
    avg_at_k,
    bootstrap_ci,
    maj_at_k,
    majority_answer,
    paper_speedup,
    pass_at_k,
    stderr,
)

pytestmark = pytest.mark.core


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    flags = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(flags[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_matches_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_refuses_bad_arguments():
    with pytest.raises(ValueError, match="k must be in"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(4, 5, 1)


def test_avg_at_k():
    assert avg_at_k([True, False, True, True]) == 0.75
    with pytest.raises(ValueError):
        avg_at_k([])


def test_majority_groups_equivalent_answers():
    # 0.5, \frac12 and \dfrac{1}{2} are one answer with 3 votes; "3" has 2
    answers = ["3", "0.5", "\\frac12", None, "3", "\\dfrac{1}{2}"]
    winner, votes = majority_answer(answers, "math")
    assert votes == 3 and winner == "0.5"
    assert maj_at_k(answers, "\\frac{1}{2}", "math") == 1.0
    assert maj_at_k(answers, "3", "math") == 0.0


def test_majority_tie_goes_to_first_occurrence():
    assert majority_answer(["7", "5", "5", "07"], "math") == ("7", 2)
    assert majority_answer(["5", "7", "7", "5"], "math") == ("5", 2)


def test_maj_at_k_without_answers():
    assert maj_at_k([None, None], "1", "math") == 0.0
    assert majority_answer([], "math") == (None, 0)


def test_maj_at_k_survives_a_hostile_answer():
    answers = ["9^{9^{9^{9}}}", "4", "4"]
    assert maj_at_k(answers, "4", "math", deadline_s=2.0) == 1.0


def test_bootstrap_ci_brackets_the_mean():
    values = [1, 0, 1, 1, 0, 1, 0, 1, 1, 1] * 5
    low, high = bootstrap_ci(values, n_boot=2000, seed=0)
    assert low < sum(values) / len(values) < high
    smooth = [math.sin(i) ** 2 for i in range(40)]
    assert bootstrap_ci(smooth, seed=1) != bootstrap_ci(smooth, seed=2)
    assert bootstrap_ci(smooth, seed=3) == bootstrap_ci(smooth, seed=3)
    # the 95% interval of a mean is about mean +- 1.96 standard errors
    low, high = bootstrap_ci(smooth, n_boot=4000)
    assert (high - low) == pytest.approx(2 * 1.96 * stderr(smooth), rel=0.15)
    assert bootstrap_ci([1.0] * 5) == (1.0, 1.0)


def test_stderr():
    assert stderr([1.0, 0.0]) == pytest.approx(0.5)
    assert math.isnan(stderr([1.0]))


def test_paper_speedup():
    baseline = {"a": [100, 300], "b": [50, 50]}
    model = {"a": [100, 100], "b": [100, 100]}
    out = paper_speedup(baseline, model)
    assert out.speedup == pytest.approx((2.0 + 0.5) / 2) and out.problems == 2
    assert out.ci_low <= out.speedup <= out.ci_high
    correct_b = {"a": [True, False], "b": [False, False]}
    correct_m = {"a": [True, True], "b": [True, True]}
    out = paper_speedup(baseline, model, correct_b, correct_m)
    assert out.speedup_correct_only == pytest.approx(1.0)  # only problem a: 100 / 100
    assert out.max_speedup == pytest.approx(1.0)
