"""`threadweaver datagen stats | stage0 | stage1 | stage2`: parallel training data (issue 15,
threadweaver.md section 4). Stage 1 lives in datagen_stage1.py, stages 0 and 2 in datagen_rollout.py.

- `stats FILE [--json] [--format F] [--tokenizer DIR]`: the rows of the paper's Table 8 for a file of
  trajectories (sample records, the toy SFT data, any .jsonl with `response`/`text`, or a text file).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.errors import InputError

EXAMPLE = """examples:
  threadweaver datagen stage0 --prompts problems.jsonl --engine hf --model path/to/model --samples 2 --out seq.jsonl
  threadweaver datagen stage1 seq.jsonl --base-url http://127.0.0.1:8000/v1 --model gpt-x --out stage1.jsonl
  threadweaver datagen stage2 --prompts problems.jsonl --engine hf --model sft1 --samples 2 --out stage2.jsonl
  threadweaver datagen stats stage2.jsonl --tokenizer path/to/tokenizer_dir
  threadweaver datagen pipeline --config pipeline.yaml    # stage 0 -> 1 -> SFT -> 2 -> SFT
"""


def add_parser(subparsers) -> None:
    from threadweaver.commands import datagen_pipeline, datagen_rollout, datagen_stage1

    parser = subparsers.add_parser(
        "datagen", help="Parallel training data: stage0, stage1 (LLM rewrite), stage2 (self-training), pipeline, stats",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sub = parser.add_subparsers(dest="datagen_command", metavar="ACTION", required=True)
    stats = sub.add_parser(
        "stats", help="The rows of the paper's Table 8 for a file of trajectories",
        description="Size, parallel ratio, longest-path length, total tokens, self-parallelism, blocks, "
        "parallel path length, tokens per block and threads per block (README, 'Data generation'), counted "
        "with the format's counter and a tokenizer (default: the built-in fallback counter).",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    stats.add_argument(
        "file", metavar="FILE", help="sample records / .jsonl with `response` or `text` / a text file"
    )
    stats.add_argument(
        "--format", default=None, help="parallel format (default: the records' own, else threadweaver)"
    )
    stats.add_argument("--tokenizer", metavar="DIR", help="HF tokenizer folder whose tags are single tokens")
    stats.add_argument("--json", action="store_true", help="one JSON object with the rows")
    stats.set_defaults(func=run_stats)
    datagen_rollout.add_parsers(sub)
    datagen_stage1.add_parser(sub)
    datagen_pipeline.add_parser(sub)


def read_texts(path: Path) -> tuple[list[str], set[str]]:
    """(trajectory texts, formats named by the records) of a file."""
    from harness.records import read_records
    from threadweaver.commands.trace import read_trajectories

    if path.suffix != ".jsonl":
        return [text for _, text in read_trajectories(path)], set()
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    texts, formats = [], set()
    for _, rec in read_records(path):
        texts.append(rec.response)
        formats.add(rec.format)
    return texts, formats


def run_stats(args) -> int:
    from threadweaver.commands.trace import FALLBACK_NOTE, load_tokenizer
    from trainers.datagen.stats import dataset_stats, format_stats

    texts, formats = read_texts(Path(args.file))
    if args.format is None and len(formats) > 1:
        raise InputError(f"{args.file}: records in several formats {sorted(formats)}; pick one with --format")
    fmt = args.format or (formats.pop() if formats else "threadweaver")
    tokenizer = load_tokenizer(args.tokenizer, fmt) if args.tokenizer else None
    if tokenizer is None:
        print(FALLBACK_NOTE, file=sys.stderr)
    stats = dataset_stats(texts, tokenizer, fmt)
    if args.json:
        print(json.dumps({"file": args.file, "format": fmt, **stats.to_dict()}))
    else:
        sys.stdout.write(f"{args.file} ({fmt})\n" + format_stats(stats))
    return 0
