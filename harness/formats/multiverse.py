"""The Multiverse format (Yang et al. 2025, arXiv 2506.09991; ../shared/spec/formats.md section 2.3).

    <Think>
    We want 2^10 + 3^5; the two powers are independent.
    Let's think in parallel.
    <Parallel>
    <Goal>
    <Outline>
    1: Evaluate 2^10.
    </Outline>
    <Outline>
    2: Evaluate 3^5.
    </Outline>
    </Goal>
    <Path>
    1: 2^10 = 32^2 = 1024.
    </Path>
    <Path>
    2: 3^5 = 9 * 27 = 243.
    </Path>
    <Conclusion>
    The two powers are 1024 and 243.
    </Conclusion>
    </Parallel>
    Their sum is 1267.
    </Think>

    Answer: 2^10 + 3^5 = \\boxed{1267}

The runtime loop (formats.md 2.3; the Multiverse Engine is not available, so the runtime-written spans
are our adapter's choice, matching the training layout, every tag on its own line):
- a request stops at `</Goal>`; the ids are the `<Outline>` numbers (optional whitespace, dotted number,
  optional whitespace, `:`) within the last `<Goal>` of the request, in order;
- path k's request is the context + `\\n<Path>\\n{id}:`, stopped at `</Path>`;
- the join is the paths in id order, each `\\n<Path>\\n{id}:...</Path>`, then `\\n`; the model writes
  `<Conclusion>...</Conclusion>` and `</Parallel>`;
- a `<Parallel>` may sit inside a `<Path>` (nested ids `{parent}.{k}`); the authors give no depth limit:
  ours is 4 levels of paths (MAX_DEPTH, recorded in the format's description); width, block count and
  budget of their engine: not published (the run's max_branches and budget_tokens apply).
Multiverse was trained with restarted position ids (Multiverse Attention): `fidelity` approximate.
Capital T in `<Think>`; the answer is the last `\\boxed{}` (after `</Think>`).
"""

from __future__ import annotations

import re

from harness.formats.base import ForkPlan, ParallelFormat, Violation

THINK_OPEN, THINK_CLOSE = "<Think>", "</Think>"
PARALLEL_OPEN, PARALLEL_CLOSE = "<Parallel>", "</Parallel>"
GOAL_OPEN, GOAL_CLOSE = "<Goal>", "</Goal>"
OUTLINE_OPEN, OUTLINE_CLOSE = "<Outline>", "</Outline>"
PATH_OPEN, PATH_CLOSE = "<Path>", "</Path>"
CONCLUSION_OPEN, CONCLUSION_CLOSE = "<Conclusion>", "</Conclusion>"
# the 12 special tokens of Multiverse's training code (MV@4cbc487:train/utils.py:12-13)
SPECIAL_TOKENS = (THINK_OPEN, THINK_CLOSE, PARALLEL_OPEN, PARALLEL_CLOSE, GOAL_OPEN, GOAL_CLOSE, OUTLINE_OPEN,
                  OUTLINE_CLOSE, PATH_OPEN, PATH_CLOSE, CONCLUSION_OPEN, CONCLUSION_CLOSE)  # fmt: skip
MAX_DEPTH = 4  # our choice: the authors state no limit (formats.md 2.3 "nesting")
PROMPT_SUFFIX = " Think step by step and in parallel before answering."  # MV data/tokenization_multiverse.py:16
_OUTLINE_ID = re.compile(r"<Outline>\s*(\d+(?:\.\d+)*)\s*:")
_TAG = re.compile("|".join(map(re.escape, SPECIAL_TOKENS)))


def outline_ids(step_text: str) -> list[str]:
    """Ids of the `<Outline>`s within the last `<Goal>` of `step_text`, in order."""
    start = step_text.rfind(GOAL_OPEN)
    if start < 0:
        return []
    goal = step_text[start:]
    end = goal.find(GOAL_CLOSE)
    return _OUTLINE_ID.findall(goal if end < 0 else goal[:end])


