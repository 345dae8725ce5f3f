"""Task doc -> prompt text -> prompt ids: the one prompt encoder (threadweaver.md section 1).

    text = render_prompt(tokenizer, build_prompt(doc["problem"]))   # chat template, generation prompt
    ids = encode_prompt(tokenizer, text)

The paper's prompt is the question followed by one fixed instruction, rendered with the model's chat
template (Qwen3 thinking mode: the model writes `<think>` itself). Evaluation (the lm-eval backend), the
rollout CLI, SFT and the toy task all build prompts here, so a model is trained and evaluated on the same
ids.

    >>> build_prompt("What is 1+1?")
    "What is 1+1? Let's think step by step and output the final answer within \\\\boxed{}."
"""

from __future__ import annotations

PROMPT_SUFFIX = " Let's think step by step and output the final answer within \\boxed{}."


def build_prompt(problem: str) -> str:
    """The user turn: the question, stripped, then the spec's instruction."""
    return problem.strip() + PROMPT_SUFFIX


def doc_to_text(doc: dict) -> str:
    """lm-eval `doc_to_text`: a benchmark doc (`problem` field, see harness.datasets) -> the user turn."""
    return build_prompt(str(doc["problem"]))


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_prompt(tokenizer, user: str | list[dict], chat_template: bool = True) -> str:
    """The prompt text: `user` (a user turn, or a list of chat messages) rendered with the tokenizer's chat
    template and its generation prompt; the plain user text when `chat_template` is False or the tokenizer
    has no template (a list of messages then needs a template)."""
    messages = [{"role": "user", "content": user}] if isinstance(user, str) else list(user)
    if chat_template and has_chat_template(tokenizer):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if isinstance(user, str):
        return user
    if len(messages) == 1 and messages[0].get("role") == "user":
        return str(messages[0]["content"])
    raise ValueError("a conversation of several messages needs a tokenizer with a chat template")


def encode_prompt(tokenizer, text: str) -> list[int]:
    """Ids of a rendered prompt: no special tokens added, except the tokenizer's BOS token in front when
    it has one and the text does not already start with it (what the model saw in training)."""
    ids = list(tokenizer.encode(text, add_special_tokens=False))
    bos, bos_id = getattr(tokenizer, "bos_token", None), getattr(tokenizer, "bos_token_id", None)
    if bos and bos_id is not None and not text.startswith(bos):
        ids = [bos_id, *ids]
    return ids
