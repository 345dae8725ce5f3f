"""The CPU KV cache size (harness.engines.vllm_memory) and the vLLM adapter's start-up environment
(log level and stream, private IPC folder): arithmetic and environment only, no engine started."""

from __future__ import annotations

import json
import os

import pytest

from harness.engines.vllm import _vllm_environment
from harness.engines.vllm_memory import (
    GIB,
    KV_SHARE_OF_FREE,
    WORKER_OVERHEAD_BYTES,
    cpu_kv_cache_bytes,
    describe,
    weight_bytes,
)
from harness.errors import InputError

TINY = {"max_model_len": 8192, "max_num_seqs": 128, "kv_bytes_per_token": 1024, "block_size": 128}


def test_the_need_is_taken_when_it_fits():
    # 8192 tokens x 128 sequences x 1 KiB = 1 GiB, far below half of 16 GiB
    assert cpu_kv_cache_bytes(**TINY, free_bytes=16 * GIB, weight_bytes=0) == 1 * GIB


def test_a_large_need_is_capped_at_a_share_of_the_free_memory():
    big = {**TINY, "max_model_len": 40960, "max_num_seqs": 256, "kv_bytes_per_token": 144 * 1024}  # Qwen3-8B bf16
    free, weights = 20 * GIB, 16 * GIB // 10
    size = cpu_kv_cache_bytes(**big, free_bytes=free, weight_bytes=weights)
    assert size == int(KV_SHARE_OF_FREE * (free - weights - WORKER_OVERHEAD_BYTES))
    assert size < free - weights
    tp2 = {**big, "kv_bytes_per_token": 72 * 1024}  # tensor parallel 2: each worker holds half the KV heads
    per_worker = cpu_kv_cache_bytes(**tp2, free_bytes=free, weight_bytes=weights, workers=2)
    assert per_worker == int(KV_SHARE_OF_FREE * (free - weights - 2 * WORKER_OVERHEAD_BYTES) / 2)


def test_one_sequence_must_fit_or_one_line_says_what_to_set():
    big = {**TINY, "max_model_len": 131072, "kv_bytes_per_token": 144 * 1024}  # 18 GiB for one sequence
    with pytest.raises(InputError) as err:
        cpu_kv_cache_bytes(**big, free_bytes=8 * GIB, weight_bytes=0)
    message = str(err.value)
    assert "\n" not in message and "131072-token sequence" in message
    assert "set max_model_len lower" in message and "kv_cache_memory_bytes" in message
    # it fits once the sequence is shorter
    assert cpu_kv_cache_bytes(**{**big, "max_model_len": 8192}, free_bytes=8 * GIB, weight_bytes=0) > 0


def test_even_a_single_sequence_gets_its_blocks_and_the_null_block():
    size = cpu_kv_cache_bytes(**{**TINY, "max_num_seqs": 1, "max_model_len": 100}, free_bytes=8 * GIB, weight_bytes=0)
    assert size == (1 + 1) * 128 * 1024  # ceil(100 / 128) blocks + vLLM's null block


def test_weight_bytes_reads_the_checkpoint_files_in_the_run_dtype(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 1000)
    (tmp_path / "pytorch_model.bin").write_bytes(b"\0" * 5000)  # not loaded next to safetensors
    (tmp_path / "config.json").write_text(json.dumps({"torch_dtype": "bfloat16"}), encoding="utf-8")
    assert weight_bytes(str(tmp_path), run_dtype_bytes=4) == 2000  # bf16 on disk, float32 in the run
    assert weight_bytes(str(tmp_path), run_dtype_bytes=2) == 1000
    assert weight_bytes("org/not-a-local-folder", run_dtype_bytes=2) == 0


def test_describe_is_one_line_with_the_figures():
    line = describe(GIB, free_bytes=20 * GIB, **{k: TINY[k] for k in ("max_model_len", "max_num_seqs",
                                                                         "kv_bytes_per_token")})  # fmt: skip
    assert line.startswith("vllm on CPU: KV cache 1.00 GiB") and "8192 tokens x 128 sequences" in line
    assert "\n" not in line


