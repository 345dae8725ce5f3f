"""Regression gate: the two acceptance simulations, input checks, policy files, CLI exit codes."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import InputError
from harness.regress import RegressPolicy, compare_arrays, load_policy, regress, render_report
from harness.results import Aggregates, ModelInfo, Result, Sample, Sampling, save_result
from threadweaver.cli import main

pytestmark = pytest.mark.core

N_PROBLEMS, K = 500, 8


def simulate(seed: int, drop_points: float) -> tuple[np.ndarray, ...]:
    """Per-problem accuracies (%) and mean critical-path tokens of a baseline and a candidate.

    Each problem has a true solve rate p ~ U(0.1, 0.9) and a typical length; both runs draw K new samples;
    the candidate's solve rate is p - drop_points/100 (a true drop of exactly drop_points).
    """
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.1, 0.9, N_PROBLEMS)
    length = rng.uniform(2_000, 20_000, N_PROBLEMS)

    def run(rate):
        acc = 100.0 * rng.binomial(K, rate) / K
        cp = (length[:, None] * rng.lognormal(0.0, 0.3, (N_PROBLEMS, K))).mean(axis=1)
        return acc, cp

    (acc_b, cp_b), (acc_c, cp_c) = run(p), run(p - drop_points / 100.0)
    return acc_b, acc_c, cp_b, cp_c


def test_a_true_five_point_drop_is_flagged_in_at_least_95_of_100_seeds():
    flagged = sum(compare_arrays(*simulate(seed, 5.0), RegressPolicy(), seed=seed).exit_code == 1
                  for seed in range(100))
    assert flagged >= 95, flagged


def test_a_rerun_of_the_same_model_passes_in_at_least_95_of_100_seeds():
    passed = sum(compare_arrays(*simulate(seed, 0.0), RegressPolicy(), seed=seed).exit_code == 0
                 for seed in range(100))
    assert passed >= 95, passed


def test_latency_rise_is_flagged_and_a_small_one_is_not():
    acc_b, acc_c, cp_b, _ = simulate(0, 0.0)
    assert compare_arrays(acc_b, acc_b, cp_b, cp_b * 1.12, RegressPolicy()).exit_code == 1
    assert compare_arrays(acc_b, acc_b, cp_b, cp_b * 1.02, RegressPolicy()).exit_code == 0
    assert compare_arrays(acc_b, acc_b, cp_b, cp_b * 1.12, RegressPolicy(check_latency=False)).exit_code == 0


def make_result(name: str, seed: int, rate_shift: float = 0.0, n: int = 200, k: int = 4, **settings) -> Result:
    """n problems x k samples; solve rates fixed by problem (seed 123), draws by `seed`."""
    rng = np.random.default_rng(seed)
    p = np.random.default_rng(123).uniform(0.1, 0.9, n) + rate_shift
    samples = [Sample(f"p{i:03d}", j, "correct" if rng.random() < p[i] else "wrong", 900, int(600 + 10 * i))
               for i in range(n) for j in range(k)]
    fields = dict(budget_tokens=4096, num_samples_per_problem=k, parallel=True, join="model", count_unit="tokens:t",
                  sampling=Sampling(temperature=1.0, top_p=1.0, top_k=-1))
    return Result(ModelInfo(name), "toy", "measured", Aggregates(accuracy=0.0), samples=samples,
                  **{**fields, **settings})


def test_regress_on_results_and_report():
    base, same, worse = make_result("a", 1), make_result("b", 2), make_result("c", 3, rate_shift=-0.15)
    assert regress(base, same).passed
    report = regress(base, worse, seed=0)
    assert report.exit_code == 1 and report.accuracy_change_points.value < -10
    text = render_report(report)
    assert "REGRESSION" in text and "c vs a on toy" in text and "accuracy fell" in text


def test_mismatches_are_named():
    base = make_result("a", 1)
    with pytest.raises(InputError, match=r"setting 'budget_tokens' differs: 4096 vs 8192"):
        regress(base, make_result("b", 2, budget_tokens=8192))
    with pytest.raises(InputError, match=r"setting 'sampling.temperature' differs"):
        regress(base, make_result("b", 2, sampling=Sampling(temperature=0.6, top_p=1.0, top_k=-1)))
    with pytest.raises(InputError, match=r"problem sets differ: 100 only in baseline"):
        regress(base, make_result("b", 2, n=100))
    other = make_result("b", 2)
    other.benchmark = "math500"
    with pytest.raises(InputError, match=r"benchmarks differ: 'toy' vs 'math500'"):
        regress(base, other)


def test_parallel_against_its_sequential_baseline_needs_an_explicit_allowance():
    seq = make_result("seq", 1, parallel=False)
    par = make_result("par", 2)
    with pytest.raises(InputError, match=r"setting 'parallel' differs: False vs True \(allow it with --allow-setting-diff parallel\)"):
        regress(seq, par)
    report = regress(seq, par, allow=("parallel",))
    assert report.passed and "Settings that differ (allowed): parallel: False vs True" in render_report(report)
    with pytest.raises(InputError, match="unknown setting 'paralel'"):
        regress(seq, par, allow=("paralel",))
    with pytest.raises(InputError, match="counted in different units"):
        regress(seq, make_result("other", 2, parallel=False, count_unit="tokens:u"))


def test_policy_file(tmp_path):
    good = tmp_path / "p.yaml"
    good.write_text("max_accuracy_drop_points: 2.5\nconfidence: 0.9\n")
    assert load_policy(good) == RegressPolicy(max_accuracy_drop_points=2.5, confidence=0.9)
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_acuracy_drop_points: 2\n")
    with pytest.raises(InputError, match=r"bad.yaml: unknown key 'max_acuracy_drop_points'; did you mean "
                                         r"'max_accuracy_drop_points'"):
        load_policy(bad)
    bad.write_text("confidence: 1.5\n")
    with pytest.raises(InputError, match=r"confidence must be in \(0.5, 1\), got 1.5"):
        load_policy(bad)


def test_cli_exit_codes(tmp_path, capsys):
    a = save_result(make_result("a", 1), tmp_path / "a.json")
    b = save_result(make_result("b", 2), tmp_path / "b.json")
    c = save_result(make_result("c", 3, rate_shift=-0.15), tmp_path / "c.json")
    d = save_result(make_result("d", 4, budget_tokens=100), tmp_path / "d.json")
    report = tmp_path / "r.md"
    assert main(["regress", "--baseline", str(a), "--candidate", str(b), "--report", str(report)]) == 0
    assert "PASS" in report.read_text()
    assert main(["regress", "--baseline", str(a), "--candidate", str(c), "--n-boot", "500"]) == 1
    assert "check failed: accuracy fell" in capsys.readouterr().err
    assert main(["regress", "--baseline", str(a), "--candidate", str(d)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot compare: setting 'budget_tokens' differs") and "\n" not in err
    reported = "results/qwen3-8b__aime24.json"
    assert main(["regress", "--baseline", reported, "--candidate", reported]) == 2
    assert "no samples" in capsys.readouterr().err
