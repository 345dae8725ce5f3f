"""Leaderboards from result files alone: Markdown + CSV tables and Pareto plots per benchmark.

    threadweaver leaderboard --results results/ --out leaderboards/

One board per benchmark, plus `average` over the six math benchmarks (models with all six only). Output is
deterministic (sorted inputs, fixed bootstrap seed, Agg backend, fixed SVG hash salt, no dates in metadata),
so the committed leaderboards/ can be checked against a fresh build.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import metrics
from harness.config import build_dataclass, load_yaml_mapping
from harness.errors import InputError
from harness.metrics import pareto_flags
from harness.plots import PLOT_AXES, plot_board
from harness.results import Aggregates, Result, load_result

BOARDS_FILE = "boards.yaml"  # in the results folder: titles, the averaged benchmarks, speedup baselines
BOOTSTRAP_SEED = 0
N_BOOT = 2000
GENERATED_SUFFIXES = (".md", ".csv", ".png", ".svg")


@dataclass
class BoardsConfig:
    """results/boards.yaml: what the boards show (data, not code)."""

    baselines: list[str] = field(default_factory=list)
    """Per board, the first of these models present is the speedup baseline."""
    titles: dict[str, str] = field(default_factory=dict)
    """Benchmark -> board title (default: the benchmark key)."""
    average: list[str] = field(default_factory=list)
    """Benchmarks of the `average` board (models present on all of them; the paper's Average row)."""


def load_boards_config(results_dir: str | Path) -> BoardsConfig:
    path = Path(results_dir) / BOARDS_FILE
    return build_dataclass(BoardsConfig, load_yaml_mapping(path), str(path)) if path.is_file() else BoardsConfig()


@dataclass
class Row:
    """One entry of a board: the result's aggregates (on the average board, their means) and what the board
    adds. Fractions (accuracy, rates), percent only when rendered."""

    model: str
    provenance: str
    aggregates: Aggregates
    speedup: float | None = None
    """Critical-path speedup vs the board's baseline (paper speedup of measured pairs, else the published one)."""
    speedup_ci_low: float | None = None
    speedup_ci_high: float | None = None
    num_samples_per_problem: int | None = None
    pareto: bool = False
    fidelity: str | None = None
    """"approximate" when the run used ordinary positions on a model trained with restarted ones
    (formats.md section 1); shown next to the provenance."""
    tps_ratio: float | None = None
    """TPS-ratio speedup vs `tps_baseline` (formats.md section 4): its own column, apart from `speedup`."""
    tps_baseline: str | None = None
    format_checker: str | None = None
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    """95% bootstrap intervals over problems of accuracy and the plotted costs (measured results; not in
    the CSV)."""


@dataclass
class Board:
    name: str
    """Benchmark key, or "average"."""
    title: str
    baseline: str | None
    rows: list[Row]
    notes: list[str] = field(default_factory=list)


def _speedup_row(result: Result, peers: dict[tuple[str, str], Result], baseline: str | None,
                 notes: list[str]) -> tuple:  # fmt: skip
    """(speedup, ci_low, ci_high) of `result` vs the baseline model on the same board, or Nones; a pair
    counted in different units is not compared (a note says so)."""
    if baseline is None:
        return None, None, None
    base = peers.get((baseline, result.provenance)) or next(
        (r for (name, _), r in sorted(peers.items()) if name == baseline), None)
    if base is None:
        return None, None, None
    if result.model.name == baseline:
        return 1.0, None, None
    if result.samples and base.samples:
        try:
            metrics.check_same_unit({baseline: base.count_unit, result.model.name: result.count_unit}, "latency")
        except InputError as exc:
            notes.append(f"{result.model.name}: no speedup ({exc})")
            return None, None, None
        lat = "critical_path_tokens"
        s = metrics.paper_speedup(base.per_problem(lat), result.per_problem(lat), n_boot=N_BOOT, seed=BOOTSTRAP_SEED)
        return (s.speedup, s.ci_low, s.ci_high) if s else (None, None, None)
    agg = result.aggregates
    if agg.speedup is not None and agg.speedup_baseline == baseline:
        return agg.speedup, None, None
    return None, None, None


def _tps_row(result: Result, peers: dict[tuple[str, str], Result], baseline: str | None) -> tuple:
    """(tps_ratio, its baseline): measured vs the board's measured baseline on the same engine (version and
    dtype), or a reported file's own figure and baseline; else Nones."""
    agg = result.aggregates
    if result.provenance == "reported" or not result.samples:
        return (agg.tps_ratio, agg.tps_baseline) if agg.tps_ratio is not None else (None, None)
    base = peers.get((baseline, "measured")) if baseline else None
    if base is None or agg.tokens_per_s is None:
        return None, None
    if (base.engine, base.engine_version, base.dtype) != (result.engine, result.engine_version, result.dtype):
        return None, None
    ratio = metrics.tps_ratio(agg.tokens_per_s, base.aggregates.tokens_per_s)
    return (ratio, baseline) if ratio is not None else (None, None)


def _intervals(result: Result) -> dict[str, tuple[float, float]]:
    """95% bootstrap intervals over problems of accuracy and the mean costs of a measured result."""
    if not result.samples:
        return {}
    out = {}
    for name in ("accuracy", "critical_path_tokens", "total_tokens", "wall_s"):
        key = "correct" if name == "accuracy" else name
        if name == "wall_s" and any(s.wall_s is None for s in result.samples):
            continue
        means = [sum(v) / len(v) for v in result.per_problem(key).values()]
        out[name] = metrics.bootstrap_ci(means, n_boot=N_BOOT, seed=BOOTSTRAP_SEED)
    return out


def build_boards(entries: list[tuple[Path, Result]], config: BoardsConfig | None = None) -> list[Board]:
    """One board per benchmark (sorted) and, when a model has every benchmark of `config.average`, `average`."""
    config = config or BoardsConfig()
    baselines = tuple(config.baselines)
    by_bench: dict[str, dict[tuple[str, str], Result]] = {}
    origin: dict[tuple[str, str, str], Path] = {}
    for path, r in sorted(entries, key=lambda e: str(e[0])):
        key = (r.model.name, r.provenance)
        if (r.benchmark, *key) in origin:
            raise InputError(f"{path}: duplicate result for model '{key[0]}' ({key[1]}) on '{r.benchmark}', "
                             f"also in {origin[(r.benchmark, *key)]}")
        origin[(r.benchmark, *key)] = path
        by_bench.setdefault(r.benchmark, {})[key] = r
    boards = []
    for bench in sorted(by_bench):
        peers = by_bench[bench]
        names = {name for name, _ in peers}
        baseline = next((b for b in baselines if b in names), None)
        rows, notes = [], []
        for key in sorted(peers):
            r = peers[key]
            sp, lo, hi = _speedup_row(r, peers, baseline, notes)
            tps, tps_base = _tps_row(r, peers, baseline)
            rows.append(Row(r.model.name, r.provenance, r.aggregates, sp, lo, hi, r.num_samples_per_problem,
                            fidelity=r.fidelity, tps_ratio=tps, tps_baseline=tps_base,
                            format_checker=r.format_checker, ci=_intervals(r)))  # fmt: skip
        boards.append(Board(bench, config.titles.get(bench, bench), baseline, _finish(rows), notes))
    average = _average_board([b for b in boards if b.name in config.average], config)
    return boards + ([average] if average else [])


def _average_board(boards: list[Board], config: BoardsConfig) -> Board | None:
    """Mean of the per-benchmark values (the paper's Average row) of every figure the tables show (`SHOWN`),
    over the models present on all of them."""
    wanted = len(config.average)
    if not wanted or len(boards) < wanted:
        return None
    cells: dict[tuple[str, str], list[Row]] = {}
    for b in boards:
        for row in b.rows:
            cells.setdefault((row.model, row.provenance), []).append(row)

    def mean(values: list[float | None]) -> float | None:
        return float(np.mean(values)) if all(v is not None for v in values) else None

    rows = [Row(model, prov, Aggregates(**{n: mean([getattr(r.aggregates, n) for r in rs]) for n in SHOWN}),
                mean([r.speedup for r in rs]), fidelity=_fidelity(rs))
            for (model, prov), rs in sorted(cells.items()) if len(rs) == wanted]
    if not rows:
        return None
    names = {r.model for r in rows}
    baseline = next((b for b in config.baselines if b in names), None)
    return Board("average", config.titles.get("average", f"Average over {wanted} benchmarks"), baseline, _finish(rows))


def _fidelity(rows: list[Row]) -> str | None:
    """An average is approximate when any of its entries is; exact only when all are."""
    found = {r.fidelity for r in rows}
    return "approximate" if "approximate" in found else ("exact" if found == {"exact"} else None)


def _finish(rows: list[Row]) -> list[Row]:
    points = [(r.aggregates.accuracy, r.aggregates.critical_path_tokens) for r in rows]
    for row, flag in zip(rows, pareto_flags(points), strict=True):
        row.pareto = flag
    return sorted(rows, key=lambda r: (-r.aggregates.accuracy, r.model, r.provenance))


# ----- rendering -----

def fmt_tokens(x: float | None) -> str:
    """15133.3 -> '15.1k'; 632.4 -> '632'; None -> '-'."""
    if x is None:
        return "-"
    return f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}"


