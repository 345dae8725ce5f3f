"""The Parallel-R1 format (Zheng et al. 2025, arXiv 2509.07980; ../shared/spec/formats.md section 2.2).

    We need 2^10 + 3^5. Let me check it two ways.
    <Parallel><Path>
    2^10 = 1024 and 3^5 = 243, so the sum is 1267.
    </Path><Path>
    2^10 = 4^5 = 1024; 3^5 = 3 * 81 = 243; 1024 + 243 = 1267.
    </Path></Parallel>
    <Summary>
    Both paths give 1267.
    </Summary>
    Final Answer: 1267

The authors' runtime loop (their `parallel_thinking_loop_v3`, formats.md 2.2), which the trie rollout runs
exactly: the model writes `<Parallel>` (the fork trigger); the runtime runs two paths, each prompted with
the context + `<Path>` and stopped at `</Path>` (a path that stops without it is closed), at temperature
1.0 with a fresh seed each and at most 4,096 tokens; it joins them back to back and appends
`</Parallel>\\n<Summary>`; one request then writes the summary up to `</Summary>` (closed by the runtime if
needed); the trunk continues. After the 4th block the trajectory ends, answer or not. Paths carry no
plan and no ids: both attack the same point. The answer is the last `\\boxed{}`, else the authors'
`Final Answer:` line (the shared protocol reads both).
"""

from __future__ import annotations

import re

from harness.formats.base import ForkPlan, ParallelFormat, Violation

PARALLEL_OPEN, PARALLEL_CLOSE = "<Parallel>", "</Parallel>"
PATH_OPEN, PATH_CLOSE = "<Path>", "</Path>"
SUMMARY_OPEN, SUMMARY_CLOSE = "<Summary>", "</Summary>"
SPECIAL_TOKENS = (PARALLEL_OPEN, PARALLEL_CLOSE, PATH_OPEN, PATH_CLOSE, SUMMARY_OPEN, SUMMARY_CLOSE)
NUM_PATHS = 2  # `num_paths` of the authors' RL scripts
MAX_BLOCKS = 4  # `max_iterations_for_parallel_thinking`
MAX_PATH_TOKENS = 4096  # `max_path_response_length`
_TAG = re.compile("|".join(map(re.escape, SPECIAL_TOKENS)))


class ParallelR1Format(ParallelFormat):
    """Parallel-R1: two plan-less paths per block, a runtime-run summary, at most 4 blocks."""

    name = "parallel-r1"
    checker = "parallel-r1-v1 (the authors' checker: >= 2 paths, a summary after each block)"
    description = "Parallel-R1: <Parallel><Path>..</Path><Path>..</Path></Parallel><Summary>..</Summary>"
    special_tokens = SPECIAL_TOKENS
    block_open, block_close = PARALLEL_OPEN, PARALLEL_CLOSE
    branch_open, branch_close = PATH_OPEN, PATH_CLOSE
    fork_trigger = PARALLEL_OPEN
    summary_close = SUMMARY_CLOSE
    max_blocks = MAX_BLOCKS
    max_branch_tokens = MAX_PATH_TOKENS
    branch_sampling = {"temperature": 1.0}  # paths at T 1.0 whatever the run's (loop_v3.py:336-337)
    answer_extract = ("boxed", "final_answer")

    def plan_fork(self, step_text: str) -> ForkPlan:
        return ForkPlan(tuple(str(i) for i in range(1, NUM_PATHS + 1)))

    def branch_header(self, branch_id: str, k: int, joined: bool) -> tuple[str, str]:
        return PATH_OPEN, ""

    def after_join(self, join: str) -> str:
        self.check_join(join)
        return f"{PARALLEL_CLOSE}\n{SUMMARY_OPEN}"

    def plan_text(self, branch_ids: list[str], plans: list[str] | None = None) -> str:
        if len(branch_ids) != NUM_PATHS:
            raise ValueError(f"a Parallel-R1 block has {NUM_PATHS} paths, got {len(branch_ids)}")
        return PARALLEL_OPEN  # no plan: the runtime forks at the tag itself

    def validate(self, text: str) -> list[Violation]:
        """The authors' checker: every block holds >= 2 paths and nothing else, and is followed by a
        summary; no nesting, no stray tags, at most 4 blocks."""
        out: list[Violation] = []
        block = 0
        state = "out"  # out | block | path | after (a block closed, summary expected) | summary
        paths, pos = 0, 0

        def bad(code: str, msg: str) -> None:
            out.append(Violation(code, f"block {block}: {msg}" if block else msg, block or None))

        for m in _TAG.finditer(text):
            gap, tag, pos = text[pos : m.start()], m.group(0), m.end()
            if state == "block" and gap.strip():
                bad("unexpected_text", "text between paths")
            if state == "after" and gap.strip():
                bad("missing_summary", f"no {SUMMARY_OPEN} after {PARALLEL_CLOSE}")
                state = "out"
            if state in ("out", "after") and tag == PARALLEL_OPEN:
                block, paths, state = block + 1, 0, "block"
            elif state == "after" and tag == SUMMARY_OPEN:
                state = "summary"
            elif state == "summary" and tag == SUMMARY_CLOSE:
                state = "out"
            elif state == "block" and tag == PATH_OPEN:
                state = "path"
            elif state == "path" and tag == PATH_CLOSE:
                paths, state = paths + 1, "block"
            elif state == "block" and tag == PARALLEL_CLOSE:
                if paths < NUM_PATHS:
                    bad("too_few_paths", f"{paths} path(s), at least {NUM_PATHS}")
                state = "after"
            else:
                where = {"path": "inside a path", "summary": "inside the summary"}.get(state, "here")
                bad("nested_block" if tag == PARALLEL_OPEN else "unexpected_tag", f"tag {tag} {where}")
        if state == "after":
            bad("missing_summary", f"no {SUMMARY_OPEN} after {PARALLEL_CLOSE}")
        elif state != "out":
            bad(f"unclosed_{state}", f"the {state} is never closed")
        if block > MAX_BLOCKS:
            out.append(Violation("too_many_blocks", f"{block} blocks (at most {MAX_BLOCKS})"))
        return out
