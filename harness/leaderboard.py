"""Leaderboards from result files alone: Markdown + CSV tables and Pareto plots per benchmark.

    threadweaver leaderboard --results results/ --out leaderboards/

One board per benchmark, plus `average` over the six math benchmarks (models with all six only). Output is
deterministic (sorted inputs, fixed bootstrap seed, Agg backend, fixed SVG hash salt, no dates in metadata),
so the committed leaderboards/ can be checked against a fresh build.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness import metrics
from harness.config import build_dataclass, load_yaml_mapping
from harness.errors import InputError
from harness.metrics import pareto_flags
from harness.plots import PLOT_AXES, plot_board
from harness.results import Result, load_result

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
    """One entry of a board; fractions (accuracy, activation), percent only when rendered."""

    model: str
    provenance: str
    accuracy: float
    critical_path_tokens: float | None = None
    total_tokens: float | None = None
    self_parallelism: float | None = None
    activation_ratio: float | None = None
    speedup: float | None = None
    speedup_ci_low: float | None = None
    speedup_ci_high: float | None = None
    wall_s: float | None = None
    num_samples_per_problem: int | None = None
    pareto: bool = False
    fidelity: str | None = None
    """"approximate" when the run used ordinary positions on a model trained with restarted ones
    (formats.md section 1); shown next to the provenance."""
    accuracy_untruncated: float | None = None
    truncation_rate: float | None = None
    trigger_rate: float | None = None
    format_valid_strict: float | None = None
    format_valid_lenient: float | None = None
    format_error: float | None = None
    no_tags: float | None = None
    inserted_tokens: float | None = None
    reprefill_tokens: float | None = None
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


EXTRA_FIELDS = ("accuracy_untruncated", "truncation_rate", "trigger_rate", "format_valid_strict",
                "format_valid_lenient", "format_error", "no_tags", "inserted_tokens", "reprefill_tokens")
"""Row figures copied from the result's aggregates (formats.md section 4); averaged on the average board."""


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
            a = r.aggregates
            tps, tps_base = _tps_row(r, peers, baseline)
            rows.append(Row(r.model.name, r.provenance, a.accuracy, a.critical_path_tokens, a.total_tokens,
                            a.self_parallelism, a.activation_ratio, sp, lo, hi, a.wall_s,
                            r.num_samples_per_problem, fidelity=r.fidelity, ci=_intervals(r),
                            tps_ratio=tps, tps_baseline=tps_base, format_checker=r.format_checker,
                            **{name: getattr(a, name) for name in EXTRA_FIELDS}))  # fmt: skip
        boards.append(Board(bench, config.titles.get(bench, bench), baseline, _finish(rows), notes))
    average = _average_board([b for b in boards if b.name in config.average], config)
    return boards + ([average] if average else [])


def _average_board(boards: list[Board], config: BoardsConfig) -> Board | None:
    """Mean of the per-benchmark values (the paper's Average row) over models present on all of them."""
    wanted = len(config.average)
    if not wanted or len(boards) < wanted:
        return None
    cells: dict[tuple[str, str], list[Row]] = {}
    for b in boards:
        for row in b.rows:
            cells.setdefault((row.model, row.provenance), []).append(row)

    def mean(rows: list[Row], name: str) -> float | None:
        values = [getattr(r, name) for r in rows]
        return float(np.mean(values)) if all(v is not None for v in values) else None

    rows = [Row(model, prov, mean(rs, "accuracy"), mean(rs, "critical_path_tokens"), mean(rs, "total_tokens"),
                mean(rs, "self_parallelism"), mean(rs, "activation_ratio"), mean(rs, "speedup"),
                fidelity=_fidelity(rs), **{name: mean(rs, name) for name in EXTRA_FIELDS})
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
    for row, flag in zip(rows, pareto_flags([(r.accuracy, r.critical_path_tokens) for r in rows]), strict=True):
        row.pareto = flag
    return sorted(rows, key=lambda r: (-r.accuracy, r.model, r.provenance))


# ----- rendering -----

def fmt_tokens(x: float | None) -> str:
    """15133.3 -> '15.1k'; 632.4 -> '632'; None -> '-'."""
    if x is None:
        return "-"
    return f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}"


def _fmt(x: float | None, pattern: str) -> str:
    return "-" if x is None else pattern.format(x)


def _pct(x: float | None) -> str:
    return _fmt(None if x is None else 100 * x, "{:.1f}")


def render_markdown(board: Board, plots: list[str]) -> str:
    base = board.baseline or "none"
    lines = [f"# {board.title}", "",
             f"Generated by `threadweaver leaderboard` from results/; do not edit. Speedup baseline: `{base}`.",
             "Accuracy is Avg@k (k = samples per problem); latency is critical-path tokens (spec section 6).", "",
             f"| model | provenance | k | accuracy (%) | critical-path tokens | total tokens | self-parallelism "
             f"| activation (%) | speedup vs {base} | wall-clock (s) | Pareto |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in board.rows:
        speed = _fmt(r.speedup, "{:.2f}x")
        if r.speedup_ci_low is not None:
            speed += f" [{r.speedup_ci_low:.2f}, {r.speedup_ci_high:.2f}]"
        lines.append(
            f"| {r.model} | {_provenance(r)} | {_fmt(r.num_samples_per_problem, '{}')} | {100 * r.accuracy:.1f} "
            f"| {fmt_tokens(r.critical_path_tokens)} | {fmt_tokens(r.total_tokens)} "
            f"| {_fmt(r.self_parallelism, '{:.2f}x')} | {_pct(r.activation_ratio)} | {speed} | {_fmt(r.wall_s, '{:.2f}')} "
            f"| {'yes' if r.pareto else ''} |")
    lines += ["", "Speedup CIs are 95% bootstrap intervals over problems (measured results only). "
              "Pareto: no other entry is as accurate at lower or equal critical-path tokens.", "",
              "## Format, truncation and cost (formats.md section 4)", "",
              "| model | provenance | trigger (%) | strict valid (%) | lenient valid (%) | format error (%) "
              "| no tags (%) | truncated (%) | accuracy untruncated (%) | total tokens | inserted tokens "
              "| re-prefilled tokens | total + re-prefilled | TPS ratio |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in board.rows:
        tps = "-" if r.tps_ratio is None else f"{r.tps_ratio:.2f}x vs {r.tps_baseline}"
        lines.append(
            f"| {r.model} | {_provenance(r)} | {_pct(r.trigger_rate)} | {_pct(r.format_valid_strict)} "
            f"| {_pct(r.format_valid_lenient)} | {_pct(r.format_error)} | {_pct(r.no_tags)} "
            f"| {_pct(r.truncation_rate)} | {_pct(r.accuracy_untruncated)} | {fmt_tokens(r.total_tokens)} "
            f"| {fmt_tokens(r.inserted_tokens)} | {fmt_tokens(r.reprefill_tokens)} "
            f"| {fmt_tokens(metrics.tokens_with_reprefill(r.total_tokens, r.reprefill_tokens))} | {tps} |")
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


def _provenance(r: Row) -> str:
    return r.provenance + (", fidelity approximate" if r.fidelity == "approximate" else "")


def render_csv(board: Board) -> str:
    buf = io.StringIO()
    fields = [f for f in Row.__dataclass_fields__ if f != "ci"]
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)
    for r in board.rows:
        writer.writerow(["" if v is None else (f"{v:.4f}" if isinstance(v, float) else v)
                         for v in (getattr(r, f) for f in fields)])
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
            has = [r for r in board.rows if getattr(r, x_field) is not None]
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
