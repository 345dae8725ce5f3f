"""lm-eval backend `threadweaver`: every request of a run goes through the trie rollout at once.

    lm_eval --model threadweaver --model_args pretrained=PATH,engine=vllm --tasks threadweaver_math \\
        --include_path tasks --apply_chat_template --output_path out --log_samples

Glue only: prompts come from lm-eval (chat template via the model's tokenizer), samples from
harness.rollout, resume from harness.store; grading and metrics run in the tasks (tasks/utils.py), which
read each sample's statistics from harness.samplestats. `repeats` reach `generate_until` as the same
Instance repeated k times; the j-th copy is sample_index j. Each finished sample is appended to the store
and to the run's trajectory file as it finishes.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from harness import samplestats
from harness.errors import InputError
from harness.rollout import RolloutConfig, run_rollouts
from harness.store import SampleStore, checkpoint_fingerprint, default_store_path, sample_key

log = logging.getLogger(__name__)
GEN_KWARGS = ("until", "max_gen_toks", "do_sample", "temperature", "top_p", "top_k", "seed")
_LM_EVAL_EXTRAS = ("batch_size", "device")  # passed by lm-eval to every model; unused (max_batch_size: hf)
STATS = ("critical_path_tokens", "total_tokens", "self_parallelism", "is_parallel", "valid", "wall_s",
         "engine_calls", "end_reason")  # fmt: skip


@dataclass
class ThreadweaverArgs:
    """`--model_args` of the threadweaver backend."""

    pretrained: str = ""
    """A local path, a hub id, or `zoo:NAME` (harness.zoo)."""
    engine: str = "vllm"
    """vllm, hf or openai (harness.engines)."""
    parallel: bool = True
    """False = the sequential baseline through the same code (tags are text)."""
    join: str = "model"
    """model: the model writes </Parallel>; orchestrator: the rollout appends it (spec section 2)."""
    budget: int | None = None
    """Total tokens per trajectory; None = the task's max_gen_toks (40960 in our tasks)."""
    max_steps: int = 32
    max_threads: int = 50
    seed: int | None = None
    """Sample k uses seed + k (a gen_kwargs seed wins); None = random."""
    dtype: str = "auto"
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    gpu_memory_utilization: float | None = None
    enforce_eager: bool = False
    max_model_len: int | None = None
    base_url: str | None = None
    """openai engine: the server's /v1 URL."""
    store: str | None = None
    """Resume store file; None = ~/.cache/threadweaver/store/<model hash>.jsonl; "none" = off."""
    trajectories: str | None = None
    """Trajectory file (or folder); None = next to --output_path, else ./threadweaver_runs/<time>/."""

    def __post_init__(self) -> None:
        if not self.pretrained:
            raise InputError("model_args: pretrained is required (a path, a hub id or zoo:NAME)")
        checks = [
            ("parallel", isinstance(self.parallel, bool), "true or false"),
            ("budget", self.budget is None or (isinstance(self.budget, int) and self.budget >= 1), "an int >= 1"),
            ("tensor_parallel_size", isinstance(self.tensor_parallel_size, int) and self.tensor_parallel_size >= 1, "an int >= 1"),
            ("data_parallel_size", isinstance(self.data_parallel_size, int) and self.data_parallel_size >= 1, "an int >= 1"),
            ("enforce_eager", isinstance(self.enforce_eager, bool), "true or false"),
        ]  # fmt: skip
        for name, ok, want in checks:
            if not ok:
                raise InputError(f"model_args: {name} must be {want}, got {getattr(self, name)!r}")


def parse_model_args(kwargs: dict) -> ThreadweaverArgs:
    """Validated args; an unknown key fails with a suggestion."""
    known = [f.name for f in fields(ThreadweaverArgs)]
    for key in kwargs:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(known)})"
            raise InputError(f"model_args: unknown key '{key}'{hint}")
    return ThreadweaverArgs(**{k: (str(v) if k in ("pretrained", "store", "trajectories") and v is not None
                                   else v) for k, v in kwargs.items()})  # fmt: skip


def _output_path_from_argv(argv: list[str]) -> str | None:
    """lm-eval's --output_path/-o, read from the command line (lm-eval does not pass it to models)."""
    for i, a in enumerate(argv):
        if a in ("--output_path", "-o") and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--output_path="):
            return a.split("=", 1)[1]
    return None


