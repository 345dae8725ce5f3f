"""Protocol presets: each paper's own evaluation settings, to reproduce its headline number first
(../shared/spec/formats.md section 5), then re-score on the shared protocol.

    lm_eval --model threadweaver --model_args pretrained=zoo:npr-4b,preset=npr ...

A preset sets the format, sampling, budget, prompt and answer extraction its paper used; explicit
`--model_args` win over it, and it wins over the zoo entry's fields and the task's generation_kwargs.
k (samples per problem) is the task's `repeats` in lm-eval (a backend cannot change it): the preset
states the paper's k per benchmark, and the backend says when the task's differs.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from harness.errors import InputError
from harness.formats import get_format


@dataclass(frozen=True)
class Preset:
    """One paper's protocol. None = not published (the task's or the zoo's value is used and recorded)."""

    name: str
    format: str
    source: str
    """Where the numbers come from."""
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    budget_tokens: int | None = None
    """Total generated tokens per trajectory, all branches."""
    k: dict[str, int] = field(default_factory=dict)
    """Samples per problem by benchmark ("*": every benchmark)."""
    own_prompt: bool = False
    """True: the format's own instruction (ParallelFormat.instruction) built from the doc's question
    replaces the task's prompt."""
    extract: tuple[str, ...] = ("boxed",)
    """Answer extractors (harness.grading) replacing the task rule's; comparison stays the task's."""

    def values(self) -> dict:
        """The rollout settings it fixes (non-None only)."""
        out = {"format": self.format, "parallel": True, "temperature": self.temperature, "top_p": self.top_p,
               "top_k": self.top_k, "budget_tokens": self.budget_tokens}  # fmt: skip
        return {k: v for k, v in out.items() if v is not None}

    def k_for(self, benchmark: str | None) -> int | None:
        return self.k.get(benchmark or "", self.k.get("*"))


PRESETS: dict[str, Preset] = {p.name: p for p in (
    # formats.md 5 and 2.1: T 1.0, top_p 0.7, top_k -1 (repetition penalty 1.0, 1.02 inside steps: the
    # format), pass@1 over 8 samples, 40,000 new tokens less the engine's 128-token margin, NPR's prompt
    # file, NPR's parser (last boxed, else "he answer is" / "final answer is", else the last number).
    Preset("npr", "npr", "formats.md sections 2.1 and 5", 1.0, 0.7, -1, 40_000 - 128, {"*": 8},
           own_prompt=True, extract=("boxed", "answer_is", "last_number")),
    # formats.md 5 and 2.2: T 1.0, top_p 1.0, top_k -1 (paths T 1.0: the format), 3000 response tokens,
    # Mean@16 on AIME/AMC and @1 on MATH300; answers from the `Final Answer:` line (their reward). Their v3
    # instruction text lives only in a parquet file of their repository: not shipped, the task's prompt runs.
    Preset("parallel-r1", "parallel-r1", "formats.md sections 2.2 and 5", 1.0, 1.0, -1, 3000,
           {"aime24": 16, "aime25": 16, "amc23": 16, "math500": 1}, extract=("final_answer",)),
    # formats.md 5 and 2.3: sampling and budget not published (the task's are used and recorded), Avg@8,
    # the training prompt (question + " Think step by step and in parallel before answering."), last boxed.
    Preset("multiverse", "multiverse", "formats.md sections 2.3 and 5", k={"*": 8}, own_prompt=True),
    # threadweaver.md section 6 (formats.md 5, the shared protocol): T 1.0, top_p 1.0, 40k total tokens,
    # Avg@32/32/8/1/4/8, the project's prompt (the task's), last boxed.
    Preset("threadweaver", "threadweaver", "threadweaver.md section 6; formats.md section 5", 1.0, 1.0, -1, 40960,
           {"aime24": 32, "aime25": 32, "amc23": 8, "math500": 1, "minerva_math": 4, "olympiadbench": 8}),
)}  # fmt: skip


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        close = difflib.get_close_matches(str(name), PRESETS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise InputError(f"model_args: unknown preset '{name}'{hint} (known: {', '.join(PRESETS)})")
    return PRESETS[name]


def preset_messages(preset: Preset, doc: dict) -> list[dict] | None:
    """The preset's prompt for a benchmark doc (its `problem`), or None when the task's prompt runs."""
    if not preset.own_prompt:
        return None
    if "problem" not in doc:
        raise InputError(f"preset {preset.name}: the task's docs have no `problem` field to build its prompt from")
    return get_format(preset.format).instruction(str(doc["problem"]))


def preset_rule(preset: Preset, task_rule: str | None) -> str | None:
    """The task's grading rule with the preset's answer extractors in place of its own (rule name)."""
    if task_rule is None:
        return None
    from harness.grading.rules import get_rule

    r = get_rule(task_rule)
    spec = {"compare": r.compare, "extract": list(preset.extract), "ordered": r.ordered}
    if r.rel_tol is not None:
        spec["rel_tol"] = r.rel_tol
    return get_rule(spec).name
