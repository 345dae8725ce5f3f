"""Engine registry: registry key = module name = `--engine` value. Adapters are imported lazily.

    >>> engine = load_engine("vllm", model="path/to/model", enforce_eager=True)
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util

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


__all__ = ["ENGINES", "Completion", "Engine", "Request", "engine_class", "load_engine"]
