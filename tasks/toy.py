"""The synthetic parallelisable toy task: four independent mod-10 counters, reported together (issue 5).

A problem holds four chains (a, b, c, d) of six keyed steps, each adding 1 or 2 modulo 10 from 0; the
answer is the four chain results as one digit string ("9101", graded exactly). Each chain is an
independent sub-result, so the solution is one fork-join block with one thread per chain, then a short
sequential tail that gathers the results. Every problem has two renderings of exactly the same steps:
the ThreadWeaver format (spec section 1) and plain sequential text.

Every step in the question carries its own one-letter key ("C+2"), and a solution step names the key
before it uses the addend ("C+2=7": key, addend, running value). With the toy models' tokenizer (addends
"+1", "+2" and chain labels "a=" .. "d=" are single tokens, STEP_TOKENS) a step is three moves that a
1M-parameter model learns from scratch within minutes on a CPU: the next key (the letter after the
previous one), the one token after that key in the question (a copy: the simplest induction pattern), and
a one-entry table lookup (value + 1 or + 2). Designs that asked for more did not train within the
15-CPU-minute budget (README, "Toy models"): operands found by counting positions, an operand two tokens
after its key, and the full 10 x 10 addition table were each learned too late or not at all.

    from threadweaver_tasks.toy import make_split, render_parallel
    p = make_split("test", 1)[0]
    p.question      # "Add mod 10. a: A+1 B+2 ...; b: G+2 ...; c: ...; d: ... Find abcd."
    render_parallel(p)  # "<think>\\n4 chains.\\n<Parallel>\\n<Outlines>\\n<Outline>1: a</Outline>..."

The parallel rendering is byte-for-byte what the trie rollout builds with join "model" (the format's join_text):
threads joined as "\\n<Thread>\\n1: 0 A+1=1 B+2=3 ... a=9</Thread><Thread>\\n2:...</Thread>", then "\\n",
then the model writes "</Parallel>" and the tail ("answer: a=9 b=1 c=0 d=1", then "\\boxed{9101}").
Splits are deterministic (seeded) and no test question occurs in train.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

from harness.formats import get_format
from harness.records import SampleRecord

SPLIT_SEEDS = {"train": 1234, "test": 5678}
SPLIT_SIZES = {"train": 20000, "test": 500}
CHAIN_NAMES = "abcd"
NUM_CHAINS = (4,)  # threads per block, drawn uniformly from this tuple
STEPS_PER_CHAIN = 6  # steps per chain; every chain (so every thread) equally long
ADDENDS = (1, 2)  # each step adds one of these (a small table: every step is a one-entry lookup)
OP_KEYS = "ABCDEFGHIJKLMNOPQRSTUVWX"  # one single-token key per step: chain k, step i -> OP_KEYS[6k + i]
# Strings the toy models' tokenizer keeps as one token each (threadweaver/toy_models.py): the addends
# "+1", "+2" and the chain-result labels "a=" .. "d=". Finding the addend of key C is then the simplest
# induction pattern (match "C", copy the one token after it), and so is finding the result of chain c.
STEP_TOKENS = tuple(f"+{d}" for d in ADDENDS) + tuple(f"{c}=" for c in CHAIN_NAMES)
BENCHMARK = "toy"
JOIN_SUMMARY = "done"  # the body of a model-written closing part (NPR's takeaway, Multiverse's conclusion)
GRADING = "digits"  # answers are digit strings compared exactly; tasks/tw_toy.yaml declares it too


@dataclass(frozen=True)
class ToyProblem:
    """One problem: `chains[k]` the addends of chain k; `answer` the gold chain results as one string."""

    problem_id: str
    chains: tuple[tuple[int, ...], ...]

    @property
    def question(self) -> str:
        parts = [
            f"{CHAIN_NAMES[k]}: " + " ".join(f"{op_key(k, i)}+{d}" for i, d in enumerate(digits))
            for k, digits in enumerate(self.chains)
        ]
        return f"Add mod 10. {'; '.join(parts)}. Find {CHAIN_NAMES[: len(self.chains)]}."

    def chain_steps(self, k: int) -> tuple[list[str], int]:
        """The steps of chain k from 0: "0", then "A+1=1", "B+2=3", ... (key, addend, running value mod
        10), and its result."""
        value, steps = 0, ["0"]
        for i, d in enumerate(self.chains[k]):
            value = (value + d) % 10
            steps.append(f"{op_key(k, i)}+{d}={value}")
        return steps, value

    @property
    def results(self) -> list[int]:
        return [self.chain_steps(k)[1] for k in range(len(self.chains))]

    @property
    def answer(self) -> str:
        return "".join(str(r) for r in self.results)


def op_key(k: int, i: int) -> str:
    """The key of step i (0-based) of chain k: its own capital letter, so finding an addend in the
    question is a one-token match followed by a copy of the next token (the simplest induction pattern)."""
    return OP_KEYS[k * STEPS_PER_CHAIN + i]


def to_doc(p: ToyProblem) -> dict:
    """The task document (same fields as harness.datasets' math docs): problem_id, problem, answer, benchmark."""
    return {"problem_id": p.problem_id, "problem": p.question, "answer": p.answer, "benchmark": BENCHMARK}


def _random_problem(rng: random.Random, problem_id: str) -> ToyProblem:
    chains = tuple(
        tuple(rng.choice(ADDENDS) for _ in range(STEPS_PER_CHAIN)) for _ in range(rng.choice(NUM_CHAINS))
    )
    return ToyProblem(problem_id, chains)


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


def _combination(p: ToyProblem, think_close: str = "</think>") -> str:
    """Sequential tail: each chain's result copied by name ("answer: a=9 b=1 c=0 d=1"), then the digits
    boxed after </think> ("\\boxed{9101}")."""
    steps = " ".join(f"{CHAIN_NAMES[k]}={r}" for k, r in enumerate(p.results))
    return f"answer: {steps}\n{think_close}\n\n\\boxed{{{p.answer}}}"


def _chain_line(p: ToyProblem, k: int) -> str:
    steps, value = p.chain_steps(k)
    return f" {' '.join(steps)} {CHAIN_NAMES[k]}={value}"


def render_sequential(p: ToyProblem) -> str:
    """The completion in plain sequential text (the model writes <think> itself)."""
    lines = "".join(f"{k + 1}:{_chain_line(p, k)}\n" for k in range(len(p.chains)))
    return f"<think>\n{_intro(p)}{lines}{_combination(p)}"


def render_parallel(p: ToyProblem, fmt: str = "threadweaver", join: str | None = None) -> str:
    """The completion in a parallel format (default ThreadWeaver), as the trie rollout builds it: the
    format's plan for one branch per chain, the join of the chain lines, the block's model-written close
    (the format's `close_text`: ThreadWeaver's </Parallel> with join "model", NPR's takeaway, Multiverse's
    conclusion), then the tail, inside the format's reasoning tags. Formats with a runtime-run summary are
    not rendered here."""
    f = get_format(fmt)
    join = f.check_join(join or f.default_join())
    if f.summary_close is not None:
        raise ValueError(f"the toy task has no rendering for format {f.name!r} (it needs a summary)")
    ids = [str(k + 1) for k in range(len(p.chains))]
    branches = [(i, _chain_line(p, k) + f.branch_close) for k, i in enumerate(ids)]
    think_open, think_close = f.reasoning_tags
    return (f"{think_open}\n{_intro(p)}{f.plan_text(ids, list(CHAIN_NAMES[: len(ids)]))}{f.join_text(branches, join)}"
            f"{f.close_text(JOIN_SUMMARY, join)}\n{_combination(p, think_close)}")  # fmt: skip


# Hybrid rendering (issue 14, the toy proof's `toy-hybrid` start): the same problems, some rendered
# parallel and some sequential, so the model itself decides whether to open a block. The choice is
# deterministic per problem: a uniform number from a hash of the question, below a threshold of
# HYBRID_MIX + HYBRID_TILT when chain d's first addend is 2 (the cue, about half the problems) and
# HYBRID_MIX - HYBRID_TILT otherwise. Overall about HYBRID_MIX of the problems are parallel. Why a cue:
# with a pure coin flip the model learns P(parallel) ~ mix on every problem, and greedy decoding (what
# tw_toy measures) then reads a knife edge at 0.5 that any small drift flips for all problems at once;
# with the cue, greedy opens a block on the cue problems (~half) and on no others, while sampling at
# temperature 1 (RL's rollouts) still opens blocks on both kinds: RL has a choice to make everywhere.
HYBRID_MIX = 0.4
HYBRID_TILT = 0.25
MODES = ("parallel", "sequential", "hybrid")


def hybrid_mode(p: ToyProblem, mix: float = HYBRID_MIX, tilt: float = HYBRID_TILT) -> str:
    """The rendering of problem p in the hybrid mix, "parallel" or "sequential" (deterministic per
    question, the same on every platform)."""
    import hashlib

    if not (0.0 <= mix <= 1.0 and 0.0 <= tilt <= 1.0):
        raise ValueError(f"hybrid mix and tilt must lie in [0, 1], got mix={mix!r}, tilt={tilt!r}")
    u = int.from_bytes(hashlib.sha256(p.question.encode()).digest()[:8], "big") / 2**64
    threshold = mix + tilt if p.chains[-1][0] == ADDENDS[-1] else mix - tilt
    return "parallel" if u < threshold else "sequential"


def render(p: ToyProblem, mode: str, fmt: str = "threadweaver", mix: float = HYBRID_MIX,
           tilt: float = HYBRID_TILT) -> str:
    """`mode` "parallel" (in format `fmt`), "sequential" or "hybrid" (parallel or sequential per
    hybrid_mode(p, mix, tilt))."""
    if mode == "hybrid":
        mode = hybrid_mode(p, mix, tilt)
    if mode == "parallel":
        return render_parallel(p, fmt)
    if mode == "sequential":
        return render_sequential(p)
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def to_record(p: ToyProblem, mode: str, fmt: str = "threadweaver", mix: float = HYBRID_MIX,
              tilt: float = HYBRID_TILT) -> SampleRecord:
    """The problem and its `mode` rendering as a data record (harness/records.py): what SFT reads."""
    return SampleRecord(problem_id=p.problem_id, sample_index=0, response=render(p, mode, fmt, mix, tilt),
                        benchmark=BENCHMARK, gold=p.answer, grading=GRADING,
                        format=fmt if mode != "sequential" else "threadweaver",
                        messages=[{"role": "user", "content": user_message(p)}])  # fmt: skip


def user_message(p: ToyProblem) -> str:
    """The user turn of the prompt (spec section 1): the question plus the boxed-answer instruction."""
    from harness.prompts import build_prompt

    return build_prompt(p.question)


def prompt_text(p: ToyProblem, tokenizer) -> str:
    """The full prompt text: the user turn rendered with the tokenizer's chat template (harness.prompts)."""
    from harness.prompts import render_prompt

    return render_prompt(tokenizer, user_message(p))


def load_dataset(split: str = "test", limit: int | None = None, grading=None, **_ignored):
    """tw_toy's custom_dataset: a DatasetDict whose "test" split is the toy task's `split` (default: the
    held-out test split), generated here (no hub, no files); every doc carries `grading`, the task's rule
    name (dataset_kwargs)."""
    from datasets import Dataset, DatasetDict

    from harness.errors import InputError
    from harness.grading.rules import get_rule

    if grading is None:
        raise InputError("task tw_toy: dataset_kwargs needs `grading` (the toy's answers: digits)")
    name = get_rule(grading).name
    docs = [{**to_doc(p), "grading": name} for p in make_split(split, limit)]
    return DatasetDict({"test": Dataset.from_list(docs)})