def _fmt(pattern: str) -> Callable[[Any], str]:
    return lambda x: "-" if x is None else pattern.format(x)


def _pct(x: float | None) -> str:
    return _fmt("{:.1f}")(None if x is None else 100 * x)


def _provenance(r: Row) -> str:
    return r.provenance + (", fidelity approximate" if r.fidelity == "approximate" else "")


def _speedup(r: Row) -> str:
    text = _fmt("{:.2f}x")(r.speedup)
    return text + ("" if r.speedup_ci_low is None else f" [{r.speedup_ci_low:.2f}, {r.speedup_ci_high:.2f}]")


@dataclass(frozen=True)
class Column:
    """A Markdown column: header, value (an Aggregates attribute, or a function of the row for what the board
    adds) and how the value is written."""

    header: str
    value: str | Callable[[Row], Any]
    fmt: Callable[[Any], str] = str

    def cell(self, row: Row) -> str:
        return self.fmt(getattr(row.aggregates, self.value) if isinstance(self.value, str) else self.value(row))


MODEL_COLUMNS = (Column("model", lambda r: r.model), Column("provenance", _provenance))
SUMMARY_COLUMNS = MODEL_COLUMNS + (
    Column("k", lambda r: r.num_samples_per_problem, _fmt("{}")),
    Column("accuracy (%)", "accuracy", _pct),
    Column("critical-path tokens", "critical_path_tokens", fmt_tokens),
    Column("total tokens", "total_tokens", fmt_tokens),
    Column("self-parallelism", "self_parallelism", _fmt("{:.2f}x")),
    Column("activation (%)", "activation_ratio", _pct),
    Column("speedup vs {base}", _speedup),
    Column("wall-clock (s)", "wall_s", _fmt("{:.2f}")),
    Column("Pareto", lambda r: "yes" if r.pareto else ""),
)
FORMAT_COLUMNS = MODEL_COLUMNS + (  # formats.md section 4
    Column("trigger (%)", "trigger_rate", _pct),
    Column("strict valid (%)", "format_valid_strict", _pct),
    Column("lenient valid (%)", "format_valid_lenient", _pct),
    Column("format error (%)", "format_error", _pct),
    Column("no tags (%)", "no_tags", _pct),
    Column("truncated (%)", "truncation_rate", _pct),
    Column("accuracy untruncated (%)", "accuracy_untruncated", _pct),
    Column("total tokens", "total_tokens", fmt_tokens),
    Column("inserted tokens", "inserted_tokens", fmt_tokens),
    Column("re-prefilled tokens", "reprefill_tokens", fmt_tokens),
    Column("total + re-prefilled",
           lambda r: metrics.tokens_with_reprefill(r.aggregates.total_tokens, r.aggregates.reprefill_tokens),
           fmt_tokens),  # fmt: skip
    Column("TPS ratio", lambda r: "-" if r.tps_ratio is None else f"{r.tps_ratio:.2f}x vs {r.tps_baseline}"),
)
CSV_FIELDS = ("model", "provenance", "accuracy", "critical_path_tokens", "total_tokens", "self_parallelism",
              "activation_ratio", "speedup", "speedup_ci_low", "speedup_ci_high", "wall_s", "num_samples_per_problem",
              "pareto", "fidelity", "accuracy_untruncated", "truncation_rate", "trigger_rate", "format_valid_strict",
              "format_valid_lenient", "format_error", "no_tags", "inserted_tokens", "reprefill_tokens", "tps_ratio",
              "tps_baseline", "format_checker")
