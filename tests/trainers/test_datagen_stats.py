"""`threadweaver datagen stats`: the Table 8 rows, golden on hand-counted files (README, "Data generation")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from threadweaver.cli import main
from trainers.datagen.stats import dataset_stats

REPO = Path(__file__).resolve().parents[2]

# Built-in fallback counter: each tag 1 token; a letter run, a digit, a whitespace run, any other char 1 each.
SEQ = "x y"  # 3 tokens
# "a " = 2 outside. Block own part: <Parallel>, <Outlines>, 2 x (<Outline> "1" ":" " " "p" </Outline>) = 12,
# </Outlines>, 4 thread tags, </Parallel> = 20. Threads "1: bb" = 4, "2: c d" = 6.
# Block: total 20 + 4 + 6 = 30, critical 20 + 6 = 26. Trajectory: total 32, critical 28.
ONE = ("a <Parallel><Outlines><Outline>1: p</Outline><Outline>2: q</Outline></Outlines>"
       "<Thread>1: bb</Thread><Thread>2: c d</Thread></Parallel>")  # fmt: skip
# Own part: <Parallel>, <Outlines>, 3 x 6, </Outlines>, 6 thread tags, </Parallel> = 28. Threads 4, 6, 4.
# Block: total 28 + 14 = 42, critical 28 + 6 = 34; " z" = 2 outside. Trajectory: total 44, critical 36.
THREE = ("<Parallel><Outlines><Outline>1: u</Outline><Outline>2: v</Outline><Outline>3: w</Outline></Outlines>"
         "<Thread>1: e</Thread><Thread>2: f f</Thread><Thread>3: g</Thread></Parallel> z")  # fmt: skip
GOLDEN = {
    "size": 3,
    "parallel_ratio": 2 / 3,
    "critical_path_tokens": (3 + 28 + 36) / 3,
    "total_tokens": (3 + 32 + 44) / 3,
    "self_parallelism": (1 + 32 / 28 + 44 / 36) / 3,
    "num_blocks": 2 / 3,
    "parallel_path_tokens": (26 + 34) / 2,
    "tokens_per_block": (30 + 42) / 2,
    "threads_per_block": (2 + 3) / 2,
    "valid_ratio": 1.0,
    "count_unit": "builtin-v1",
}


def _check(got: dict, want: dict) -> None:
    for key, value in want.items():
        assert got[key] == pytest.approx(value) if isinstance(value, float) else got[key] == value, key


def test_stats_golden_hand_counted(tmp_path, capsys):
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in (SEQ, ONE, THREE)))  # v0 lines: `text`
    assert main(["datagen", "stats", str(path), "--json"]) == 0
    _check(json.loads(capsys.readouterr().out), GOLDEN)
    assert main(["datagen", "stats", str(path)]) == 0
    table = capsys.readouterr().out
    assert "parallel ratio        66.7%" in table and "threads per block     2.50" in table
    assert "self-parallelism      1.122x" in table


def test_stats_edge_cases(tmp_path, capsys):
    seq = dataset_stats([SEQ, "y"])
    assert (seq.parallel_ratio, seq.num_blocks, seq.self_parallelism) == (0.0, 0.0, 1.0)
    assert seq.parallel_path_tokens is seq.tokens_per_block is seq.threads_per_block is None
    assert dataset_stats([]).size == 0 and dataset_stats([]).total_tokens is None
    text = tmp_path / "one.txt"  # a text file is one trajectory
    text.write_text(ONE)
    assert main(["datagen", "stats", str(text), "--json"]) == 0
    _check(json.loads(capsys.readouterr().out), {"size": 1, "total_tokens": 32.0, "tokens_per_block": 30.0})
    assert main(["datagen", "stats", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl: no such file" in capsys.readouterr().err


def test_stats_on_toy_sft_data_hand_counted(tmp_path, capsys):
    """`toy data` writes the SFT files of the toy models; counted with the shipped toy tokenizer.

    Hand count of one parallel problem (every toy problem has 4 chains of 6 steps), tokens of
    models/toy-threadweaver/tokenizer.json (characters, plus the tags, `+1`/`+2`, `a=`..`d=`, ` chains.\\n`,
    `answer:`, `\\boxed{` as single tokens):
    - a thread "\\n1: 0 A+1=1 B+2=3 C+2=5 D+1=6 E+2=8 F+1=9 a=9": "\\n" "1" ":" " " "0" = 5, six steps
      " " "A" "+1" "=" "1" = 30, " " "a=" "9" = 3: 38 tokens;
    - the block's own part: <Parallel> "\\n" <Outlines> "\\n" = 4, four outlines <Outline> "1" ":" " " "a"
      </Outline> "\\n" = 28, </Outlines> = 1, "\\n" before the first <Thread> = 1, 8 thread tags, "\\n" </Parallel>
      = 2: 44. Block: critical 44 + 38 = 82, total 44 + 4 x 38 = 196;
    - outside: <think> "\\n" "4" " chains.\\n" = 4; after: "\\n" "answer:" 4 x (" " "a=" "9") "\\n" </think> "\\n" "\\n"
      "\\boxed{" 4 digits "}" = 24: 28. Trajectory: critical 28 + 82 = 110, total 28 + 196 = 224.
    A sequential rendering has no block: critical = total, per-block rows empty.
    """
    par, seq = tmp_path / "par.jsonl", tmp_path / "seq.jsonl"
    assert main(["toy", "data", "--split", "train", "--limit", "5", "--out", str(par)]) == 0
    assert (
        main(["toy", "data", "--split", "train", "--limit", "5", "--mode", "sequential", "--out", str(seq)])
        == 0
    )
    capsys.readouterr()
    tok = str(REPO / "models" / "toy-threadweaver")
    assert main(["datagen", "stats", str(par), "--tokenizer", tok, "--json"]) == 0
    _check(json.loads(capsys.readouterr().out), {
        "size": 5, "parallel_ratio": 1.0, "critical_path_tokens": 110.0, "total_tokens": 224.0,
        "self_parallelism": 224 / 110, "num_blocks": 1.0, "parallel_path_tokens": 82.0, "tokens_per_block": 196.0,
        "threads_per_block": 4.0, "valid_ratio": 1.0})  # fmt: skip
    assert main(["datagen", "stats", str(seq), "--tokenizer", tok, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["parallel_ratio"] == 0.0 and got["critical_path_tokens"] == got["total_tokens"] > 110
    assert got["tokens_per_block"] is None and got["self_parallelism"] == 1.0