@pytest.fixture
def short_dir():
    """A folder short enough for socket paths (pytest's tmp_path may not be)."""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="tw-test-", dir="/tmp")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def clean_env(monkeypatch):
    for key in ("VLLM_LOGGING_LEVEL", "VLLM_LOGGING_STREAM", "VLLM_RPC_BASE_PATH"):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_environment_quiet_by_default_and_restored(clean_env, short_dir):
    clean_env.setenv("TMPDIR", short_dir)
    import tempfile

    clean_env.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    with _vllm_environment(verbose=False) as (rpc_dir, level):
        assert level == os.environ["VLLM_LOGGING_LEVEL"] == "WARNING"
        assert os.environ["VLLM_LOGGING_STREAM"] == "ext://sys.__stderr__"
        assert os.environ["VLLM_RPC_BASE_PATH"] == rpc_dir and os.path.dirname(rpc_dir) == short_dir
        assert os.path.isdir(rpc_dir)
    for key in ("VLLM_LOGGING_LEVEL", "VLLM_LOGGING_STREAM", "VLLM_RPC_BASE_PATH"):
        assert key not in os.environ
    assert os.path.isdir(rpc_dir)  # the engine removes it at close


def test_environment_verbose_and_user_settings(clean_env, short_dir):
    with _vllm_environment(verbose=True) as (rpc_dir, level):
        assert level == "INFO"
    os.rmdir(rpc_dir)
    clean_env.setenv("VLLM_LOGGING_LEVEL", "error")
    clean_env.setenv("VLLM_LOGGING_STREAM", "ext://sys.stdout")
    clean_env.setenv("VLLM_RPC_BASE_PATH", short_dir)
    with _vllm_environment(verbose=False) as (rpc_dir, level):
        assert level == "ERROR" and os.environ["VLLM_LOGGING_STREAM"] == "ext://sys.stdout"
        assert os.path.dirname(rpc_dir) == short_dir
    assert os.environ["VLLM_LOGGING_LEVEL"] == "error" and os.environ["VLLM_RPC_BASE_PATH"] == short_dir
    with pytest.raises(RuntimeError), _vllm_environment(verbose=False) as (rpc_dir, _):
        raise RuntimeError("engine start failed")
    assert not os.path.exists(rpc_dir)  # a failed start leaves no folder


def test_socket_folder_falls_back_to_tmp_when_the_temp_dir_is_too_deep(clean_env, tmp_path):
    import tempfile

    deep = tmp_path / ("d" * 60)
    deep.mkdir()
    clean_env.setenv("TMPDIR", str(deep))
    clean_env.setattr(tempfile, "tempdir", None)
    with _vllm_environment(verbose=False) as (rpc_dir, _):
        assert os.path.dirname(rpc_dir) == "/tmp" and len(rpc_dir) + 37 <= 107
    os.rmdir(rpc_dir)
    assert list(deep.iterdir()) == []  # the too-deep attempt was removed
    clean_env.setenv("VLLM_RPC_BASE_PATH", str(deep))  # the user's base is too deep: vLLM's default, untouched
    with _vllm_environment(verbose=False) as (rpc_dir, _):
        assert rpc_dir is None and os.environ["VLLM_RPC_BASE_PATH"] == str(deep)


@pytest.mark.vllm
def test_gpus_and_explicit_sizes_keep_their_kv_cache_size(monkeypatch):
    from types import SimpleNamespace

    from vllm.platforms import current_platform

    from harness.engines.vllm import _size_cpu_kv_cache

    config = SimpleNamespace(cache_config=SimpleNamespace(kv_cache_memory_bytes=None))
    monkeypatch.setattr(type(current_platform), "is_cpu", lambda self: False)
    _size_cpu_kv_cache(config)  # a GPU: vLLM's defaults stay
    assert config.cache_config.kv_cache_memory_bytes is None
    monkeypatch.setattr(type(current_platform), "is_cpu", lambda self: True)
    config.cache_config.kv_cache_memory_bytes = 123  # the user's size, or VLLM_CPU_KVCACHE_SPACE's
    _size_cpu_kv_cache(config)
    assert config.cache_config.kv_cache_memory_bytes == 123
