"""Strict on-policy P-GRPO on verl's V1 synchronous trainer, and the launcher (rl.md section 3.1 item 3).

    python -m threadweaver_verl.trainer --config rl.yaml --train-files train.parquet [--nnodes 4 ...] [-- KEY=VALUE ...]

verl counts mini-batches in rows (`ppo_mini_batch_size` x `rollout.n`) and pads the batch with no-op rows
to a multiple of that; with several units per rollout one step would make several optimizer updates
(gotcha 4). `PGRPOTrainerSync` makes one mini-batch of the whole step instead: the batch is padded only
to the data-parallel size, and `update_actor` gets `num_mini_batch=1` (`train_mini_batch` accepts it),
so `ppo_epochs` (= RLConfig.updates_per_step) is the number of updates. The class keeps verl's mode name
"sync" (the base class branches on that literal): `PGRPOTaskRunner` swaps it into verl's trainer registry
inside its own Ray actor only, then runs verl's V1 task runner unchanged.
"""

from __future__ import annotations

import argparse
import sys

from verl.trainer.ppo.v1 import PPOTrainerSync


class _OneMiniBatch(dict):
    """`extra_info` of the actor update with its mini-batch keys replaced: one mini-batch of all rows."""

    def update(self, *args, **kwargs) -> None:  # verl sets the keys with update(); we take them back
        super().update(*args, **kwargs)
        self["mini_batch_size"] = None
        self["num_mini_batch"] = 1
        self["global_batch_size"] = None  # token-mean normalises by the global token count, not rows


class PGRPOTrainerSync(PPOTrainerSync):
    """verl's synchronous V1 trainer with one optimizer update per step and epoch (P-GRPO on policy)."""

    def _get_required_batch_multiple(self, dp_size: int) -> int:
        return dp_size

    def _update_actor(self, batch, metrics: dict):
        batch.extra_info = _OneMiniBatch(batch.extra_info or {})
        return super()._update_actor(batch, metrics)


def _runner_class():
    import ray
    from verl.trainer.main_ppo import TaskRunnerV1
    from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY

    base = getattr(TaskRunnerV1, "__ray_actor_class__", TaskRunnerV1)

    class PGRPOTaskRunner(base):
        def run(self, config):
            TRAINER_REGISTRY["sync"] = PGRPOTrainerSync  # this actor's process only
            return super().run(config)

    return ray.remote(num_cpus=1)(PGRPOTaskRunner)


def compose_config(overrides: list[str]):
    """verl's own `ppo_trainer` config with our overrides (Hydra's compose; unknown keys fail here)."""
    from pathlib import Path

    import verl
    from hydra import compose, initialize_config_dir

    config_dir = str(Path(verl.__file__).parent / "trainer" / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return compose(config_name="ppo_trainer", overrides=overrides)


def main(argv: list[str] | None = None) -> int:
    from threadweaver_verl.overrides import ClusterConfig, hydra_overrides, write_agent_loop_config
    from trainers.rl.config import load_rl_config

    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(
        prog="python -m threadweaver_verl.trainer", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--config", required=True, help="the P-GRPO YAML (trainers/rl/config.py RLConfig)")
    ap.add_argument("--train-files", required=True, help="parquet from `python -m threadweaver_verl.data`")
    ap.add_argument("--val-files")
    ap.add_argument("--nnodes", type=int, default=1)
    ap.add_argument("--n-gpus-per-node", type=int, default=8)
    ap.add_argument("--max-prompt-length", type=int, default=2048)
    ap.add_argument("--agent-loop-config", default="threadweaver_agent_loop.yaml")
    ap.add_argument("--print-only", action="store_true", help="print the overrides and exit")
    args = ap.parse_args(argv)
    config = load_rl_config(args.config)
    cluster = ClusterConfig(train_files=args.train_files, val_files=args.val_files, nnodes=args.nnodes,
                            n_gpus_per_node=args.n_gpus_per_node, max_prompt_length=args.max_prompt_length,
                            agent_loop_config=args.agent_loop_config)  # fmt: skip
    overrides = hydra_overrides(config, cluster) + extra
    if args.print_only:
        print("\n".join(overrides))
        return 0
    write_agent_loop_config(config, args.agent_loop_config)
    from verl.trainer.main_ppo import run_ppo

    run_ppo(compose_config(overrides), task_runner_class=_runner_class())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
