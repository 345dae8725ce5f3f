"""transformers adapter: batched `generate` on CPU or GPU.

Requests queue up; a collector takes everything queued, groups it by sampling settings, and runs each
group as one left-padded batch in a worker thread. Each row stops on its own (stop ids, stop strings,
EOS, its max_tokens) through a per-row stopping criterion, and is cut there afterwards
(harness.engines.base.truncate_at_stop). transformers samples from one global generator, so a batch
uses the seed of its first request; greedy decoding (temperature 0) is exact.

Log probabilities (Request.logprobs) are taken from the model's raw logits at each decoding step (a
forward hook; generate's `output_logits` would keep steps x rows x vocab floats), before any logits
processor, temperature or top-p/top-k, and gathered at the token the step appended.
"""

from __future__ import annotations

import asyncio
import time

from harness.engines.base import Completion, Request, eos_ids_of, truncate_at_stop


class HFEngine:
    """`HFEngine(model, device="cpu", dtype="float32", max_batch_size=64)`."""

    def __init__(self, model: str, *, tokenizer: str | None = None, device: str = "cpu", dtype: str = "float32",
                 max_batch_size: int = 64) -> None:  # fmt: skip
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        loaded = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype).to(device).eval()
        self._setup(loaded, AutoTokenizer.from_pretrained(tokenizer or model), device, max_batch_size)

    @classmethod
    def from_model(cls, model, tokenizer, *, device=None, max_batch_size: int = 64) -> HFEngine:
        """An engine over a model object already in memory (the RL policy serves its own rollouts: every
        request sees the current weights, nothing to sync). The caller keeps it in eval mode while rolling out."""
        engine = cls.__new__(cls)
        engine._setup(model, tokenizer, device or str(next(model.parameters()).device), max_batch_size)
        return engine

    def _setup(self, model, tokenizer, device: str, max_batch_size: int) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.device = device
        self.max_batch_size = max_batch_size
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        self._eos = eos_ids_of(self.tokenizer, gen_eos)
        self._pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(self._eos)
        self._queue: list[tuple[Request, asyncio.Future, float]] = []
        self._worker: asyncio.Task | None = None

    async def generate(self, request: Request) -> Completion:
        fut = asyncio.get_running_loop().create_future()
        self._queue.append((request, fut, time.perf_counter()))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let every request submitted in this turn of the loop join the batch
        while self._queue:
            key = _sampling_key(self._queue[0][0])
            batch = [q for q in self._queue if _sampling_key(q[0]) == key][: self.max_batch_size]
            self._queue = [q for q in self._queue if all(q is not b for b in batch)]
            try:
                rows = await asyncio.to_thread(self._run, [r for r, _, _ in batch])
            except Exception as exc:  # the engine error goes to each request of the batch
                for _, fut, _ in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            end = time.perf_counter()
            for (req, fut, start), (ids, logprobs) in zip(batch, rows, strict=True):
                ids, reason = truncate_at_stop(ids, self.tokenizer, req, self._eos)
                text = self.tokenizer.decode(ids, skip_special_tokens=False)
                logprobs = logprobs[: len(ids)] if req.logprobs else None
                if not fut.done():
                    fut.set_result(Completion(ids, text, reason, start, end, logprobs=logprobs))

    def _run(self, reqs: list[Request]) -> list[tuple[list[int], list[float]]]:
        """Generated ids of each row, with their log probabilities when a request asked (else [])."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        width = max(len(r.prompt_ids) for r in reqs)
        input_ids = torch.tensor([[self._pad] * (width - len(r.prompt_ids)) + r.prompt_ids for r in reqs])
        mask = torch.tensor([[0] * (width - len(r.prompt_ids)) + [1] * len(r.prompt_ids) for r in reqs])
        tok, eos = self.tokenizer, self._eos
        want_logprobs = any(r.logprobs for r in reqs)
        step_logprobs: list[torch.Tensor] = []  # per step: (rows,) log prob of the token it appended
        last = {}

        def keep_logits(module, args, output):  # the model's raw last-position logits of this step
            last["logprobs"] = torch.log_softmax(output.logits[:, -1, :].float(), dim=-1)

        class RowStop(StoppingCriteria):  # True per row once that row has stopped
            def __call__(self, ids, scores, **kwargs):
                if want_logprobs:  # called once per step, after the step appended its token
                    step_logprobs.append(last.pop("logprobs").gather(1, ids[:, -1:]).squeeze(1).cpu())
                done = []
                for row, r in zip(ids[:, width:].tolist(), reqs, strict=True):
                    cut, reason = truncate_at_stop(row, tok, r, eos)
                    done.append(reason in ("stop", "length") or len(cut) < len(row))
                return torch.tensor(done, device=ids.device)

        r0 = reqs[0]
        kwargs = {"do_sample": r0.temperature > 0}
        if r0.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = r0.repetition_penalty
        if r0.temperature > 0:
            kwargs.update(temperature=r0.temperature, top_p=r0.top_p, top_k=r0.top_k if r0.top_k > 0 else 0)
            if r0.seed is not None:
                torch.manual_seed(r0.seed)
        hook = self.model.register_forward_hook(keep_logits) if want_logprobs else None
        try:
            with torch.no_grad():
                out = self.model.generate(
                    input_ids=input_ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    max_new_tokens=max(r.max_tokens for r in reqs),
                    stopping_criteria=StoppingCriteriaList([RowStop()]),
                    eos_token_id=None if r0.ignore_eos else sorted(eos),
                    pad_token_id=self._pad,
                    **kwargs,
                )
        finally:
            if hook is not None:
                hook.remove()
        rows = out[:, width:].tolist()
        if not want_logprobs:
            return [(row, []) for row in rows]
        table = torch.stack(step_logprobs, dim=1).tolist()  # (rows, steps); steps = generated length
        return list(zip(rows, table, strict=True))

    def close(self) -> None:
        self.model = None


def _sampling_key(r: Request) -> tuple:
    return (r.temperature, r.top_p, r.top_k, r.ignore_eos, r.repetition_penalty)
