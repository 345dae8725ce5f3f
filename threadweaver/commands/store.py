"""`threadweaver store list|clear`: the resume store of the lm-eval backend (harness/store.py).

Every finished sample of an `lm_eval --model threadweaver` run is appended to one file per model
configuration under the store folder ($THREADWEAVER_STORE_DIR, else ~/.cache/threadweaver/store); a run
started again with the same arguments takes its finished samples from there. `model_args store=none`
turns it off for one run, `store=FILE` uses another file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXAMPLE = """examples:
  threadweaver store list
  threadweaver store clear 1a2b3c4d5e6f7a8b --yes   # one store (its id from `store list`)
  threadweaver store clear --yes                    # every store file
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("store", help="The resume store: `store list`, `store clear`", description=__doc__,
                              epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = p.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="Store files: samples, size, the model they belong to")
    ls.add_argument("--json", action="store_true", help="one JSON object per file")
    ls.set_defaults(func=run_list)
    clear = sub.add_parser("clear", help="Delete store files (all, or the named ones)")
    clear.add_argument("names", nargs="*", metavar="NAME", help="file names (with or without .jsonl); none = all")
    clear.add_argument("--yes", action="store_true", help="really delete (without it, say what would go)")
    clear.set_defaults(func=run_clear)


def _files() -> list[Path]:
    from harness.store import store_root

    root = store_root()
    return sorted(root.glob("*.jsonl")) if root.is_dir() else []


def _describe(path: Path) -> dict:
    """Samples, size and the model of one store file (read from its first record's run header)."""
    samples, model = 0, None
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            samples += 1
            if model is None:
                try:
                    model = ((json.loads(line).get("record") or {}).get("run") or {}).get("model")
                except ValueError:
                    pass
    return {"name": path.stem, "path": str(path), "samples": samples, "bytes": path.stat().st_size, "model": model}


def run_list(args) -> int:
    from harness.store import store_root

    rows = [_describe(p) for p in _files()]
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(f"store folder: {store_root()} ({len(rows)} file(s))", file=sys.stderr)
    for r in rows:
        print(f"{r['name']}  {r['samples']:>7} samples  {r['bytes'] / 1e6:8.2f} MB  {r['model'] or '?'}")
    return 0


def run_clear(args) -> int:
    from harness.errors import InputError

    files = _files()
    if args.names:
        wanted = {n.removesuffix(".jsonl") for n in args.names}
        unknown = sorted(wanted - {p.stem for p in files})
        if unknown:
            raise InputError(f"no store file named {unknown[0]} (see `threadweaver store list`)")
        files = [p for p in files if p.stem in wanted]
    for p in files:
        if args.yes:
            p.unlink()
        print(f"{'deleted' if args.yes else 'would delete'} {p}")
    if not args.yes and files:
        print("add --yes to delete", file=sys.stderr)
    return 0
