"""Make the tests' tiny random Qwen3 (char tokenizer, head_dim 64) in a folder, for `bench rollout`.

    python benchmarks/make_tiny_model.py /tmp/tiny-qwen3
    threadweaver bench rollout --engine vllm --model /tmp/tiny-qwen3 --enforce-eager \
        --gpu-memory-utilization 0.3 --preset paper --scale 20 --batch-sizes 1,32 --out bench.json
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import make_tiny_model  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python benchmarks/make_tiny_model.py OUT_DIR")
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    print(make_tiny_model(out))
