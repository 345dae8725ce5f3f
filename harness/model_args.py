"""`--model_args` of the lm-eval backend `threadweaver` and how they become a RolloutConfig.

    args, engine_kw = parse_model_args({"pretrained": "zoo:npr-4b", "preset": "npr", "top_p": 0.95})
    config, until = rollout_settings(gen_kwargs, args, zoo_entry)

Precedence of each rollout setting: explicit model_args, then the protocol preset (harness.presets; from
model_args or the zoo entry), then the zoo entry's fields, then the task's generation_kwargs. No lm-eval
import: the backend (harness/lmeval.py) is glue around this.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from harness.errors import InputError
from harness.rollout import RolloutConfig

GEN_KWARGS = ("until", "max_gen_toks", "do_sample", "temperature", "top_p", "top_k", "seed")


@dataclass
class ThreadweaverArgs:
    """`--model_args` of the threadweaver backend, besides the engine's (harness.engines.args.EngineArgs:
    engine, dtype, max_model_len, ...). Precedence: these args, then the zoo entry of
    `pretrained=zoo:NAME`, then the task's generation_kwargs; a `preset` sits between these args and the
    zoo entry's fields."""

    pretrained: str = ""
    """A local path, a hub id, or `zoo:NAME` (harness.zoo)."""
    preset: str | None = None
    """A paper's protocol (harness.presets: npr, parallel-r1, multiverse, threadweaver); None = the zoo
    entry's preset, else none."""
    format: str | None = None
    """The parallel format (harness.formats); None = the zoo entry's, else threadweaver."""
    parallel: bool | None = None
    """False = the sequential baseline through the same code (tags are text); None = the zoo's, else True."""
    join: str | None = None
    """Who closes a block where the format offers a choice (threadweaver: model | orchestrator)."""
    budget_tokens: int | None = None
    """Total tokens per trajectory, all branches; None = the zoo's, else the task's max_gen_toks."""
    max_steps: int = 32
    max_branches: int = 50
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    """Sample k uses seed + k (a gen_kwargs seed wins); None = random."""
    chat_template: bool = True
    """Render prompts with the model's chat template when lm-eval did not (threadweaver.md section 1)."""
    store: str | None = None
    """Resume store file; None = ~/.cache/threadweaver/store/<model hash>.jsonl; "none" = off."""
    trajectories: str | None = None
    """Sample-record file (or folder); None = next to --output_path, else ./threadweaver_runs/<time>/."""

    def __post_init__(self) -> None:
        if not self.pretrained:
            raise InputError("model_args: pretrained is required (a path, a hub id or zoo:NAME)")
        if self.preset is not None:
            from harness.presets import get_preset

            get_preset(self.preset)
        checks = [
            ("parallel", self.parallel is None or isinstance(self.parallel, bool), "true or false"),
            ("chat_template", isinstance(self.chat_template, bool), "true or false"),
            ("budget_tokens", self.budget_tokens is None or (isinstance(self.budget_tokens, int) and self.budget_tokens >= 1), "an int >= 1"),
        ]  # fmt: skip
        for name, ok, want in checks:
            if not ok:
                raise InputError(f"model_args: {name} must be {want}, got {getattr(self, name)!r}")


def parse_model_args(kwargs: dict) -> tuple[ThreadweaverArgs, dict]:
    """(validated backend args, the engine's keys); an unknown key fails with a suggestion."""
    from harness.config import check_keys
    from harness.engines.args import EngineArgs

    engine_kw, rest = EngineArgs.split(kwargs)
    check_keys(rest, [f.name for f in fields(ThreadweaverArgs)] + [f.name for f in fields(EngineArgs)], "model_args")
    args = ThreadweaverArgs(**{k: (str(v) if k in ("pretrained", "preset", "store", "trajectories") and v is not None
                                   else v) for k, v in rest.items()})  # fmt: skip
    return args, engine_kw


def rollout_settings(gen_kwargs: dict, args: ThreadweaverArgs, zoo=None) -> tuple[RolloutConfig, list[str]]:
    """lm-eval gen_kwargs + model_args + zoo entry -> (RolloutConfig, extra stop strings).
    `do_sample: false` means greedy."""
    kw = dict(gen_kwargs or {})
    unknown = sorted(set(kw) - set(GEN_KWARGS))
    if unknown:
        raise InputError(f"gen_kwargs: unsupported {', '.join(unknown)} (supported: {', '.join(GEN_KWARGS)})")
    until = kw.get("until") or []
    until = [until] if isinstance(until, str) else list(until)
    task = {"temperature": float(kw.get("temperature", 1.0)), "top_p": float(kw.get("top_p", 1.0)),
            "top_k": int(kw.get("top_k", -1)), "budget_tokens": int(kw.get("max_gen_toks", 40960))}  # fmt: skip
    if kw.get("do_sample") is False:
        task["temperature"] = 0.0
    zoo_values = {} if zoo is None else {**{k: v for k, v in zoo.sampling.items() if v is not None},
                                         "budget_tokens": zoo.budget_tokens, "parallel": zoo.parallel,
                                         "format": zoo.format}  # fmt: skip
    preset = preset_of(args, zoo)
    preset_values = {} if preset is None else preset.values()

    def pick(name: str, default=None):
        for source in (getattr(args, name, None), preset_values.get(name), zoo_values.get(name), task.get(name)):
            if source is not None:
                return source
        return default

    seed = kw.get("seed", args.seed)
    try:
        config = RolloutConfig(
            parallel=pick("parallel", True), format=pick("format", "threadweaver"), join=args.join,
            budget_tokens=int(pick("budget_tokens")), max_steps=args.max_steps, max_branches=args.max_branches,
            temperature=float(pick("temperature")), top_p=float(pick("top_p")), top_k=int(pick("top_k")),
            seed=None if seed is None else int(seed),
        )  # fmt: skip
    except ValueError as exc:
        raise InputError(f"model_args: {exc}") from None
    return config, until


def preset_of(args: ThreadweaverArgs, zoo=None):
    """The run's protocol preset (harness.presets): model_args' `preset`, else the zoo entry's, else None."""
    name = args.preset or (zoo.preset if zoo is not None else None)
    if name is None:
        return None
    from harness.presets import get_preset

    return get_preset(name)
