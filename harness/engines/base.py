"""The engine interface: one plain completion request in, token ids and text out (issue 3, item 2).

Engines see only ordinary requests; the trie rollout (harness/rollout.py) builds the prompts. Conventions
every adapter follows, so records agree across engines:
- `token_ids` and `text` are the generated tokens only; a matched stop string or stop token is KEPT
  (spec section 1: special tokens stay in the text); the end-of-sequence token is DROPPED (`stop_reason`
  "eos" says it was there).
- `stop_reason` is "stop" (stop string or stop id), "eos", "length" (max_tokens) or "error".
- `logprobs` (when requested) are aligned with `token_ids`: the dropped EOS takes its log probability along.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

STOP_REASONS = ("stop", "eos", "length", "error")


@dataclass
class Request:
    """One plain completion request on token ids."""

    prompt_ids: list[int]
    max_tokens: int
    stop: list[str] = field(default_factory=list)
    """Stop strings; the matched one is kept at the end of the output."""
    stop_token_ids: list[int] = field(default_factory=list)
    """Stop token ids (e.g. a format tag that is one special token); kept in the output."""
    temperature: float = 1.0
    """0 = greedy."""
    top_p: float = 1.0
    top_k: int = -1
    """-1 = off."""
    seed: int | None = None
    """None = random."""
    ignore_eos: bool = False
    """Benchmark workloads: generate exactly max_tokens."""
    logprobs: bool = False
    """Return the log probability of each generated token (Completion.logprobs)."""
    repetition_penalty: float = 1.0
    """> 0; 1.0 = off (vLLM's and transformers' meaning: logits of tokens already in prompt or output
    are divided by it when positive). NPR's engine uses 1.02 inside steps (formats.md section 2.1)."""

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if not self.repetition_penalty > 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")


@dataclass
class Completion:
    """What one request produced, with perf_counter timestamps of submission and finish."""

    token_ids: list[int]
    text: str
    stop_reason: str
    start_s: float
    end_s: float
    error: str | None = None
    logprobs: list[float] | None = None
    """The engine's log probability of each token in `token_ids` (same length): raw model
    log-probabilities, i.e. log-softmax of the logits before temperature, top-p/top-k or any other
    processing (vLLM's default `raw_logprobs`). None when not requested or not available."""


class Engine(Protocol):
    """Any backend: an HF-style `tokenizer`, an async `generate` and `close`."""

    tokenizer: Any

    async def generate(self, request: Request) -> Completion: ...

    def close(self) -> None: ...


def truncate_at_stop(
    token_ids: list[int], tokenizer, request: Request, eos_ids: set[int] | frozenset[int] = frozenset()
) -> tuple[list[int], str]:
    """Cut generated ids at the first stop id, stop string, EOS or max_tokens; return (ids, stop_reason).

    Used by engines that generate past a stop (hf, scripted). A stop string is found on the decoded text
    (special tokens kept); the cut is after the token that completes it.
    """
    longest = max((len(s) for s in request.stop), default=0)
    for k, tok in enumerate(token_ids[: request.max_tokens]):
        if tok in eos_ids and not request.ignore_eos:
            return token_ids[:k], "eos"
        if tok in request.stop_token_ids:
            return token_ids[: k + 1], "stop"
        if longest:
            # Each token is at least one character, so a match that ends in token k lies in the last
            # `longest` tokens; the first k whose window holds a match is where the stop string ends.
            tail = tokenizer.decode(token_ids[max(0, k + 1 - longest) : k + 1], skip_special_tokens=False)
            if any(s in tail for s in request.stop):
                return token_ids[: k + 1], "stop"
    if len(token_ids) >= request.max_tokens:
        return token_ids[: request.max_tokens], "length"
    return list(token_ids), "eos"


def eos_ids_of(tokenizer, extra=None) -> set[int]:
    """The tokenizer's EOS id plus any `extra` ids (e.g. from a generation config)."""
    ids = set()
    if getattr(tokenizer, "eos_token_id", None) is not None:
        ids.add(tokenizer.eos_token_id)
    if isinstance(extra, int):
        ids.add(extra)
    elif extra:
        ids.update(extra)
    return ids
