"""The NPR format (Native Parallel Reasoner, arXiv 2512.07461; ../shared/spec/formats.md section 2.1).

    <guideline>
    <plan>1: Evaluate 2^10.</plan>
    <plan>2: Evaluate 3^5.</plan>
    </guideline>
    <step>
    1: 2^10 = 32^2 = 1024.
    </step>
    <step>
    2: 3^5 = 9 * 27 = 243.
    </step>
    <takeaway>
    Step 1 gives 1024 and step 2 gives 243, so the sum is 1267.
    </takeaway>
    2^10 + 3^5 = 1024 + 243 = 1267, so the answer is \\boxed{1267}.

The runtime loop of NPR's engine as our rollout runs it (formats.md 2.1; facts cite NPR@e148ad5):
- a request stops at `</guideline>`; it forks only if its own output holds `<guideline>`, with the ids of
  every `<plan>` after the last `<guideline>` (`<plan>`, optional space, dotted number, optional space,
  `:`; kept in order, no dedup). 0 ids or more than 5: no fork, and the request ENDS there;
- step k's request is the context + `\\n<step>\\n{id}:`, stopped at `</step>`, at repetition penalty 1.02
  (every other request: 1.0);
- the join is the steps back to back, each `\\n<step>\\n{id}:...</step>`, then `\\n<takeaway>\\n`; the model
  writes the takeaway and `</takeaway>`. NPR's engine keeps the one token the model wrote after `</step>`
  (normally `\\n`) and drops the leading `\\n` of steps 2..n; our join writes that `\\n` itself, which
  gives the same text whenever the model's token was `\\n`;
- steps nest: a request whose fork stack holds more than 5 levels is not forked, so steps nest at most
  6 deep (`max_depth` 6); a refused fork keeps decoding and the span ends at its next `</step>`;
- no fork when fewer than 1,024 budget tokens remain (NPR's engine: of max_new_tokens less a 128-token
  margin; the `npr` preset sets budget_tokens to 40,000 - 128), and a refused fork at the trunk decodes on
  until the next `</step>`, where NPR's engine ends the request.
NPR was trained with restarted position ids (steps restart after the guideline): `fidelity` approximate.
Answer (shared protocol): the last `\\boxed{}`; the paper's own parser is the `npr` extractor.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.formats.base import ForkPlan, ParallelFormat, Violation

GUIDELINE_OPEN, GUIDELINE_CLOSE = "<guideline>", "</guideline>"
PLAN_OPEN, PLAN_CLOSE = "<plan>", "</plan>"
STEP_OPEN, STEP_CLOSE = "<step>", "</step>"
TAKEAWAY_OPEN, TAKEAWAY_CLOSE = "<takeaway>", "</takeaway>"
SPECIAL_TOKENS = (GUIDELINE_OPEN, GUIDELINE_CLOSE, PLAN_OPEN, PLAN_CLOSE, STEP_OPEN, STEP_CLOSE,
                  TAKEAWAY_OPEN, TAKEAWAY_CLOSE)  # fmt: skip
MAX_STEPS = 5  # ids per guideline; 0 or more: no fork, the request ends (schedule_batch.py:737-739)
MAX_DEPTH = 6  # not forked with more than 5 fork levels on the stack (:1586-1587): steps nest 6 deep
MIN_FORK_BUDGET_TOKENS = 1024  # no fork when fewer remain (:1586)
BUDGET_MARGIN_TOKENS = 128  # NPR's engine keeps this margin off max_new_tokens (:687-697)
STEP_REPETITION_PENALTY = 1.02  # forked steps (:1614); every other request 1.0 (scheduler.py:936, :1475)
PROMPT_FILE = Path(__file__).with_name("prompts") / "npr.txt"  # NPR@e148ad5:evals/prompts/npr.txt, verbatim
_PLAN_ID = re.compile(r"<plan> ?(\d+(?:\.\d+)*) ?:")
_TAG = re.compile("|".join(map(re.escape, SPECIAL_TOKENS)))
_EMPTY_BOX = re.compile(r"\\boxed\{\s*\}")


def npr_prompt(question: str) -> str:
    """NPR's user turn: the question, a blank line, then its instruction file stripped (evaluate.py:546-569)."""
    return question + "\n\n" + PROMPT_FILE.read_text(encoding="utf-8").strip()


def plan_ids(step_text: str) -> list[str]:
    """Ids of the `<plan>`s after the last `<guideline>` of `step_text`, in order, duplicates kept."""
    start = step_text.rfind(GUIDELINE_OPEN)
    return [] if start < 0 else _PLAN_ID.findall(step_text[start:])


