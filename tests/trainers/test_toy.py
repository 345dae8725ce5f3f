"""The toy task (tasks/toy.py): splits, renderings, rollout-exact join text, grading, the task loader."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import pytest
from threadweaver_tasks import toy

from harness.counting import measure_text
from harness.errors import InputError
from harness.formats.threadweaver import ThreadWeaverFormat, parse_trajectory, validate_trajectory
from threadweaver.cli import main

TW = ThreadWeaverFormat()

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST = toy.make_split("test", 200)


def _value(digits) -> int:  # independent reference arithmetic
    return sum(digits) % 10


def test_splits_are_deterministic_and_disjoint():
    assert [p.question for p in toy.make_split("test", 50)] == [p.question for p in TEST[:50]]
    toy._split.cache_clear()
    assert [p.question for p in toy.make_split("test", 50)] == [p.question for p in TEST[:50]]
    train = {p.question for p in toy.make_split("train")}
    assert len(train) == toy.SPLIT_SIZES["train"]
    assert not train & {p.question for p in toy.make_split("test")}


def test_every_digit_is_keyed_in_the_question_and_the_steps():
    """Each step names its key ("C+2=7"), and the question holds that key once, with the same digit."""
    for p in TEST[:50]:
        keyed = dict(re.findall(r"([A-Z])\+(\d)", p.question))
        assert len(keyed) == sum(len(digits) for digits in p.chains)
        used = re.findall(r"([A-Z])\+(\d)=", toy.render_sequential(p))
        assert dict(used) == keyed and len(used) == len(keyed)


def test_answer_is_the_chain_results_in_order():
    for p in TEST:
        assert p.answer == "".join(str(_value(digits)) for digits in p.chains)
        assert len(p.chains) == len(toy.CHAIN_NAMES)


@pytest.mark.parametrize("p", TEST[:20], ids=lambda p: p.problem_id)
def test_both_renderings_hold_the_same_steps(p):
    par, seq = toy.render_parallel(p), toy.render_sequential(p)
    steps = re.compile(r"[A-Z]\+\d=\d|[a-d]=\d")
    assert steps.findall(par) == steps.findall(seq)
    assert par.endswith(f"\\boxed{{{p.answer}}}") and seq.endswith(f"\\boxed{{{p.answer}}}")
    assert "<Parallel>" not in seq


def test_parallel_rendering_is_valid_and_matches_rollout_join():
    for p in TEST[:50]:
        text = toy.render_parallel(p)
        assert validate_trajectory(parse_trajectory(text)) == []
        ctx, rest = text.split("</Outlines>")
        n = len(p.chains)
        # the rollout's thread prompt for thread 1 and its join; then "\n" and the model writes </Parallel>
        assert rest.startswith("".join(TW.branch_header("1", 0, joined=False)))
        assert f"</Thread>{TW.after_join('model')}</Parallel>" in rest
        for k in range(2, n + 1):
            assert f"</Thread><Thread>\n{k}:" in rest


def test_gold_critical_path_speedup_exceeds_target():
    """Sequential critical path / parallel critical path on gold traces: above the 1.4x target."""
    par = statistics.mean(measure_text(toy.render_parallel(p)).critical_path_tokens for p in TEST)
    seq = statistics.mean(measure_text(toy.render_sequential(p)).critical_path_tokens for p in TEST)
    assert seq / par > 1.4


def test_gold_renderings_grade_correct():
    """Answers are digit strings, some with a leading zero ("0917"), compared exactly: dropping the
    zero (chain a's result) is wrong, though "917" and "0917" are the same number."""
    from harness.grading import grade

    leading_zero = [p for p in TEST if p.answer.startswith("0")][:3]
    assert leading_zero
    for p in TEST[:5] + leading_zero:
        assert grade(toy.render_parallel(p), p.answer, "digits").status == "correct"
        wrong = p.answer[:-1] + str((int(p.answer[-1]) + 1) % 10)
        assert grade(toy.render_sequential(p), wrong, "digits").status == "wrong"
    p = leading_zero[0]
    dropped = toy.render_sequential(p).replace(f"\\boxed{{{p.answer}}}", f"\\boxed{{{p.answer[1:]}}}")
    assert grade(dropped, p.answer, "digits").status == "wrong"
    assert grade(dropped, p.answer, "math").status == "correct"  # the same number


def test_prompt_uses_chat_template_and_spec_instruction():
    from harness.tokenizer import build_char_tokenizer

    text = toy.prompt_text(TEST[0], build_char_tokenizer())
    assert text.startswith("<|im_start|>user\n" + TEST[0].question + " Let's think step by step")
    assert text.endswith("<|im_start|>assistant\n")


def test_toy_data_command(tmp_path, capsys):
    out = tmp_path / "d.jsonl"
    assert (
        main(["toy", "data", "--split", "test", "--limit", "3", "--mode", "sequential", "--out", str(out)])
        == 0
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["problem_id"] for r in rows] == [p.problem_id for p in TEST[:3]]
    assert rows[0]["response"] == toy.render_sequential(TEST[0])
    assert rows[0]["messages"] == [{"role": "user", "content": toy.user_message(TEST[0])}]
    assert main(["toy", "data", "--limit", "0", "--out", str(out)]) == 2


def test_hybrid_mix_is_deterministic_and_holds_both_kinds(tmp_path):
    """toy-hybrid's data (issue 14): each problem rendered parallel or sequential, decided by the question
    alone (same answer on every call and on a copy of the problem), both kinds present, about `mix` of the
    problems parallel, more of them where chain d starts with +2 (the cue), the extremes all one kind."""
    train = toy.make_split("train", 2000)
    modes = [toy.hybrid_mode(p) for p in train]
    assert modes == [toy.hybrid_mode(toy.ToyProblem("other-id", p.chains)) for p in train]
    for p, mode in zip(train[:20], modes, strict=False):
        assert toy.render(p, "hybrid") == toy.render(p, mode)
        assert toy.to_record(p, "hybrid").response == toy.render(p, mode)
    share = sum(m == "parallel" for m in modes) / len(modes)
    assert abs(share - toy.HYBRID_MIX) < 0.04
    cue = [m for p, m in zip(train, modes, strict=True) if p.chains[-1][0] == 2]
    rest = [m for p, m in zip(train, modes, strict=True) if p.chains[-1][0] != 2]
    assert cue.count("parallel") / len(cue) > 0.5 > rest.count("parallel") / len(rest) > 0.05
    assert {toy.hybrid_mode(p, mix=0.0, tilt=0.0) for p in train[:50]} == {"sequential"}
    assert {toy.hybrid_mode(p, mix=1.0, tilt=0.0) for p in train[:50]} == {"parallel"}
    with pytest.raises(ValueError, match="mix and tilt"):
        toy.hybrid_mode(train[0], mix=1.5)
    out = tmp_path / "h.jsonl"
    assert main(["toy", "data", "--split", "train", "--limit", "30", "--mode", "hybrid", "--out", str(out)]) == 0
    responses = [json.loads(line)["response"] for line in out.read_text().splitlines()]
    assert responses == [toy.render(p, modes[i]) for i, p in enumerate(train[:30])]


def test_tw_toy_loader():
    pytest.importorskip("datasets")

    ds = toy.load_dataset(split="test", limit=4, grading="digits")["test"]
    assert ds[0] == {**toy.to_doc(TEST[0]), "grading": "digits"} and len(ds) == 4
    with pytest.raises(InputError, match="needs `grading`"):
        toy.load_dataset(split="test", limit=4)


@pytest.mark.parametrize(
    "name", ["toy-threadweaver", "toy-sequential", "toy-hybrid", "toy-threadweaver-rl", "toy-sequential-rl"]
)
def test_shipped_models_are_small_plain_checkpoints(name):
    d = REPO_ROOT / "models" / name
    if not (d / "config.json").exists():
        pytest.skip(f"{d} not built yet (threadweaver toy train)")
    size = sum(f.stat().st_size for f in d.iterdir())
    assert size <= 10 * 2**20
    assert (d / "model.safetensors").exists() and (d / "tokenizer.json").exists()
    assert not list(d.glob("*.bin")) and not list(d.glob("*.pt"))


@pytest.mark.parametrize("name", ["toy-threadweaver", "toy-sequential", "toy-hybrid"])
def test_shipped_tokenizers_keep_step_tokens_whole(name):
    """The shipped models were trained with the task's current step tokens and their config's phrases, each
    one id (changing either without retraining fails here), and their tokenizer round-trips both renderings."""
    import yaml
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(REPO_ROOT / "models" / name / "tokenizer.json"))
    source = "toy-threadweaver" if name == "toy-hybrid" else name  # toy-hybrid is fine-tuned from it
    config = yaml.safe_load((REPO_ROOT / "trainers" / "toy" / "configs" / f"{source}.yaml").read_text())
    for t in [*toy.STEP_TOKENS, *config["extra_tokens"]]:
        assert len(tok.encode(t, add_special_tokens=False).ids) == 1, t
    for p in TEST[:3]:
        for text in (p.question, toy.render(p, "parallel"), toy.render(p, "sequential")):
            assert tok.decode(tok.encode(text, add_special_tokens=False).ids, skip_special_tokens=False) == text


