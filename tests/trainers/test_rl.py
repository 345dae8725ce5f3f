"""The single-machine P-GRPO trainer (trainers/rl): packed loss = per-unit loss, one update per step, a run
end to end with the hf engine (the policy serves its own rollouts), resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from harness.engines.scripted import ScriptedEngine
from harness.errors import InputError
from harness.pgrpo import RLRow, num_completion_tokens, pgrpo_loss, units_to_rows
from harness.records import SampleRecord
from harness.rollout import RolloutConfig, rollout_sync
from trainers.rl.config import load_rl_config
from trainers.rl.trainer import train_rl
from trainers.rl.update import build_tree, tree_logprobs, update

REPO_ROOT = Path(__file__).resolve().parents[2]
TOY_MODEL = REPO_ROOT / "models" / "toy-threadweaver"
P = "Q: 1+1?\n"
HEAD = "<think>\n<Parallel>\n<Outlines>\n<Outline>1: add</Outline>\n<Outline>2: check</Outline>\n</Outlines>"
T1, T2 = " one plus one</Thread>", " it is two</Thread>"
JOINED = "\n<Thread>\n1:" + T1 + "<Thread>\n2:" + T2
SCRIPT = {P: HEAD, P + HEAD + "\n<Thread>\n1:": T1, P + HEAD + "\n<Thread>\n2:": T2,
          P + HEAD + JOINED + "\n": "</Parallel>\nSo \\boxed{2}.</think>"}  # fmt: skip


@pytest.fixture(scope="module")
def policy(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32, attn_implementation="sdpa")
    return model, tok


def _rows(tok):
    """Two scripted trajectories (a parallel one: 4 units, a sequential one: 1 unit) as rows."""
    prompt = tok.encode(P, add_special_tokens=False)
    (par,) = rollout_sync(ScriptedEngine(SCRIPT, tokenizer=tok), [prompt], RolloutConfig(join="model", logprobs=True))
    (seq,) = rollout_sync(ScriptedEngine({P: "<think>\nIt is \\boxed{2}.</think>"}, tokenizer=tok), [prompt],
                          RolloutConfig(parallel=False, logprobs=True))  # fmt: skip
    return [units_to_rows(par, 0.6, tok.eos_token_id), units_to_rows(seq, -0.6, tok.eos_token_id)]


def _with_old(rows):
    """The same rows with made-up old log probabilities far from the model's: ratios clip both ways."""
    return [[RLRow(r.prompt_ids, r.completion_ids, r.advantages, tuple(-4.6 + 0.2 * (j % 9) for j in range(len(r.completion_ids))))
             for r in rs] for rs in rows]  # fmt: skip


def _per_unit_loss(model, rows, num_tokens, use_old):
    """Reference: every unit its own causal row, plain positions and mask."""
    total, clipped = 0.0, 0
    for r in (r for rs in rows for r in rs):
        ids = torch.tensor([r.ids])
        logits = model(input_ids=ids, use_cache=False).logits[0]
        n = len(r.prompt_ids)
        logp = torch.log_softmax(logits[n - 1 : -1].float(), -1).gather(-1, ids[0, n:, None]).squeeze(-1)
        old = torch.tensor(r.old_logprobs) if use_old else None
        loss, c = pgrpo_loss(logp, old, torch.tensor(r.advantages), torch.ones_like(logp), num_tokens)
        total, clipped = total + loss, clipped + c
    return total, clipped


def _packed_loss(model, rows, pad_id, num_tokens, use_old):
    total, clipped = 0.0, 0
    for rs in rows:
        tree = build_tree(rs, pad_id, "dense")
        logp, mask = tree_logprobs(model, tree)
        loss, c = pgrpo_loss(logp, tree.old_logprobs if use_old else None, tree.advantages, mask, num_tokens)
        total, clipped = total + loss, clipped + c
    return total, clipped


