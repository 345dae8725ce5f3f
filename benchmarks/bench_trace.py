"""Time `threadweaver trace --json` on 10,000 trajectories of about 2,000 tokens each (issue 2).

    .venv/bin/python benchmarks/bench_trace.py            # fallback counter, then the char tokenizer
    .venv/bin/python benchmarks/bench_trace.py --n 1000   # a quicker run

Writes the JSONL files to a temporary folder, runs the CLI as a subprocess with stdout to /dev/null, and
prints the wall-clock seconds per run. Target: under 30 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = "we add the two sums then check each part so the total is 84 and 45 gives 129".split()


def sentence(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words)) + ".\n"


def trajectory(rng: random.Random, unit: int) -> str:
    """One trajectory with 3 blocks of 2-4 uneven threads; `unit` scales the length of every piece."""
    parts = ["<think>\n", sentence(rng, 4 * unit)]
    for _ in range(3):
        n = rng.randint(2, 4)
        parts.append("<Parallel>\n<Outlines>\n")
        parts += [f"<Outline>{i}: {sentence(rng, unit).strip()}</Outline>\n" for i in range(1, n + 1)]
        parts.append("</Outlines>\n")
        parts += [
            f"<Thread>\n{i}: {sentence(rng, rng.randint(2, 6) * unit)}</Thread>" for i in range(1, n + 1)
        ]
        parts.append("\n</Parallel>\n" + sentence(rng, 2 * unit))
    parts.append("</think>\nThe answer is \\boxed{129}.\n")
    return "".join(parts)


def write_jsonl(path: Path, n: int, target_tokens: int, count) -> float:
    """Write `n` trajectories scaled to about `target_tokens` under `count`; return the mean count of a sample."""

    def mean_tokens(unit: int) -> float:
        probe = random.Random(1)
        return statistics.mean(count(trajectory(probe, unit)) for _ in range(20))

    unit = 1
    while mean_tokens(unit + 1) <= target_tokens:
        unit += 1
    if abs(mean_tokens(unit + 1) - target_tokens) < abs(mean_tokens(unit) - target_tokens):
        unit += 1
    rng = random.Random(0)
    with path.open("w") as f:
        for _ in range(n):
            f.write(json.dumps({"text": trajectory(rng, unit)}) + "\n")
    sample = [json.loads(line)["text"] for line in path.open().readlines()[:200]]
    return statistics.mean(count(t) for t in sample)


def time_trace(path: Path, tokenizer_dir: Path | None) -> float:
    cmd = [sys.executable, "-m", "threadweaver.cli", "trace", "--json", str(path)]
    if tokenizer_dir is not None:
        cmd += ["--tokenizer", str(tokenizer_dir)]
    start = time.perf_counter()
    with open("/dev/null", "w") as devnull:
        subprocess.run(cmd, stdout=devnull, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="number of trajectories")
    parser.add_argument("--tokens", type=int, default=2_000, help="approximate tokens per trajectory")
    args = parser.parse_args()

    from harness.counting import measure_text

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / "fallback.jsonl"
        mean = write_jsonl(path, args.n, args.tokens, lambda t: measure_text(t).total_tokens)
        print(
            f"fallback counter: {args.n} trajectories, mean {mean:.0f} tokens, {path.stat().st_size / 1e6:.1f} MB"
        )
        print(f"  trace --json: {time_trace(path, None):.2f} s")
        try:
            from harness.tokenizer import build_char_tokenizer

            tok = build_char_tokenizer(tmp / "char-tokenizer")
        except ImportError as exc:
            print(f"char tokenizer: skipped ({exc})")
            return
        path = tmp / "char.jsonl"
        mean = write_jsonl(path, args.n, args.tokens, lambda t: measure_text(t, tok).total_tokens)
        print(
            f"char tokenizer: {args.n} trajectories, mean {mean:.0f} tokens, {path.stat().st_size / 1e6:.1f} MB"
        )
        print(f"  trace --json --tokenizer: {time_trace(path, tmp / 'char-tokenizer'):.2f} s")


if __name__ == "__main__":
    main()
