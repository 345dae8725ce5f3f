"""Engine registry: registry key = module name = `--engine` value. Adapters are imported lazily.

    >>> engine = EngineArgs(engine="vllm", model="path/to/model", enforce_eager=True).build()
    >>> engine = load_engine("vllm", model="path/to/model", enforce_eager=True)  # the adapter's kwargs as they are

EngineArgs (harness.engines.args) is the one definition of the engine arguments: CLI flags, lm-eval
model_args and validation come from it.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util

from harness.engines.args import EngineArgs, add_cli_args
from harness.engines.base import Completion, Engine, Request
from harness.errors import InputError

# key -> (module:class, the package it needs, how to install it)
ENGINES: dict[str, tuple[str, str, str]] = {
    "scripted": ("harness.engines.scripted:ScriptedEngine", "transformers", "the base install"),
    "hf": ("harness.engines.hf:HFEngine", "torch", "torch and transformers"),
    "vllm": ("harness.engines.vllm:VLLMEngine", "vllm", "the vllm or cpu extra"),
    "openai": ("harness.engines.openai:OpenAIEngine", "httpx", "httpx"),
}


def engine_class(name: str):
    """The adapter class of `name`; InputError for an unknown name or a missing backing package."""
    if name not in ENGINES:
        close = difflib.get_close_matches(name, ENGINES, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(ENGINES)})"
        raise InputError(f"unknown engine '{name}'{hint}")
    target, package, extra = ENGINES[name]
    if importlib.util.find_spec(package) is None:
        raise InputError(f"engine '{name}' needs {package} (install {extra})")
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def load_engine(name: str, **kwargs) -> Engine:
    """Build the engine registered as `name` with the adapter's keyword arguments."""
    return engine_class(name)(**kwargs)


__all__ = ["ENGINES", "Completion", "Engine", "EngineArgs", "Request", "add_cli_args", "engine_class", "load_engine"]