def _grads(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("use_old", [False, True], ids=["on-policy", "ppo-clipped"])
def test_trie_packed_loss_and_gradient_equal_per_unit_rows(policy, use_old):
    model, tok = policy
    rows = _rows(tok)
    rows = _with_old(rows) if use_old else rows
    num_tokens = num_completion_tokens(rows)
    packed, clipped_packed = _packed_loss(model, rows, tok.pad_token_id, num_tokens, use_old)
    g_packed = _grads(model, packed)
    ref, clipped_ref = _per_unit_loss(model, rows, num_tokens, use_old)
    g_ref = _grads(model, ref)
    assert float(ref.detach()) != 0.0 and abs(float(packed.detach()) - float(ref.detach())) <= 1e-5
    assert clipped_packed == clipped_ref and (clipped_ref > 0) == use_old
    assert g_packed.keys() == g_ref.keys() and len(g_ref) > 0
    worst = max(float((g_packed[k] - g_ref[k]).abs().max()) for k in g_ref)
    assert worst <= 1e-5, f"gradient differs by {worst}"
    # the packed trees forward the shared contexts once: fewer tokens than the per-unit rows
    assert sum(len(build_tree(rs, 0).batch["input_ids"][0]) for rs in rows) < sum(len(r.ids) for rs in rows for r in rs)


def test_loss_at_ratio_one_is_reinforce_with_token_mean():
    logp = torch.tensor([-1.0, -2.0, -0.5], requires_grad=True)
    adv = torch.tensor([0.5, 0.5, -1.0])
    loss, clipped = pgrpo_loss(logp, None, adv, torch.tensor([1, 1, 0]), num_tokens=4)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(-(0.5 * 1 + 0.5 * 1) / 4) and clipped == 0  # ratio 1: -(A * 1) / T
    assert logp.grad.tolist() == pytest.approx([-0.5 / 4, -0.5 / 4, 0.0])
    # past the clip range the ratio is clipped and that token gets no gradient
    logp = torch.tensor([0.0], requires_grad=True)
    loss, clipped = pgrpo_loss(logp, torch.tensor([-1.0]), torch.tensor([1.0]), torch.tensor([1]), 1)
    loss.backward()
    assert clipped == 1 and float(loss.detach()) == pytest.approx(-1.28) and logp.grad.tolist() == [0.0]


def test_one_optimizer_update_per_call(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32, attn_implementation="sdpa")
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    steps = []
    optimizer.register_step_post_hook(lambda opt, args, kwargs: steps.append(1))
    rows = _rows(tok)
    trees = [build_tree(rs, tok.pad_token_id) for rs in rows]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}

    def objective():  # sum of A * log pi over trained tokens: the update must raise it
        with torch.no_grad():
            return sum(float((tree_logprobs(model, t)[0] * t.advantages).sum()) for t in trees)

    start = objective()
    stats = update(model, optimizer, trees, num_completion_tokens(rows), max_grad_norm=1.0, ref_model=model)
    assert len(steps) == 1 and stats["grad_norm"] > 0 and stats["kl"] == pytest.approx(0.0, abs=1e-6)
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters())
    assert objective() > start  # positive-advantage tokens became likelier, negative ones less likely
    # more updates per batch (PPO), no stored log probabilities: update 0's own stand in (ratio 1, nothing
    # clipped); each call is one step, and the later ones see the moved policy's ratios and clip
    rows = [[RLRow(r.prompt_ids, r.completion_ids, r.advantages, (None,) * len(r.completion_ids)) for r in rs]
            for rs in rows]  # fmt: skip
    trees = [build_tree(rs, tok.pad_token_id) for rs in rows]
    clipped = [update(model, optimizer, trees, num_completion_tokens(rows), index=i, on_policy=False)["clipped_tokens"]
               for i in range(3)]  # fmt: skip
    assert len(steps) == 4 and clipped[0] == 0 and clipped[-1] > 0


@pytest.fixture(scope="module")
def taught_model(trained_tiny_model):
    """The tiny model test_engines teaches one parallel trajectory (trained once per session, shared):
    sampled at temperature 1 it mostly follows it, so rollouts block, answer, and sometimes go astray."""
    sys.path.insert(0, str(REPO_ROOT / "tests" / "harness"))
    from test_engines import PROMPT, UNITS

    return trained_tiny_model(UNITS), PROMPT


