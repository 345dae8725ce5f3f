"""Hydra overrides for verl 0.9.1 generated from our P-GRPO config (rl.md sections 3.2-3.3).

    cluster = ClusterConfig(train_files="data/train.parquet", nnodes=4)
    args = hydra_overrides(load_rl_config("rl.yaml"), cluster)       # ["algorithm.adv_estimator=grpo", ...]
    write_agent_loop_config(config, "threadweaver_agent_loop.yaml")    # the loop's own settings

One source of truth: the single-machine trainer's `RLConfig` (trainers/rl/config.py). What maps where:

| RLConfig | verl key |
|---|---|
| (always) | `algorithm.adv_estimator=grpo` (the only estimator with the broadcast: gotcha 5), no KL anywhere, `loss_agg_mode=token-mean`, `entropy_coeff=0`, `trainer.v1.trainer_mode=sync` |
| normalize_std | `algorithm.norm_adv_by_std_in_grpo` |
| updates_per_step | `actor.ppo_epochs` (one mini-batch per step: threadweaver_verl.trainer) |
| prompts_per_step, rollouts_per_prompt | `data.train_batch_size`, `rollout.n`, `actor.ppo_mini_batch_size` |
| steps, learning_rate, adam_*, weight_decay, max_grad_norm, clip_low/high, seed | `trainer.total_training_steps`, `actor.optim.*`, `actor.grad_clip`, `actor.clip_ratio_low/high`, `actor.data_loader_seed`, `data.seed` |
| rollout.temperature/top_p/top_k, rollout.budget_tokens | `rollout.temperature/top_p/top_k`; `rollout.max_model_len` = prompt + budget, `actor.ppo_max_token_len_per_gpu` >= the longest row |
| rollout, reward, grading_* | the agent-loop YAML (`rollout.agent.agent_loop_config_path`), read by ThreadWeaverAgentLoop |
| model, output_dir, save_steps | `model.path`, `trainer.default_local_dir`, `trainer.save_freq` |

Not mapped (single-machine only): dataset_path (verl reads parquet: `threadweaver_verl.data`),
max_examples, engine, max_batch_size, mask, kl_monitor, device, num_threads, plot.
No verl import here: the golden test of these overrides runs anywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

AGENT_NAME = "threadweaver"
LOOP_TARGET = "threadweaver_verl.agent_loop.ThreadWeaverAgentLoop"


@dataclass
class ClusterConfig:
    """What verl needs beyond the P-GRPO config: data, machines, model-parallel sizes."""

    train_files: str
    """Parquet of prompts written by `python -m threadweaver_verl.data` (columns: prompt, gold, grading)."""
    val_files: str | None = None
    """Validation parquet (None: the train file; validation runs only if `test_freq` > 0)."""
    nnodes: int = 1
    n_gpus_per_node: int = 8
    max_prompt_length: int = 2048
    """Longest chat-templated prompt in tokens; verl left-truncates longer ones."""
    tensor_model_parallel_size: int = 1
    """vLLM tensor parallelism per rollout replica (the reference code used 1 for 8B)."""
    gpu_memory_utilization: float = 0.8
    ulysses_sequence_parallel_size: int = 1
    """Raise when the longest row (prompt + 40k) does not fit one GPU's activations."""
    agent_loop_config: str = "threadweaver_agent_loop.yaml"
    """Where write_agent_loop_config put the loop's settings (a path every Ray node can read)."""
    project_name: str = "threadweaver"
    experiment_name: str = "pgrpo"
    test_freq: int = -1
    """Validate every N steps (-1: never)."""

    def __post_init__(self) -> None:
        for name in ("nnodes", "n_gpus_per_node", "max_prompt_length", "tensor_model_parallel_size",
                     "ulysses_sequence_parallel_size"):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization!r}")


