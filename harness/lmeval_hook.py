"""Startup hook that makes `lm_eval --model threadweaver` work on lm-eval 0.4.13 (no plugin loading).

Newer lm-eval reads the `lm_eval.models` entry point declared in pyproject.toml; 0.4.13 does not (its
registry knows only `lm_eval/models/__init__.py`'s MODEL_MAPPING). The installed file
`threadweaver_lmeval.pth` (see setup.py) runs `install()` at interpreter start. It imports nothing but this
module: it puts a finder on `sys.meta_path` that waits for `lm_eval.models` to be imported and then adds
the LAZY entry `threadweaver -> harness.lmeval:ThreadweaverLM` to lm-eval's model registry, exactly as
lm-eval registers its own backends. lm-eval, torch and vLLM load only when a run asks for the model.
Hooking `lm_eval.models` (not the registry module) keeps the registry empty until lm-eval fills it, so
`get_model("hf")` still triggers lm-eval's own lazy import. Disable with THREADWEAVER_NO_LMEVAL_HOOK=1.
"""

from __future__ import annotations

import os
import sys

TARGET_MODULE = "lm_eval.models"
MODEL_NAME = "threadweaver"
MODEL_TARGET = "harness.lmeval:ThreadweaverLM"


def register(registry=None) -> None:
    """Add the lazy `threadweaver` entry unless one is there (e.g. from a newer lm-eval's entry point)."""
    if registry is None:
        from lm_eval.api.registry import model_registry as registry
    if MODEL_NAME not in registry:
        registry.register(MODEL_NAME, target=MODEL_TARGET)


class _RegisterAfterExec:  # a loader (duck-typed: importing importlib.abc costs ~50 ms)
    """Wraps lm_eval.models' loader: run it, then register our backend."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        register()

    def __getattr__(self, name):  # get_resource_reader, is_package, get_code, ...
        return getattr(self.loader, name)


class _Finder:  # a meta path finder
    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET_MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _RegisterAfterExec(spec.loader)
                return spec
        return None


def install() -> None:
    """Put the finder first on sys.meta_path (once); register at once if lm_eval.models is loaded."""
    if os.environ.get("THREADWEAVER_NO_LMEVAL_HOOK") or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    if TARGET_MODULE in sys.modules:
        register()
        return
    sys.meta_path.insert(0, _Finder())
