"""The exact text the trie rollout inserts between engine requests (spec section 2, steps 3-5).

The rollout and the SFT packer both import these, so a training unit sees exactly the prompt that the
rollout sends at inference. All functions work on text pieces; callers tokenise each piece on its own
(tags are single special tokens, so the pieces meet at token boundaries).

Example, two outlines, join mode "model":
    context                      = "...<Outlines>...</Outlines>"
    thread 1 request prompt      = context + "\\n<Thread>\\n1:"      -> completion " a</Thread>"
    thread 2 request prompt      = context + "\\n<Thread>\\n2:"      -> completion " b</Thread>"
    next sequential prompt       = context + "\\n<Thread>\\n1: a</Thread><Thread>\\n2: b</Thread>" + "\\n"
and the model then writes "</Parallel>" itself. In join mode "orchestrator" the close is "\\n</Parallel>".
"""

from __future__ import annotations

from harness.trajectory import PARALLEL_CLOSE, THREAD_CLOSE, THREAD_OPEN

JOIN_MODES = ("model", "orchestrator")


def thread_request_suffix(number: str) -> str:
    """Appended to the context to form thread `number`'s request prompt (step 3)."""
    return f"\n{THREAD_OPEN}\n{number}:"


def joined_thread_prefix(number: str, first: bool) -> str:
    """What precedes thread `number`'s completion in the joined context (step 4)."""
    return f"\n{THREAD_OPEN}\n{number}:" if first else f"{THREAD_OPEN}\n{number}:"


def close_thread(completion_text: str) -> str:
    """A thread that stopped without `</Thread>` (budget, end of sequence) is closed (step 4)."""
    return completion_text if completion_text.endswith(THREAD_CLOSE) else completion_text + THREAD_CLOSE


def block_close(join: str) -> str:
    """Appended after the last thread (step 5): the model closes the block, or the orchestrator does."""
    if join == "model":
        return "\n"
    if join == "orchestrator":
        return f"\n{PARALLEL_CLOSE}"
    raise ValueError(f"join must be one of {JOIN_MODES}, got {join!r}")


def join_block(thread_completions: list[tuple[str, str]], join: str) -> str:
    """Text appended to the context after a parallel step: `(number, completion_text)` in outline order."""
    parts = [
        joined_thread_prefix(number, first=(k == 0)) + close_thread(text)
        for k, (number, text) in enumerate(thread_completions)
    ]
    return "".join(parts) + block_close(join)
