"""The lm-eval backend: model_args, gen_kwargs, repeats -> samples, store reuse, trajectory file, hook."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")
from lm_eval.api.instance import Instance  # noqa: E402

from harness import samplestats  # noqa: E402
from harness.errors import InputError  # noqa: E402
from harness.lmeval import (  # noqa: E402
    ThreadweaverArgs,
    ThreadweaverLM,
    cut_at_stops,
    parse_model_args,
    rollout_settings,
    trajectory_path,
)
from harness.records import read_records  # noqa: E402

DOC = {"id": "math500-x", "problem": "1+1?", "answer": "2", "benchmark": "math500", "grading": "math"}
REPLY = "<think>add</think> so \\boxed{2} STOP tail"


def _lm(tmp_path, engine, **kw):
    kw = {"store": str(tmp_path / "store.jsonl"), "trajectories": str(tmp_path / "traj.jsonl"), **kw}
    return ThreadweaverLM(pretrained="scripted", engine=engine, **kw)


@pytest.fixture
def scripted():
    from harness.engines.scripted import ScriptedEngine
    from harness.tokenizer import build_char_tokenizer

    return lambda reply=REPLY: ScriptedEngine({"*": reply}, tokenizer=build_char_tokenizer())


def _inst(doc_id=0, repeats=2, gen=None, doc=DOC, prompt="Q: 1+1?"):
    gen = gen or {"until": ["STOP"], "max_gen_toks": 64, "do_sample": False}
    return Instance("generate_until", doc, (prompt, gen), 0, ("tw_math500", doc_id, repeats))


def test_unknown_model_arg_suggests_the_right_one():
    with pytest.raises(InputError, match="unknown key 'budget'; did you mean 'budget_tokens'"):
        parse_model_args({"pretrained": "x", "budget": 3})
    with pytest.raises(InputError, match="pretrained is required"):
        parse_model_args({})
    with pytest.raises(InputError, match="budget_tokens must be an int >= 1, got 0"):
        parse_model_args({"pretrained": "x", "budget_tokens": 0})


def test_gen_kwargs_map_to_rollout_config():
    args = ThreadweaverArgs(pretrained="x", seed=7)
    cfg, until = rollout_settings({"until": "END", "max_gen_toks": 300, "do_sample": False, "temperature": 1.0}, args)
    assert (cfg.temperature, cfg.budget_tokens, until, cfg.seed) == (0.0, 300, ["END"], 7)
    cfg, _ = rollout_settings({"temperature": 0.6, "top_p": 0.95, "max_gen_toks": 100},
                              ThreadweaverArgs("x", budget_tokens=50))  # fmt: skip
    assert (cfg.temperature, cfg.top_p, cfg.budget_tokens) == (0.6, 0.95, 50)  # the model_arg wins
    with pytest.raises(InputError, match="unsupported min_p"):
        rollout_settings({"min_p": 0.1}, args)
    with pytest.raises(InputError, match="unknown format 'paralel-r1'; did you mean 'parallel-r1'"):
        rollout_settings({}, ThreadweaverArgs("x", format="paralel-r1"))


def test_a_zoo_entry_sets_format_sampling_budget_and_parallel_but_explicit_args_win():
    from harness.zoo import get_entry

    zoo = get_entry("toy-sequential")  # greedy, budget 1024, sequential
    cfg, _ = rollout_settings({"temperature": 1.0, "max_gen_toks": 40960}, ThreadweaverArgs("zoo:toy-sequential"), zoo)
    assert (cfg.temperature, cfg.budget_tokens, cfg.parallel, cfg.format) == (0.0, 1024, False, "threadweaver")
    args = ThreadweaverArgs("zoo:toy-sequential", temperature=0.7, budget_tokens=64, parallel=True, format="parallel-r1")
    cfg, _ = rollout_settings({}, args, zoo)
    assert (cfg.temperature, cfg.budget_tokens, cfg.parallel, cfg.format) == (0.7, 64, True, "parallel-r1")


def test_cut_at_stops_and_trajectory_location(tmp_path):
    assert cut_at_stops("a STOP b", ["STOP"]) == "a " and cut_at_stops("abc", []) == "abc"
    assert trajectory_path(None, "T", ["lm_eval", "--output_path", str(tmp_path)]) == tmp_path / "threadweaver_trajectories_T.jsonl"
    assert trajectory_path(None, "T", ["lm_eval", "-o", str(tmp_path / "r.json")]).parent == tmp_path
    assert trajectory_path(None, "T", ["lm_eval"]) == Path("threadweaver_runs/T/trajectories.jsonl")
    assert trajectory_path(str(tmp_path), "T", []) == tmp_path / "trajectories_T.jsonl"


def test_repeats_become_graded_sample_records_and_the_store_resumes(tmp_path, scripted, capsys):
    engine = scripted()
    a, b = _inst(0), _inst(1, doc={**DOC, "id": "math500-y"}, prompt="Q: 2+0?")
    out = _lm(tmp_path, engine).generate_until([a, a, b, b])  # lm-eval repeats the same Instance k times
    assert out == ["<think>add</think> so \\boxed{2} "] * 4  # cut at the `until` string
    assert len(engine.requests) == 4  # one sequential request per sample, all in one rollout
    recs = [r for _, r in read_records(tmp_path / "traj.jsonl")]
    assert sorted((r.problem_id, r.sample_index) for r in recs) == [("math500-x", 0), ("math500-x", 1),
                                                                     ("math500-y", 0), ("math500-y", 1)]
    r = recs[0]
    assert (r.benchmark, r.task, r.gold, r.grading, r.grade.status) == ("math500", "tw_math500", "2", "math", "correct")
    assert r.metrics.total_tokens == len(r.response_ids) > 0 and r.metrics.count_unit.startswith("tokens:")
    assert r.run.format == "threadweaver" and r.run.rollout["temperature"] == 0.0 and r.units[0].kind == "trunk"
    assert r.prompt.startswith("<|im_start|>user\nQ: 1+1?")  # the model's chat template, applied by default
    assert "applying the model's chat template" in capsys.readouterr().err
    stats = samplestats.lookup(DOC, out[:2])
    assert all(s is not None and s.end_reason == "eos" for s in stats)

    engine2 = scripted()
    again = _lm(tmp_path, engine2).generate_until([a, a, b, b, b])  # a third sample of b is new
    assert again[:4] == out and len(engine2.requests) == 1
    assert "4 of 5 samples from the store" in capsys.readouterr().err
    recs = [r for _, r in read_records(tmp_path / "traj.jsonl")][4:]
    assert sorted(r.sample_index for r in recs if r.problem_id == "math500-y") == [0, 1, 2]


def test_an_engine_error_is_recorded_but_not_stored(tmp_path, scripted):
    """A sample whose engine call raised is written (scored wrong) but kept out of the store: the next run
    generates it again instead of reusing the failure."""
    broken = scripted()

    async def fail(req):
        raise RuntimeError("engine went away")

    broken.generate = fail
    _lm(tmp_path, broken).generate_until([_inst()])
    (rec,) = [r for _, r in read_records(tmp_path / "traj.jsonl")]
    assert rec.end_reason == "error"
    engine = scripted()
    assert _lm(tmp_path, engine).generate_until([_inst()]) == ["<think>add</think> so \\boxed{2} "]
    assert len(engine.requests) == 1


def test_chat_template_can_be_turned_off(tmp_path, scripted):
    engine = scripted()
    _lm(tmp_path, engine, chat_template=False).generate_until([_inst()])
    assert engine.prompts == ["Q: 1+1?"]


def test_sampling_settings_are_part_of_the_key(tmp_path, scripted):
    engine = scripted()
    _lm(tmp_path, engine).generate_until([_inst()])
    _lm(tmp_path, engine).generate_until([_inst(gen={"max_gen_toks": 64, "temperature": 0.5})])
    assert len(engine.requests) == 2
    _lm(tmp_path, engine, store="none").generate_until([_inst()])
    assert len(engine.requests) == 3


def test_loglikelihood_is_refused(tmp_path, scripted):
    with pytest.raises(InputError, match="only supports generate_until"):
        _lm(tmp_path, scripted()).loglikelihood([])


def test_chat_template_uses_the_model_tokenizer(tmp_path, scripted):
    lm = _lm(tmp_path, scripted())
    text = lm.apply_chat_template([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert "<|im_start|>system\nS" in text and text.rstrip().endswith("assistant")
    assert lm.chat_template(True) == lm.tokenizer.chat_template


def _py(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env}, cwd="/")  # fmt: skip


def test_startup_hook_registers_lazily_and_keeps_lm_eval_models():
    code = (
        "import sys\n"
        "heavy = [m for m in ('torch', 'vllm', 'transformers', 'lm_eval', 'harness.lmeval') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "from lm_eval.api.registry import get_model, model_registry\n"
        "print(get_model('threadweaver').__name__, get_model('dummy').__name__, 'hf' in model_registry, 'vllm' in model_registry)\n"
    )
    res = _py(code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["ThreadweaverLM", "DummyLM", "True", "True"]
    off = _py("from lm_eval.api.registry import get_model\nget_model('threadweaver')", THREADWEAVER_NO_LMEVAL_HOOK="1")
    assert off.returncode != 0 and "threadweaver" in off.stderr


def test_lm_eval_cli_resolves_the_backend(tmp_path):
    lm_eval = Path(sys.executable).parent / "lm_eval"
    res = subprocess.run([str(lm_eval), "--model", "threadweaver", "--model_args", "pretrained=x,budget=1",
                          "--tasks", "tw_math500", "--include_path", str(Path(__file__).parents[2] / "tasks"),
                          "--limit", "1"], capture_output=True, text=True, timeout=300, cwd=tmp_path)  # fmt: skip
    assert res.returncode == 2
    assert "error: model_args: unknown key 'budget'; did you mean 'budget_tokens'?" in res.stderr  # our constructor ran
    assert "Traceback" not in res.stderr  # one line, not lm-eval's traceback
