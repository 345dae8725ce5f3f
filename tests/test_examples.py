"""Every example printed by `threadweaver ... --help` runs as printed (issue 13 item 8).

The examples are read from the help texts themselves (argparse's output, and the `eval` module's doc that
`threadweaver eval --help` prints first), not from a copy here. Each command's examples run in order, as a
user types them, with bash, in a fresh folder that holds what their placeholders name (`path/to/model`,
`problems.jsonl`, `out/`, ...): a tiny model, a few problems, a run's sample records. An example that
needs a GPU says so after it (`# needs a GPU: reason`): it is parsed by the command's own parser but not
run. `threadweaver toy demo --limit 200 --engine vllm` is the README's setup command, which CI runs as its
main job; the test checks that it is there instead of running it a second time.

The README's own command blocks are run by tests/test_readme_workflow.py (ci:workflow) and by CI itself
(ci:setup, ci:test); the tour's `lm_eval` line by tests/test_newcomer_tour.py.
"""

from __future__ import annotations

import argparse
import glob
import json
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GPU_MARK = "# needs a GPU:"
EXAMPLE_START = re.compile(r"^\s+((?:[A-Z_]+=\S+\s+)?(?:threadweaver|lm_eval)\s.*)$")
RUN_BY_CI_SETUP = "threadweaver toy demo --limit 200 --engine vllm"
RUN_BY_TOUR_TEST = REPO / "tests/test_newcomer_tour.py"  # runs the quick start's `lm_eval` line
# what a command's examples need that the sandbox does not hold until something made it: run first
PREPARE = {
    # sample records with their requests (units)
    "bench rollout": ["threadweaver rollout problems.jsonl --engine hf --model path/to/model --out records.jsonl"],
    # two runs' records (the lm-eval backend writes the same records)
    "datagen stage1": ["threadweaver datagen stage0 --prompts problems.jsonl --engine hf --model path/to/model "
                       "--samples 1 --out seq.jsonl"],
    "results": ["threadweaver rollout problems.jsonl --engine hf --model path/to/model --benchmark toy "
                "--grading digits --out out/tw/threadweaver_trajectories_1.jsonl",
                "threadweaver rollout problems.jsonl --engine hf --model models/toy-sequential --no-parallel "
                "--benchmark toy --grading digits --out out/seq/threadweaver_trajectories_1.jsonl"],
}  # fmt: skip


def help_texts() -> dict[str, str]:
    """Command -> its --help text, for every command and subcommand of `threadweaver`."""
    from threadweaver import cli
    from threadweaver.commands import eval as eval_command

    texts = {"threadweaver": cli.build_parser([]).format_help(), "eval": eval_command.__doc__ or ""}
    for name in cli.COMMANDS:
        if name == "eval":
            continue
        top = cli.build_parser([name])
        command = _subparsers(top)[name]
        texts[name] = command.format_help()
        for sub_name, sub in _subparsers(command).items():
            texts[f"{name} {sub_name}"] = sub.format_help()
    return texts


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def examples_in(text: str) -> list[str]:
    """The command lines of a help text: indented lines starting with a command, `\\` continued."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = EXAMPLE_START.match(lines[i])
        i += 1
        if not m:
            continue
        line = m.group(1).rstrip()
        while line.endswith("\\") and i < len(lines):
            line = line[:-1].rstrip() + " " + lines[i].strip()
            i += 1
        out.append(line)
    return out


def all_examples() -> dict[str, list[str]]:
    """Command -> its examples, each example listed once (under the first help text that shows it)."""
    seen: set[str] = set()
    table: dict[str, list[str]] = {}
    for command, text in help_texts().items():
        new = [e for e in examples_in(text) if e not in seen]
        seen.update(new)
        if new:
            table[command] = new
    return table


def test_the_help_texts_have_examples():
    table = all_examples()
    assert {"threadweaver", "eval", "trace", "rollout", "grade", "results", "regress", "store"} <= set(table)
    assert sum(len(v) for v in table.values()) >= 25
    for examples in table.values():
        for example in examples:
            assert "\\" not in example.replace("\\\\", ""), example  # continuations were joined


# ----------------------------------------------------------------------------------------------- sandbox
def _model(dest: Path, context: int, name: str = "toy-threadweaver") -> None:
    """A shipped toy model (short, well-formed answers), its context cut to `context` positions."""
    shutil.copytree(REPO / "models" / name, dest)
    config = json.loads((dest / "config.json").read_text())
    config["max_position_embeddings"] = context
    (dest / "config.json").write_text(json.dumps(config))


def _records(sandbox: Path, name: str, count: int = 3) -> Path:
    """Sample records of the toy task (graded by `regrade`/`results build` like any run's records)."""
    from threadweaver_tasks.toy import make_split, to_record

    path = sandbox / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(to_record(p, "parallel").to_json() + "\n" for p in make_split("test", count)))
    return path


