"""The model zoo: known models in harness/zoo.yaml (hub id or local path, format, sampling, results).

    path_or_id, entry = resolve_pretrained("zoo:toy-threadweaver")   # -> "/repo/models/toy-threadweaver"

Local paths resolve against the repository root (the folder above the `harness` package).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.config import build_dataclass, load_yaml_mapping, suggest
from harness.errors import InputError

ZOO_FILE = Path(__file__).with_name("zoo.yaml")
REPO_ROOT = Path(__file__).resolve().parent.parent
ZOO_PREFIX = "zoo:"


@dataclass
class ZooEntry:
    name: str
    description: str = ""
    hub_id: str | None = None
    """Hub repository id; null when no public checkpoint is known."""
    local_path: str | None = None
    """Path relative to the repository root (or absolute)."""
    format: str | None = None
    """The parallel format the model writes (harness.formats); null for a sequential model."""
    chat_template: str = ""
    """Notes on the chat template / prompt the model expects."""
    sampling: dict = field(default_factory=dict)
    """temperature, top_p, top_k (null = not stated); applied by `pretrained=zoo:NAME` over the task's."""
    budget_tokens: int | None = None
    """Total-token budget per trajectory (threadweaver.md section 2); applied by `pretrained=zoo:NAME`."""
    parallel: bool = False
    """Run the trie rollout (True) or plain sequential decoding; applied by `pretrained=zoo:NAME`."""
    preset: str | None = None
    """The paper's protocol preset (harness.presets) applied by `pretrained=zoo:NAME` unless model_args
    name another; it wins over this entry's format, sampling, budget_tokens and parallel."""
    results: list[str] = field(default_factory=list)
    """Result files under results/ for this model."""
    notes: str = ""

    def __post_init__(self):
        from harness.formats import FORMATS

        if self.format is not None and self.format not in FORMATS:
            raise ValueError(f"format must be one of {list(FORMATS)} or null, got {self.format!r}")
        from harness.presets import PRESETS

        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {list(PRESETS)} or null, got {self.preset!r}")
        if self.parallel and self.format is None:
            raise ValueError("a parallel model needs its format")
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
    data = load_yaml_mapping(path)
    return {name: build_dataclass(ZooEntry, {**(raw if isinstance(raw, dict) else {"_": raw}), "name": name},
                                  f"{path}: entry '{name}'") for name, raw in data.items()}  # fmt: skip


def get_entry(name: str, zoo: dict[str, ZooEntry] | None = None) -> ZooEntry:
    zoo = load_zoo() if zoo is None else zoo
    if name not in zoo:
        raise InputError(f"unknown zoo model '{name}'{suggest(name, zoo)} (see `threadweaver zoo list`)")
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