def trajectory_path(setting: str | None, stamp: str, argv: list[str] | None = None) -> Path:
    """Where this run's trajectory file goes (see ThreadweaverArgs.trajectories)."""
    if setting:
        p = Path(setting).expanduser()
        return p / f"trajectories_{stamp}.jsonl" if p.is_dir() or setting.endswith("/") else p
    out = _output_path_from_argv(sys.argv if argv is None else argv)
    if out:
        p = Path(out).expanduser()
        return (p.parent if p.suffix == ".json" else p) / f"threadweaver_trajectories_{stamp}.jsonl"
    return Path("threadweaver_runs") / stamp / "trajectories.jsonl"


def rollout_settings(gen_kwargs: dict, args: ThreadweaverArgs) -> tuple[RolloutConfig, list[str]]:
    """lm-eval gen_kwargs -> (RolloutConfig, extra stop strings). `do_sample: false` means greedy."""
    kw = dict(gen_kwargs or {})
    unknown = sorted(set(kw) - set(GEN_KWARGS))
    if unknown:
        raise InputError(f"gen_kwargs: unsupported {', '.join(unknown)} (supported: {', '.join(GEN_KWARGS)})")
    until = kw.get("until") or []
    until = [until] if isinstance(until, str) else list(until)
    temperature = float(kw.get("temperature", 1.0))
    if kw.get("do_sample") is False:
        temperature = 0.0
    seed = kw.get("seed", args.seed)
    config = RolloutConfig(
        parallel=args.parallel, join=args.join, budget_tokens=int(args.budget or kw.get("max_gen_toks", 40960)),
        max_steps=args.max_steps, max_threads=args.max_threads, temperature=temperature,
        top_p=float(kw.get("top_p", 1.0)), top_k=int(kw.get("top_k", -1)), seed=None if seed is None else int(seed),
    )  # fmt: skip
    return config, until


def cut_at_stops(text: str, until: list[str]) -> str:
    """The response as lm-eval expects it: the text before the first stop string."""
    for s in until:
        if s and s in text:
            text = text.split(s, 1)[0]
    return text