def make_sandbox(root: Path, shared_data: Path) -> Path:
    from threadweaver_tasks.toy import make_split, render_parallel, user_message

    root.mkdir(parents=True)
    for rel in ("harness/examples", "trainers/toy/configs"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(REPO / rel)
    shutil.copytree(REPO / "results", root / "results")
    shutil.copy(REPO / "results" / "toy-threadweaver__toy.json", root / "new__toy.json")
    _model(root / "path/to/model", 400)  # a toy trajectory: about 90 prompt + 224 response tokens
    # `--format parallel-r1` on M: toy-sequential never writes `<Parallel>` (Parallel-R1's fork trigger, which
    # toy-threadweaver writes for its own format), so the rollout stays one short sequential request
    _model(root / "M", 400, "toy-sequential")
    (root / "models").symlink_to(REPO / "models")
    for alias in ("path/to/tokenizer_dir", "sft1"):
        (root / alias).parent.mkdir(parents=True, exist_ok=True)
        (root / alias).symlink_to(root / "path/to/model")
    problems = make_split("test", 2)
    with open(root / "problems.jsonl", "w") as fh:
        for i, p in enumerate(problems):
            fh.write(json.dumps({"id": f"p{i}", "prompt": user_message(p), "answer": p.answer}) + "\n")
    with open(root / "samples.jsonl", "w") as fh:
        for response, gold, rule in [("so \\boxed{25}", "025", "math"), ("\\boxed{\\frac{8}{5}}", "1.6", None),
                                     ("no box", "3", "exact")]:  # fmt: skip
            fh.write(json.dumps({"response": response, "gold": gold} | ({"grading": rule} if rule else {})) + "\n")
    with open(root / "responses.jsonl", "w") as fh:
        for p in problems:
            fh.write(json.dumps({"response": render_parallel(p)}) + "\n")
    (root / "trajectory.txt").write_text(  # Parallel-R1: two paths, the runtime's summary
        "Two ways.\n<Parallel><Path>2+3=5</Path><Path>3+2=5</Path></Parallel>\n<Summary>Both 5.</Summary>\n"
        "Final Answer: \\boxed{5}")
    _records(root, "out/threadweaver_trajectories_20260101T000000.jsonl")
    _records(root, "toy-records.jsonl")
    (root / "my.yaml").write_text(
        "dataset_path: [toy-records.jsonl]\nmodel: path/to/model\nmax_tokens: 1024\nmask: dense\n"
        "per_device_train_batch_size: 2\nuse_cpu: true\nreport_to: none\n"
    )
    # `datagen`: the benchmark file's first lines, and a pipeline config for this sandbox
    with open(shared_data / "math500.jsonl") as src, open(root / "math500.jsonl", "w") as dst:
        dst.writelines(line for _, line in zip(range(3), src, strict=False))
    (root / "pipeline.yaml").write_text(
        "work_dir: out/datagen\nproblems: problems.jsonl\nstages: [stage0]\n"
        "stage0: {engine: hf, model: path/to/model, samples: 1}\n"
        "stage1: {base_url: 'http://127.0.0.1:8000/v1', model: gpt-x}\n"
        "sft1: {model: path/to/model, max_steps: 1, max_tokens: 1024, use_cpu: true}\n"
        "stage2: {engine: hf, samples: 1}\nsft2: {max_steps: 1, max_tokens: 1024, use_cpu: true}\n"
    )
    (root / "out/datagen").mkdir(parents=True)
    (root / "out/datagen/sft1").symlink_to(root / "path/to/model")  # what stage sft1 would have trained
    home = root / "home"
    store = home / ".cache/threadweaver/store"
    store.mkdir(parents=True)
    (store / "1a2b3c4d5e6f7a8b.jsonl").write_text("")
    (store / "0f0e0d0c0b0a0908.jsonl").write_text("")
    return root


def run_example(example: str, sandbox: Path, monkeypatch, capsys) -> tuple[int, str]:
    """Run one `threadweaver ...` line in this process (a subprocess would pay the imports again for every
    line): `NAME=value` prefixes set the environment, `> FILE` sends stdout to FILE. Returns (exit code,
    stderr)."""
    from threadweaver import cli

    argv = shlex.split(example.split("  #")[0])
    while argv and re.fullmatch(r"[A-Z_]+=\S*", argv[0]):
        name, value = argv.pop(0).split("=", 1)
        monkeypatch.setenv(name, value)
    argv = [m for a in argv for m in (sorted(glob.glob(a)) or [a] if any(c in a for c in "*?[") else [a])]
    out_file = None
    if ">" in argv:
        at = argv.index(">")
        argv, out_file = argv[:at], argv[at + 1]
    assert argv[0] == "threadweaver", f"{example}: only threadweaver lines run in process"
    capsys.readouterr()
    code = cli.main(argv[1:])
    captured = capsys.readouterr()
    if out_file:
        (sandbox / out_file).write_text(captured.out)
    return code, captured.err


def _parse_only(example: str) -> None:
    """An example marked as needing a GPU: its own parser accepts it."""
    from threadweaver import cli

    argv = shlex.split(example.split(GPU_MARK)[0])
    assert argv[0] == "threadweaver", example
    parser = cli.build_parser(argv[1:])
    parser.parse_args(argv[1:])


EXAMPLES = all_examples()


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(EXAMPLES))
def test_every_help_example_runs_as_printed(command, tmp_path, shared_data, monkeypatch, capsys, request):
    sandbox = make_sandbox(tmp_path / "sandbox", shared_data)
    if command.startswith("datagen"):  # the examples' chat endpoint, http://127.0.0.1:8000/v1
        sys.path.insert(0, str(REPO / "tests/trainers"))
        from chat_server import ChatServer, good_llm

        server = ChatServer(good_llm, port=8000)
        server.__enter__()
        request.addfinalizer(lambda: server.__exit__(None, None, None))
    monkeypatch.chdir(sandbox)
    monkeypatch.setenv("THREADWEAVER_STORE_DIR", str(sandbox / "home/.cache/threadweaver/store"))
    monkeypatch.setenv("THREADWEAVER_DATA_DIR", str(shared_data))
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    readme_setup = (REPO / "README.md").read_text().split("<!-- ci:setup -->")[1].split("```")[1]
    for line in PREPARE.get(command, []):
        code, err = run_example(line, sandbox, monkeypatch, capsys)
        assert code == 0, f"preparing {command}: {line}\n{err[-3000:]}"
    for example in EXAMPLES[command]:
        if GPU_MARK in example:
            assert example.split(GPU_MARK)[1].strip(), f"{example}: say why it needs a GPU"
            _parse_only(example)
            continue
        if example.split("  #")[0].strip() == RUN_BY_CI_SETUP:
            assert RUN_BY_CI_SETUP in readme_setup
            continue
        if example.startswith("lm_eval "):
            assert example in RUN_BY_TOUR_TEST.read_text(), f"{example}: no test runs it"
            continue
        code, err = run_example(example, sandbox, monkeypatch, capsys)
        assert code == 0, f"{example}\nexit {code}\n{err[-3000:]}"
