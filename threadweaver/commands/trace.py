"""`threadweaver trace`: token counts and critical path of parallel trajectories in any format
(threadweaver.md section 6, formats.md section 3)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from harness.errors import InputError
from harness.jsonl import iter_jsonl

BATCH = 256  # trajectories measured per call: bounded memory, batched tokenisation

EXAMPLE = """examples:
  threadweaver trace harness/examples/spec_example.txt
  threadweaver trace --json --tokenizer path/to/tokenizer_dir responses.jsonl > metrics.jsonl
  threadweaver trace --format parallel-r1 trajectory.txt
  threadweaver trace --format npr trajectory.txt
"""

FALLBACK_NOTE = (
    "note: no --tokenizer given: counting with the built-in fallback counter "
    "(each special tag 1 token; runs of letters, single digits, whitespace runs and other single characters "
    "1 token each)"
)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "trace",
        help="Count tokens and critical path of parallel trajectories",
        description="Count total tokens, critical-path tokens, blocks and branches of each trajectory, "
        "and check the format's rules. FILE is a text file (one trajectory) or a .jsonl file with a "
        "`response` (sample records) or `text` field per line. Every figure carries its count unit.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "file", metavar="FILE", help="text file (one trajectory) or .jsonl with a `response` or `text` field per line"
    )
    p.add_argument("--format", default="threadweaver", help="parallel format (harness.formats): threadweaver, "
                   "parallel-r1, npr, multiverse (default threadweaver)")  # fmt: skip
    p.add_argument("--tokenizer", metavar="DIR", help="HF tokenizer folder whose tags are single tokens")
    p.add_argument("--json", action="store_true", help="one JSON object of metrics per line")
    p.set_defaults(func=run)


def read_trajectories(path: Path) -> Iterator[tuple[str, str]]:
    """Yield (where, text): `FILE` for a text file, `FILE:LINE` per line of a .jsonl file (streamed)."""
    if path.suffix == ".jsonl":
        for where, obj in iter_jsonl(path):
            text = obj.get("response", obj.get("text"))
            if not isinstance(text, str):
                raise InputError(f"{where}: needs a string field `response` or `text`")
            yield where, text
        return
    try:
        yield str(path), path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None


def load_tokenizer(directory: str, fmt="threadweaver"):
    """The tokenizer of a local folder, checked to hold the format's tags as single tokens.

    A folder with `tokenizer.json` is read with the `tokenizers` library alone (no transformers import:
    seconds saved per call); other folders go through transformers' AutoTokenizer.
    """
    from harness.counting import tag_ids_of

    folder = Path(directory)
    if not folder.is_dir():
        raise InputError(f"--tokenizer {directory}: no such folder")
    try:
        if (folder / "tokenizer.json").is_file():
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        else:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    except Exception as exc:  # any loader failure is a bad folder, reported in one line
        reason = " ".join(str(exc).split())[:200]  # one line, even for multi-line loader messages
        raise InputError(
            f"--tokenizer {directory}: cannot load a tokenizer ({type(exc).__name__}: {reason})"
        ) from exc
    try:
        tag_ids_of(tokenizer, fmt)
    except ValueError as exc:
        raise InputError(f"--tokenizer {directory}: {exc}") from exc
    return tokenizer


def format_table(where: str, m) -> str:
    threads = ", ".join(map(str, m.threads_per_block)) or "-"
    valid = {True: "yes", False: "no", None: "not checked"}[m.valid]
    lines = [
        where,
        f"  tokens              {m.total_tokens}",
        f"  critical path       {m.critical_path_tokens}",
        f"  blocks              {m.num_blocks}",
        f"  threads per block   {threads}",
        f"  self-parallelism    {m.self_parallelism:.3f}x",
        f"  valid               {valid}",
        f"  count unit          {m.count_unit}",
        f"  violations          {len(m.violations)}",
    ]
    lines += [f"    - {v}" for v in m.violations]
    return "\n".join(lines) + "\n"


def _batches(items: Iterator[tuple[str, str]]) -> Iterator[list[tuple[str, str]]]:
    batch: list[tuple[str, str]] = []
    for item in items:
        batch.append(item)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def run(args) -> int:
    from harness.counting import measure_many
    from harness.formats import get_format

    fmt = get_format(args.format)
    path = Path(args.file)
    tokenizer = load_tokenizer(args.tokenizer, fmt) if args.tokenizer else None
    if tokenizer is None:
        print(FALLBACK_NOTE, file=sys.stderr)
    out = sys.stdout
    first = True
    for batch in _batches(read_trajectories(path)):
        metrics = measure_many([text for _, text in batch], tokenizer, fmt)
        if args.json:
            out.write("".join(json.dumps(m.to_dict()) + "\n" for m in metrics))
            continue
        for (where, _), m in zip(batch, metrics, strict=True):
            out.write(("" if first else "\n") + format_table(where, m))
            first = False
    out.flush()
    return 0
