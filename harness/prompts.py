"""Task doc -> prompt text (spec section 1).

The paper's prompt is the question followed by one fixed instruction; the chat template (Qwen3 thinking
mode: the model writes `<think>` itself) is applied by lm-eval's `--apply_chat_template` through the model's
tokenizer, not here.

    >>> build_prompt("What is 1+1?")
    "What is 1+1? Let's think step by step and output the final answer within \\\\boxed{}."
"""

from __future__ import annotations

PROMPT_SUFFIX = " Let's think step by step and output the final answer within \\boxed{}."


def build_prompt(problem: str) -> str:
    """The question, stripped, then the spec's instruction."""
    return problem.strip() + PROMPT_SUFFIX


def doc_to_text(doc: dict) -> str:
    """lm-eval `doc_to_text`: a benchmark doc (`problem` field, see harness.datasets) -> prompt text."""
    return build_prompt(str(doc["problem"]))