def _v(value) -> str:
    """A Hydra override value: booleans lower-case, None as null, lists in brackets."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_v(v) for v in value) + "]"
    return str(value)


def hydra_overrides(config, cluster: ClusterConfig) -> list[str]:
    """`key=value` strings for `python -m threadweaver_verl.launch` (or verl.trainer.main_ppo) from an
    RLConfig; ValueError for a setting verl 0.9.1 cannot express."""
    if config.max_grad_norm is None:
        raise ValueError(
            "max_grad_norm: verl 0.9.1 always clips gradients; set a number (reference code: 1.0)"
        )
    r = config.rollout
    longest_row = cluster.max_prompt_length + r.budget_tokens  # a row's context + completion
    actor, rollout = "actor_rollout_ref.actor", "actor_rollout_ref.rollout"
    pairs = [
        # trainer: verl's V1 synchronous (colocated) trainer; our subclass keeps the name "sync" (gotcha 3.1.3)
        ("trainer.use_v1", True),
        ("trainer.v1.trainer_mode", "sync"),
        ("trainer.total_training_steps", config.steps),
        ("trainer.nnodes", cluster.nnodes),
        ("trainer.n_gpus_per_node", cluster.n_gpus_per_node),
        ("trainer.save_freq", config.save_steps),
        ("trainer.test_freq", cluster.test_freq),
        ("trainer.default_local_dir", config.output_dir),
        ("trainer.project_name", cluster.project_name),
        ("trainer.experiment_name", cluster.experiment_name),
        ("trainer.critic_warmup", 0),
        # advantage: mean-centred per prompt, broadcast from the final row (rl.md 1.1; gotcha 5)
        ("algorithm.adv_estimator", "grpo"),
        ("algorithm.norm_adv_by_std_in_grpo", config.normalize_std),
        ("algorithm.use_kl_in_reward", False),
        # data: prompts x rollouts
        ("data.train_files", cluster.train_files),
        ("data.val_files", cluster.val_files or cluster.train_files),
        ("data.train_batch_size", config.prompts_per_step),
        ("data.max_prompt_length", cluster.max_prompt_length),
        ("data.max_response_length", r.budget_tokens),
        ("data.seed", config.seed),
        ("data.return_raw_chat", True),
        # model: our package is imported by every process that builds the model config (rl.md 3.1.2)
        ("actor_rollout_ref.model.path", config.model),
        ("actor_rollout_ref.model.external_lib", "threadweaver_verl"),
        # actor: token-mean over all completion tokens, no KL, no entropy, one mini-batch per step
        (f"{actor}.loss_agg_mode", "token-mean"),
        (f"{actor}.use_kl_loss", False),
        (f"{actor}.entropy_coeff", 0),
        (f"{actor}.ppo_epochs", config.updates_per_step),
        (f"{actor}.ppo_mini_batch_size", config.prompts_per_step),
        (f"{actor}.use_dynamic_bsz", True),
        (f"{actor}.ppo_max_token_len_per_gpu", longest_row),
        (f"{actor}.clip_ratio_low", config.clip_low),
        (f"{actor}.clip_ratio_high", config.clip_high),
        (f"{actor}.grad_clip", config.max_grad_norm),
        (f"{actor}.data_loader_seed", config.seed),
        (f"{actor}.shuffle", False),
        (f"{actor}.ulysses_sequence_parallel_size", cluster.ulysses_sequence_parallel_size),
        (f"{actor}.optim.lr", config.learning_rate),
        (f"{actor}.optim.betas", [config.adam_beta1, config.adam_beta2]),
        (f"{actor}.optim.weight_decay", config.weight_decay),
        (f"{actor}.optim.clip_grad", config.max_grad_norm),
        # rollout: our trie state machine on verl's vLLM replicas, all of a trajectory on one replica
        (f"{rollout}.name", "vllm"),
        (f"{rollout}.mode", "async"),
        (f"{rollout}.n", config.rollouts_per_prompt),
        (f"{rollout}.temperature", r.temperature),
        (f"{rollout}.top_p", r.top_p),
        (f"{rollout}.top_k", r.top_k),
        (f"{rollout}.calculate_log_probs", True),
        (f"{rollout}.max_model_len", longest_row),
        (f"{rollout}.tensor_model_parallel_size", cluster.tensor_model_parallel_size),
        (f"{rollout}.gpu_memory_utilization", cluster.gpu_memory_utilization),
        (f"{rollout}.log_prob_use_dynamic_bsz", True),
        (f"{rollout}.log_prob_max_token_len_per_gpu", longest_row),
        (f"{rollout}.agent.default_agent_loop", AGENT_NAME),
        (f"{rollout}.agent.agent_loop_config_path", cluster.agent_loop_config),
    ]
    return [f"{k}={_v(v)}" for k, v in pairs]


def agent_loop_entries(config) -> list[dict]:
    """The agent-loop YAML verl reads (`rollout.agent.agent_loop_config_path`): one entry registering
    ThreadWeaverAgentLoop under "threadweaver" with the rollout, reward and grading settings, which verl
    passes to the loop's constructor."""
    rollout = asdict(config.rollout)
    rollout.pop("logprobs")  # from verl's calculate_log_probs, per run
    rollout.pop("seed")  # verl's vLLM seeds (rollout.seed / full_determinism)
    return [{"name": AGENT_NAME, "_target_": LOOP_TARGET, "rollout": rollout, "reward": asdict(config.reward),
             "grading_workers": config.grading_workers, "grading_deadline_s": config.grading_deadline_s}]  # fmt: skip


def write_agent_loop_config(config, path) -> None:
    import yaml

    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(agent_loop_entries(config), fh, sort_keys=False)
