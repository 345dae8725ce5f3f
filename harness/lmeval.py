"""lm-eval backend `threadweaver`: every request of a run goes through the trie rollout at once.

    lm_eval --model threadweaver --model_args pretrained=PATH,engine=vllm --tasks threadweaver_math \\
        --output_path out --log_samples

Glue only: prompts come from lm-eval (the model's chat template is applied here when lm-eval did not apply
it, threadweaver.md section 1), samples from harness.rollout, grades from the task's rule
(harness.grading), resume from harness.store. `repeats` reach `generate_until` as the same Instance
repeated k times; the j-th copy is sample_index j. Each finished sample is graded, then appended to the
store and to the run's sample-record file (harness/records.py) as it finishes; the tasks' metrics
(tasks/utils.py) read each sample's record back through harness.samplestats.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from harness import samplestats
from harness.errors import InputError
from harness.model_args import ThreadweaverArgs, parse_model_args, preset_of, rollout_settings
from harness.presets import preset_messages, preset_rule
from harness.records import RECORD_VERSION, RecordWriter, RunHeader, SampleRecord, record_from_dict
from harness.rollout import RolloutConfig, run_rollouts
from harness.store import SampleStore, checkpoint_fingerprint, default_store_path, sample_key

log = logging.getLogger(__name__)
_LM_EVAL_EXTRAS = ("batch_size", "device")  # passed by lm-eval to every model; unused (max_batch_size: hf)


def _output_path_from_argv(argv: list[str]) -> str | None:
    """lm-eval's --output_path/-o, read from the command line (lm-eval does not pass it to models)."""
    for i, a in enumerate(argv):
        if a in ("--output_path", "-o") and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--output_path="):
            return a.split("=", 1)[1]
    return None


def trajectory_path(setting: str | None, stamp: str, argv: list[str] | None = None) -> Path:
    """Where this run's sample-record file goes (see ThreadweaverArgs.trajectories)."""
    if setting:
        p = Path(setting).expanduser()
        return p / f"trajectories_{stamp}.jsonl" if p.is_dir() or setting.endswith("/") else p
    out = _output_path_from_argv(sys.argv if argv is None else argv)
    if out:
        p = Path(out).expanduser()
        return (p.parent if p.suffix == ".json" else p) / f"threadweaver_trajectories_{stamp}.jsonl"
    return Path("threadweaver_runs") / stamp / "trajectories.jsonl"


def cut_at_stops(text: str, until: list[str]) -> str:
    """The response as lm-eval expects it: the text before the first stop string."""
    for s in until:
        if s and s in text:
            text = text.split(s, 1)[0]
    return text


def _fail(exc: InputError):
    """A user error inside lm-eval: one line and exit 2, not lm-eval's traceback."""
    print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(2)


