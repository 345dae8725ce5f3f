"""Dataset statistics of a file of trajectories: the rows of the ThreadWeaver paper's Table 8.

    rows = dataset_stats([rec.response for rec in records], tokenizer=None, fmt="threadweaver")

Every count comes from the format's counter (harness.counting) in one count unit (a tokenizer's, or the
built-in fallback counter's). Row definitions (README "Data generation"):
- `size`: trajectories in the file.
- `parallel_ratio`: share of trajectories with at least one block (activation).
- `critical_path_tokens` (longest-path length): mean over trajectories of the critical path.
- `total_tokens`: mean over trajectories of all tokens.
- `self_parallelism`: mean over trajectories of total / critical path (1.0 for a sequential one).
- `num_blocks`: mean blocks per trajectory (every trajectory, sequential ones count 0).
- `parallel_path_tokens` (parallel path length): mean over blocks of the block's critical path (its own
  part, i.e. tags, outlines and thread wrappers, plus its longest thread).
- `tokens_per_block`: mean over blocks of all the block's tokens (open to close tag, every thread).
- `threads_per_block`: mean over blocks of the threads.
Per-block rows are None when the file has no block; every row is None for an empty file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness.counting import measure_blocks, measure_many
from harness.formats import get_format
from harness.metrics import mean

ROWS = (
    ("size", "size"),
    ("parallel_ratio", "parallel ratio"),
    ("critical_path_tokens", "longest-path length"),
    ("total_tokens", "total tokens"),
    ("self_parallelism", "self-parallelism"),
    ("num_blocks", "blocks"),
    ("parallel_path_tokens", "parallel path length"),
    ("tokens_per_block", "tokens per block"),
    ("threads_per_block", "threads per block"),
)
"""(key, the paper's row name), in the table's order."""


@dataclass
class DatasetStats:
    size: int
    parallel_ratio: float | None
    critical_path_tokens: float | None
    total_tokens: float | None
    self_parallelism: float | None
    num_blocks: float | None
    parallel_path_tokens: float | None
    tokens_per_block: float | None
    threads_per_block: float | None
    valid_ratio: float | None
    """Share of trajectories the format's strict checker accepts (not a Table 8 row; a sanity check)."""
    count_unit: str | None

    def to_dict(self) -> dict:
        return asdict(self)


def _mean(values: list) -> float | None:
    return mean(values) if values else None


def dataset_stats(texts: list[str], tokenizer=None, fmt="threadweaver") -> DatasetStats:
    """Table 8 rows of `texts`, counted with `tokenizer` (None: the built-in fallback counter)."""
    fmt = get_format(fmt)
    metrics = measure_many(texts, tokenizer, fmt)
    blocks = [b for per_text in measure_blocks(texts, tokenizer, fmt) for b in per_text]
    return DatasetStats(
        size=len(texts),
        parallel_ratio=_mean([float(m.is_parallel) for m in metrics]),
        critical_path_tokens=_mean([m.critical_path_tokens for m in metrics]),
        total_tokens=_mean([m.total_tokens for m in metrics]),
        self_parallelism=_mean([m.self_parallelism for m in metrics]),
        num_blocks=_mean([m.num_blocks for m in metrics]),
        parallel_path_tokens=_mean([b.critical_path_tokens for b in blocks]),
        tokens_per_block=_mean([b.total_tokens for b in blocks]),
        threads_per_block=_mean([b.threads for b in blocks]),
        valid_ratio=_mean([float(bool(m.valid)) for m in metrics]),
        count_unit=metrics[0].count_unit if metrics else None,
    )


def format_stats(stats: DatasetStats) -> str:
    """The rows as a two-column text table (fractions as percent, means with 2 decimals)."""
    lines = []
    for key, name in (*ROWS, ("valid_ratio", "valid (format check)")):
        v = getattr(stats, key)
        if v is None:
            shown = "-"
        elif key in ("parallel_ratio", "valid_ratio"):
            shown = f"{100 * v:.1f}%"
        elif key == "size":
            shown = str(v)
        elif key == "self_parallelism":
            shown = f"{v:.3f}x"
        else:
            shown = f"{v:.2f}"
        lines.append(f"  {name:<22}{shown}")
    lines.append(f"  {'count unit':<22}{stats.count_unit or '-'}")
    return "\n".join(lines) + "\n"
