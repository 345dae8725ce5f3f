"""Reading JSONL input files: one JSON object per line, errors that name FILE:LINE and the field.

Every command that reads a user's JSONL goes through `iter_jsonl`, so bad input always reads the same:
"prompts.jsonl:7: bad JSON (Expecting value, column 1)" or "prompts.jsonl:7: missing field `prompt`".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from harness.errors import InputError


def iter_jsonl(path: str | Path, required: tuple[str, ...] = (), allow_torn_tail: bool = False
               ) -> Iterator[tuple[str, dict]]:  # fmt: skip
    """Yield `("FILE:LINE", object)` for each non-blank line, streaming; InputError on the first bad line.

    `required`: fields every object must have. Field types are the caller's to check (with `where`).
    `allow_torn_tail`: a last line that does not parse and has no newline (the half line of a killed
    writer) is skipped; any other bad line stays an error.
    """
    path = Path(path)
    try:
        f = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with f:
        try:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    if allow_torn_tail and not line.endswith("\n"):
                        return
                    raise InputError(f"{where}: bad JSON ({exc.msg}, column {exc.colno})") from None
                if not isinstance(obj, dict):
                    raise InputError(f"{where}: expected a JSON object, got {type(obj).__name__}")
                for field in required:
                    if field not in obj:
                        raise InputError(f"{where}: missing field `{field}`")
                yield where, obj
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None


def read_jsonl(path: str | Path, required: tuple[str, ...] = ()) -> list[tuple[str, dict]]:
    """All of `iter_jsonl` as a list (checks the whole file before the caller acts on any line)."""
    return list(iter_jsonl(path, required))