@register_model("threadweaver")
class ThreadweaverLM(LM):
    """ThreadWeaver models through the trie rollout. `engine` may also be a built Engine object."""

    def __init__(self, engine="vllm", tokenizer=None, **kwargs) -> None:
        super().__init__()
        try:
            self._setup(engine, tokenizer, kwargs)
        except InputError as exc:
            if isinstance(engine, str):  # the lm_eval CLI: one line, exit 2
                _fail(exc)
            raise

    def _setup(self, engine, tokenizer, kwargs: dict) -> None:
        from harness.engines.args import EngineArgs
        from harness.zoo import resolve_pretrained

        for k in _LM_EVAL_EXTRAS:
            kwargs.pop(k, None)
        self._engine = None if isinstance(engine, str) else engine
        max_batch_size = kwargs.pop("max_batch_size", None)  # lm-eval's --max_batch_size: the hf engine's batch
        self.args, engine_kw = parse_model_args(kwargs)
        self.path, self.zoo = resolve_pretrained(self.args.pretrained)
        if isinstance(engine, str):
            if engine == "hf" and max_batch_size:
                engine_kw.setdefault("max_batch_size", int(max_batch_size))
            self.engine_args = EngineArgs.from_mapping({**engine_kw, "engine": engine, "model": self.path})
            from harness.engines import engine_class

            engine_class(engine)  # unknown engine or missing package: an InputError before anything loads
        else:
            self.engine_args = EngineArgs(engine="scripted", model=self.path)
        if self._engine is None and _looks_local(self.path) and not Path(self.path).expanduser().exists():
            raise InputError(f"model_args: pretrained {self.path} does not exist")
        if tokenizer is None and self._engine is not None:
            tokenizer = self._engine.tokenizer
        if tokenizer is None:
            tokenizer = _load_tokenizer(self.path)
        self.tokenizer = tokenizer
        self._templated = False  # lm-eval called apply_chat_template (its --apply_chat_template)
        self._said_template = False
        self.model_key = {"engine": self.engine_args.engine, "dtype": self.engine_args.dtype, "pretrained": self.path,
                          "checkpoint": checkpoint_fingerprint(self.path), "record_version": RECORD_VERSION}
        off = self.args.store is not None and self.args.store.lower() == "none"
        self.store = None if off else SampleStore(self.args.store or default_store_path(self.model_key))
        self.trajectories = trajectory_path(self.args.trajectories, time.strftime("%Y%m%dT%H%M%S"))

    # ---------------------------------------------------------------------------- engine and chat template
    @property
    def engine(self):
        """The engine, built on first use (a fully resumed run never starts one)."""
        if self._engine is None:
            log.info("threadweaver: starting engine with %s", self.engine_args.non_defaults())
            self._engine = self.engine_args.build()
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
        """The model tokenizer's own chat template (threadweaver.md section 1: Qwen3 thinking mode)."""
        self._templated = True
        return self.tokenizer.apply_chat_template(
            chat_history, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def _prompt(self, context: str, preset=None, doc: dict | None = None) -> str:
        """The prompt as sent: the preset's own prompt built from the doc, else lm-eval's context, rendered
        with the chat template if lm-eval did not."""
        from harness.prompts import has_chat_template, render_prompt

        messages = None if preset is None else preset_messages(preset, doc or {})
        if messages is not None:
            if not getattr(self, "_said_preset", False):
                print(f"threadweaver: preset {preset.name}: prompts are its paper's ({preset.source}), built from "
                      "each doc's problem; the task's prompt is not used", file=sys.stderr)  # fmt: skip
                self._said_preset = True
            return render_prompt(self.tokenizer, messages, self.args.chat_template)
        if self._templated or not self.args.chat_template or not has_chat_template(self.tokenizer):
            return context
        if not self._said_template:
            print("threadweaver: applying the model's chat template (lm-eval's --apply_chat_template was not "
                  "given; model_args chat_template=false turns this off)", file=sys.stderr)  # fmt: skip
            self._said_template = True
        return render_prompt(self.tokenizer, context)

    # ------------------------------------------------------------------------------------------- requests
    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise InputError("threadweaver backend only supports generate_until tasks (got loglikelihood)")

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise InputError("threadweaver backend only supports generate_until tasks (got loglikelihood_rolling)")

    def _run_header(self, config: RolloutConfig) -> RunHeader:
        from harness.store import harness_version, package_version
        from harness.tokens import count_unit

        ea = self.engine_args
        engine_pkg = {"vllm": "vllm", "hf": "transformers", "openai": "httpx"}.get(ea.engine)
        return RunHeader(
            format=config.format, rollout=config.to_dict(), engine=ea.engine,
            engine_version=package_version(engine_pkg) if engine_pkg else None, dtype=ea.dtype,
            model=self.path, model_fingerprint=self.model_key["checkpoint"],
            zoo_name=None if self.zoo is None else self.zoo.name, count_unit=count_unit(self.tokenizer),
            harness_version=harness_version(), created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )  # fmt: skip

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """One response per request; all unfinished samples run at once (one rollout per config)."""
        from harness.prompts import encode_prompt

        seen: dict[int, int] = {}
        samples, todo = [], {}  # todo: config json -> (config, [sample positions])
        headers: dict[str, RunHeader] = {}
        preset = preset_of(self.args, self.zoo)
        for req in requests:
            k = seen[id(req)] = seen.get(id(req), -1) + 1
            prompt, gen_kwargs = self._prompt(req.args[0], preset, req.doc), req.args[1]
            config, until = rollout_settings(gen_kwargs, self.args, self.zoo)
            self._clamp(config, prompt)
            seed = None if config.seed is None else config.seed + k
            sampling = {**config.to_dict(), "until": until, "seed": seed}
            for noise in ("retries", "retry_backoff_s", "logprobs"):
                sampling.pop(noise)
            key = sample_key(model=self.model_key, prompt=prompt, sample_index=k, sampling=sampling)
            cfg_key = json.dumps(config.to_dict(), sort_keys=True)
            header = headers.setdefault(cfg_key, self._run_header(config))
            doc = req.doc or {}
            ident = {"problem_id": str(doc.get("id", req.doc_id)), "sample_index": k, "benchmark": doc.get("benchmark"),
                     "task": req.task_name, "doc_id": req.doc_id, "gold": None if doc.get("answer") is None else str(doc["answer"]),
                     "grading": preset_rule(preset, doc.get("grading")) if preset else _rule_for(doc.get("grading"), config.format),
                     "prompt": prompt, "run": header}  # fmt: skip
            s = {"req": req, "key": key, "until": until, "seed": seed, "ident": ident, "record": None}
            samples.append(s)
            cached = self.store.get(key) if self.store is not None else None
            if cached is not None:
                s["record"] = record_from_dict(cached, f"{self.store.path} ({key[:12]})")
            else:
                s["prompt_ids"] = encode_prompt(self.tokenizer, prompt)
                todo.setdefault(cfg_key, (config, []))[1].append(len(samples) - 1)
        if preset is not None:
            _say_k(preset, samples)
        reused = len(samples) - sum(len(p) for _, p in todo.values())
        where = f" ({self.store.path})" if self.store is not None else ""
        print(f"threadweaver: {reused} of {len(samples)} samples from the store{where}, {len(samples) - reused} "
              f"to generate; records -> {self.trajectories}", file=sys.stderr)  # fmt: skip
        with RecordWriter(self.trajectories) as out:
            for s in samples:
                if s["record"] is not None:
                    out.write(s["record"])
            if todo:
                engine = self.engine  # built outside the event loop
                asyncio.run(self._run(engine, todo, samples, out))
        if getattr(self, "_owns_engine", False):  # free the engine before lm-eval grades
            self._engine.close()
            self._engine = None
        return [self._finish(s) for s in samples]

    def _clamp(self, config: RolloutConfig, prompt: str) -> None:
        """Fit the budget into the model's context (its max_model_len / max_position_embeddings)."""
        limit = self.engine_args.context_length(self._engine)
        if limit is None or config.max_context_tokens is not None:
            return
        config.max_context_tokens = limit
        if config.budget_tokens >= limit and not getattr(self, "_said_clamp", False):
            print(f"threadweaver: budget_tokens {config.budget_tokens} does not fit the model's context of {limit} "
                  "tokens; each request stops where the context ends (end_reason 'context')", file=sys.stderr)  # fmt: skip
            self._said_clamp = True

    async def _run(self, engine, todo: dict, samples: list[dict], out: RecordWriter) -> None:
        from tqdm import tqdm

        bar = tqdm(total=sum(len(p) for _, p in todo.values()), desc="threadweaver samples", unit="sample",
                   file=sys.stderr, dynamic_ncols=True)  # fmt: skip

        async def one_group(config: RolloutConfig, positions: list[int]) -> None:
            async def on_record(i: int, rec: SampleRecord) -> None:
                s = samples[positions[i]]
                for name, value in s["ident"].items():
                    setattr(rec, name, value)
                await asyncio.to_thread(_grade, rec, s["until"])
                s["record"] = rec
                if self.store is not None and rec.end_reason != "error":  # an engine error is retried next run
                    self.store.put(s["key"], rec.to_dict())
                out.write(rec)
                bar.update(1)

            prompts = [samples[p]["prompt_ids"] for p in positions]
            seeds = [samples[p]["seed"] for p in positions]
            await run_rollouts(engine, prompts, config, seeds=seeds, on_record=on_record)

        try:
            await asyncio.gather(*(one_group(c, p) for c, p in todo.values()))
        finally:
            bar.close()

    def _finish(self, s: dict) -> str:
        rec: SampleRecord = s["record"]
        response = cut_at_stops(rec.response, s["until"])
        samplestats.record(s["req"].doc or {}, response, rec)
        return response


def _grade(rec: SampleRecord, until: list[str]) -> None:
    """Grade a finished record with its task's rule (no gold or rule: left ungraded)."""
    if rec.gold is None or rec.grading is None:
        return
    from harness.grading import grade_many

    rec.grade = grade_many([(cut_at_stops(rec.response, until), rec.gold, rec.grading, rec.truncated)])[0]


def _say_k(preset, samples: list[dict]) -> None:
    """k comes from the task's `repeats`: say where it differs from the paper's (harness.presets)."""
    ks: dict[str, int] = {}
    for s in samples:
        b = s["ident"]["benchmark"] or s["ident"]["task"]
        ks[b] = max(ks.get(b, 0), s["ident"]["sample_index"] + 1)
    for b, k in sorted(ks.items()):
        want = preset.k_for(b)
        if want is not None and want != k:
            print(f"threadweaver: preset {preset.name} samples k={want} per problem on {b} ({preset.source}); this "
                  f"task runs k={k} (set the task's repeats to match)", file=sys.stderr)  # fmt: skip


def _rule_for(task_rule: str | None, fmt: str) -> str | None:
    """The task's grading rule plus the format's answer extractors (Parallel-R1's `Final Answer:` line)."""
    if task_rule is None:
        return None
    from harness.formats import get_format
    from harness.grading import with_extractors

    return with_extractors(task_rule, get_format(fmt).answer_extract).name


def _looks_local(path: str) -> bool:
    return path.startswith(("/", ".", "~")) or Path(path).expanduser().exists()


def _load_tokenizer(path: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise InputError(f"model_args: cannot load a tokenizer from {path} ({type(exc).__name__}: {reason})") from None


__all__ = ["ThreadweaverArgs", "ThreadweaverLM", "cut_at_stops", "parse_model_args", "rollout_settings"]
