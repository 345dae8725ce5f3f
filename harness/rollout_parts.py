"""Building blocks of the trie rollout (harness/rollout.py): token counts per span, inserted pieces.

`Span` holds the record-first counts of one trunk or branch (formats.md section 3): its own sequential
tokens and its blocks of branches, nested. `Pieces` tokenises each runtime-inserted piece on its own (what
the engine saw) and turns a format's tags into stop ids (a tag that is one token) or stop strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.engines.base import Completion


@dataclass
class Span:
    """Token counts of one trunk or branch: its own (sequential) tokens and its blocks of branches."""

    seq: int = 0
    blocks: list[list[Span]] = field(default_factory=list)
    header: int = 0  # a branch's runtime-written header tokens (in `seq`)

    def total(self) -> int:
        return self.seq + sum(b.total() for block in self.blocks for b in block)

    def critical_path(self) -> int:
        return self.seq + sum(max((b.critical_path() for b in block), default=0) for block in self.blocks)

    def branches_per_block(self) -> list[int]:
        """In the order the blocks opened (depth first)."""
        out = []
        for block in self.blocks:
            out.append(len(block))
            for b in block:
                out.extend(b.branches_per_block())
        return out


class Pieces:
    """Tokenises inserted pieces on their own (cached) and picks stop ids or stop strings."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self._cache: dict[str, list[int]] = {}

    def ids(self, text: str) -> list[int]:
        if text not in self._cache:
            self._cache[text] = list(self.tokenizer.encode(text, add_special_tokens=False)) if text else []
        return self._cache[text]

    def stops(self, tags: list[str]) -> dict:
        """Single-id tags stop on their id (exact), the others on their string."""
        ids = [self.ids(t) for t in tags]
        return {"stop_token_ids": [i[0] for i in ids if len(i) == 1],
                "stop": [t for t, i in zip(tags, ids, strict=True) if len(i) != 1]}  # fmt: skip

    def ends_with(self, c: Completion, tag: str) -> bool:
        ids = self.ids(tag)
        return bool(c.token_ids) and c.token_ids[-1] == ids[0] if len(ids) == 1 else c.text.endswith(tag)


def fork_refusal(fmt, plan, budget_left: int) -> tuple[str, str] | None:
    """(what the runtime does, the fault to record) when the format refuses this fork, else None.
    "end": the request ends at the trigger (end_reason "refused_fork"); "decode_on": no fork, the span
    keeps decoding without forking and ends at its next branch close (formats.md section 2.1, budget)."""
    if plan.ends_request:
        return "end", f"{plan.fault}; the request ends here"
    need = fmt.min_fork_budget_tokens
    if plan.branch_ids and need is not None and budget_left < need:
        return "decode_on", f"fork refused, {budget_left} budget tokens left (< {need}); decoding on without forking"
    return None


def sample_seeds(config, sample_indices: list[int]) -> list[int | None]:
    """Per-sample seeds: config.seed + sample_index, or None (random) when config.seed is None."""
    return [None if config.seed is None else config.seed + k for k in sample_indices]