def test_run_end_to_end_with_the_policy_as_engine(tmp_path, taught_model):
    model_dir, prompt = taught_model
    data = tmp_path / "prompts.jsonl"
    data.write_text(SampleRecord(problem_id="q", sample_index=0, response="", gold="5", grading="math",
                                 prompt=prompt).to_json() + "\n")  # fmt: skip
    out = tmp_path / "run"
    config = load_rl_config(REPO_ROOT / "trainers/toy/configs/toy-rl.yaml", [
        f"model={model_dir}", f"dataset_path=[{data}]", f"output_dir={out}", "steps=2", "prompts_per_step=1",
        "rollouts_per_prompt=6", "rollout.budget_tokens=200", "rollout.max_steps=4", "learning_rate=1.0e-3"])  # fmt: skip
    summary = train_rl(config)
    lines = [json.loads(x) for x in (out / "rl_log.jsonl").read_text().splitlines()]
    assert summary["steps"] == 2 and [x["step"] for x in lines] == [1, 2]
    for x in lines:
        assert x["reward_variant"] == "paper" and x["trajectories"] == 6 and x["trained_tokens"] > 0
        for key in ("reward_mean", "accuracy", "eta_mean", "critical_path_tokens", "total_tokens", "activation_ratio",
                    "format_fault_rate", "truncation_rate", "grading_timeouts", "kl", "rollout_s", "train_s",
                    "rollout_tokens_per_s", "train_tokens_per_s"):  # fmt: skip
            assert x[key] is not None, key
    assert max(x["activation_ratio"] for x in lines) > 0 and max(x["accuracy"] for x in lines) > 0
    assert json.loads((out / "checkpoint-last" / "state.json").read_text())["step"] == 2
    assert (out / "model.safetensors").exists() and (out / "rl_curves.png").stat().st_size > 0
    # one optimizer update per step: Adam's step counter = the steps that had a non-zero advantage
    state = torch.load(out / "checkpoint-last" / "optimizer.pt", weights_only=True)["state"]
    trained_steps = sum(x["advantage_abs_mean"] > 0 for x in lines)
    assert {int(s["step"]) for s in state.values()} == ({trained_steps} if trained_steps else set())
    assert lines[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # step 1 samples from the start policy itself
    if lines[0]["advantage_abs_mean"] > 0:
        assert lines[1]["kl"] > 0  # the update moved the policy


def test_unknown_keys_are_refused_with_a_suggestion(tmp_path, capsys):
    from threadweaver.cli import main

    cfg = tmp_path / "rl.yaml"
    cfg.write_text("model: m\noutput_dir: o\ndataset_path: [d.jsonl]\nlerning_rate: 1\n")
    with pytest.raises(InputError, match="unknown key 'lerning_rate'; did you mean 'learning_rate'"):
        load_rl_config(cfg)
    assert main(["train", "rl", "--config", str(cfg)]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0  # one line
    cfg.write_text("model: m\noutput_dir: o\ndataset_path: [d.jsonl]\nrollout: {budjet_tokens: 8}\n")
    with pytest.raises(InputError, match="rollout: unknown key 'budjet_tokens'"):
        load_rl_config(cfg)
    with pytest.raises(InputError, match="rollouts_per_prompt must be an int >= 2"):
        load_rl_config(cfg, ["rollout={}", "rollouts_per_prompt=1"])


def test_resume_after_a_kill_finishes_the_same_steps(tmp_path, tiny_model_dir):
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(SampleRecord(problem_id=f"p{i}", sample_index=0, response="", gold="7", grading="math",
                                         prompt=f"Q{i}: 3+4?\n").to_json() + "\n" for i in range(3)))  # fmt: skip
    out = tmp_path / "run"
    cfg = tmp_path / "rl.yaml"
    cfg.write_text(f"model: {tiny_model_dir}\noutput_dir: {out}\ndataset_path: [{data}]\nsteps: 6\n"
                   "prompts_per_step: 1\nrollouts_per_prompt: 2\nkl_monitor: false\nplot: false\nnum_threads: 1\n"
                   "rollout: {budget_tokens: 96}\nlearning_rate: 1.0e-3\ndevice: cpu\n")  # fmt: skip
    cmd = [sys.executable, "-c", "import sys; from threadweaver.cli import main; sys.exit(main())",
           "train", "rl", "--config", str(cfg)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = out / "checkpoint-last" / "state.json"
    deadline = time.monotonic() + 60
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    summary = train_rl(load_rl_config(cfg))
    steps = [json.loads(x)["step"] for x in (out / "rl_log.jsonl").read_text().splitlines()]
    assert 1 <= summary["resumed_from"] < 6 and steps == [1, 2, 3, 4, 5, 6] and summary["steps"] == 6
    assert json.loads(state.read_text())["step"] == 6
    with pytest.raises(InputError, match="holds a run from model .*seed 0"):  # another run's output_dir
        train_rl(load_rl_config(cfg, ["seed=1"]))
