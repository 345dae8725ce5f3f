"""The model zoo: known models in harness/zoo.yaml (hub id or local path, format, sampling, results).

    path_or_id, entry = resolve_pretrained("zoo:toy-threadweaver")   # -> "/repo/models/toy-threadweaver"

Local paths resolve against the repository root (the folder above the `harness` package).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import InputError

ZOO_FILE = Path(__file__).with_name("zoo.yaml")
REPO_ROOT = Path(__file__).resolve().parent.parent
ZOO_PREFIX = "zoo:"
TRAJECTORY_FORMATS = ("threadweaver", "sequential", "multiverse", "parallel-r1")


@dataclass
class ZooEntry:
    name: str
    description: str = ""
    hub_id: str | None = None
    """Hub repository id; null when no public checkpoint is known."""
    local_path: str | None = None
    """Path relative to the repository root (or absolute)."""
    trajectory_format: str = "sequential"
    """How the model writes parallel reasoning: one of TRAJECTORY_FORMATS."""
    chat_template: str = ""
    """Notes on the chat template / prompt the model expects."""
    sampling: dict = field(default_factory=dict)
    """Recommended temperature, top_p, top_k (null = not stated)."""
    budget_tokens: int | None = None
    """Recommended total-token budget per trajectory (spec section 2)."""
    parallel: bool = False
    """Whether to run the trie rollout (True) or plain sequential decoding."""
    results: list[str] = field(default_factory=list)
    """Result files under results/ for this model."""
    notes: str = ""

    def __post_init__(self):
        if self.trajectory_format not in TRAJECTORY_FORMATS:
            raise ValueError(f"trajectory_format must be one of {list(TRAJECTORY_FORMATS)}, "
                             f"got {self.trajectory_format!r}")
        if self.hub_id is not None and self.local_path is not None:
            raise ValueError(f"hub_id and local_path are exclusive, got both ({self.hub_id!r}, {self.local_path!r})")
        unknown = sorted(set(self.sampling) - {"temperature", "top_p", "top_k"})
        if unknown:
            raise ValueError(f"sampling keys must be temperature, top_p, top_k, got {unknown}")
        if self.budget_tokens is not None and (not isinstance(self.budget_tokens, int) or self.budget_tokens < 1):
            raise ValueError(f"budget_tokens must be a positive integer or null, got {self.budget_tokens!r}")

    def pretrained(self) -> str | None:
        """What to load: the absolute local path, else the hub id, else None (unknown)."""
        if self.local_path is not None:
            path = Path(self.local_path)
            return str(path if path.is_absolute() else REPO_ROOT / path)
        return self.hub_id

    def to_dict(self) -> dict:
        return {**self.__dict__, "pretrained": self.pretrained()}


def load_zoo(path: str | Path = ZOO_FILE) -> dict[str, ZooEntry]:
    """Name -> ZooEntry, in file order; unknown keys fail with a suggestion."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read the zoo ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: the zoo must be a mapping of name -> entry")
    known = [f for f in ZooEntry.__dataclass_fields__ if f != "name"]
    zoo = {}
    for name, raw in data.items():
        if not isinstance(raw, dict):
            raise InputError(f"{path}: entry '{name}' must be a mapping")
        for key in raw:
            if key not in known:
                hint = difflib.get_close_matches(key, known, n=1)
                raise InputError(f"{path}: entry '{name}': unknown key '{key}'"
                                 + (f"; did you mean '{hint[0]}'?" if hint else ""))
        try:
            zoo[name] = ZooEntry(name=name, **raw)
        except ValueError as exc:
            raise InputError(f"{path}: entry '{name}': {exc}") from None
    return zoo


def get_entry(name: str, zoo: dict[str, ZooEntry] | None = None) -> ZooEntry:
    zoo = load_zoo() if zoo is None else zoo
    if name not in zoo:
        hint = difflib.get_close_matches(name, list(zoo), n=1)
        raise InputError(f"unknown zoo model '{name}'" + (f"; did you mean '{hint[0]}'?" if hint else "")
                         + " (see `threadweaver zoo list`)")
    return zoo[name]


def resolve_pretrained(spec: str, zoo: dict[str, ZooEntry] | None = None) -> tuple[str, ZooEntry | None]:
    """`zoo:NAME` -> (local path or hub id, entry); any other string passes through as (spec, None)."""
    if not spec.startswith(ZOO_PREFIX):
        return spec, None
    entry = get_entry(spec[len(ZOO_PREFIX):], zoo)
    target = entry.pretrained()
    if target is None:
        raise InputError(f"zoo model '{entry.name}' has no known checkpoint (hub_id is null); {entry.notes}".rstrip("; "))
    return target, entry
