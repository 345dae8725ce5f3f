"""Startup hook that makes `lm_eval --model threadweaver --tasks tw_*` work on lm-eval 0.4.13 (no plugin
loading), from any folder, without `--include_path`.

Newer lm-eval reads the `lm_eval.models` entry point declared in pyproject.toml; 0.4.13 does not (its
registry knows only `lm_eval/models/__init__.py`'s MODEL_MAPPING), and it finds tasks only in its own
folder and `--include_path`. The installed file `threadweaver_lmeval.pth` (see setup.py) runs `install()`
at interpreter start. It imports nothing but this module: it puts a finder on `sys.meta_path` that waits
for two lm-eval modules to be imported:
- `lm_eval.models`: then it adds the LAZY entry `threadweaver -> harness.lmeval:ThreadweaverLM` to
  lm-eval's model registry, exactly as lm-eval registers its own backends (lm-eval, torch and vLLM load
  only when a run asks for the model). Hooking `lm_eval.models` (not the registry module) keeps the
  registry empty until lm-eval fills it, so `get_model("hf")` still triggers lm-eval's own lazy import;
- `lm_eval.tasks.manager`: then every TaskManager also indexes the installed `threadweaver_tasks` folder,
  after lm-eval's own tasks and before the user's `--include_path` (which can still override a tw_ task).
Disable with THREADWEAVER_NO_LMEVAL_HOOK=1.
"""

from __future__ import annotations

import os
import sys

MODEL_NAME = "threadweaver"
MODEL_TARGET = "harness.lmeval:ThreadweaverLM"
TASKS_PACKAGE = "threadweaver_tasks"


def register(registry=None) -> None:
    """Add the lazy `threadweaver` entry unless one is there (e.g. from a newer lm-eval's entry point)."""
    if registry is None:
        from lm_eval.api.registry import model_registry as registry
    if MODEL_NAME not in registry:
        registry.register(MODEL_NAME, target=MODEL_TARGET)


def tasks_folder() -> str | None:
    """The folder of the installed task YAMLs (found without importing the package)."""
    from importlib.util import find_spec

    spec = find_spec(TASKS_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return locations[0] if locations else None


def add_task_folder(module) -> None:
    """Make `module.TaskManager` index our tasks too (idempotent)."""
    cls = module.TaskManager
    if getattr(cls, "_threadweaver_tasks", False):
        return
    original = cls.__init__

    def __init__(self, *args, include_path=None, **kwargs):
        folder = tasks_folder()
        if folder is not None:
            given = [] if include_path is None else list(include_path) if isinstance(include_path, list | tuple) \
                else [include_path]  # fmt: skip
            known = {os.path.realpath(str(p)) for p in given}
            include_path = given if os.path.realpath(folder) in known else [folder, *given]
        original(self, *args, include_path=include_path, **kwargs)

    cls.__init__ = __init__
    cls._threadweaver_tasks = True


TARGETS = {"lm_eval.models": lambda module: register(), "lm_eval.tasks.manager": add_task_folder}


class _RegisterAfterExec:  # a loader (duck-typed: importing importlib.abc costs ~50 ms)
    """Wraps an lm-eval module's loader: run it, then apply our hook to the module."""

    def __init__(self, loader, hook) -> None:
        self.loader, self.hook = loader, hook

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        self.hook(module)

    def __getattr__(self, name):  # get_resource_reader, is_package, get_code, ...
        return getattr(self.loader, name)


class _Finder:  # a meta path finder
    def find_spec(self, fullname, path, target=None):
        if fullname not in TARGETS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _RegisterAfterExec(spec.loader, TARGETS[fullname])
                return spec
        return None


def install() -> None:
    """Put the finder first on sys.meta_path (once); apply the hooks at once to modules already loaded."""
    if os.environ.get("THREADWEAVER_NO_LMEVAL_HOOK") or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    for name, hook in TARGETS.items():
        if name in sys.modules:
            hook(sys.modules[name])
    sys.meta_path.insert(0, _Finder())
