"""A scripted engine for exact tests: replays given completions token by token.

`responses` maps a prompt (its decoded text, special tokens kept) to the text the "model" writes from
there to its end of sequence; a callable `prompt_text -> str` works too, and may raise to simulate an
engine error. A request replays the tokens of that text, honouring stop strings, stop ids and max_tokens
exactly as a real engine would (harness.engines.base conventions). An unknown prompt is an engine error.
The script is the whole model and it is certain: requested log probabilities are 0.0 for every token.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

from harness.engines.base import Completion, Request, eos_ids_of, truncate_at_stop


class ScriptedEngine:
    """Replays `responses`; every request is logged in `self.requests` (with `self.prompts` as text)."""

    def __init__(
        self,
        responses: dict[str, str] | Callable[[str], str] | str | Path,
        tokenizer=None,
        *,
        model: str | None = None,
        delay_s: float = 0.0,
    ) -> None:
        if isinstance(responses, (str, Path)):  # a JSON file {prompt_text: completion_text}
            responses = json.loads(Path(responses).read_text(encoding="utf-8"))
        if tokenizer is None:
            from harness.tokenizer import build_char_tokenizer

            tokenizer = build_char_tokenizer()
        elif isinstance(tokenizer, (str, Path)):  # a tokenizer folder or hub id
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        self.tokenizer = tokenizer
        self.responses = responses
        self.delay_s = delay_s
        self.requests: list[Request] = []
        self.prompts: list[str] = []
        self._eos = eos_ids_of(tokenizer)

    def _script(self, prompt: str) -> str:
        if callable(self.responses):
            return self.responses(prompt)
        if prompt in self.responses:
            return self.responses[prompt]
        if "*" in self.responses:
            return self.responses["*"]
        raise KeyError(f"no scripted completion for prompt ending {prompt[-60:]!r}")

    async def generate(self, request: Request) -> Completion:
        start = time.perf_counter()
        prompt = self.tokenizer.decode(request.prompt_ids, skip_special_tokens=False)
        self.requests.append(request)
        self.prompts.append(prompt)
        await asyncio.sleep(self.delay_s)  # yield, so that gathered requests are in flight together
        ids = self.tokenizer.encode(self._script(prompt), add_special_tokens=False)
        ids, reason = truncate_at_stop(ids, self.tokenizer, request, self._eos)
        text = self.tokenizer.decode(ids, skip_special_tokens=False)
        logprobs = [0.0] * len(ids) if request.logprobs else None
        return Completion(ids, text, reason, start, time.perf_counter(), logprobs=logprobs)

    def close(self) -> None:
        pass