class NPRFormat(ParallelFormat):
    """NPR: a guideline of 1-5 plans, one step per plan, a takeaway written by the model; nests 6 deep."""

    name = "npr"
    description = "NPR: <guideline><plan>i: ..</plan></guideline><step>\\ni: ..</step>..<takeaway>..</takeaway>"
    special_tokens = SPECIAL_TOKENS
    block_open, block_close = GUIDELINE_OPEN, TAKEAWAY_CLOSE  # the group runs from guideline to takeaway
    branch_open, branch_close = STEP_OPEN, STEP_CLOSE
    fork_trigger = GUIDELINE_CLOSE
    max_depth = MAX_DEPTH
    min_fork_budget_tokens = MIN_FORK_BUDGET_TOKENS
    branch_sampling = {"repetition_penalty": STEP_REPETITION_PENALTY}
    fidelity = "approximate"
    checker = "npr-v1 (NPR@e148ad5 compute_format_score rules, formats.md section 4)"

    def plan_fork(self, step_text: str) -> ForkPlan:
        if GUIDELINE_OPEN not in step_text:
            return ForkPlan(fault=f"{GUIDELINE_CLOSE} without {GUIDELINE_OPEN} in this request: no fork",
                            ends_request=True)  # fmt: skip
        ids = plan_ids(step_text)
        if not 1 <= len(ids) <= MAX_STEPS:
            return ForkPlan(fault=f"{len(ids)} plan ids (NPR forks 1-{MAX_STEPS}): no fork", ends_request=True)
        return ForkPlan(tuple(ids))

    def branch_header(self, branch_id: str, k: int, joined: bool) -> tuple[str, str]:
        return "\n" + STEP_OPEN, f"\n{branch_id}:"

    def after_join(self, join: str) -> str:
        self.check_join(join)
        return f"\n{TAKEAWAY_OPEN}\n"

    def closes_block(self, join: str) -> bool:
        return False  # the model writes the takeaway and </takeaway>

    def instruction(self, question: str) -> list[dict] | None:
        return [{"role": "user", "content": npr_prompt(question)}]

    def close_text(self, summary: str, join: str) -> str:
        self.check_join(join)
        return f"{summary}\n{TAKEAWAY_CLOSE}"  # after the runtime's "<takeaway>\n"

    def plan_text(self, branch_ids: list[str], plans: list[str] | None = None) -> str:
        plans = plans or [f"part {i}" for i in branch_ids]
        body = "".join(f"{PLAN_OPEN}{i}: {p}{PLAN_CLOSE}\n" for i, p in zip(branch_ids, plans, strict=True))
        return f"{GUIDELINE_OPEN}\n{body}{GUIDELINE_CLOSE}"

    def validate(self, text: str) -> list[Violation]:
        """NPR's checker as formats.md section 4 states it (compute_format_score = 0): every block is
        guideline -> steps -> takeaway, as many plans as steps, steps nested at most 6 deep, no stray
        tags, no text between steps, no empty `\\boxed{}`."""
        out: list[Violation] = []
        blocks = 0
        # frames: [state, block no, plans, steps]; states: seq (trunk/step body), guideline, plan, steps, takeaway
        stack: list[list] = [["seq", 0, 0, 0]]
        pos = 0

        def bad(code: str, msg: str, no: int) -> None:
            out.append(Violation(code, f"block {no}: {msg}" if no else msg, no or None))

        for m in _TAG.finditer(text):
            gap, tag, pos = text[pos : m.start()], m.group(0), m.end()
            top = stack[-1]
            state, no = top[0], top[1]
            if state == "steps" and gap.strip():
                bad("unexpected_text", "text between steps", no)
            if state == "seq" and tag == GUIDELINE_OPEN:
                blocks += 1
                if sum(f[0] == "steps" for f in stack) >= MAX_DEPTH:
                    bad("too_deep", f"a guideline inside {MAX_DEPTH} levels of steps", blocks)
                stack.append(["guideline", blocks, 0, 0])
            elif (state, tag) == ("guideline", PLAN_OPEN):
                top[0] = "plan"
            elif (state, tag) == ("plan", PLAN_CLOSE):
                top[0], top[2] = "guideline", top[2] + 1
            elif (state, tag) == ("guideline", GUIDELINE_CLOSE):
                top[0] = "steps"
            elif (state, tag) == ("steps", STEP_OPEN):
                top[3] += 1
                stack.append(["seq", no, 0, 0])
            elif state == "seq" and tag == STEP_CLOSE and len(stack) > 1:
                stack.pop()
            elif (state, tag) == ("steps", TAKEAWAY_OPEN):
                if top[3] == 0:
                    bad("no_steps", "a takeaway without steps", no)
                elif top[2] != top[3]:
                    bad("step_count", f"{top[3]} step(s) for {top[2]} plan(s)", no)
                top[0] = "takeaway"
            elif (state, tag) == ("takeaway", TAKEAWAY_CLOSE):
                stack.pop()
            else:
                bad("unexpected_tag", f"tag {tag} where it is not allowed ({state})", no)
        for frame in reversed(stack[1:]):
            what = {"seq": "step", "steps": "block (no takeaway)"}.get(frame[0], frame[0])
            bad(f"unclosed_{what.split()[0]}", f"the {what} is never closed", frame[1])
        if _EMPTY_BOX.search(text):
            out.append(Violation("empty_boxed", "an empty \\boxed{}"))
        return out
