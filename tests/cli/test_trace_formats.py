"""`threadweaver trace --format npr|multiverse` on hand-counted nested golden cases (formats.md section 3):
depth 2 and 3, counted by the built-in fallback counter (tests/golden/trace_formats/expected.json says how)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from threadweaver.cli import main

pytestmark = pytest.mark.core

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "trace_formats"
EXPECTED = json.loads((GOLDEN / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_trace_counts_nested_golden_cases(name, capsys):
    want = EXPECTED[name]
    assert main(["trace", "--format", want["format"], "--json", str(GOLDEN / f"{name}.txt")]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["total_tokens"], got["critical_path_tokens"], got["threads_per_block"], got["valid"]) == (
        want["total_tokens"], want["critical_path_tokens"], want["threads_per_block"], want["valid"])  # fmt: skip
    assert got["count_unit"] == "builtin-v1" and got["num_blocks"] == len(want["threads_per_block"])


def test_trace_npr_closes_what_is_open_at_the_end(tmp_path, capsys):
    # cut inside the inner step 1.2 of npr_depth2: the open step, both blocks and step 1 close at the end
    text = (GOLDEN / "npr_depth2.txt").read_text()
    cut = text[: text.index("</step><step>1.3")]
    (tmp_path / "cut.txt").write_text(cut)
    assert main(["trace", "--format", "npr", "--json", str(tmp_path / "cut.txt")]) == 0
    got = json.loads(capsys.readouterr().out)
    # outer own: guideline 14 + step 1 open tag 1 = 15; step 1: '1: ' 3 + inner own (guideline 26 + tags
    # <step></step><step> 3 = 29) + branches 6 and 8 (the open one) = 46 total, 3 + 29 + 8 = 40 critical
    assert (got["total_tokens"], got["critical_path_tokens"], got["threads_per_block"]) == (61, 55, [1, 2])
    assert got["valid"] is False and any("never closed" in v for v in got["violations"])