"""The CSV's first columns (Row or Aggregates attributes, plain numbers), in their committed order; the other
figures of `SHOWN` follow them."""
SHOWN = tuple(dict.fromkeys(c.value for c in SUMMARY_COLUMNS + FORMAT_COLUMNS if isinstance(c.value, str)))
"""The Aggregates figures the tables show: all in the CSV, averaged on the average board."""


def _table(columns: tuple[Column, ...], rows: list[Row], base: str) -> list[str]:
    return ["| " + " | ".join(c.header.format(base=base) for c in columns) + " |", "|---" * len(columns) + "|"] + [
        "| " + " | ".join(c.cell(r) for c in columns) + " |" for r in rows]


def render_markdown(board: Board, plots: list[str]) -> str:
    base = board.baseline or "none"
    lines = [f"# {board.title}", "",
             f"Generated by `threadweaver leaderboard` from results/; do not edit. Speedup baseline: `{base}`.",
             "Accuracy is Avg@k (k = samples per problem); latency is critical-path tokens (spec section 6).", ""]
    lines += _table(SUMMARY_COLUMNS, board.rows, base)
    lines += ["", "Speedup CIs are 95% bootstrap intervals over problems (measured results only). "
              "Pareto: no other entry is as accurate at lower or equal critical-path tokens.", "",
              "## Format, truncation and cost (formats.md section 4)", ""]
    lines += _table(FORMAT_COLUMNS, board.rows, base)
    lines += ["", "\"-\" = not reported by the paper (reported rows) or not recorded by the run. Trigger: at least one "
              "fork group executed. Strict: the format's own checker (below); lenient: control tags balanced and "
              "nested (+ format error + no tags = 100). Truncated: ended at a limit, kept apart from wrong answers. "
              "Total tokens include the runtime-inserted ones; re-prefilled: prompt tokens computed again after the "
              "first request (ideal prefix cache). TPS ratio: generated tokens per second over the named sequential "
              "model's (same engine), a throughput ratio, not a latency speedup.", ""]
    checkers = sorted({(r.model, r.format_checker) for r in board.rows if r.format_checker})
    lines += [f"- strict checker of {m}: {c}" for m, c in checkers] + ([""] if checkers else [])
    if any(r.fidelity == "approximate" for r in board.rows):
        lines += ["Fidelity approximate: the model was trained with restarted position ids and ran here with "
                  "ordinary ones (same text and visibility, other positions; formats.md section 1), so the row is "
                  "not a reproduction of its paper's number.", ""]
    lines += [f"- {n}" for n in board.notes] + ([""] if board.notes else [])
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def render_csv(board: Board) -> str:
    fields = list(CSV_FIELDS) + [n for n in SHOWN if n not in CSV_FIELDS]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)
    for r in board.rows:
        values = (getattr(r if f in Row.__dataclass_fields__ else r.aggregates, f) for f in fields)
        writer.writerow(["" if v is None else (f"{v:.4f}" if isinstance(v, float) else v) for v in values])
    return buf.getvalue()


