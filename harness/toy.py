"""The synthetic parallelisable toy task: independent mod-10 chains, summed at the end (issue 5).

A problem holds 3-4 chains of single-digit operations applied left to right modulo 10; the answer is the
sum of the chain results modulo 10. Each chain is an independent sub-result, so the solution is one
fork-join block with one thread per chain, then a short sequential combination. Every problem has two
renderings of exactly the same steps: the ThreadWeaver format (spec section 1) and plain sequential text.

    from harness.toy import make_split, render_parallel
    p = make_split("test", 1)[0]
    p.question      # "Work mod 10, left to right. a: 3+4*3+5; b: ...; c: .... Find (a+b+c) mod 10."
    render_parallel(p)  # "<think>\\n<Parallel>\\n<Outlines>\\n<Outline>1: a</Outline>..."

The parallel rendering is byte-for-byte what the trie rollout builds with join "model" (harness.jointext):
threads joined as "\\n<Thread>\\n1:...</Thread><Thread>\\n2:...</Thread>", then "\\n", then the model
writes "</Parallel>". Splits are deterministic (seeded) and no test question occurs in train.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

from harness.jointext import join_block
from harness.trajectory import (
    OUTLINE_CLOSE,
    OUTLINE_OPEN,
    OUTLINES_CLOSE,
    OUTLINES_OPEN,
    PARALLEL_CLOSE,
    PARALLEL_OPEN,
)

SPLIT_SEEDS = {"train": 1234, "test": 5678}
SPLIT_SIZES = {"train": 20000, "test": 500}
CHAIN_NAMES = "abcd"
NUM_CHAINS = (3, 4, 4)  # threads per block, drawn uniformly from this tuple (4 twice as often)
OPS_PER_CHAIN = (7, 7)  # inclusive range of operations per chain; fixed length puts every operand at a
# fixed offset, which a tiny model learns in minutes (variable lengths did not train in 15 CPU-minutes)
BENCHMARK = "toy"  # the grading.py benchmark key (graded like math)


@dataclass(frozen=True)
class ToyProblem:
    """One problem: `chains[k] = (start, ((op, digit), ...))`; `answer` the gold digit as a string."""

    problem_id: str
    chains: tuple[tuple[int, tuple[tuple[str, int], ...]], ...]

    @property
    def question(self) -> str:
        parts = [
            f"{CHAIN_NAMES[k]}: {start}" + "".join(f"{op}{d}" for op, d in ops)
            for k, (start, ops) in enumerate(self.chains)
        ]
        names = "+".join(CHAIN_NAMES[: len(self.chains)])
        return f"Work mod 10, left to right. {'; '.join(parts)}. Find ({names}) mod 10."

    def chain_steps(self, k: int) -> tuple[list[str], int]:
        """The steps of chain k ("+4=7": the previous value, op, digit) and its result."""
        value, ops = self.chains[k]
        steps = []
        for op, d in ops:
            new = (value + d) % 10 if op == "+" else (value * d) % 10
            steps.append(f"{op}{d}={new}")
            value = new
        return steps, value

    @property
    def results(self) -> list[int]:
        return [self.chain_steps(k)[1] for k in range(len(self.chains))]

    @property
    def answer(self) -> str:
        return str(sum(self.results) % 10)


def to_doc(p: ToyProblem) -> dict:
    """The task document (same fields as harness.datasets' math docs): problem_id, problem, answer, benchmark."""
    return {"problem_id": p.problem_id, "problem": p.question, "answer": p.answer, "benchmark": BENCHMARK}


def _random_problem(rng: random.Random, problem_id: str) -> ToyProblem:
    chains = []
    for _ in range(rng.choice(NUM_CHAINS)):
        ops = []
        for _ in range(rng.randint(*OPS_PER_CHAIN)):
            op = rng.choice("+*")
            ops.append((op, rng.randint(1, 9) if op == "+" else rng.randint(2, 9)))
        chains.append((rng.randint(1, 9), tuple(ops)))
    return ToyProblem(problem_id, tuple(chains))


@lru_cache(maxsize=4)
def _split(split: str) -> tuple[ToyProblem, ...]:
    rng = random.Random(SPLIT_SEEDS[split])
    banned = {p.question for p in _split("test")} if split == "train" else set()
    out: list[ToyProblem] = []
    seen: set[str] = set()
    while len(out) < SPLIT_SIZES[split]:
        p = _random_problem(rng, f"toy-{split}-{len(out)}")
        if p.question in banned or p.question in seen:
            continue  # test questions never occur in train; no duplicates within a split
        seen.add(p.question)
        out.append(p)
    return tuple(out)


def make_split(split: str, limit: int | None = None) -> list[ToyProblem]:
    """The first `limit` problems (all when None) of "train" or "test"; deterministic on every platform."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"split must be one of {sorted(SPLIT_SEEDS)}, got {split!r}")
    problems = _split(split)
    return list(problems if limit is None else problems[:limit])


def _intro(p: ToyProblem) -> str:
    return f"{len(p.chains)} chains.\n"


def _combination(p: ToyProblem) -> str:
    """Sequential tail: the running sum mod 10, then the boxed answer after </think>."""
    res = p.results
    acc, steps = res[0], []
    for r in res[1:]:
        new = (acc + r) % 10
        steps.append(f"{acc}+{r}={new}")
        acc = new
    return f"sum: {' '.join(steps)}\n</think>\n\n\\boxed{{{acc}}}"


def _chain_line(p: ToyProblem, k: int) -> str:
    steps, value = p.chain_steps(k)
    return f" {p.chains[k][0]} {' '.join(steps)} {CHAIN_NAMES[k]}={value}"


def render_sequential(p: ToyProblem) -> str:
    """The completion in plain sequential text (the model writes <think> itself)."""
    lines = "".join(f"{CHAIN_NAMES[k]}:{_chain_line(p, k)}\n" for k in range(len(p.chains)))
    return f"<think>\n{_intro(p)}{lines}{_combination(p)}"


def render_parallel(p: ToyProblem) -> str:
    """The completion in the ThreadWeaver format, as the join-"model" trie rollout produces it."""
    outlines = "".join(
        f"{OUTLINE_OPEN}{k + 1}: {CHAIN_NAMES[k]}{OUTLINE_CLOSE}\n" for k in range(len(p.chains))
    )
    threads = join_block(
        [(str(k + 1), _chain_line(p, k) + "</Thread>") for k in range(len(p.chains))], "model"
    )
    return (
        f"<think>\n{_intro(p)}{PARALLEL_OPEN}\n{OUTLINES_OPEN}\n{outlines}{OUTLINES_CLOSE}"
        f"{threads}{PARALLEL_CLOSE}\n{_combination(p)}"
    )


def render(p: ToyProblem, mode: str) -> str:
    """`mode` "parallel" or "sequential"."""
    if mode == "parallel":
        return render_parallel(p)
    if mode == "sequential":
        return render_sequential(p)
    raise ValueError(f"mode must be 'parallel' or 'sequential', got {mode!r}")


def user_message(p: ToyProblem) -> str:
    """The user turn of the prompt (spec section 1): the question plus the boxed-answer instruction."""
    from harness.prompts import build_prompt

    return build_prompt(p.question)


def prompt_text(p: ToyProblem, tokenizer) -> str:
    """The full prompt text: the user turn rendered with the tokenizer's chat template."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": user_message(p)}], tokenize=False, add_generation_prompt=True
    )
