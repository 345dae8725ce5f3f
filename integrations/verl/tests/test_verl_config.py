"""The generated verl config (rl.md sections 3.2-3.3), run inside verl's environment by tests/test_verl_env.py:
a golden file of the Hydra overrides for the paper's P-GRPO settings, every key composed into verl
0.9.1's own `ppo_trainer` config (a misspelt or moved key fails Hydra), and the one-mini-batch trainer."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf
from threadweaver_verl.overrides import ClusterConfig, agent_loop_entries, hydra_overrides

from trainers.rl.config import RLConfig

GOLDEN = Path(__file__).resolve().parents[3] / "tests" / "golden" / "verl" / "pgrpo_paper_overrides.txt"


def paper_config() -> RLConfig:
    """The paper's P-GRPO run (rl.md section 1.3): RLConfig's defaults, an 8B SFT start."""
    return RLConfig(
        model="/models/qwen3-8b-threadweaver-sft", output_dir="/ckpt/pgrpo", dataset_path=["train.jsonl"]
    )


def cluster() -> ClusterConfig:
    return ClusterConfig(train_files="/data/polaris/train.parquet", nnodes=4, n_gpus_per_node=8, max_prompt_length=2048,
                         agent_loop_config="/shared/threadweaver_agent_loop.yaml")  # fmt: skip


def test_overrides_of_the_paper_settings_match_the_golden_file():
    got = hydra_overrides(paper_config(), cluster())
    assert got == GOLDEN.read_text().splitlines()
    # the four settings the method depends on (rl.md section 3.2)
    for must in ("algorithm.adv_estimator=grpo", "algorithm.norm_adv_by_std_in_grpo=false",
                 "actor_rollout_ref.actor.loss_agg_mode=token-mean", "actor_rollout_ref.actor.use_kl_loss=false",
                 "algorithm.use_kl_in_reward=false", "actor_rollout_ref.actor.ppo_epochs=1"):  # fmt: skip
        assert must in got


def test_every_override_composes_into_verls_own_config():
    from threadweaver_verl.trainer import compose_config

    cfg = compose_config(hydra_overrides(paper_config(), cluster()))
    a, r = cfg.actor_rollout_ref.actor, cfg.actor_rollout_ref.rollout
    assert (cfg.algorithm.adv_estimator, cfg.algorithm.norm_adv_by_std_in_grpo, a.loss_agg_mode) == (
        "grpo",
        False,
        "token-mean",
    )
    assert (cfg.data.train_batch_size, r.n, a.optim.lr, cfg.trainer.total_training_steps) == (
        128,
        8,
        5e-6,
        350,
    )
    assert r.max_model_len == 2048 + 40960 and r.agent.default_agent_loop == "threadweaver"
    assert (
        cfg.actor_rollout_ref.model.external_lib == "threadweaver_verl"
        and cfg.trainer.v1.trainer_mode == "sync"
    )
    with pytest.raises(Exception, match="trainer_modee|Could not override"):
        compose_config(["trainer.v1.trainer_modee=sync"])  # a misspelt key fails


def test_agent_loop_entry_round_trips_into_the_loop_settings():
    (entry,) = agent_loop_entries(paper_config())
    assert (
        entry["_target_"] == "threadweaver_verl.agent_loop.ThreadWeaverAgentLoop"
        and entry["name"] == "threadweaver"
    )
    assert entry["rollout"]["budget_tokens"] == 40960 and entry["reward"]["variant"] == "paper"
    assert OmegaConf.to_container(OmegaConf.create([entry])) == [entry]  # plain YAML data


def test_normalize_std_and_updates_per_step_reach_verl():
    c = paper_config()
    c.normalize_std, c.updates_per_step = True, 2
    got = hydra_overrides(c, cluster())
    assert "algorithm.norm_adv_by_std_in_grpo=true" in got and "actor_rollout_ref.actor.ppo_epochs=2" in got
    c.max_grad_norm = None
    with pytest.raises(ValueError, match="max_grad_norm"):
        hydra_overrides(c, cluster())


def test_pgrpo_trainer_updates_once_on_the_whole_step():
    """verl's _update_actor sets mini_batch_size = ppo_mini_batch_size x n rows (several updates per step
    with several rows per rollout); ours hands the worker one mini-batch of all rows instead."""
    from threadweaver_verl.trainer import PGRPOTrainerSync

    sent = []
    trainer = object.__new__(PGRPOTrainerSync)
    trainer.config = OmegaConf.create({"actor_rollout_ref": {"actor": {"ppo_mini_batch_size": 128, "calculate_entropy": False,
        "entropy_coeff": 0.0, "ppo_epochs": 1, "data_loader_seed": 0, "shuffle": False}, "rollout": {"n": 8, "temperature": 1.0}}})  # fmt: skip
    trainer.actor_rollout_wg = SimpleNamespace(
        update_actor=lambda b: sent.append(dict(b.extra_info)) or {"metrics": {"mfu": 0.0}}
    )
    trainer._update_actor(SimpleNamespace(extra_info={}), {})
    assert sent[0]["mini_batch_size"] is None and sent[0]["num_mini_batch"] == 1 and sent[0]["epochs"] == 1
    assert trainer._get_required_batch_multiple(8) == 8  # padded to the data-parallel size only
