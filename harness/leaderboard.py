"""Leaderboards from result files alone: Markdown + CSV tables and Pareto plots per benchmark.

    threadweaver leaderboard --results results/ --out leaderboards/

One board per benchmark, plus `average` over the six math benchmarks (models with all six only). Output is
deterministic (sorted inputs, fixed bootstrap seed, Agg backend, fixed SVG hash salt, no dates in metadata),
so the committed leaderboards/ can be checked against a fresh build.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import InputError
from harness.results import MATH_BENCHMARKS, Result, load_result

# Per board, the first of these present is the speedup baseline (the paper's sequential-RL model; toy-sequential).
DEFAULT_BASELINES = ("qwen3-8b-seq-rl", "toy-sequential")
BOOTSTRAP_SEED = 0
N_BOOT = 2000
PLOT_AXES = {  # x field -> axis label; file suffix is the field name
    "critical_path_tokens": "critical-path tokens (token latency, mean per trajectory)",
    "total_tokens": "total tokens (mean per trajectory)",
    "wall_s": "wall-clock seconds (mean per trajectory)",
}
GENERATED_SUFFIXES = (".md", ".csv", ".png", ".svg")


@dataclass
class Speedup:
    """Paper speedup vs a sequential baseline (spec section 6), with a bootstrap CI over problems."""

    mean: float
    correct_only: float | None = None
    max: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    num_problems: int = 0


def paper_speedup(baseline: Result, model: Result, *, n_boot: int = N_BOOT, seed: int = BOOTSTRAP_SEED) -> Speedup | None:
    """Per problem, mean baseline latency / mean model latency; mean over the problems both have.

    Correct-only uses only correct samples and skips problems where either side has none; max is the largest
    correct-only per-problem speedup. None when the two share no problem.
    """
    b_all, m_all = baseline.problem_means("critical_path_tokens"), model.problem_means("critical_path_tokens")
    common = sorted(pid for pid in set(b_all) & set(m_all) if m_all[pid] > 0)
    if not common:
        return None
    ratios = np.array([b_all[p] / m_all[p] for p in common])
    rng = np.random.default_rng(seed)
    boot = ratios[rng.integers(0, len(ratios), size=(n_boot, len(ratios)))].mean(axis=1)
    b_ok, m_ok = _correct_means(baseline), _correct_means(model)
    ok = [b_ok[p] / m_ok[p] for p in common if p in b_ok and p in m_ok and m_ok[p] > 0]
    return Speedup(
        mean=float(ratios.mean()),
        correct_only=float(np.mean(ok)) if ok else None,
        max=float(np.max(ok)) if ok else None,
        ci_low=float(np.percentile(boot, 2.5)),
        ci_high=float(np.percentile(boot, 97.5)),
        num_problems=len(common),
    )


def _correct_means(result: Result) -> dict[str, float]:
    sums: dict[str, list[int]] = {}
    for s in result.samples:
        if s.status == "correct":
            sums.setdefault(s.problem_id, []).append(s.critical_path_tokens)
    return {pid: sum(v) / len(v) for pid, v in sums.items()}


@dataclass
class Row:
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


@dataclass
class Board:
    name: str
    """Benchmark key, or "average"."""
    title: str
    baseline: str | None
    rows: list[Row]


def _speedup_row(result: Result, peers: dict[tuple[str, str], Result], baseline: str | None) -> tuple:
    """(speedup, ci_low, ci_high) of `result` vs the baseline model on the same board, or Nones."""
    if baseline is None:
        return None, None, None
    base = peers.get((baseline, result.provenance)) or next(
        (r for (name, _), r in sorted(peers.items()) if name == baseline), None)
    if base is None:
        return None, None, None
    if result.model.name == baseline:
        return 1.0, None, None
    if result.samples and base.samples:
        s = paper_speedup(base, result)
        return (s.mean, s.ci_low, s.ci_high) if s else (None, None, None)
    agg = result.aggregates
    if agg.speedup is not None and agg.speedup_baseline == baseline:
        return agg.speedup, None, None
    return None, None, None


def pareto_flags(points: list[tuple[float, float | None]]) -> list[bool]:
    """(accuracy, cost) pairs: True where no other point is at least as accurate and cheaper (one strictly)."""
    flags = []
    for i, (acc, cost) in enumerate(points):
        if cost is None:
            flags.append(False)
            continue
        dominated = any(
            j != i and c is not None and a >= acc and c <= cost and (a > acc or c < cost)
            for j, (a, c) in enumerate(points)
        )
        flags.append(not dominated)
    return flags


def _board_name(benchmark: str) -> str:
    return {**MATH_BENCHMARKS, "toy": "Toy task (tw_toy)"}.get(benchmark, benchmark)


def build_boards(entries: list[tuple[Path, Result]], baselines: tuple[str, ...] = DEFAULT_BASELINES) -> list[Board]:
    """One board per benchmark (sorted) and, when any model has all six math benchmarks, `average`."""
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
        rows = []
        for key in sorted(peers):
            r = peers[key]
            sp, lo, hi = _speedup_row(r, peers, baseline)
            a = r.aggregates
            rows.append(Row(r.model.name, r.provenance, a.accuracy, a.critical_path_tokens, a.total_tokens,
                            a.self_parallelism, a.activation_ratio, sp, lo, hi, a.wall_s,
                            r.num_samples_per_problem))
        boards.append(Board(bench, _board_name(bench), baseline, _finish(rows)))
    average = _average_board([b for b in boards if b.name in MATH_BENCHMARKS], baselines)
    return boards + ([average] if average else [])


def _average_board(boards: list[Board], baselines: tuple[str, ...]) -> Board | None:
    """Mean of the per-benchmark values (the paper's Average row) over models present on all six."""
    if len(boards) < len(MATH_BENCHMARKS):
        return None
    cells: dict[tuple[str, str], list[Row]] = {}
    for b in boards:
        for row in b.rows:
            cells.setdefault((row.model, row.provenance), []).append(row)

    def mean(rows: list[Row], name: str) -> float | None:
        values = [getattr(r, name) for r in rows]
        return float(np.mean(values)) if all(v is not None for v in values) else None

    rows = [Row(model, prov, mean(rs, "accuracy"), mean(rs, "critical_path_tokens"), mean(rs, "total_tokens"),
                mean(rs, "self_parallelism"), mean(rs, "activation_ratio"), mean(rs, "speedup"))
            for (model, prov), rs in sorted(cells.items()) if len(rs) == len(MATH_BENCHMARKS)]
    if not rows:
        return None
    names = {r.model for r in rows}
    baseline = next((b for b in baselines if b in names), None)
    return Board("average", f"Average over {len(MATH_BENCHMARKS)} math benchmarks", baseline, _finish(rows))


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
            f"| {r.model} | {r.provenance} | {_fmt(r.num_samples_per_problem, '{}')} | {r.accuracy:.1f} "
            f"| {fmt_tokens(r.critical_path_tokens)} | {fmt_tokens(r.total_tokens)} "
            f"| {_fmt(r.self_parallelism, '{:.2f}x')} | {_fmt(r.activation_ratio, '{:.1f}')} | {speed} | {_fmt(r.wall_s, '{:.2f}')} "
            f"| {'yes' if r.pareto else ''} |")
    lines += ["", "Speedup CIs are 95% bootstrap intervals over problems (measured results only). "
              "Pareto: no other entry is as accurate at lower or equal critical-path tokens.", ""]
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def render_csv(board: Board) -> str:
    buf = io.StringIO()
    fields = list(Row.__dataclass_fields__)
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)
    for r in board.rows:
        writer.writerow(["" if v is None else (f"{v:.4f}" if isinstance(v, float) else v)
                         for v in (getattr(r, f) for f in fields)])
    return buf.getvalue()


