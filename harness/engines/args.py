"""Engine arguments: the one definition behind the `--engine ...` flags, lm-eval's `--model_args` and
`EngineArgs.build()`.

    >>> args = EngineArgs(engine="hf", model="path/to/model", max_batch_size=8)
    >>> args.engine_kwargs()
    {'model': 'path/to/model', 'device': 'cpu', 'max_batch_size': 8}

Each field has a default, one help text (its `--help`) and the engines that take it. An argument the
chosen engine does not take is refused when it was set (differs from its default), never dropped:
"engine 'hf' does not take tensor_parallel_size (vllm only)". None means "the engine's own default".
"""

from __future__ import annotations

import argparse
import contextvars
import difflib
import json
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from harness.errors import InputError

ALL = ("scripted", "hf", "vllm", "openai")  # = harness.engines.ENGINES (checked by a test)
DTYPES = ("auto", "float32", "bfloat16", "float16")
_NAMING = contextvars.ContextVar("engine_args_naming", default=("", False))  # (message prefix, flag names)


def _arg(default, help: str, engines=ALL, *, kwarg: dict[str, str] | None = None, required: bool = False):
    """A field: `help` is its one docstring and `--help`; `kwarg` maps engine -> adapter keyword if renamed."""
    meta = {"help": help, "engines": tuple(engines), "kwarg": kwarg or {}, "required": required}
    return field(default=default, metadata=meta)