class MultiverseFormat(ParallelFormat):
    """Multiverse: a goal of outlines, one path per outline, a conclusion written by the model; nests."""

    name = "multiverse"
    description = (f"Multiverse: <Parallel><Goal><Outline>i: ..</Outline></Goal><Path>\\ni: ..</Path>.."
                   f"<Conclusion>..</Conclusion></Parallel>; paths nest {MAX_DEPTH} deep (our limit)")
    special_tokens = SPECIAL_TOKENS
    block_open, block_close = PARALLEL_OPEN, PARALLEL_CLOSE
    branch_open, branch_close = PATH_OPEN, PATH_CLOSE
    fork_trigger = GOAL_CLOSE
    max_depth = MAX_DEPTH
    fidelity = "approximate"
    reasoning_tags = (THINK_OPEN, THINK_CLOSE)
    checker = "multiverse-v1 (MV@4cbc487 validate_xml_structure rules, formats.md section 4)"

    def plan_fork(self, step_text: str) -> ForkPlan:
        if GOAL_OPEN not in step_text:
            return ForkPlan(fault=f"{GOAL_CLOSE} without {GOAL_OPEN}; no paths run")
        ids = outline_ids(step_text)
        if not ids:
            return ForkPlan(fault="a goal with no numbered outlines; no paths run")
        return ForkPlan(tuple(ids))

    def branch_header(self, branch_id: str, k: int, joined: bool) -> tuple[str, str]:
        return "\n" + PATH_OPEN, f"\n{branch_id}:"

    def after_join(self, join: str) -> str:
        self.check_join(join)
        return "\n"

    def closes_block(self, join: str) -> bool:
        return False  # the model writes <Conclusion>..</Conclusion> and </Parallel>

    def instruction(self, question: str) -> list[dict] | None:
        return [{"role": "user", "content": question + PROMPT_SUFFIX}]

    def close_text(self, summary: str, join: str) -> str:
        self.check_join(join)
        return f"{CONCLUSION_OPEN}\n{summary}\n{CONCLUSION_CLOSE}\n{PARALLEL_CLOSE}"

    def plan_text(self, branch_ids: list[str], plans: list[str] | None = None) -> str:
        plans = plans or [f"part {i}" for i in branch_ids]
        body = "".join(f"{OUTLINE_OPEN}\n{i}: {p}\n{OUTLINE_CLOSE}\n" for i, p in zip(branch_ids, plans, strict=True))
        return f"{PARALLEL_OPEN}\n{GOAL_OPEN}\n{body}{GOAL_CLOSE}"

    def validate(self, text: str) -> list[Violation]:
        """The structure of Multiverse's training data (formats.md 2.3): `<Think>` once, closed; each
        `<Parallel>` a direct child of `<Think>` or `<Path>`, holding a goal of numbered outlines, then
        one path per outline, then a conclusion; nothing but whitespace between these parts; paths nested
        at most MAX_DEPTH deep; no stray tags."""
        out: list[Violation] = []
        blocks = 0
        # frames: [state, block no, outlines, paths]; states: top, think, parallel, goal, outline, paths,
        # path (a path's body), conclusion, concluded
        stack: list[list] = [["top", 0, 0, 0]]
        pos, thinks = 0, 0
        parts = {("parallel", GOAL_OPEN): "goal", ("goal", OUTLINE_OPEN): "outline", ("goal", GOAL_CLOSE): "paths",
                 ("paths", CONCLUSION_OPEN): "conclusion", ("conclusion", CONCLUSION_CLOSE): "concluded"}  # fmt: skip

        def bad(code: str, msg: str, no: int) -> None:
            out.append(Violation(code, f"block {no}: {msg}" if no else msg, no or None))

        for m in _TAG.finditer(text):
            gap, tag, pos = text[pos : m.start()], m.group(0), m.end()
            top = stack[-1]
            state, no = top[0], top[1]
            if state in ("parallel", "goal", "paths", "concluded") and gap.strip():
                bad("unexpected_text", f"text {gap.strip()[:30]!r} between the parts of a block", no)
            if (state, tag) == ("top", THINK_OPEN) and thinks == 0:
                thinks += 1
                stack.append(["think", 0, 0, 0])
            elif (state, tag) == ("think", THINK_CLOSE):
                stack.pop()
            elif state in ("think", "path") and tag == PARALLEL_OPEN:
                blocks += 1
                if sum(f[0] == "paths" for f in stack) >= MAX_DEPTH:
                    bad("too_deep", f"a block inside {MAX_DEPTH} levels of paths", blocks)
                stack.append(["parallel", blocks, 0, 0])
            elif (state, tag) in parts:
                top[0] = parts[(state, tag)]
                if tag == GOAL_CLOSE and top[2] == 0:
                    bad("no_outlines", "a goal without outlines", no)
                if tag == CONCLUSION_OPEN and top[3] != top[2]:
                    bad("path_count", f"{top[3]} path(s) for {top[2]} outline(s)", no)
            elif (state, tag) == ("outline", OUTLINE_CLOSE):
                top[0], top[2] = "goal", top[2] + 1
            elif (state, tag) == ("paths", PATH_OPEN):
                top[3] += 1
                stack.append(["path", no, 0, 0])
            elif (state, tag) == ("path", PATH_CLOSE):
                stack.pop()
            elif (state, tag) == ("concluded", PARALLEL_CLOSE):
                stack.pop()
            elif tag == PARALLEL_OPEN:
                bad("misplaced_block", f"{PARALLEL_OPEN} outside <Think> and <Path>", no)
            else:
                bad("unexpected_tag", f"tag {tag} where it is not allowed ({state})", no)
        for frame in reversed(stack[1:]):
            bad(f"unclosed_{frame[0]}", f"the {frame[0]} is never closed", frame[1])
        return out