def plot_board(board: Board, x_field: str, out_base: Path) -> list[Path]:
    """Accuracy vs `x_field`; measured = filled circles, reported = hollow squares; frontier dashed."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rows = [r for r in board.rows if getattr(r, x_field) is not None]
    flags = pareto_flags([(r.accuracy, getattr(r, x_field)) for r in rows])
    with matplotlib.rc_context({"svg.hashsalt": "threadweaver", "svg.fonttype": "path", "font.family": "DejaVu Sans",
                                "path.simplify": False, "figure.dpi": 100}):
        fig, ax = plt.subplots(figsize=(7.0, 4.8))
        for prov, marker, face in (("measured", "o", None), ("reported", "s", "none")):
            pts = [r for r in rows if r.provenance == prov]
            if pts:
                ax.scatter([getattr(r, x_field) for r in pts], [r.accuracy for r in pts], marker=marker, s=48,
                           facecolors=face if face else "tab:blue", edgecolors="tab:blue", label=prov, zorder=3)
        front = sorted((getattr(r, x_field), r.accuracy) for r, f in zip(rows, flags, strict=True) if f)
        if front:
            ax.plot([p[0] for p in front], [p[1] for p in front], "--", color="tab:red", drawstyle="steps-post",
                    label="Pareto frontier", zorder=2)
            ax.scatter([p[0] for p in front], [p[1] for p in front], marker="o", s=260, facecolors="none",
                       edgecolors="tab:red", linewidths=1.5, zorder=4, label="Pareto-optimal")
        xs = [getattr(r, x_field) for r in rows]
        mid = (min(xs) + max(xs)) / 2 if xs else 0.0
        for r, x in zip(rows, xs, strict=True):  # labels point inwards so they stay inside the axes
            right = x > mid
            ax.annotate(r.model, (x, r.accuracy), textcoords="offset points", xytext=(-6 if right else 6, 6),
                        ha="right" if right else "left", fontsize=7)
        ax.margins(x=0.2, y=0.15)
        ax.set_xlabel(PLOT_AXES[x_field])
        ax.set_ylabel("accuracy (%, Avg@k)")
        ax.set_title(f"{board.title}: accuracy vs {x_field.replace('_', ' ')}")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        png, svg = out_base.with_suffix(".png"), out_base.with_suffix(".svg")
        fig.savefig(png, format="png", metadata={"Software": None})
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
        plt.close(fig)
    return [png, svg]


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
                       baselines: tuple[str, ...] = DEFAULT_BASELINES) -> list[Path]:
    folder = Path(results_dir)
    if not folder.is_dir():
        raise InputError(f"{folder}: results folder does not exist")
    entries = [(p, load_result(p)) for p in sorted(folder.rglob("*.json"))]
    if not entries:
        raise InputError(f"{folder}: no result files (*.json)")
    return write_boards(build_boards(entries, baselines), out_dir)