@register_model("threadweaver")
class ThreadweaverLM(LM):
    """ThreadWeaver models through the trie rollout. `engine` may also be a built Engine object."""

    def __init__(self, engine="vllm", tokenizer=None, **kwargs) -> None:
        super().__init__()
        for k in _LM_EVAL_EXTRAS:
            kwargs.pop(k, None)
        self._engine = None if isinstance(engine, str) else engine
        max_batch_size = kwargs.pop("max_batch_size", None)  # lm-eval's --max_batch_size: the hf engine's batch
        self._engine_extra = {"max_batch_size": int(max_batch_size)} if max_batch_size else {}
        self.args = parse_model_args({**kwargs, "engine": engine if isinstance(engine, str) else "object"})
        self.path = self.args.pretrained
        if self.path.startswith("zoo:"):
            from harness.zoo import resolve_pretrained

            self.path = resolve_pretrained(self.path)[0]
        if tokenizer is None and self._engine is not None:
            tokenizer = self._engine.tokenizer
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.tokenizer = tokenizer
        self.model_key = {k: getattr(self.args, k) for k in ("engine", "parallel", "join", "max_steps",
                                                              "max_threads", "dtype")}  # fmt: skip
        self.model_key["pretrained"] = self.path
        self.model_key["checkpoint"] = checkpoint_fingerprint(self.path)  # retrained in place: new samples
        off = self.args.store is not None and self.args.store.lower() == "none"
        self.store = None if off else SampleStore(self.args.store or default_store_path(self.model_key))
        self.trajectories = trajectory_path(self.args.trajectories, time.strftime("%Y%m%dT%H%M%S"))

    # ---------------------------------------------------------------------------- engine and chat template
    @property
    def engine(self):
        """The engine, built on first use (a fully resumed run never starts one)."""
        if self._engine is None:
            import inspect

            from harness.engines import engine_class

            cls = engine_class(self.args.engine)
            a = self.args
            wanted = dict(model=self.path, dtype=None if a.dtype == "auto" else a.dtype, tensor_parallel_size=a.tensor_parallel_size,
                          data_parallel_size=a.data_parallel_size, gpu_memory_utilization=a.gpu_memory_utilization,
                          enforce_eager=a.enforce_eager, max_model_len=a.max_model_len, base_url=a.base_url,
                          seed=a.seed, **self._engine_extra)  # fmt: skip
            params = inspect.signature(cls).parameters
            takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
            kw = {k: v for k, v in wanted.items() if v is not None and (takes_all or k in params)}
            log.info("threadweaver: starting engine %s with %s", self.args.engine, kw)
            self._engine = cls(**kw)
            self._owns_engine = True
        return self._engine

    def close(self) -> None:
        if self._engine is not None and getattr(self, "_owns_engine", False):
            self._engine.close()
            self._engine = None
        if self.store is not None:
            self.store.close()

    @property
    def tokenizer_name(self) -> str:
        return self.path.replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        return getattr(self.tokenizer, "chat_template", None)

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The model tokenizer's own chat template (spec section 1: Qwen3 thinking mode by default)."""
        return self.tokenizer.apply_chat_template(
            chat_history, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    # ------------------------------------------------------------------------------------------- requests
    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise InputError("threadweaver backend only supports generate_until tasks (got loglikelihood)")

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise InputError("threadweaver backend only supports generate_until tasks (got loglikelihood_rolling)")

    def _prompt_ids(self, context: str) -> list[int]:
        tok = self.tokenizer
        ids = tok(context, add_special_tokens=False)["input_ids"]
        bos = getattr(tok, "bos_token", None)
        if bos and tok.bos_token_id is not None and not context.startswith(bos):
            ids = [tok.bos_token_id, *ids]
        return ids

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """One response per request; all unfinished samples run at once (one rollout per config)."""
        seen: dict[int, int] = {}
        samples, todo = [], {}  # todo: config json -> (config, [sample positions])
        for req in requests:
            k = seen[id(req)] = seen.get(id(req), -1) + 1
            context, gen_kwargs = req.args[0], req.args[1]
            config, until = rollout_settings(gen_kwargs, self.args)
            seed = None if config.seed is None else config.seed + k
            sampling = {**asdict(config), "until": until, "seed": seed}
            for noise in ("retries", "retry_backoff_s"):
                sampling.pop(noise)
            key = sample_key(model=self.model_key, prompt=context, sample_index=k, sampling=sampling)
            doc = req.doc or {}
            meta = {"task": req.task_name, "benchmark": doc.get("benchmark"), "doc_id": req.doc_id,
                    "problem_id": doc.get("id"), "sample_index": k, "gold": doc.get("answer"),
                    "grading": doc.get("grading"),
                    "prompt_hash": hashlib.sha256(context.encode()).hexdigest()}  # lm-eval's prompt_hash
            samples.append({"req": req, "key": key, "until": until, "seed": seed, "meta": meta, "record": None})
            cached = self.store.get(key) if self.store is not None else None
            if cached is not None:
                samples[-1]["record"] = cached
            else:
                group = todo.setdefault(json.dumps(asdict(config), sort_keys=True), (config, []))
                group[1].append(len(samples) - 1)
        reused = len(samples) - sum(len(p) for _, p in todo.values())
        log.info("threadweaver: %d samples, %d from the store, %d to generate", len(samples), reused,
                 len(samples) - reused)  # fmt: skip
        self.trajectories.parent.mkdir(parents=True, exist_ok=True)
        with open(self.trajectories, "a", encoding="utf-8") as traj:
            for s in samples:
                if s["record"] is not None:
                    self._write(traj, s, cached=True)
            if todo:
                engine = self.engine  # built outside the event loop
                asyncio.run(self._run(engine, todo, samples, traj))
        if getattr(self, "_owns_engine", False):  # free the engine before lm-eval grades
            self._engine.close()
            self._engine = None
        return [self._finish(s) for s in samples]

    async def _run(self, engine, todo: dict, samples: list[dict], traj) -> None:
        async def one_group(config: RolloutConfig, positions: list[int]) -> None:
            def on_record(i: int, rec) -> None:
                s = samples[positions[i]]
                s["record"] = {k: v for k, v in rec.to_dict().items() if k != "prompt_ids"}
                if self.store is not None:
                    self.store.put(s["key"], s["record"])
                self._write(traj, s, cached=False)

            prompts = [self._prompt_ids(samples[p]["req"].args[0]) for p in positions]
            seeds = [samples[p]["seed"] for p in positions]
            await run_rollouts(engine, prompts, config, seeds=seeds, on_record=on_record)

        await asyncio.gather(*(one_group(c, p) for c, p in todo.values()))

    def _write(self, traj, s: dict, cached: bool) -> None:
        row = {**s["meta"], "response": cut_at_stops(s["record"]["text"], s["until"]), "cached": cached,
               **s["record"]}  # fmt: skip
        traj.write(json.dumps(row, ensure_ascii=False) + "\n")
        traj.flush()

    def _finish(self, s: dict) -> str:
        rec = s["record"]
        response = cut_at_stops(rec["text"], s["until"])
        stats = {k: rec.get(k) for k in STATS}
        stats["violations"] = len(rec.get("violations") or []) + len(rec.get("faults") or [])
        samplestats.record(s["req"].doc or {}, response, stats)
        return response