def write_boards(boards: list[Board], out_dir: str | Path) -> list[Path]:
    """Write every board and the README index; remove generated files of boards that no longer exist."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    index = ["# Leaderboards", "", "Generated by `threadweaver leaderboard` from results/; do not edit.", "",
             "| board | entries | speedup baseline | table | csv |", "|---|---|---|---|---|"]
    for board in boards:
        plots = []
        for x_field in PLOT_AXES:
            has = [r for r in board.rows if getattr(r.aggregates, x_field) is not None]
            if x_field == "wall_s":
                has = [r for r in has if r.provenance == "measured"]
            if has:
                written += plot_board(board, x_field, out / f"{board.name}_{x_field}")
                plots += [f"{board.name}_{x_field}.svg"]
        md, cs = out / f"{board.name}.md", out / f"{board.name}.csv"
        md.write_text(render_markdown(board, plots), encoding="utf-8")
        cs.write_text(render_csv(board), encoding="utf-8")
        written += [md, cs]
        index.append(f"| {board.title} | {len(board.rows)} | {board.baseline or '-'} | [{md.name}]({md.name}) "
                     f"| [{cs.name}]({cs.name}) |")
    readme = out / "README.md"
    readme.write_text("\n".join(index) + "\n", encoding="utf-8")
    written.append(readme)
    keep = {p.resolve() for p in written}
    for stale in sorted(out.iterdir()):
        if stale.suffix in GENERATED_SUFFIXES and stale.is_file() and stale.resolve() not in keep:
            stale.unlink()
    return written


def build_leaderboards(results_dir: str | Path = "results", out_dir: str | Path = "leaderboards",
                       baselines: tuple[str, ...] | None = None) -> list[Path]:
    """Boards from the result files; `baselines` (e.g. the CLI's --baseline) replace boards.yaml's."""
    folder = Path(results_dir)
    if not folder.is_dir():
        raise InputError(f"{folder}: results folder does not exist")
    entries = [(p, load_result(p)) for p in sorted(folder.rglob("*.json"))]
    if not entries:
        raise InputError(f"{folder}: no result files (*.json)")
    config = load_boards_config(folder)
    if baselines:
        config.baselines = list(baselines)
    return write_boards(build_boards(entries, config), out_dir)
