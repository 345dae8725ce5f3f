"""`bench rollout` timing path on a real engine (hf, tiny model): the report has every key, the ideal
speedup is the structure's token ratio, and both modes generate exactly the structure's tokens."""

from __future__ import annotations

import asyncio

from harness.bench import Structure, bench_rollout


def test_bench_rollout_reports_every_key_on_the_hf_engine(tiny_model_dir):
    from harness.engines.hf import HFEngine

    engine = HFEngine(str(tiny_model_dir))
    structures = [Structure([6, [8, 4], 5], "uneven"), Structure([3, [5, 5, 5], 2], "three")]
    try:
        report = asyncio.run(bench_rollout(engine, structures, [1, 2], temperature=0.0))
    finally:
        engine.close()
    for b, structs in (("1", structures[:1]), ("2", structures)):
        r = report["batch_sizes"][b]
        ideal = sum(s.total_tokens for s in structs) / sum(s.critical_path_tokens for s in structs)
        assert abs(r["ideal_speedup"] - ideal) < 1e-9
        assert r["efficiency"] == r["wall_speedup"] / r["ideal_speedup"]
        assert 0.0 <= r["overhead_fraction"] < 1.0
        for mode in ("sequential", "parallel"):  # ignore_eos: exactly the structure's tokens
            assert r[mode]["tokens"] == sum(s.total_tokens for s in structs)
            assert r["tokens_per_second"][mode] > 0
    assert report["structures"][0]["critical_path_tokens"] == 6 + 8 + 5