@dataclass
class EngineArgs:
    """Every engine argument; `build()` starts the chosen engine."""

    engine: str = _arg("vllm", "which engine: scripted | hf | vllm | openai")
    model: str = _arg("", "model folder or hub id (scripted: a JSON file {prompt text: completion text})",
                      kwarg={"scripted": "responses"}, required=True)  # fmt: skip
    tokenizer: str | None = _arg(None, "tokenizer folder or hub id; None = the model's")
    dtype: str | None = _arg(None, "auto (the checkpoint's), float32, bfloat16 or float16; None = the engine's "
                             "default (hf: float32, vllm: auto)", ("hf", "vllm"))  # fmt: skip
    device: str = _arg("cpu", "torch device of the model (cpu, cuda, cuda:1)", ("hf",))
    max_batch_size: int = _arg(64, "most requests in one generate batch; >= 1", ("hf",))
    tensor_parallel_size: int = _arg(1, "devices per model copy; >= 1", ("vllm",))
    data_parallel_size: int = _arg(1, "model copies; >= 1", ("vllm",))
    enforce_eager: bool = _arg(
        False, "no CUDA graphs or torch.compile (faster start, slower decoding)", ("vllm",)
    )
    gpu_memory_utilization: float | None = _arg(
        None, "share of device memory vLLM may use, in (0, 1]; on CPU a share of RAM. None = vLLM's 0.9 on GPUs; "
        "on CPU the KV cache is sized from the run's need and the free memory", ("vllm",))  # fmt: skip
    kv_cache_memory_bytes: int | None = _arg(
        None, "KV cache bytes per worker (overrides gpu_memory_utilization); >= 1", ("vllm",))  # fmt: skip
    max_model_len: int | None = _arg(
        None, "longest prompt + completion in tokens; None = the model's", ("vllm",)
    )
    max_num_seqs: int | None = _arg(None, "most sequences decoded at once; None = vLLM's default", ("vllm",))
    engine_seed: int = _arg(
        0, "vLLM's global seed (a request's own seed wins)", ("vllm",), kwarg={"vllm": "seed"}
    )
    verbose: bool = _arg(False, "show vLLM's INFO logs on stderr (default: warnings only, or the level in "
                         "VLLM_LOGGING_LEVEL when that is set)", ("vllm",))  # fmt: skip
    base_url: str = _arg("http://127.0.0.1:8000/v1", "the server's /v1 URL", ("openai",))
    api_key_env: str = _arg(
        "OPENAI_API_KEY", "environment variable holding the API key (never logged)", ("openai",)
    )
    served_model_name: str | None = _arg(None, "model name the server knows; None = model", ("openai",))
    request_timeout_s: float = _arg(600.0, "seconds one HTTP request may take; > 0", ("openai",))
    http_retries: int = _arg(
        3, "retries of a request after a 5xx, 429 or a transport error; >= 0", ("openai",)
    )
    http_backoff_s: float = _arg(1.0, "first wait between HTTP retries, doubled each time; >= 0", ("openai",))
    max_concurrency: int = _arg(64, "most HTTP requests in flight; >= 1", ("openai",))
    vllm_extras: bool = _arg(True, "send vLLM's extra request fields (off for servers that refuse them)",
                             ("openai",))  # fmt: skip

    def __post_init__(self) -> None:
        prefix, flags = _NAMING.get()
        for name, problem in self._problems():
            shown = f"--{name.replace('_', '-')}" if flags else name
            raise InputError(f"{prefix}{problem.format(name=shown)}")

    def _problems(self):
        """(field, message with {name}) of each problem, first the values, then the engine's arguments."""
        if self.engine not in ALL:
            close = difflib.get_close_matches(str(self.engine), ALL, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            yield "engine", f"{{name}} must be one of {', '.join(ALL)}, got {self.engine!r}{hint}"
            return
        hints = typing.get_type_hints(EngineArgs)
        for f in fields(self):
            value = getattr(self, f.name)
            want = _type_problem(hints[f.name], value)
            if want:
                yield f.name, f"{{name}} must be {want}, got {value!r}"
        if not self.model:
            yield "model", "{name} must be a model folder or hub id, got ''"
        ranges = [
            ("dtype", self.dtype is None or self.dtype in DTYPES, f"None or one of {', '.join(DTYPES)}"),
            ("gpu_memory_utilization", self.gpu_memory_utilization is None or 0 < self.gpu_memory_utilization <= 1,
             "None or in (0, 1]"),
            *((n, getattr(self, n) >= 1, ">= 1") for n in ("max_batch_size", "tensor_parallel_size",
                                                          "data_parallel_size", "max_concurrency")),
            *((n, getattr(self, n) is None or getattr(self, n) >= 1, "None or >= 1")
              for n in ("kv_cache_memory_bytes", "max_model_len", "max_num_seqs")),
            ("request_timeout_s", self.request_timeout_s > 0, "> 0"),
            ("http_retries", self.http_retries >= 0, ">= 0"),
            ("http_backoff_s", self.http_backoff_s >= 0, ">= 0"),
        ]  # fmt: skip
        for name, ok, want in ranges:
            if not ok:
                yield name, f"{{name}} must be {want}, got {getattr(self, name)!r}"
        for name in self.set_fields():
            engines = _meta(name)["engines"]
            if self.engine not in engines:
                yield name, f"engine '{self.engine}' does not take {{name}} ({', '.join(engines)} only)"

    # ------------------------------------------------------------------------------------ views
    def set_fields(self) -> list[str]:
        """Names of the fields that differ from their defaults (what the user changed)."""
        return [f.name for f in fields(self) if getattr(self, f.name) != f.default]

    def non_defaults(self) -> dict:
        """{field: value} of the set fields, for a log line that shows only what was changed."""
        return {name: getattr(self, name) for name in self.set_fields()}

    def to_dict(self) -> dict:
        """Every field (the full resolved configuration, for result files)."""
        return asdict(self)

    def engine_kwargs(self) -> dict:
        """Keyword arguments of the chosen engine's adapter; None values are left out (the adapter's default)."""
        kw = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "engine" or self.engine not in f.metadata["engines"] or value is None:
                continue
            kw[f.metadata["kwarg"].get(self.engine, f.name)] = value
        return kw

    def context_length(self, engine=None) -> int | None:
        """The model's context in tokens: max_model_len if set, else the built engine's, else the
        checkpoint's config.json `max_position_embeddings` (None if none says)."""
        if self.max_model_len:
            return self.max_model_len
        for owner in (engine, getattr(engine, "llm", None)):
            n = getattr(getattr(owner, "model_config", None), "max_model_len", None)
            if isinstance(n, int):
                return n
        config = Path(self.model).expanduser() / "config.json"
        if config.is_file():
            n = json.loads(config.read_text(encoding="utf-8")).get("max_position_embeddings")
            return n if isinstance(n, int) else None
        return None

    def build(self):
        """Start the engine (imports its adapter; InputError if its package is missing, or if the model or
        tokenizer cannot be found or fetched: transformers raises OSError for both)."""
        from harness.engines import engine_class

        cls = engine_class(self.engine)
        folder = Path(self.model).expanduser()
        if self.engine in ("hf", "vllm") and folder.is_dir() and not (folder / "config.json").exists():
            raise InputError(f"model {self.model}: not a checkpoint folder (no config.json)")
        try:
            return cls(**self.engine_kwargs())
        except OSError as exc:
            reason = " ".join(str(exc).split())[:200]
            raise InputError(f"model {self.model}: cannot load it ({type(exc).__name__}: {reason})") from None

    # ------------------------------------------------------------------------------------ constructors
    @classmethod
    def from_cli(cls, namespace: argparse.Namespace) -> EngineArgs:
        """From the flags of `add_cli_args`; errors name the flags (`--tensor-parallel-size`)."""
        token = _NAMING.set(("", True))
        try:
            return cls(**{f.name: getattr(namespace, f.name) for f in fields(cls)})
        finally:
            _NAMING.reset(token)

    @classmethod
    def from_mapping(cls, mapping: dict, where: str = "model_args") -> EngineArgs:
        """From a dict such as lm-eval's parsed `--model_args`: strings are converted ("true", "8", "none"),
        values lm-eval already converted are taken as they are; an unknown key fails with a suggestion."""
        names = [f.name for f in fields(cls)]
        hints = typing.get_type_hints(cls)
        values = {}
        for key, raw in mapping.items():
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(names)})"
                raise InputError(f"{where}: unknown key '{key}'{hint}")
            values[key] = _convert(hints[key], raw)
        token = _NAMING.set((f"{where}: ", False))
        try:
            return cls(**values)
        finally:
            _NAMING.reset(token)

    @classmethod
    def split(cls, mapping: dict) -> tuple[dict, dict]:
        """(engine keys, other keys) of a mapping, e.g. lm-eval model_args that also hold rollout settings."""
        names = {f.name for f in fields(cls)}
        return (
            {k: v for k, v in mapping.items() if k in names},
            {k: v for k, v in mapping.items() if k not in names},
        )


