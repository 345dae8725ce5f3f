"""EngineArgs (harness.engines.args): the one definition of the engine arguments, its CLI flags, lm-eval
`--model_args` parsing, the refusal of arguments an engine does not take, and that every adapter takes
exactly the arguments the table says, with the same defaults."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
from dataclasses import fields

import pytest

from harness.engines import ENGINES, EngineArgs, add_cli_args, engine_class
from harness.engines.args import ALL
from harness.engines.base import Request
from harness.errors import InputError


def parse(argv: list[str]) -> EngineArgs:
    parser = argparse.ArgumentParser()
    add_cli_args(parser)
    return EngineArgs.from_cli(parser.parse_args(argv))


def test_every_field_has_a_default_a_help_and_known_engines():
    assert ALL == tuple(ENGINES)
    for f in fields(EngineArgs):
        assert f.metadata["help"], f.name
        assert set(f.metadata["engines"]) <= set(ALL), f.name
        assert set(f.metadata["kwarg"]) <= set(f.metadata["engines"]), f.name
    EngineArgs(model="m")  # the defaults pass validation


@pytest.mark.parametrize("engine", ALL)
def test_adapters_take_the_table_arguments_with_the_same_defaults(engine):
    params = inspect.signature(engine_class(engine)).parameters
    for f in fields(EngineArgs):
        if f.name == "engine" or engine not in f.metadata["engines"]:
            continue
        kwarg = f.metadata["kwarg"].get(engine, f.name)
        assert kwarg in params, f"{engine} adapter lacks {kwarg} (field {f.name})"
        default = params[kwarg].default
        if f.default is not None and default is not inspect.Parameter.empty:
            assert default == f.default, f"{engine}.{kwarg}: adapter {default!r} != EngineArgs {f.default!r}"


def test_an_argument_the_engine_does_not_take_is_refused_when_set():
    with pytest.raises(InputError, match=r"^engine 'hf' does not take tensor_parallel_size \(vllm only\)$"):
        EngineArgs(engine="hf", model="m", tensor_parallel_size=2)
    with pytest.raises(InputError, match=r"engine 'vllm' does not take base_url \(openai only\)"):
        EngineArgs(engine="vllm", model="m", base_url="http://h:1/v1")
    with pytest.raises(InputError, match=r"engine 'openai' does not take dtype \(hf, vllm only\)"):
        EngineArgs(engine="openai", model="m", dtype="float32")
    # the default value is not "set": nothing to refuse, and it is not passed on
    args = EngineArgs(engine="hf", model="m", tensor_parallel_size=1, device="cpu")
    assert "tensor_parallel_size" not in args.engine_kwargs()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"engine": "vlm"}, "engine must be one of scripted, hf, vllm, openai, got 'vlm'; did you mean 'vllm'?"),
        ({"model": ""}, "model must be a model folder or hub id, got ''"),
        ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization must be None or in (0, 1], got 1.5"),
        ({"gpu_memory_utilization": 0.0}, "gpu_memory_utilization must be None or in (0, 1], got 0.0"),
        ({"tensor_parallel_size": 0}, "tensor_parallel_size must be >= 1, got 0"),
        ({"tensor_parallel_size": "2"}, "tensor_parallel_size must be an int, got '2'"),
        ({"enforce_eager": "yes"}, "enforce_eager must be true or false, got 'yes'"),
        ({"max_model_len": 0}, "max_model_len must be None or >= 1, got 0"),
        ({"max_model_len": 2.5}, "max_model_len must be an int or None, got 2.5"),
        ({"dtype": "fp32"}, "dtype must be None or one of auto, float32, bfloat16, float16, got 'fp32'"),
        ({"engine": "openai", "http_retries": -1}, "http_retries must be >= 0, got -1"),
        ({"engine": "openai", "request_timeout_s": 0}, "request_timeout_s must be > 0, got 0"),
    ],
)
def test_validation_messages_name_the_field_the_rule_and_the_value(kwargs, message):
    with pytest.raises(InputError) as err:
        EngineArgs(**{"model": "m", **kwargs})
    assert str(err.value) == message


def test_engine_kwargs_per_engine():
    assert EngineArgs(engine="vllm", model="m", max_model_len=2048, engine_seed=3).engine_kwargs() == {
        "model": "m", "tensor_parallel_size": 1, "data_parallel_size": 1, "enforce_eager": False,
        "max_model_len": 2048, "seed": 3, "verbose": False,
    }  # fmt: skip
    assert EngineArgs(engine="scripted", model="r.json", tokenizer="tok").engine_kwargs() == {
        "responses": "r.json", "tokenizer": "tok"}  # fmt: skip
    kw = EngineArgs(engine="openai", model="m", served_model_name="s").engine_kwargs()
    assert kw["served_model_name"] == "s" and kw["http_retries"] == 3 and "device" not in kw
    assert EngineArgs(engine="hf", model="m", dtype="bfloat16").engine_kwargs()["dtype"] == "bfloat16"


def test_cli_flags_come_from_the_fields_and_errors_name_the_flags():
    args = parse(["--engine", "vllm", "--model", "x", "--tensor-parallel-size", "2", "--enforce-eager",
                  "--gpu-memory-utilization", "0.5", "--max-model-len", "none"])  # fmt: skip
    assert (args.tensor_parallel_size, args.enforce_eager, args.gpu_memory_utilization) == (2, True, 0.5)
    assert args.max_model_len is None and args.non_defaults() == {
        "model": "x", "tensor_parallel_size": 2, "enforce_eager": True, "gpu_memory_utilization": 0.5}
    assert parse(["--model", "x", "--no-vllm-extras", "--engine", "openai"]).vllm_extras is False
    with pytest.raises(InputError, match=r"^engine 'hf' does not take --tensor-parallel-size \(vllm only\)$"):
        parse(["--engine", "hf", "--model", "x", "--tensor-parallel-size", "2"])
    with pytest.raises(InputError, match=r"^--max-batch-size must be >= 1, got 0$"):
        parse(["--engine", "hf", "--model", "x", "--max-batch-size", "0"])
    parser = argparse.ArgumentParser()
    add_cli_args(parser)
    text = parser.format_help()
    for f in fields(EngineArgs):
        assert f"--{f.name.replace('_', '-')}" in text
    assert "vllm: devices per model copy" in " ".join(text.split())
    with pytest.raises(SystemExit):  # --model is required
        parser.parse_args(["--engine", "hf"])


def test_from_mapping_takes_lm_eval_model_args():
    from lm_eval.utils import simple_parse_args_string

    raw = simple_parse_args_string("engine=vllm,model=7,enforce_eager=true,max_model_len=2048,"
                                   "gpu_memory_utilization=0.5,kv_cache_memory_bytes=4e9,tokenizer=None")  # fmt: skip
    args = EngineArgs.from_mapping(raw)
    assert (args.model, args.enforce_eager, args.max_model_len) == ("7", True, 2048)
    assert (args.gpu_memory_utilization, args.kv_cache_memory_bytes, args.tokenizer) == (0.5, 4_000_000_000, None)
    # plain strings (not converted by lm-eval) too
    args = EngineArgs.from_mapping({"engine": "hf", "model": "m", "max_batch_size": "8", "dtype": "none"})
    assert args.max_batch_size == 8 and args.dtype is None


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"max_batch": 3}, "model_args: unknown key 'max_batch'; did you mean 'max_batch_size'?"),
        ({"enforce_eager": True, "engine": "hf"}, "model_args: engine 'hf' does not take enforce_eager (vllm only)"),
        ({"max_model_len": "long"}, "model_args: max_model_len must be an int or None, got 'long'"),
        ({"enforce_eager": "maybe"}, "model_args: enforce_eager must be true or false, got 'maybe'"),
    ],
)
def test_from_mapping_errors(mapping, message):
    with pytest.raises(InputError) as err:
        EngineArgs.from_mapping({"model": "m", **mapping})
    assert str(err.value) == message


def test_split_separates_engine_keys_from_the_rest():
    engine, rest = EngineArgs.split({"engine": "hf", "model": "m", "parallel": True, "budget": 10})
    assert engine == {"engine": "hf", "model": "m"} and rest == {"parallel": True, "budget": 10}


def test_build_starts_the_chosen_engine(tiny_model_dir, tmp_path):
    tok_path = str(tiny_model_dir)
    responses = tmp_path / "responses.json"
    responses.write_text(json.dumps({"*": "ok<|im_end|>"}), encoding="utf-8")
    scripted = EngineArgs(engine="scripted", model=str(responses), tokenizer=tok_path).build()
    ids = scripted.tokenizer.encode("hi", add_special_tokens=False)
    out = asyncio.run(scripted.generate(Request(ids, max_tokens=8, logprobs=True)))
    assert out.text == "ok" and out.stop_reason == "eos" and out.logprobs == [0.0, 0.0]
    hf = EngineArgs(engine="hf", model=tok_path, max_batch_size=2).build()
    try:
        assert hf.max_batch_size == 2
        out = asyncio.run(hf.generate(Request(ids, max_tokens=3, temperature=0.0, ignore_eos=True)))
        assert len(out.token_ids) == 3 and out.logprobs is None
    finally:
        hf.close()


def test_a_model_that_cannot_be_loaded_is_one_input_error(tmp_path):
    """A folder that is not a checkpoint, or one transformers cannot read (OSError, as for an unreachable
    hub id): one line naming the model, not a traceback."""
    pytest.importorskip("transformers")
    empty = tmp_path / "not-a-checkpoint"
    empty.mkdir()
    with pytest.raises(InputError, match=rf"model {empty}: not a checkpoint folder \(no config.json\)"):
        EngineArgs(engine="hf", model=str(empty)).build()
    (empty / "config.json").write_text("not json")  # transformers cannot read it: its OSError, one line
    with pytest.raises(InputError, match=rf"model {empty}: cannot load it \(OSError: "):
        EngineArgs(engine="hf", model=str(empty)).build()
