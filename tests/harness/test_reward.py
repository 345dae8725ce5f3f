"""P-GRPO reward (both variants) and the group advantage (threadweaver.md section 5, rl.md section 1)."""

from __future__ import annotations

import pytest

from harness.counting import TrajectoryMetrics
from harness.records import SampleRecord
from harness.reward import RewardConfig, acceleration, group_advantages, pgrpo_rewards, reward_of

pytestmark = pytest.mark.core


@pytest.mark.parametrize(
    ("correct", "eta", "variant", "want"),
    [
        (True, 0.0, "paper", 1.0), (True, 0.2, "paper", 1.1), (True, 0.4, "paper", 1.2), (True, 0.9, "paper", 1.2),
        (False, 0.9, "paper", 0.0),
        (True, 0.0, "reference", 1.0), (True, 0.1, "reference", 1.05), (True, 0.5, "reference", 1.1),
        (False, 0.5, "reference", -1.0),
    ],
)  # fmt: skip
def test_reward_table(correct, eta, variant, want):
    assert reward_of(correct, eta, variant) == pytest.approx(want)


def test_rho_zero_is_correctness_only_and_bad_settings_are_refused():
    assert reward_of(True, 0.9, rho=0.0) == 1.0
    with pytest.raises(ValueError, match="variant must be one of"):
        RewardConfig(variant="mine")
    with pytest.raises(ValueError, match="rho must be a number >= 0"):
        RewardConfig(rho=-1)


def test_acceleration_from_counts():
    assert acceleration(80, 100) == pytest.approx(0.2) and acceleration(100, 100) == 0.0 and acceleration(0, 0) == 0.0


def test_group_advantage_is_mean_centred_without_std():
    rewards = [1.2, 1.0, 0.0, 0.0, 1.0, 1.0]
    groups = ["a", "a", "a", "b", "b", "b"]
    adv = group_advantages(rewards, groups)
    assert adv == pytest.approx([1.2 - 2.2 / 3, 1.0 - 2.2 / 3, -2.2 / 3, -2 / 3, 1 / 3, 1 / 3])
    assert sum(adv[:3]) == pytest.approx(0.0)
    same = group_advantages([1.1, 1.2], ["x", "x"], normalize_std=True)
    assert same == pytest.approx([-1.0, 1.0], abs=1e-4)  # std normalisation blows the 0.1 gap up


def test_rewards_grade_records_with_their_rule():
    def rec(response: str, crit: int, total: int) -> SampleRecord:
        m = TrajectoryMetrics(total, crit, 1, [2], total / crit, True, True, [], "tokens:t")
        return SampleRecord(problem_id="p", sample_index=0, response=response, gold="0917", grading="digits", metrics=m)

    recs = [rec("\\boxed{0917}", 60, 100), rec("\\boxed{917}", 60, 100), rec("\\boxed{0917}", 100, 100)]
    assert pgrpo_rewards(recs) == pytest.approx([1.2, 0.0, 1.0])
    assert [r.grade.status for r in recs] == ["correct", "wrong", "correct"]
    assert pgrpo_rewards(recs, RewardConfig(variant="reference")) == pytest.approx([1.1, -1.0, 1.0])
