"""ThreadWeaver on verl 0.9.1: the cluster path of P-GRPO (rl.md section 3; docs/cluster-rl.md).

verl imports this package in every process that builds the model config
(`actor_rollout_ref.model.external_lib=threadweaver_verl`); importing it registers the agent loop
"threadweaver" when verl is installed. `overrides` (the Hydra overrides from our RLConfig) and `engine`
need no verl.
"""

from importlib.util import find_spec

if find_spec("verl") is not None:
    from threadweaver_verl import agent_loop as _agent_loop  # noqa: F401  (registers "threadweaver")
