"""`threadweaver regress`: paired bootstrap check of a candidate result against a baseline (exit 1 on regression)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import CheckFailed

EXAMPLE = """examples:
  threadweaver regress --baseline results/toy-threadweaver__toy.json --candidate new__toy.json --report regress.md
  threadweaver regress --baseline results/toy-sequential__toy.json --candidate results/toy-threadweaver__toy.json \\
      --allow-setting-diff parallel          # a parallel model gated against its sequential baseline
policy file (YAML, all keys optional):
  max_accuracy_drop_points: 1.0
  max_latency_increase_pct: 5.0
  confidence: 0.95
  check_latency: true
exit codes: 0 pass, 1 regression, 2 bad input (different benchmark, problems or settings)
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("regress", help="Is a candidate checkpoint worse than a baseline? (exit 1 if so)",
                              description=__doc__, epilog=EXAMPLE,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", required=True, metavar="A.json", help="measured result of the baseline")
    p.add_argument("--candidate", required=True, metavar="B.json", help="measured result of the candidate")
    p.add_argument("--policy", metavar="FILE.yaml", help="allowed changes (default: 1 point, 5%%, 95%%)")
    p.add_argument("--report", metavar="OUT.md", help="also write the Markdown report here")
    p.add_argument("--allow-setting-diff", action="append", default=[], metavar="SETTING",
                   help="a run setting that may differ (parallel, format, join, budget_tokens, ...); repeatable; "
                   "the report lists the differences")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.set_defaults(func=run)


def run(args) -> int:
    from harness.regress import RegressPolicy, load_policy, regress, render_report
    from harness.results import load_result

    policy = load_policy(args.policy) if args.policy else RegressPolicy()
    report = regress(load_result(args.baseline), load_result(args.candidate), policy,
                     n_boot=args.n_boot, seed=args.seed, allow=tuple(args.allow_setting_diff))
    text = render_report(report)
    if args.report:
        Path(args.report).write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    if not report.passed:
        raise CheckFailed("; ".join(report.failures))
    return 0
