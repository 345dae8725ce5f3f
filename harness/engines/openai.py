"""Any OpenAI-compatible `/v1/completions` server (vLLM's, SGLang's, others) over httpx.

Prompts go as token-id lists (vLLM and SGLang accept a list of ints). Sent along: `skip_special_tokens:
false`, `include_stop_str_in_output: true`, `stop_token_ids`, `top_k`, `ignore_eos` and
`return_token_ids: true` (vLLM's extensions; set `vllm_extras=False` for a server that refuses unknown
fields). Generated ids come back from the server where it returns them (`token_ids` of the choice);
otherwise the text is re-tokenised with the local tokenizer (may differ from the ids the server sampled
for BPE tokenizers; format tags stay exact). A server that strips the matched stop string gets it
re-appended (from the choice's `stop_reason`). The API key is read from an environment variable and never
logged. Log probabilities (Request.logprobs) are the completions API's `logprobs.token_logprobs` (vLLM
returns raw model log-probabilities by default); None where they do not line up with the token ids.
"""

from __future__ import annotations

import asyncio
import os
import time

from harness.engines.base import Completion, Request, eos_ids_of


class OpenAIEngine:
    """`OpenAIEngine(model, base_url="http://127.0.0.1:8000/v1", tokenizer=None, ...)`."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str = "http://127.0.0.1:8000/v1",
        tokenizer: str | None = None,
        served_model_name: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        request_timeout_s: float = 600.0,
        http_retries: int = 3,
        http_backoff_s: float = 1.0,
        max_concurrency: int = 64,
        vllm_extras: bool = True,
    ) -> None:
        import httpx
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer or model)
        self.model_name = served_model_name or model
        self.url = base_url.rstrip("/") + "/completions"
        self.http_retries, self.http_backoff_s, self.vllm_extras = http_retries, http_backoff_s, vllm_extras
        key = os.environ.get(api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client_args = {"headers": headers, "timeout": httpx.Timeout(request_timeout_s)}
        self._clients: dict[int, httpx.AsyncClient] = {}  # one per event loop
        self._max_concurrency = max_concurrency
        self._sems: dict[int, asyncio.Semaphore] = {}
        self._eos = eos_ids_of(self.tokenizer)

    def _client(self):
        import httpx

        loop = id(asyncio.get_running_loop())
        if loop not in self._clients:
            self._clients[loop] = httpx.AsyncClient(**self._client_args)
            self._sems[loop] = asyncio.Semaphore(self._max_concurrency)
        return self._clients[loop], self._sems[loop]

    def _body(self, r: Request) -> dict:
        body = {"model": self.model_name, "prompt": list(r.prompt_ids), "max_tokens": r.max_tokens,
                "temperature": r.temperature, "top_p": r.top_p, "stop": list(r.stop) or None}  # fmt: skip
        if r.seed is not None:
            body["seed"] = r.seed
        if r.logprobs:
            body["logprobs"] = 0  # the sampled token's log probability only
        if self.vllm_extras:
            body.update(skip_special_tokens=False, spaces_between_special_tokens=False,
                        include_stop_str_in_output=True, return_token_ids=True, ignore_eos=r.ignore_eos,
                        stop_token_ids=list(r.stop_token_ids) or None, top_k=r.top_k)  # fmt: skip
            if r.repetition_penalty != 1.0:
                body["repetition_penalty"] = r.repetition_penalty
        elif r.repetition_penalty != 1.0:
            raise ValueError("repetition_penalty needs a vLLM server (vllm_extras); the plain API has none")
        return body

    async def _post(self, body: dict) -> dict:
        import httpx

        client, sem = self._client()
        last: Exception | None = None
        for attempt in range(self.http_retries + 1):
            if attempt:
                await asyncio.sleep(self.http_backoff_s * 2 ** (attempt - 1))
            try:
                async with sem:
                    resp = await client.post(self.url, json=body)
                if resp.status_code < 500 and resp.status_code != 429:
                    resp.raise_for_status()  # a 4xx is our request's fault: no retry
                    return resp.json()
                last = RuntimeError(f"server answered {resp.status_code}: {resp.text[:200]}")
            except httpx.TransportError as exc:  # connection refused/reset, timeouts
                last = exc
        raise RuntimeError(f"{self.url}: {type(last).__name__}: {last}")

    async def generate(self, request: Request) -> Completion:
        start = time.perf_counter()
        choice = (await self._post(self._body(request)))["choices"][0]
        text = choice.get("text") or ""
        stop = choice.get("stop_reason")
        if isinstance(stop, str) and stop and not text.endswith(stop):
            text += stop  # the server stripped the matched stop string
        ids = choice.get("token_ids")
        if ids is None:  # server without token ids: re-tokenise (documented in the module docstring)
            ids = self.tokenizer.encode(text, add_special_tokens=False)
        ids = list(ids)
        logprobs = _token_logprobs(choice, len(ids)) if request.logprobs else None
        if choice.get("finish_reason") == "length":
            reason = "length"
        elif stop is None and request.stop_token_ids and ids and ids[-1] in request.stop_token_ids:
            reason = "stop"
        elif stop is None:
            reason = "eos"
            if ids and ids[-1] in self._eos and not request.ignore_eos:
                ids = ids[:-1]
                logprobs = logprobs[:-1] if logprobs is not None else None
        else:
            reason = "stop"
            if isinstance(stop, int) and (not ids or ids[-1] != stop):
                ids.append(stop)  # a stop token id the server left out (its log probability is unknown)
                logprobs = None
        text = self.tokenizer.decode(ids, skip_special_tokens=False)
        return Completion(ids, text, reason, start, time.perf_counter(), logprobs=logprobs)

    def close(self) -> None:
        self._clients.clear()


def _token_logprobs(choice: dict, n_ids: int) -> list[float] | None:
    """The choice's per-token log probabilities when there is one number per generated id, else None."""
    values = (choice.get("logprobs") or {}).get("token_logprobs")
    if not isinstance(values, list) or len(values) != n_ids:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None
    return [float(v) for v in values]
