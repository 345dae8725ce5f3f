"""The RL trainer's per-step log (one JSON line per step in output_dir/rl_log.jsonl) and its curves.

Every line carries the reward variant and its settings (rl.md section 1.2: every result records the
variant). Figures come from harness.metrics and harness.pgrpo (one place per computation); token counts
are in the engine tokenizer's unit (`count_unit`).
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.metrics import accuracy, mean, rate
from harness.pgrpo import trajectory_eta

LOG_NAME = "rl_log.jsonl"
CURVES = (("reward_mean", "reward"), ("accuracy", "accuracy"), ("activation_ratio", "activation ratio"),
          ("eta_mean", "eta = 1 - critical path / total"), ("critical_path_tokens", "critical-path tokens"),
          ("kl", "KL to start (k3)"))  # fmt: skip


def step_stats(step: int, config, records, rewards, advantages) -> dict:
    """The rollout side of a step's log line."""
    metrics = [r.metrics for r in records]
    statuses = [r.grade.status if r.grade else None for r in records]
    return {
        "step": step,
        "reward_variant": config.reward.variant,
        "rho": config.reward.rho,
        "rho_clip": config.reward.rho_clip,
        "parallel": config.rollout.parallel,
        "format": config.rollout.format,
        "trajectories": len(records),
        "reward_mean": mean(rewards),
        "advantage_abs_mean": mean(abs(a) for a in advantages),
        "accuracy": accuracy([f"{r.problem_id}/{j // config.rollouts_per_prompt}" for j, r in enumerate(records)],
                             [s == "correct" for s in statuses]),  # fmt: skip
        "eta_mean": mean(trajectory_eta(r) for r in records),
        "critical_path_tokens": mean(m.critical_path_tokens if m else None for m in metrics),
        "total_tokens": mean(m.total_tokens if m else None for m in metrics),
        "activation_ratio": rate(m.is_parallel if m else None for m in metrics),
        "format_fault_rate": rate(bool(r.faults) for r in records),
        "invalid_rate": rate(None if r.valid is None else not r.valid for r in records),
        "truncation_rate": rate(r.truncated for r in records),
        "grading_timeouts": sum(s == "timeout" for s in statuses),
        "grader_errors": sum(s == "grader_error" for s in statuses),
        "engine_errors": sum(r.end_reason == "error" for r in records),
        "count_unit": next((m.count_unit for m in metrics if m), None),
    }


def truncate_log(path: Path, last_step: int) -> None:
    """Keep the lines of steps <= last_step (a resume redoes the later ones); a torn last line goes too."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and entry.get("step", 0) <= last_step:
            kept.append(line)
    path.write_text("".join(x + "\n" for x in kept))


def write_plot(lines: list[dict], path: Path) -> Path:
    """A grid of the main curves against the step (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(12, 6), constrained_layout=True)
    steps = [x["step"] for x in lines]
    for ax, (key, title) in zip(axes.flat, CURVES, strict=True):
        ax.plot(steps, [x.get(key) if x.get(key) is not None else float("nan") for x in lines], marker=".")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.suptitle(f"P-GRPO ({lines[-1].get('reward_variant')} reward)")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
