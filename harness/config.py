"""The one YAML/mapping -> dataclass loader: unknown keys refused with the closest known one.

    config = load_dataclass_yaml(SFTConfig, "sft.yaml", overrides=["num_train_epochs=1"])
    policy = build_dataclass(RegressPolicy, data, where="policy.yaml")

Every config file and key=value list of the project goes through here (SFT and RL configs, regress
policies, the zoo, `--model_args`, sample records), so a typo always reads the same:
"sft.yaml: unknown key 'lerning_rate'; did you mean 'learning_rate'?".
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harness.errors import InputError


def suggest(name: str, known: Iterable[str]) -> str:
    """"; did you mean 'x'?" for the closest of `known`, or ""."""
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def check_keys(data: dict, known: Sequence[str], where: str) -> None:
    """InputError naming the first key of `data` that is not in `known`."""
    for key in data:
        if key not in known:
            raise InputError(f"{where}: unknown key '{key}'{suggest(key, known)}")


def init_fields(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init]


def build_dataclass(cls, data: Any, where: str):
    """`cls(**data)` with unknown keys refused; a ValueError/TypeError of the dataclass becomes an
    InputError prefixed with `where`."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping of {cls.__name__} fields, got {type(data).__name__}")
    check_keys(data, init_fields(cls), where)
    for f in dataclasses.fields(cls):
        required = f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and f.name not in data:
            raise InputError(f"{where}: missing field '{f.name}'")
    try:
        return cls(**data)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise InputError(f"{where}: {exc}") from None


def load_yaml_mapping(path: str | Path) -> dict:
    """The mapping in a YAML file (empty file: {}); InputError naming the file otherwise."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of key -> value, got {type(data).__name__}")
    return data


def apply_overrides(data: dict, overrides: Iterable[str]) -> dict:
    """`KEY=VALUE` strings (VALUE parsed as YAML) set into a copy of `data`."""
    import yaml

    out = dict(data)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def load_dataclass_yaml(cls, path: str | Path, overrides: Iterable[str] = ()):
    """`cls` from a YAML file plus `KEY=VALUE` overrides; every error names the file and the key."""
    return build_dataclass(cls, apply_overrides(load_yaml_mapping(path), overrides), str(path))
