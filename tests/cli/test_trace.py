"""`threadweaver trace`, run in-process through threadweaver.cli.main (and once as a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from threadweaver.cli import main

pytestmark = pytest.mark.core

REPO = Path(__file__).resolve().parents[2]
SPEC_EXAMPLE = REPO / "harness" / "examples" / "spec_example.txt"
GOLDEN = REPO / "tests" / "golden" / "trace"
EXPECTED = json.loads((GOLDEN / "expected.json").read_text())
KEYS = [
    "total_tokens", "critical_path_tokens", "num_blocks", "threads_per_block",
    "self_parallelism", "is_parallel", "valid", "violations", "count_unit",
]  # fmt: skip


def write_jsonl(path: Path, names: list[str]) -> Path:
    with path.open("w") as f:
        for n in names:
            f.write(json.dumps({"id": n, "text": (GOLDEN / f"{n}.txt").read_text()}) + "\n")
    return path


def test_text_file_table(capsys):
    assert main(["trace", str(SPEC_EXAMPLE)]) == 0
    out, err = capsys.readouterr()
    assert "fallback" in err
    assert "tokens              160" in out and "critical path       145" in out
    assert "threads per block   2" in out and "valid               yes" in out


def test_jsonl_json_has_exactly_the_keys(tmp_path, capsys):
    names = ["02_spec_example", "04_several_blocks", "08_unclosed_last_thread", "01_no_blocks"]
    path = write_jsonl(tmp_path / "in.jsonl", names)
    assert main(["trace", "--json", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(names)
    for line, name in zip(lines, names, strict=True):
        d = json.loads(line)
        assert list(d) == KEYS
        want = EXPECTED[name]
        assert (d["total_tokens"], d["critical_path_tokens"], d["threads_per_block"]) == (
            want["total_tokens"], want["critical_path_tokens"], want["threads_per_block"],
        )  # fmt: skip
        assert d["valid"] == (not want["codes"]) and len(d["violations"]) == len(want["codes"])


def test_table_lists_violations(tmp_path, capsys):
    path = write_jsonl(tmp_path / "in.jsonl", ["01_no_blocks", "14_truncated_in_outline"])
    assert main(["trace", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}:1\n" in out and f"{path}:2\n" in out
    assert "valid               no" in out and "- block 1: <Parallel> is never closed" in out


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"text": "a"}\n{"text": oops}\n', ":2: bad JSON"),
        ('{"text": "a"}\n\n{"answer": "b"}\n', ":3: needs a string field `response` or `text`"),
        ('["not", "an", "object"]\n', ":1: expected a JSON object"),
    ],
)
def test_bad_jsonl_lines(tmp_path, capsys, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    assert main(["trace", "--json", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and f"{path}{message}" in err


def test_missing_file(tmp_path, capsys):
    missing = tmp_path / "nope.jsonl"
    assert main(["trace", str(missing)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {missing}: no such file"


@pytest.mark.parametrize("kind", ["missing", "empty", "no_tags"])
def test_unreadable_tokenizer(tmp_path, capsys, kind):
    pytest.importorskip("transformers")
    folder = tmp_path / "tok"
    if kind != "missing":
        folder.mkdir()
    if kind == "no_tags":
        from tokenizers import Tokenizer, models
        from transformers import PreTrainedTokenizerFast

        core = Tokenizer(models.WordLevel(vocab={"<unk>": 0, "a": 1}, unk_token="<unk>"))
        PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>").save_pretrained(str(folder))
    assert main(["trace", "--tokenizer", str(folder), str(SPEC_EXAMPLE)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --tokenizer {folder}")
    if kind == "no_tags":
        assert "add_format_tokens" in err[0]


def test_with_char_tokenizer(tmp_path, capsys):
    pytest.importorskip("transformers")
    from harness.tokenizer import build_char_tokenizer

    build_char_tokenizer(tmp_path / "tok")
    path = write_jsonl(tmp_path / "in.jsonl", ["02_spec_example", "03_uneven_threads"])
    assert main(["trace", "--json", "--tokenizer", str(tmp_path / "tok"), str(path)]) == 0
    out, err = capsys.readouterr()
    assert "fallback" not in err
    first, second = (json.loads(x) for x in out.splitlines())
    assert second["total_tokens"] == 12 + len("1: a") * 2 + len("1: x") + len(
        "2: x y z"
    )  # 12 tags + characters
    assert second["critical_path_tokens"] == second["total_tokens"] - len("1: x")
    assert first["threads_per_block"] == [2] and first["valid"] is True


def test_console_entry_point_subprocess():
    proc = subprocess.run(
        [sys.executable, "-m", "threadweaver.cli", "trace", "--json", str(SPEC_EXAMPLE)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["critical_path_tokens"] == 145


def test_parallel_r1_format_is_counted_by_its_own_tags(tmp_path, capsys):
    """`--format parallel-r1`: blocks are <Parallel>..</Parallel> with <Path> branches (formats.md section 3);
    hand-counted in tests/harness/test_formats.py (38 tokens, 33 on the critical path)."""
    text = ("We need it. <Parallel><Path>\nway one\n</Path><Path>\nway two long\n</Path></Parallel>\n<Summary>"
            "\nsame\n</Summary>\nFinal Answer: 7")  # test_formats.PR1_TEXT
    path = tmp_path / "pr1.txt"
    path.write_text(text)
    assert main(["trace", "--json", "--format", "parallel-r1", str(path)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["total_tokens"], d["critical_path_tokens"], d["threads_per_block"], d["valid"]) == (38, 33, [2], True)
    assert main(["trace", "--json", str(path)]) == 0  # read as ThreadWeaver: <Path> is text, a block of 0 threads
    d = json.loads(capsys.readouterr().out)
    assert (d["critical_path_tokens"], d["threads_per_block"], d["valid"]) == (d["total_tokens"], [0], False)
    assert main(["trace", "--format", "paralel-r1", str(path)]) == 2
    assert "unknown format 'paralel-r1'; did you mean 'parallel-r1'?" in capsys.readouterr().err