@pytest.mark.parametrize("fmt", ["npr", "multiverse"])
def test_peer_format_rendering_is_valid_and_what_the_rollout_builds(fmt):
    """The toy task in NPR's and Multiverse's formats: valid under the format's checker, and byte for byte
    what the trie rollout builds when the model writes the plan, each branch its chain line, then the
    close (takeaway / conclusion) and the tail (scripted engine, the char tokenizer with the format's tags)."""
    from harness.engines.scripted import ScriptedEngine
    from harness.formats import get_format
    from harness.rollout import RolloutConfig, rollout_sync
    from harness.tokenizer import build_char_tokenizer

    f, tok = get_format(fmt), build_char_tokenizer(formats=("threadweaver", fmt), raw=True)
    header = re.compile(re.escape(f.branch_header("X", 0, joined=False)[0]) + r"\n(\d+):$")
    for p in TEST[:5]:
        text = toy.render_parallel(p, fmt)
        assert f.validate(text) == [] and text.endswith(f"\\boxed{{{p.answer}}}")

        def model(prompt: str, p=p, text=text) -> str:
            if m := header.search(prompt):  # a branch request: its chain line, closed
                return toy._chain_line(p, int(m.group(1)) - 1) + f.branch_close
            assert text.startswith(prompt[len("Q:"):]), prompt
            return text[len(prompt) - len("Q:"):]  # the trunk: the rest of the rendering, cut at the stops

        (rec,) = rollout_sync(ScriptedEngine(model, tokenizer=tok), [tok.encode("Q:")], RolloutConfig(format=fmt))
        assert rec.response == text and rec.faults == [] and rec.metrics.threads_per_block == [len(p.chains)]
        assert toy.to_record(p, "parallel", fmt).format == fmt
