"""The toy P-GRPO proof (issue 14 item 4): the held-out figures and the RL curves, checked against the acceptance.

    python benchmarks/toy_rl_proof.py [--results results] [--runs benchmarks/toy_rl_proof] [--plot OUT.png]

Reads the tw_toy result files (`threadweaver results build`, greedy, held-out problems) of toy-hybrid (the
SFT start), toy-threadweaver-rl (P-GRPO, rho 0.5), toy-hybrid-rl-rho0 (the control, rho 0, same seeds; its
file lives next to the curves, not on the leaderboard) and the sequential pair, and the trainers' per-step
logs (RUNS/NAME/rl_log.jsonl). Prints one row per model, the acceptance checks of issue 14 and the first and
last steps of each RL run (temperature-1 rollouts on train problems); `--plot` draws both runs' curves on
one figure. Exit 0 whatever the outcome: this
reports, `threadweaver regress` gates.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.results import load_result

ROOT = Path(__file__).resolve().parents[1]
START, RL, CONTROL = "toy-hybrid", "toy-threadweaver-rl", "toy-hybrid-rl-rho0"
SEQ, SEQ_RL = "toy-sequential", "toy-sequential-rl"
RUNS = {RL: "P-GRPO (rho 0.5)", CONTROL: "control (rho 0)", SEQ_RL: "sequential RL (rho 0)"}
CURVE_KEYS = (
    "reward_mean",
    "accuracy",
    "activation_ratio",
    "critical_path_tokens",
    "advantage_abs_mean",
    "kl",
)


def find(name: str, folders: list[Path]):
    for folder in folders:
        path = folder / f"{name}__toy.json"
        if path.exists():
            return load_result(path)
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(ROOT / "results"))
    ap.add_argument("--runs", default=str(ROOT / "benchmarks" / "toy_rl_proof"))
    ap.add_argument("--plot", help="write the P-GRPO and control curves, overlaid, to this PNG")
    ap.add_argument("--by-block", nargs="*", default=[], metavar="RESULT",
                    help="result files to split by whether the trajectory opened a block: samples, wrong")  # fmt: skip
    args = ap.parse_args(argv)
    folders = [Path(args.results), Path(args.runs)]
    rows = {name: find(name, folders) for name in (START, RL, CONTROL, SEQ, SEQ_RL)}
    print(
        f"{'model':<22} {'accuracy':>9} {'activation':>11} {'critical path':>14} {'total':>8} {'problems':>9}"
    )
    for name, res in rows.items():
        if res is None:
            print(f"{name:<22} (no result file)")
            continue
        a = res.aggregates
        print(f"{name:<22} {a.accuracy:>9.3f} {a.activation_ratio:>11.3f} {a.critical_path_tokens:>14.1f} "
              f"{a.total_tokens:>8.1f} {a.num_problems:>9}")  # fmt: skip
    start, rl, ctrl = rows[START], rows[RL], rows[CONTROL]
    if start and rl:
        s, r = start.aggregates, rl.aggregates
        d_act = r.activation_ratio - s.activation_ratio
        cut = 1 - r.critical_path_tokens / s.critical_path_tokens
        print(f"P-GRPO vs {START}: activation {d_act * 100:+.1f} points (need >= +30), critical path "
              f"{-cut * 100:+.1f}% (need <= -15%), accuracy {(r.accuracy - s.accuracy) * 100:+.1f} points "
              f"(gate: threadweaver regress)")  # fmt: skip
        if ctrl:
            d_ctrl = ctrl.aggregates.activation_ratio - s.activation_ratio
            ok = abs(d_ctrl) < 0.5 * abs(d_act)
            print(f"control vs {START}: activation {d_ctrl * 100:+.1f} points (need |.| < half of P-GRPO's: "
                  f"{'yes' if ok else 'no'}), critical path "
                  f"{(ctrl.aggregates.critical_path_tokens / s.critical_path_tokens - 1) * 100:+.1f}%")  # fmt: skip
    if rl and rows[SEQ_RL]:
        print(f"critical-path speedup of {RL} over {SEQ_RL}: "
              f"{rows[SEQ_RL].aggregates.critical_path_tokens / rl.aggregates.critical_path_tokens:.2f}x")  # fmt: skip
    for name, title in RUNS.items():
        log = Path(args.runs) / name / "rl_log.jsonl"
        if not log.exists():
            continue
        lines = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
        print(f"{title}: {len(lines)} steps x {lines[0]['trajectories']} rollouts (T = 1, train problems)")
        for line in (lines[0], lines[-1]):
            vals = "  ".join(f"{k} {line[k]:.3f}" if isinstance(line.get(k), float) else f"{k} {line.get(k)}"
                             for k in CURVE_KEYS)  # fmt: skip
            print(f"  step {line['step']:>3}: {vals}")
    for path in args.by_block:
        res = load_result(path)
        for kind in (True, False):
            picked = [x for x in res.samples if x.is_parallel is kind]
            wrong = sum(x.status != "correct" for x in picked)
            print(f"{res.model.name} (T = {res.sampling.temperature}): {'block' if kind else 'no block'}: "
                  f"{len(picked)} trajectories, {wrong} wrong")  # fmt: skip
    if args.plot:
        plot(Path(args.runs), Path(args.plot))
        print(f"wrote {args.plot}")
    return 0


def plot(runs: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = (("activation_ratio", "activation ratio (T = 1)"), ("accuracy", "accuracy (T = 1)"),
            ("critical_path_tokens", "critical-path tokens"), ("reward_mean", "reward"))  # fmt: skip
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2), constrained_layout=True)
    for name in (RL, CONTROL):
        log = runs / name / "rl_log.jsonl"
        if not log.exists():
            continue
        lines = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
        for ax, (key, title) in zip(axes, keys, strict=True):
            ax.plot([x["step"] for x in lines], [x[key] for x in lines], marker=".", label=RUNS[name])
            ax.set_title(title)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"toy P-GRPO from {START}: rollouts of the train problems at each step")
    fig.savefig(out, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
