"""The harness engine protocol (harness/engines/base.py) over verl's server manager (rl.md section 3.1).

    engine = ServerManagerEngine(self.server_manager, self.tokenizer, request_id=uuid4().hex)
    records = await run_rollouts(engine, [prompt_ids], rollout_config)

The trie rollout (harness/rollout.py) then drives verl's vLLM replicas exactly as it drives our own
engines. What the adapter has to undo (rl.md section 3.3):
- vLLM's `finish_reason` "stop" and "length" both arrive as `stop_reason="completed"` (gotcha 1): the
  reason is recovered from the tokens with `truncate_at_stop`, the same rule the hf and scripted engines
  use (a stop id or stop string ends the output: "stop"; an end-of-sequence id: "eos", dropped; max_tokens
  reached: "length"). The rollout never asks for more than the model's context (its
  `max_context_tokens` = verl's `max_model_len`), so verl's clamp of `max_tokens` (gotcha 8) never cuts.
- One `request_id` for every request of a trajectory (gotcha 9): all its units go to one replica and
  share its prefix cache.
- The dropped end-of-sequence token keeps its log probability here (`eos_logprob`), so the row that
  trains it (harness.pgrpo.units_to_rows appends it) carries the sampler's value.
No verl import: the adapter needs only an object with verl's `generate(request_id, *, prompt_ids,
sampling_params)` returning `token_ids`, `log_probs`, `stop_reason`.
"""

from __future__ import annotations

import time

from harness.engines.base import Completion, Request, eos_ids_of, truncate_at_stop


class ServerManagerEngine:
    """A harness engine over verl's `LLMServerClient` (agent loops get it as `self.server_manager`).

    `sampling_params` are verl's per-run parameters (they carry e.g. `repetition_penalty`); each request's
    own settings (max_tokens, stops, temperature, top_p, top_k, seed, logprobs) replace them. `eos_ids`:
    the ids that end generation (default: the tokenizer's EOS)."""

    def __init__(self, server_manager, tokenizer, request_id: str, sampling_params: dict | None = None,
                 eos_ids=None) -> None:  # fmt: skip
        self.server_manager = server_manager
        self.tokenizer = tokenizer
        self.request_id = request_id
        self.base = {k: v for k, v in (sampling_params or {}).items() if k != "logprobs"}
        self.eos_ids = set(eos_ids) if eos_ids else eos_ids_of(tokenizer)
        self.eos_logprob: dict[tuple[int, ...], float] = {}
        """Log probability of a dropped EOS, keyed by the ids before it (request prompt + completion)."""
        self.global_steps: list[int | None] = []
        """verl's weight version of each request (staleness tags of the rows)."""

    def params(self, r: Request) -> dict:
        """vLLM SamplingParams keywords of one request (verl passes them to `SamplingParams(**...)`)."""
        p = dict(self.base)
        p.update(max_tokens=r.max_tokens, temperature=r.temperature, top_p=r.top_p,
                 top_k=r.top_k if r.top_k > 0 else -1, repetition_penalty=r.repetition_penalty,
                 ignore_eos=r.ignore_eos, logprobs=r.logprobs, skip_special_tokens=False,
                 spaces_between_special_tokens=False, include_stop_str_in_output=True)  # fmt: skip
        if r.stop:
            p["stop"] = list(r.stop)
        if r.stop_token_ids:
            p["stop_token_ids"] = list(r.stop_token_ids)
        if r.seed is not None:
            p["seed"] = r.seed
        return p

    async def generate(self, request: Request) -> Completion:
        start = time.perf_counter()
        out = await self.server_manager.generate(self.request_id, prompt_ids=list(request.prompt_ids),
                                                 sampling_params=self.params(request))  # fmt: skip
        self.global_steps.append((getattr(out, "extra_fields", None) or {}).get("global_steps"))
        if out.stop_reason == "aborted":
            return Completion([], "", "error", start, time.perf_counter(), error="request aborted by verl")
        raw = list(out.token_ids)
        ids, reason = truncate_at_stop(raw, self.tokenizer, request, self.eos_ids)
        logprobs = None
        if request.logprobs and out.log_probs is not None:
            logprobs = [float(x) for x in out.log_probs[: len(ids)]]
            if reason == "eos" and len(raw) > len(ids) and len(out.log_probs) > len(ids):
                self.eos_logprob[tuple(request.prompt_ids) + tuple(ids)] = float(out.log_probs[len(ids)])
        text = self.tokenizer.decode(ids, skip_special_tokens=False)
        return Completion(ids, text, reason, start, time.perf_counter(), logprobs=logprobs)

    def close(self) -> None:
        pass
