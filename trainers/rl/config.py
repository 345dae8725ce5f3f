"""RLConfig: the single-machine P-GRPO trainer's settings (rl.md section 1.3), loaded from YAML.

    config = load_rl_config("trainers/toy/configs/toy-rl.yaml", ["steps=2"])

Defaults are the paper's (rl.md section 1.3: 350 steps, 128 prompts x 8 rollouts, Adam lr 5e-6 without
weight decay, one update per step, mean-centred advantage without std, T 1.0, a 40,960-token budget per
trajectory, the paper's reward). Settings the paper leaves open take the reference code's value:
`max_grad_norm` 1.0, `clip_low` / `clip_high` 0.2 / 0.28 (they act only with updates_per_step > 1).
`rollout` is harness.rollout.RolloutConfig and `reward` harness.reward.RewardConfig, nested as mappings;
unknown keys are refused at every level (harness/config.py). `rollout.logprobs` is always on (the
stored log probabilities are PPO's old policy).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.config import build_dataclass
from harness.reward import RewardConfig
from harness.rollout import RolloutConfig

ENGINES = ("hf",)


@dataclass
class RLConfig:
    """P-GRPO on one machine. Paths are relative to the working directory."""

    model: str
    """HF checkpoint directory to start from (an SFT model); also the KL monitor's reference policy."""
    output_dir: str
    """Receives the per-step log, the last checkpoint (checkpoint-last/) and the final model."""
    dataset_path: list[str]
    """JSONL sample records (harness/records.py) with `messages` or `prompt`, `gold` and `grading` (the
    task's rule): `threadweaver toy data` writes such files."""
    max_examples: int | None = None
    """Use only the first N prompts (None: all)."""
    steps: int = 350
    """Optimizer steps (paper: 350)."""
    prompts_per_step: int = 128
    """Prompts per step (paper: 128)."""
    rollouts_per_prompt: int = 8
    """Rollouts per prompt, the advantage's group (paper: 8). Must be >= 2."""
    updates_per_step: int = 1
    """Optimizer updates per rollout batch (paper: 1, on policy: the ratio is 1). > 1: PPO ratio clipping
    against the stored log probabilities."""
    learning_rate: float = 5e-6
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    """Gradient clipping (reference code 1.0; the paper does not say); None = off."""
    clip_low: float = 0.2
    clip_high: float = 0.28
    normalize_std: bool = False
    """Divide the group advantage by the group's std (rl.md section 1.1: off; it lets speed beat accuracy)."""
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    engine: str = "hf"
    """Rollout engine: "hf" (the policy object itself generates). vLLM with weight sync: not yet."""
    max_batch_size: int = 64
    """Most requests the hf engine decodes in one batch."""
    grading_workers: int = 2
    grading_deadline_s: float = 5.0
    """Per-answer grading deadline in the worker pool; past it the answer is `timeout` (= wrong)."""
    mask: str = "auto"
    """Ancestor mask of the packed trees: "dense" (SDPA), "flex" (BlockMask, CUDA), "auto" (trainers/sft/masks.py)."""
    kl_monitor: bool = True
    """Log the KL to the start policy (k3 estimate on the trained tokens; never in the loss)."""
    save_steps: int = 1
    """Checkpoint every N steps (1: a kill loses at most the step in progress)."""
    device: str = "auto"
    """"auto" (cuda if available, else cpu), "cpu", "cuda", "cuda:1", ..."""
    seed: int = 0
    """Seeds the prompt order and the rollouts (step s, sample k: a seed from seed, s and k)."""
    num_threads: int | None = None
    """torch CPU threads (None: torch's default)."""
    plot: bool = True
    """Write rl_curves.png (matplotlib) at the end of the run."""

    def __post_init__(self) -> None:
        if isinstance(self.rollout, dict):
            self.rollout = build_dataclass(RolloutConfig, self.rollout, "rollout")
        if isinstance(self.reward, dict):
            self.reward = build_dataclass(RewardConfig, self.reward, "reward")
        if self.rollout.seed is not None:
            raise ValueError("rollout.seed is not used by the trainer: set the run's `seed` (it seeds every rollout)")
        self.rollout.logprobs = True
        if isinstance(self.dataset_path, str):
            self.dataset_path = [self.dataset_path]
        positive = ("steps", "prompts_per_step", "updates_per_step", "save_steps", "max_batch_size",
                    "grading_workers")  # fmt: skip
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        checks = [
            ("model", isinstance(self.model, str) and self.model != "", "a checkpoint directory"),
            ("output_dir", isinstance(self.output_dir, str) and self.output_dir != "", "a directory"),
            ("dataset_path", bool(self.dataset_path), "a list of JSONL files"),
            ("max_examples", self.max_examples is None or (isinstance(self.max_examples, int) and self.max_examples >= 1),
             "an int >= 1 or None"),
            ("rollouts_per_prompt", isinstance(self.rollouts_per_prompt, int) and self.rollouts_per_prompt >= 2,
             "an int >= 2 (the advantage is relative to the other rollouts of the prompt)"),
            ("learning_rate", self.learning_rate > 0, "> 0"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("max_grad_norm", self.max_grad_norm is None or self.max_grad_norm > 0, "> 0 or None"),
            ("clip_low", 0 <= self.clip_low < 1, "in [0, 1)"),
            ("clip_high", self.clip_high >= 0, ">= 0"),
            ("engine", self.engine in ENGINES, f"one of {ENGINES} (vllm with weight sync is not built yet)"),
            ("grading_deadline_s", self.grading_deadline_s > 0, "> 0"),
            ("mask", self.mask in ("auto", "dense", "flex"), "one of ('auto', 'dense', 'flex')"),
            ("num_threads", self.num_threads is None or self.num_threads >= 1, ">= 1 or None"),
        ]  # fmt: skip
        for name, ok, want in checks:
            if not ok:
                raise ValueError(f"{name} must be {want}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def load_rl_config(path, overrides=()) -> RLConfig:
    """RLConfig from a YAML file (+ `KEY=VALUE` overrides); InputError names the file and the key."""
    from harness.config import apply_overrides, build_dataclass, load_yaml_mapping

    data = load_yaml_mapping(path)
    flat = []
    for item in overrides:  # "rollout.budget_tokens=64" sets a key of a nested mapping
        key, sep, value = item.partition("=")
        head, dot, rest = key.strip().partition(".")
        if sep and dot and head in ("rollout", "reward"):
            data[head] = apply_overrides(dict(data.get(head) or {}), [f"{rest}={value}"])
        else:
            flat.append(item)
    return build_dataclass(RLConfig, apply_overrides(data, flat), str(path))
