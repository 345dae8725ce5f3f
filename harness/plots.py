"""Leaderboard plots a reader can trust: accuracy against a cost, with what the eye needs to judge them.

    plot_board(board, "critical_path_tokens", Path("leaderboards/aime24_critical_path_tokens"))

- 95% bootstrap intervals over problems as error bars on measured points (accuracy and the cost);
  reported points have none (papers give none).
- Labels placed where they overlap neither each other nor the points, inside the axes.
- An honest y range: never above 100% or below 0%, and at least `MIN_SPAN_POINTS` tall, so a 0.3-point
  difference does not fill the plot.
- The Pareto frontier drawn as steps through the optimal points; listed in the legend only when drawn (two
  or more points).
- The entries left out (no value for the cost) listed under the plot.
- Deterministic output (Agg, a fixed SVG hash salt, no dates), 150 dpi PNGs.
"""

from __future__ import annotations

from pathlib import Path

MIN_SPAN_POINTS = 10.0  # the smallest y range, in accuracy points
DPI = 150
PLOT_AXES = {  # x field -> axis label; file suffix is the field name
    "critical_path_tokens": "critical-path tokens (token latency, mean per trajectory)",
    "total_tokens": "total tokens (mean per trajectory)",
    "wall_s": "wall-clock seconds (mean per trajectory)",
}
_OFFSETS = [(6, 6), (6, -12), (-6, 6), (-6, -12), (6, 16), (-6, 16), (6, -22), (-6, -22), (10, 26), (-10, 26)]


def y_limits(values: list[tuple[float, float, float]]) -> tuple[float, float]:
    """(low, high) in percent for points (accuracy, error below, error above): the data with a margin, at
    least MIN_SPAN_POINTS tall, within [0, 100]."""
    if not values:
        return 0.0, 100.0
    lo = min(a - e for a, e, _ in values)
    hi = max(a + e for a, _, e in values)
    margin = max(1.0, 0.1 * (hi - lo))
    lo, hi = lo - margin, hi + margin
    if hi - lo < MIN_SPAN_POINTS:
        mid = (hi + lo) / 2
        lo, hi = mid - MIN_SPAN_POINTS / 2, mid + MIN_SPAN_POINTS / 2
    if hi > 100.0:
        lo, hi = max(0.0, lo - (hi - 100.0)), 100.0
    if lo < 0.0:
        lo, hi = 0.0, min(100.0, hi - lo)
    return lo, hi


def plot_note(board, x_field: str) -> str:
    """The line under a plot: what the error bars are, and the entries left out (no value for the cost)."""
    note = "Error bars: 95% bootstrap intervals over problems (measured results)."
    left_out = [r.model for r in board.rows if getattr(r.aggregates, x_field) is None]
    if left_out:
        note += f" Not shown (no {x_field.replace('_', ' ')}): {', '.join(left_out)}."
    return note


def _place_labels(fig, ax, points: list[tuple[float, float, str]]) -> None:
    """Annotate each point with the first offset whose text box overlaps no label or point placed so far."""
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    taken = [ax.transData.transform((x, y)) for x, y, _ in points]
    boxes = []
    for x, y, name in points:
        best = None
        for dx, dy in _OFFSETS:
            text = ax.annotate(name, (x, y), textcoords="offset points", xytext=(dx, dy),
                               ha="left" if dx > 0 else "right", fontsize=7, zorder=5)  # fmt: skip
            box = text.get_window_extent(renderer).expanded(1.05, 1.1)
            inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
            clear = not any(box.overlaps(b) for b in boxes) and not any(
                box.contains(px, py) for px, py in taken)  # fmt: skip
            if inside and clear:
                best = (text, box)
                break
            text.remove()
        if best is None:  # nowhere free: the first offset, on top
            text = ax.annotate(name, (x, y), textcoords="offset points", xytext=_OFFSETS[0], fontsize=7, zorder=5)
            best = (text, text.get_window_extent(renderer))
        boxes.append(best[1])


def plot_board(board, x_field: str, out_base: Path) -> list[Path]:
    """Accuracy vs `x_field` for the rows of `board` (harness.leaderboard.Board); measured = filled circles
    with 95% intervals, reported = hollow squares; PNG and SVG next to `out_base`."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from harness.metrics import pareto_flags

    def cost_of(r) -> float | None:
        return getattr(r.aggregates, x_field)

    def acc_pct(r) -> float:
        return 100 * r.aggregates.accuracy

    rows = [r for r in board.rows if cost_of(r) is not None]
    flags = pareto_flags([(r.aggregates.accuracy, cost_of(r)) for r in rows])
    points = []
    with matplotlib.rc_context({"svg.hashsalt": "threadweaver", "svg.fonttype": "path", "font.family": "DejaVu Sans",
                                "path.simplify": False, "figure.dpi": DPI}):  # fmt: skip
        fig, ax = plt.subplots(figsize=(7.5, 5.2))
        for prov, marker, face in (("measured", "o", "tab:blue"), ("reported", "s", "none")):
            pts = [r for r in rows if r.provenance == prov]
            if not pts:
                continue
            xs, ys = [cost_of(r) for r in pts], [acc_pct(r) for r in pts]
            ax.scatter(xs, ys, marker=marker, s=48, facecolors=face, edgecolors="tab:blue", label=prov, zorder=3,
                       clip_on=False)  # fmt: skip
            for r, x, y in zip(pts, xs, ys, strict=True):
                acc, cost = r.ci.get("accuracy"), r.ci.get(x_field)
                yerr = [[y - 100 * acc[0]], [100 * acc[1] - y]] if acc else None
                xerr = [[x - cost[0]], [cost[1] - x]] if cost else None
                if yerr or xerr:
                    ax.errorbar([x], [y], yerr=yerr, xerr=xerr, fmt="none", ecolor="tab:blue", alpha=0.5,
                                capsize=2, zorder=2)  # fmt: skip
                err = r.ci.get("accuracy")
                points.append((y, y - 100 * err[0] if err else 0.0, 100 * err[1] - y if err else 0.0))
        front = sorted((cost_of(r), acc_pct(r)) for r, f in zip(rows, flags, strict=True) if f)
        if len(front) > 1:
            ax.plot([p[0] for p in front], [p[1] for p in front], "--", color="tab:red", drawstyle="steps-post",
                    label="Pareto frontier", zorder=2)  # fmt: skip
        if front:
            ax.scatter([p[0] for p in front], [p[1] for p in front], marker="o", s=260, facecolors="none",
                       edgecolors="tab:red", linewidths=1.5, zorder=4, label="Pareto-optimal", clip_on=False)  # fmt: skip
        ax.set_ylim(*y_limits(points))
        ax.margins(x=0.25)
        ax.set_xlabel(PLOT_AXES[x_field])
        ax.set_ylabel("accuracy (%, Avg@k)")
        ax.set_title(f"{board.title}: accuracy vs {x_field.replace('_', ' ')}", pad=14)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        fig.text(0.01, 0.01, plot_note(board, x_field), fontsize=7, ha="left", va="bottom", wrap=True)
        fig.tight_layout(rect=(0, 0.05, 1, 1))
        _place_labels(fig, ax, [(cost_of(r), acc_pct(r), r.model) for r in rows])
        png, svg = out_base.with_suffix(".png"), out_base.with_suffix(".svg")
        fig.savefig(png, format="png", metadata={"Software": None})
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
        plt.close(fig)
    return [png, svg]