def add_cli_args(parser: argparse.ArgumentParser) -> None:
    """Add one flag per EngineArgs field (`--tensor-parallel-size`), in an "engine" group."""
    group = parser.add_argument_group(
        "engine", "engine arguments (an argument the engine does not take is refused)"
    )
    hints = typing.get_type_hints(EngineArgs)
    for f in fields(EngineArgs):
        base, optional = _base_type(hints[f.name])
        engines = f.metadata["engines"]
        where = "" if engines == ALL else f"{', '.join(engines)}: "
        default = "" if f.metadata["required"] else f" (default: {f.default})"
        kw: dict = {"dest": f.name, "help": f"{where}{f.metadata['help']}{default}"}
        if f.metadata["required"]:
            kw["required"] = True
        else:
            kw["default"] = f.default
        if base is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = base
            kw["metavar"] = f.name.upper() if base is str else base.__name__.upper()
        if f.name == "engine":
            kw["choices"] = ALL
        if optional and base is not str:
            kw["type"] = lambda s, _b=base: None if s.lower() == "none" else _b(s)
        group.add_argument(f"--{f.name.replace('_', '-')}", **kw)


# ---------------------------------------------------------------------------------------- helpers
def _meta(name: str) -> dict:
    return next(f.metadata for f in fields(EngineArgs) if f.name == name)


def _base_type(hint) -> tuple[type, bool]:
    """(int, True) for `int | None`."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return (args[0], True) if args else (hint, False)


def _type_problem(hint, value) -> str | None:
    """What the value should be, or None when it fits the field's type."""
    base, optional = _base_type(hint)
    if value is None:
        return None if optional else _TYPE_NAMES[base]
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[base]
    return None if ok else _TYPE_NAMES[base] + (" or None" if optional else "")


_TYPE_NAMES = {bool: "true or false", int: "an int", float: "a number", str: "a string"}


def _convert(hint, raw):
    """A mapping value to the field's type where that is unambiguous; anything else is left for validation."""
    base, optional = _base_type(hint)
    if isinstance(raw, str) and optional and raw.strip().lower() == "none":
        return None
    if (
        base is bool
        and isinstance(raw, str)
        and raw.strip().lower() in ("true", "false", "1", "0", "yes", "no")
    ):
        return raw.strip().lower() in ("true", "1", "yes")
    if base is int and isinstance(raw, str):
        try:
            return int(raw.strip())
        except ValueError:
            return raw
    if base is int and isinstance(raw, float) and raw.is_integer():
        return int(raw)  # lm-eval turns "4e9" into 4000000000.0
    if base is float and isinstance(raw, str):
        try:
            return float(raw.strip())
        except ValueError:
            return raw
    if base is float and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    if base is str and isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return str(raw)  # lm-eval turns a model name such as "7" into 7
    return raw


__all__ = ["ALL", "DTYPES", "EngineArgs", "add_cli_args"]
