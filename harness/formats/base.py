"""The parallel-format interface: one object per format, read by every part that knows about tags.

The trie rollout (harness/rollout.py), the token counter (harness/counting.py), the SFT unit cutter
(trainers/sft/packing.py), the validators and the toy renderer all go through a `ParallelFormat`, so a new
format is one module in this package (facts per format: ../shared/spec/formats.md).

The runtime loop every format shares (formats.md section 1; ThreadWeaver: threadweaver.md section 2):
1. a sequential request continues the context and stops at `fork_trigger` (or end of sequence, the budget,
   or `branch_close` when it runs inside a branch);
2. at the trigger, `plan_fork(step_text)` reads the branch ids (parsed from the plan, or a fixed width);
3. one request per branch: prompt = context + `branch_header(id, k, joined=False)`, stopping at
   `branch_close` (and at `fork_trigger` where the format nests, `max_depth` > 1); all at once;
4. join: context + for each branch `branch_header(id, k, joined=True)` + its completion (closed with
   `branch_close` when it stopped without it), then `after_join(join)`;
5. where the format has a runtime-run closing part (`summary_close`, Parallel-R1's `<Summary>`), one more
   request up to that tag; then back to 1. `max_blocks` ends the trajectory after that many blocks.

A branch header is two pieces: the wrapper (`"\\n<Thread>"`: counted in the block's own part) and the part
inside the branch (`"\\n1:"`: counted in the branch). Counting (formats.md section 3) uses the four
structural tags `block_open`, `block_close`, `branch_open`, `branch_close`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

FIDELITIES = ("exact", "approximate")  # formats.md section 1


@dataclass(frozen=True)
class Violation:
    """One broken format rule. `block` is the 1-based block number, None outside blocks."""

    code: str
    message: str
    block: int | None = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ForkPlan:
    """What the runtime does at a fork trigger: run `branch_ids` (empty: no fork).

    Without a fork, `fault` says why (recorded on the trajectory) and `close_as_join` asks the runtime to
    append the join's closing text anyway (an announced block with nothing to run is closed like one).
    """

    branch_ids: tuple[str, ...] = ()
    fault: str | None = None
    close_as_join: bool = False
    ends_request: bool = False
    """No fork, and the request ends at the trigger (NPR: a width out of range ends the request there);
    a trunk then ends with end_reason "refused_fork", a branch is closed by the runtime."""


class ParallelFormat:
    """Base class; a format sets the class attributes and overrides what differs."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    special_tokens: ClassVar[tuple[str, ...]]
    """Tags that must be single token ids (exact counting, stops on ids); also the fallback counter's."""
    block_open: ClassVar[str]
    block_close: ClassVar[str]
    branch_open: ClassVar[str]
    branch_close: ClassVar[str]
    fork_trigger: ClassVar[str]
    """A sequential request stops at this tag; the runtime then calls `plan_fork`."""
    summary_close: ClassVar[str | None] = None
    """The runtime generates a closing part up to this tag after each join (None: the model writes it)."""
    join_modes: ClassVar[tuple[str, ...]] = ("runtime",)
    """Accepted `join` settings; the first is the default."""
    max_depth: ClassVar[int] = 1
    """Block nesting levels: 1 = no block inside a branch (a nested block is branch text)."""
    max_blocks: ClassVar[int | None] = None
    """The trajectory ends right after this many blocks (None: no limit)."""
    max_branch_tokens: ClassVar[int | None] = None
    """Generated tokens per branch before the runtime closes it (None: only the total budget)."""
    branch_sampling: ClassVar[dict[str, float]] = {}
    """Request sampling fields (harness.engines.base.Request: temperature, repetition_penalty) forced on
    the request that starts each branch (Parallel-R1: paths at T 1.0; NPR: steps at repetition penalty
    1.02); the trunk, summaries and every continuation after a join keep the run's sampling."""
    min_fork_budget_tokens: ClassVar[int | None] = None
    """No fork when fewer budget tokens than this remain at the trigger (None: always fork). A refused
    fork keeps decoding without forking, and that span then ends at its next `branch_close`."""
    fidelity: ClassVar[str] = "exact"
    """"exact": our rollout sends the requests the authors' inference sends, with the positions the model
    was trained on; "approximate": same text and visibility, but the model was trained with restarted
    (shared) position ids that ordinary requests do not reproduce (formats.md section 1). Carried into
    every result file and leaderboard row of a run in this format."""
    reasoning_tags: ClassVar[tuple[str, str]] = ("<think>", "</think>")
    """How the format spells the open and close of the reasoning span (Multiverse: `<Think>`); used where a
    whole trajectory is written out (the toy renderer)."""
    checker: ClassVar[str] = ""
    """Which strict checker `validate` implements and its version; result files carry it as
    `format_checker` next to `format_valid_strict` (formats.md section 4)."""
    answer_extract: ClassVar[tuple[str, ...]] = ("boxed",)
    """Answer extractors of the shared protocol for this format, added to the task's grading rule
    (harness.grading.with_extractors) wherever a run in this format is graded."""

    # ----------------------------------------------------------------------------------- runtime loop
    def default_join(self) -> str:
        return self.join_modes[0]

    def check_join(self, join: str) -> str:
        """`join` itself, or ValueError naming the modes this format accepts."""
        if join not in self.join_modes:
            raise ValueError(f"join must be one of {self.join_modes} for format {self.name!r}, got {join!r}")
        return join

    def plan_fork(self, step_text: str) -> ForkPlan:
        """The branches to run after a request that stopped at `fork_trigger` (its completion text)."""
        raise NotImplementedError

    def branch_header(self, branch_id: str, k: int, joined: bool) -> tuple[str, str]:
        """(wrapper, inside) text before branch k's completion: in its request (`joined` False) and in the
        joined context (`joined` True)."""
        raise NotImplementedError

    def after_join(self, join: str) -> str:
        """Text appended after the last branch of a block."""
        raise NotImplementedError

    def closes_block(self, join: str) -> bool:
        """True when `after_join(join)` (or the runtime's summary) closes the block; False when the model
        writes `block_close` in its next request."""
        return True

    def instruction(self, question: str) -> list[dict] | None:
        """The chat messages its authors evaluated a question with (their instruction / preamble), before
        the chat template; None = no prompt of its own is available here (the task's prompt is used)."""
        return None

    # ------------------------------------------------------------------------------- text of a block
    def plan_text(self, branch_ids: list[str], plans: list[str] | None = None) -> str:
        """What the model writes to open a block with these branches, ending with `fork_trigger` (the toy
        renderer and workload benchmarks write blocks with it); `plans` are the per-branch plan texts."""
        raise NotImplementedError

    def close_text(self, summary: str, join: str) -> str:
        """What the model writes after a join to close the block, with `summary` as the body of the format's
        model-written closing part (NPR's takeaway, Multiverse's conclusion); "" where the runtime closes it."""
        return "" if self.closes_block(self.check_join(join)) else self.block_close

    def join_text(self, branches: list[tuple[str, str]], join: str) -> str:
        """What the runtime appends to the context after a fork: `(branch_id, completion_text)` in order;
        a completion without `branch_close` at its end is closed."""
        parts = []
        for k, (branch_id, text) in enumerate(branches):
            wrapper, inside = self.branch_header(branch_id, k, joined=True)
            closed = text if text.endswith(self.branch_close) else text + self.branch_close
            parts.append(wrapper + inside + closed)
        return "".join(parts) + self.after_join(self.check_join(join))

    # ----------------------------------------------------------------------------------- validation
    def validate(self, text: str) -> list[Violation]:
        """Every broken rule of the format's strict checker (empty: valid)."""
        raise NotImplementedError

    def counting_tags(self) -> tuple[str, str, str, str]:
        """(block_open, block_close, branch_open, branch_close) for harness.counting."""
        return (self.block_open, self.block_close, self.branch_open, self.branch_close)
