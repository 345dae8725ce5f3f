"""Memory of the mask data for one 40,960-token packed sample (issue 5, "Memory": under 50 MB).

    flock /tmp/heavy.lock .venv/bin/python benchmarks/bench_pack_memory.py

Packs synthetic trajectories (2 blocks of 2-3 threads, ~4,000 tokens each) into one row of at most 40,960
tokens, then builds the mask data: tin/tout tensors and the FlexAttention BlockMask (`masks.block_mask`).
Measures the tensors' bytes, the Python heap peak (tracemalloc) and the peak RSS growth (VmHWM after a
reset through /proc/self/clear_refs) while building, and prints the dense N x N sizes for comparison.
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

MB = 2**20
MAX_TOKENS = 40_960


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _tensor_bytes(obj) -> int:
    import torch

    return sum(v.numel() * v.element_size() for v in vars(obj).values() if isinstance(v, torch.Tensor))


def main() -> None:
    import torch
    from bench_packing_pays import make_examples

    from trainers.sft.masks import BLOCK_SIZE, block_mask
    from trainers.sft.packing import pack

    _, examples = make_examples(12, seq_chars=1100, thread_chars=500)
    rows = pack([units for _, _, units in examples], max_tokens=MAX_TOKENS)
    row = max(rows, key=len)
    n = len(row)
    print(f"packed row: {n} tokens, {row.num_trajectories} trajectories, {row.num_units} units")

    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (VmHWM)
    rss_before = _status_kb("VmRSS")
    tracemalloc.start()
    start = time.perf_counter()
    tin = torch.tensor([row.tin], dtype=torch.long)
    tout = torch.tensor([row.tout], dtype=torch.long)
    mask = block_mask(tin, tout)
    seconds = time.perf_counter() - start
    _, heap_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_peak = (_status_kb("VmHWM") - rss_before) * 1024

    tensors = tin.numel() * 8 + tout.numel() * 8 + _tensor_bytes(mask)
    closure = sum(c.cell_contents.numel() * c.cell_contents.element_size() for c in mask.mask_mod.__closure__
                  if isinstance(c.cell_contents, torch.Tensor))  # fmt: skip
    print(f"build time {seconds:.2f} s, block size {BLOCK_SIZE}")
    print(
        f"tin/tout + BlockMask tensors: {tensors / MB:.2f} MB (+ mask_mod's padded tin/tout {closure / MB:.2f} MB)"
    )
    print(f"Python heap peak (tracemalloc): {heap_peak / MB:.2f} MB")
    print(f"peak RSS growth while building: {rss_peak / MB:.2f} MB")
    print(f"dense N x N for comparison: bool {n * n / MB:.0f} MB, fp32 {4 * n * n / MB:.0f} MB")
    verdict = "OK" if max(tensors + closure, rss_peak) < 50 * MB else "OVER"
    print(f"{verdict}: limit 50 MB")


if __name__ == "__main__":
    main()
